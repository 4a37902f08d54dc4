"""Deployment profiles: one frozen dataclass per profile, chosen by ``-c profile=...``.

``production`` is exactly the architecture spec and cannot be tuned from the command line.
``ephemeral`` keeps the same resources with short timings so retries and dead-letter moves
take seconds; its timings can be overridden by context (``-c visibility_timeout=8``).

This module imports nothing from aws_cdk so it stays cheap to import and to test.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from cdk.naming import MAX_PREFIX_LENGTH, validate_stack_prefix

Profile = Literal["production", "ephemeral"]
PROFILES: Final[tuple[Profile, ...]] = ("production", "ephemeral")
DEFAULT_PROFILE: Final[Profile] = "production"
PRODUCTION_PREFIX: Final = "TaskApi"
DEFAULT_TTL_HOURS: Final = 4.0
CDK_JSON: Final = Path(__file__).resolve().parents[1] / "cdk.json"

DAY_S: Final = 24 * 60 * 60

# Context keys an ephemeral profile accepts, mapped to the config field they set.
# Production rejects them: its values are the spec's, not a command-line choice.
TIMING_OVERRIDES: Final[Mapping[str, str]] = {
    "visibility_timeout": "visibility_timeout_s",
    "processor_timeout": "processor_timeout_s",
    "max_receive_count": "max_receive_count",
    "attempt_budget": "attempt_budget",
    "batch_size": "batch_size",
    "reserved_concurrency": "processor_reserved_concurrency",
    "alarm_period": "alarm_period_s",
    "dlq_alarm_period": "dlq_alarm_period_s",
    "throttle_rate": "throttling_rate_limit",
    "throttle_burst": "throttling_burst_limit",
    "pending_window": "pending_window_s",
}


class ConfigError(ValueError):
    """The context does not describe a valid deployment; the message says what to change."""


@dataclass(frozen=True)
class StackConfig:
    """Every value the stacks read. Durations are seconds, sizes MiB, retentions days."""

    profile: Profile
    stack_prefix: str
    # Task queue (FIFO, content-based deduplication) and its FIFO dead-letter queue.
    visibility_timeout_s: int
    queue_retention_s: int
    dlq_retention_s: int
    # The spec's "3 attempts": the processor dead-letters a task after this many real
    # attempts. The queue's redrive count is only a safety net above it (see
    # docs/decisions/attempt-budget-and-redrive.md and redrive_floor()).
    attempt_budget: int
    max_receive_count: int
    # Processor Lambda and its SQS event source.
    processor_timeout_s: int
    processor_memory_mb: int
    processor_reserved_concurrency: int
    batch_size: int
    # API Lambda (the spec fixes none of these; sized for a validate-and-enqueue handler).
    # The timeout covers the SDK's whole worst case on the longest request path (see
    # handlers/adapters/aws.py); a stored task not confirmed queued within
    # pending_window_s is cancelled by the deadline rule (docs/decisions/task-lifecycle.md).
    api_timeout_s: int
    api_memory_mb: int
    pending_window_s: int
    # REST API stage.
    stage_name: str
    throttling_rate_limit: float
    throttling_burst_limit: int
    # Alarms: API errors > 5 and processor errors > 10 in one period, DLQ depth >= 1.
    api_errors_threshold: int
    processor_errors_threshold: int
    dlq_messages_threshold: int
    alarm_period_s: int
    dlq_alarm_period_s: int
    # Data protection and lifecycle.
    log_retention_days: int
    point_in_time_recovery: bool
    destroy_on_delete: bool
    fault_injection: bool
    # Whether this stack sets the account-wide API Gateway CloudWatch Logs role (see README).
    apigw_cloudwatch_role: bool = True
    expires_at: str | None = None
    owner: str | None = None

    def redrive_floor(self) -> int:
        """The fewest receives that can never redrive a task the processor still owes an
        attempt: each of the ``batch_size - 1`` tasks ahead of it in its first batch can
        hold it back for up to ``attempt_budget`` receives, its own attempts take as many,
        and one more delivery dead-letters a last attempt that crashed or timed out."""
        return self.batch_size * self.attempt_budget + 1

    @property
    def is_ephemeral(self) -> bool:
        """True for the short-lived CI/test profile."""
        return self.profile == "ephemeral"

    def tags(self) -> dict[str, str]:
        """Tags for every taggable resource and for the CloudFormation stacks themselves."""
        tags = {"project": "task-api", "profile": self.profile}
        if self.is_ephemeral:
            tags["ephemeral"] = "true"
            if self.expires_at is not None:
                tags["expires-at"] = self.expires_at
            if self.owner is not None:
                tags["owner"] = self.owner
        return tags


PRODUCTION: Final = StackConfig(
    profile="production",
    stack_prefix=PRODUCTION_PREFIX,
    visibility_timeout_s=300,
    queue_retention_s=4 * DAY_S,
    dlq_retention_s=14 * DAY_S,
    attempt_budget=3,
    # batch 10 x 3 attempts + 1 (redrive_floor): see the decision record.
    max_receive_count=31,
    processor_timeout_s=60,
    processor_memory_mb=512,
    processor_reserved_concurrency=10,
    batch_size=10,
    api_timeout_s=12,
    api_memory_mb=256,
    pending_window_s=30,
    stage_name="prod",
    throttling_rate_limit=100.0,
    throttling_burst_limit=200,
    api_errors_threshold=5,
    processor_errors_threshold=10,
    dlq_messages_threshold=1,
    alarm_period_s=300,
    dlq_alarm_period_s=60,
    log_retention_days=7,
    point_in_time_recovery=True,
    destroy_on_delete=False,
    fault_injection=False,
)

# A task that always fails is attempted at about 0 s, 4 s and 8 s and dead-lettered by the
# processor on its third attempt (visibility 4 s x attempt budget 3). AWS rejects an SQS
# event source whose queue visibility timeout is shorter than the function timeout.
EPHEMERAL_DEFAULTS: Final = replace(
    PRODUCTION,
    profile="ephemeral",
    stack_prefix="ephemeral",
    visibility_timeout_s=4,
    processor_timeout_s=3,
    # Short, so a scenario sees an abandoned submission cancelled by its deadline soon.
    pending_window_s=20,
    log_retention_days=1,
    point_in_time_recovery=False,
    destroy_on_delete=True,
    fault_injection=True,
)

_INT_FIELDS: Final = frozenset(
    {
        "visibility_timeout_s",
        "processor_timeout_s",
        "max_receive_count",
        "attempt_budget",
        "batch_size",
        "processor_reserved_concurrency",
        "alarm_period_s",
        "dlq_alarm_period_s",
        "throttling_burst_limit",
        "pending_window_s",
    }
)

ContextGetter = Callable[[str], Any]


def load_config(
    get: ContextGetter,
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> StackConfig:
    """Build the config from CDK context (``get(key)`` returns the value or ``None``)."""
    env = os.environ if environ is None else environ
    profile = _text(get("profile")) or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    overrides = {key: get(key) for key in TIMING_OVERRIDES if get(key) is not None}
    apigw_role = _bool("apigw_cloudwatch_role", get("apigw_cloudwatch_role"), default=True)
    prefix_context = _text(get("stack_prefix"))

    if profile == "production":
        if overrides:
            raise ConfigError(
                f"production values are fixed by the spec; context {sorted(overrides)} is "
                "only accepted with -c profile=ephemeral"
            )
        prefix = _prefix(prefix_context or PRODUCTION_PREFIX)
        return replace(PRODUCTION, stack_prefix=prefix, apigw_cloudwatch_role=apigw_role)

    changes: dict[str, Any] = {
        TIMING_OVERRIDES[key]: _number(key, value, TIMING_OVERRIDES[key] in _INT_FIELDS)
        for key, value in overrides.items()
    }
    owner = _owner(_text(get("owner")), env)
    config = replace(
        EPHEMERAL_DEFAULTS,
        stack_prefix=_prefix(prefix_context or default_ephemeral_prefix(owner)),
        expires_at=_expires_at(get("expires_at"), get("ttl_hours"), now),
        owner=owner,
        apigw_cloudwatch_role=apigw_role,
        **changes,
    )
    _check_limits(config)
    return config


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` block of the project's ``cdk.json`` (feature flags)."""
    settings = json.loads(CDK_JSON.read_text())
    return dict(settings.get("context", {}))


def default_ephemeral_prefix(user: str) -> str:
    """``ephemeral-<user>`` reduced to a valid stack prefix (letters, digits, single hyphens)."""
    slug = re.sub(r"[^a-z0-9]+", "-", user.lower()).strip("-")
    prefix = f"ephemeral-{slug}" if slug else "ephemeral"
    return prefix[:MAX_PREFIX_LENGTH].rstrip("-")


def _prefix(prefix: str) -> str:
    try:
        return validate_stack_prefix(prefix)
    except ValueError as error:
        raise ConfigError(f"invalid -c stack_prefix: {error}") from error


def _owner(context_owner: str | None, env: Mapping[str, str]) -> str:
    raw = context_owner or env.get("GITHUB_ACTOR") or env.get("USER") or _login() or "unknown"
    # Tag values allow letters, digits, spaces and _ . : / = + - @ (max 256 characters).
    cleaned = re.sub(r"[^\w .:/=+\-@]", "-", raw)[:256]
    return cleaned or "unknown"


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        return None


def _expires_at(expires_at: Any, ttl_hours: Any, now: datetime | None) -> str:
    if expires_at is not None:
        if ttl_hours is not None:
            raise ConfigError("give either -c expires_at or -c ttl_hours, not both")
        text = _text(expires_at) or ""
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            raise ConfigError(
                f"-c expires_at={text!r} is not an ISO 8601 time (e.g. 2030-01-31T18:00:00Z)"
            ) from error
        if moment.tzinfo is None:
            raise ConfigError(f"-c expires_at={text!r} needs a timezone (append Z for UTC)")
    else:
        hours = DEFAULT_TTL_HOURS if ttl_hours is None else _number("ttl_hours", ttl_hours, False)
        moment = (now or datetime.now(UTC)) + timedelta(hours=hours)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The API confirms a task only while its deadline is this far away (a copy of
# handlers.domain.submission.CONFIRM_MARGIN_S, kept equal by a unit test), so a window must
# outlast one whole API invocation by it.
CONFIRM_MARGIN_S: Final = 3


def check_pending_window(config: StackConfig) -> None:
    """An API invocation that stores a task must be able to confirm it before its deadline."""
    if config.pending_window_s < config.api_timeout_s + CONFIRM_MARGIN_S:
        raise ConfigError(
            f"pending_window_s={config.pending_window_s} must be >= api_timeout_s "
            f"({config.api_timeout_s}) + {CONFIRM_MARGIN_S}: a task could be cancelled by its "
            "deadline while the API is still confirming it"
        )


def _check_limits(config: StackConfig) -> None:
    if config.visibility_timeout_s < config.processor_timeout_s:
        raise ConfigError(
            f"visibility_timeout ({config.visibility_timeout_s} s) must be >= processor_timeout "
            f"({config.processor_timeout_s} s): AWS rejects an SQS event source otherwise"
        )
    limits = {
        "processor_timeout": (config.processor_timeout_s, 1, 900),
        "visibility_timeout": (config.visibility_timeout_s, 1, 43_200),
        "max_receive_count": (config.max_receive_count, 1, 1000),
        "attempt_budget": (config.attempt_budget, 1, 100),
        "batch_size": (config.batch_size, 1, 10),  # the FIFO event-source maximum
        "reserved_concurrency": (config.processor_reserved_concurrency, 1, 1000),
        "throttle_burst": (config.throttling_burst_limit, 0, 5000),
    }
    for name, (value, low, high) in limits.items():
        if not low <= value <= high:
            raise ConfigError(f"-c {name}={value} is outside {low}..{high}")
    check_pending_window(config)
    if config.max_receive_count < config.redrive_floor():
        raise ConfigError(
            f"-c max_receive_count={config.max_receive_count} is below "
            f"batch_size x attempt_budget + 1 = {config.redrive_floor()}: the queue could "
            "redrive a task behind failing ones to the DLQ before its attempts were made"
        )
    for name, period in (
        ("alarm_period", config.alarm_period_s),
        ("dlq_alarm_period", config.dlq_alarm_period_s),
    ):
        if period not in (10, 20, 30) and (period <= 0 or period % 60):
            raise ConfigError(
                f"-c {name}={period}: CloudWatch allows 10, 20, 30 or a multiple of 60"
            )
    if config.throttling_rate_limit <= 0:
        raise ConfigError(f"-c throttle_rate={config.throttling_rate_limit} must be > 0")


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def _number(key: str, value: Any, integer: bool) -> Any:
    try:
        number = float(value)
        if number <= 0:
            raise ValueError("must be positive")
        if integer:
            if number != int(number):
                raise ValueError("must be a whole number")
            return int(number)
        return number
    except (TypeError, ValueError) as error:
        raise ConfigError(f"-c {key}={value!r} is not a valid number: {error}") from error


def _bool(key: str, value: Any, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ConfigError(f"-c {key}={value!r} must be true or false")
