"""Profiles and context: values, overrides, prefix validation, expiry and tags."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import pytest

from cdk.config import (
    PRODUCTION,
    ConfigError,
    StackConfig,
    check_pending_window,
    default_ephemeral_prefix,
    load_config,
)

NOW = datetime(2030, 1, 31, 12, 0, tzinfo=UTC)


def _load(context: dict[str, Any], environ: dict[str, str] | None = None) -> StackConfig:
    return load_config(context.get, now=NOW, environ=environ or {"USER": "alice"})


def test_production_is_the_default_and_exactly_the_spec() -> None:
    config = _load({})
    assert config == PRODUCTION
    assert (config.profile, config.stack_prefix) == ("production", "TaskApi")
    assert config.visibility_timeout_s == 300
    assert (config.queue_retention_s, config.dlq_retention_s) == (4 * 86400, 14 * 86400)
    # The spec's "3 attempts" is the processor's budget; the queue's redrive is a safety
    # net above it (docs/decisions/attempt-budget-and-redrive.md).
    assert config.attempt_budget == 3
    assert config.max_receive_count == 31 == config.redrive_floor()
    assert (config.api_timeout_s, config.pending_window_s) == (12, 30)
    check_pending_window(config)
    assert (config.processor_timeout_s, config.processor_memory_mb) == (60, 512)
    assert (config.processor_reserved_concurrency, config.batch_size) == (10, 10)
    assert (config.api_errors_threshold, config.processor_errors_threshold) == (5, 10)
    assert (config.dlq_messages_threshold, config.alarm_period_s) == (1, 300)
    assert config.log_retention_days == 7
    assert config.fault_injection is False
    assert config.destroy_on_delete is False
    assert config.tags() == {"project": "task-api", "profile": "production"}


def test_production_rejects_timing_overrides() -> None:
    with pytest.raises(
        ConfigError, match=r"production values are fixed by the spec.*visibility_timeout"
    ):
        _load({"profile": "production", "visibility_timeout": "10"})


def test_production_accepts_another_prefix() -> None:
    assert _load({"stack_prefix": "TaskApiStaging"}).stack_prefix == "TaskApiStaging"


def test_ephemeral_defaults_reach_the_dlq_within_twenty_seconds() -> None:
    config = _load({"profile": "ephemeral"})
    assert config.fault_injection is True
    assert config.destroy_on_delete is True
    assert (config.visibility_timeout_s, config.processor_timeout_s) == (4, 3)
    assert (config.attempt_budget, config.max_receive_count) == (3, 31)
    # A failing task is dead-lettered by the processor on its last attempt.
    assert config.visibility_timeout_s * config.attempt_budget <= 20
    # Everything but the timings, lifecycle and naming matches production.
    differing = {k for k, v in asdict(config).items() if asdict(PRODUCTION)[k] != v}
    assert differing == {
        "profile",
        "stack_prefix",
        "visibility_timeout_s",
        "processor_timeout_s",
        "pending_window_s",
        "log_retention_days",
        "point_in_time_recovery",
        "destroy_on_delete",
        "fault_injection",
        "expires_at",
        "owner",
    }


def test_ephemeral_overrides_from_context() -> None:
    config = _load(
        {
            "profile": "ephemeral",
            "visibility_timeout": "12",
            "processor_timeout": 10,
            "attempt_budget": "2",
            "max_receive_count": "25",
            "alarm_period": "120",
            "throttle_rate": "50.5",
        }
    )
    assert (config.visibility_timeout_s, config.processor_timeout_s) == (12, 10)
    assert (config.attempt_budget, config.max_receive_count) == (2, 25)
    assert config.alarm_period_s == 120
    assert config.throttling_rate_limit == 50.5


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"visibility_timeout": "2"},
            r"visibility_timeout \(2 s\) must be >= processor_timeout \(3 s\)",
        ),
        ({"batch_size": "11"}, r"batch_size=11 is outside 1..10"),
        ({"processor_timeout": "abc"}, r"processor_timeout='abc' is not a valid number"),
        ({"processor_timeout": "-1"}, r"must be positive"),
        ({"max_receive_count": "1.5"}, r"whole number"),
        (
            {"max_receive_count": "30"},
            r"max_receive_count=30 is below batch_size x attempt_budget \+ 1 = 31",
        ),
        ({"attempt_budget": "4"}, r"max_receive_count=31 is below .* = 41"),
        ({"pending_window": "14"}, r"pending_window_s=14 must be >= api_timeout_s \(12\) \+ 3"),
        ({"alarm_period": "45"}, r"10, 20, 30 or a multiple of 60"),
        ({"expires_at": "tomorrow"}, r"not an ISO 8601 time"),
        ({"expires_at": "2030-01-31T18:00:00"}, r"needs a timezone"),
        (
            {"expires_at": "2030-01-31T18:00:00Z", "ttl_hours": "2"},
            r"either -c expires_at or -c ttl_hours",
        ),
        ({"apigw_cloudwatch_role": "maybe"}, r"must be true or false"),
    ],
)
def test_ephemeral_rejects_bad_context(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load({"profile": "ephemeral", **context})


def test_unknown_profile() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown profile 'staging'; choose one of production, ephemeral"
    ):
        _load({"profile": "staging"})


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("1pr", "must start with a letter"),
        ("pr_123", "only letters, digits and hyphens"),
        ("pr-", "must not end with '-'"),
        ("pr--1", "contain '--'"),
        ("p" * 33, "is 33 characters; at most 32 allowed"),
    ],
)
@pytest.mark.parametrize("profile", ["production", "ephemeral"])
def test_invalid_stack_prefix_is_a_clear_error(profile: str, prefix: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        _load({"profile": profile, "stack_prefix": prefix})
    assert str(raised.value).startswith(f"invalid -c stack_prefix: stack prefix {prefix!r}")


@pytest.mark.parametrize(
    ("user", "prefix"),
    [
        ("alice", "ephemeral-alice"),
        ("Bob.Smith@example.com", "ephemeral-bob-smith-example-com"),
        ("___", "ephemeral"),
        ("x" * 40, "ephemeral-" + "x" * 22),
        ("a" * 21 + "-b", "ephemeral-" + "a" * 21),
    ],
)
def test_default_ephemeral_prefix_is_sanitized(user: str, prefix: str) -> None:
    assert default_ephemeral_prefix(user) == prefix
    assert _load({"profile": "ephemeral"}, {"USER": user}).stack_prefix == prefix


def test_ephemeral_expiry_and_owner_tags() -> None:
    config = _load({"profile": "ephemeral"}, {"GITHUB_ACTOR": "octo-cat", "USER": "runner"})
    assert config.expires_at == "2030-01-31T16:00:00Z"  # NOW + 4 h default
    assert config.owner == "octo-cat"
    assert config.tags() == {
        "project": "task-api",
        "profile": "ephemeral",
        "ephemeral": "true",
        "expires-at": "2030-01-31T16:00:00Z",
        "owner": "octo-cat",
    }
    assert _load({"profile": "ephemeral", "ttl_hours": "0.5"}).expires_at == "2030-01-31T12:30:00Z"
    explicit = _load(
        {"profile": "ephemeral", "expires_at": "2030-02-01T01:00:00+01:00", "owner": "me"}
    )
    assert (explicit.expires_at, explicit.owner) == ("2030-02-01T00:00:00Z", "me")
