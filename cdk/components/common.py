"""Small helpers the constructs share: removal policies and log retention per profile."""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, RemovalPolicy, Validations
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from cdk.config import StackConfig

_RETENTION: Final = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
}


def stateful_removal_policy(config: StackConfig) -> RemovalPolicy:
    """Tables, queues and log groups: kept when a production stack goes, deleted otherwise."""
    return RemovalPolicy.DESTROY if config.destroy_on_delete else RemovalPolicy.RETAIN


def log_retention(config: StackConfig) -> logs.RetentionDays:
    """The profile's log retention as the CDK enum."""
    try:
        return _RETENTION[config.log_retention_days]
    except KeyError:
        raise ValueError(
            f"log retention {config.log_retention_days} days is not one of {sorted(_RETENTION)}"
        ) from None


def log_group(scope: Construct, construct_id: str, config: StackConfig, name: str) -> logs.LogGroup:
    """A log group with the profile's retention and removal policy."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=log_retention(config),
        removal_policy=stateful_removal_policy(config),
    )


NAG_PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge a cdk-nag AwsSolutions finding on ``construct`` and what it contains.

    ``rule_id`` is the finding as cdk-nag names it, e.g. ``AwsSolutions-L1`` or, for one
    finding of a granular rule, ``AwsSolutions-IAM5[Resource::*]``.
    """
    if len(reason) < 40:
        raise ValueError(f"acknowledging {rule_id} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(
        Acknowledgment(id=f"{NAG_PACK}::{rule_id}", reason=reason)
    )
