"""Run settings shared by ``harness load`` and the locustfiles, passed through ``LOAD_*`` env vars.

The CLI turns its options into environment variables for the locust processes (master and
workers), and the locustfiles read them back with :func:`shape_params_from_env` and
:func:`env_float`. The same variables work for a bare ``locust -f loadtest/...`` run.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

Scenario = Literal["api_ingest", "end_to_end", "sqs_fifo_limits"]
ShapeName = Literal["smoke", "step", "spike", "soak"]
SCENARIOS: Final[tuple[str, ...]] = get_args(Scenario)
SHAPES: Final[tuple[str, ...]] = get_args(ShapeName)

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
LOCUSTFILES: Final = REPO_ROOT / "loadtest"
DEFAULT_THRESHOLDS: Final = LOCUSTFILES / "thresholds.toml"
EXIT_CRASHED: Final = 2  # locust failed or the command was misused (1 = a threshold failed)

# AWS's quota for a FIFO queue without high-throughput mode: 300 transactions (API calls)
# per second per action; a batch of up to 10 messages is one transaction.
FIFO_QUOTA_CALLS_PER_S: Final = 300.0
FIFO_BATCH_SIZE: Final = 10
# What sqs_fifo_limits lowers the local SQS quota to on a local stack it starts: two cores
# cannot offer 300 calls/s per action, so the quota would never be reached locally.
LOCAL_SQS_QUOTA: Final = 25.0

# Environment variables (one place, so CLI, locustfiles and docs agree).
ENV_OUTPUTS: Final = "LOAD_OUTPUTS"  # the stack outputs JSON file
ENV_SCENARIO: Final = "LOAD_SCENARIO"
ENV_RUN_ID: Final = "LOAD_RUN_ID"
ENV_SHAPE: Final = "LOAD_SHAPE"
ENV_USERS: Final = "LOAD_USERS"
ENV_SPAWN_RATE: Final = "LOAD_SPAWN_RATE"
ENV_RUN_TIME: Final = "LOAD_RUN_TIME"
ENV_STEP_USERS: Final = "LOAD_STEP_USERS"
ENV_STEP_TIME: Final = "LOAD_STEP_TIME"
ENV_SPIKE_USERS: Final = "LOAD_SPIKE_USERS"
ENV_SPIKE_TIME: Final = "LOAD_SPIKE_TIME"
ENV_USER_RATE: Final = "LOAD_USER_RATE"  # task iterations per second per user (the offered load)
ENV_INVALID_RATIO: Final = "LOAD_INVALID_RATIO"
ENV_IDEMPOTENT_RATIO: Final = "LOAD_IDEMPOTENT_RATIO"
ENV_READ_RATIO: Final = "LOAD_READ_RATIO"
ENV_POISON_RATIO: Final = "LOAD_POISON_RATIO"
ENV_RECORD_FILE: Final = "LOAD_RECORD_FILE"  # end_to_end: JSON lines of accepted tasks
ENV_FAILURES_FILE: Final = "LOAD_FAILURES_FILE"  # JSON lines: every failed request's cause
ENV_SQS_QUEUES: Final = "LOAD_SQS_QUEUES"  # sqs_fifo_limits: JSON {role: queue url}
ENV_SQS_GROUPS: Final = "LOAD_SQS_GROUPS"  # sqs_fifo_limits: group count of the "many" users

# Each user iteration issues exactly one request, so offered requests/s = users * user rate.
DEFAULT_USER_RATE: Final[Mapping[str, float]] = {
    "api_ingest": 5.0,
    "end_to_end": 2.0,
    "sqs_fifo_limits": 50.0,
}
# The step shape ramps the offered load from well under the limit it is meant to find to
# well past it: the API stage throttle (100 req/s) for the API scenarios (5 to 50 users
# at 5 req/s: 25 to 250 req/s), the FIFO quota per action for sqs_fifo_limits (6 to 60
# users over its 6 user classes at 5 calls/s: 5 to 50 calls/s per action, past the
# lowered local quota; see harness load --sqs-quota).
STEP_USER_RATE: Final[Mapping[str, float]] = {
    "api_ingest": 5.0,
    "end_to_end": 5.0,
    "sqs_fifo_limits": 5.0,
}
# sqs_fifo_limits has six user classes; fewer users would leave some of them unspawned.
DEFAULT_SMOKE_USERS: Final[Mapping[str, int]] = {
    "api_ingest": 2,
    "end_to_end": 2,
    "sqs_fifo_limits": 6,
}


def default_user_rate(scenario: Scenario, shape: ShapeName) -> float:
    """Requests per second per user when ``--user-rate`` is not given."""
    return (STEP_USER_RATE if shape == "step" else DEFAULT_USER_RATE)[scenario]


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"`` (locust's ``--run-time`` style)."""
    match = _DURATION.match(text)
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h30m or plain seconds)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(frozen=True)
class ShapeParams:
    """How many users run when: the parameters of one load shape.

    ``users`` is the steady user count (smoke, soak), the final count of the step ramp,
    or the baseline of a spike; ``spike_users`` is the count during the spike.
    """

    shape: ShapeName
    users: int
    spawn_rate: float
    run_time_s: float
    step_users: int = 0
    step_time_s: float = 0.0
    spike_users: int = 0
    spike_time_s: float = 0.0

    def __post_init__(self) -> None:
        checks = (
            ("users", self.users >= 1, ">= 1"),
            ("spawn rate", self.spawn_rate > 0, "> 0"),
            ("run time", self.run_time_s > 0, "> 0 s"),
            ("step users", self.shape != "step" or self.step_users >= 1, ">= 1"),
            ("step time", self.shape != "step" or self.step_time_s > 0, "> 0 s"),
            ("spike users", self.shape != "spike" or self.spike_users >= 1, ">= 1"),
            ("spike time", self.shape != "spike" or self.spike_time_s > 0, "> 0 s"),
        )
        for name, ok, rule in checks:
            if not ok:
                value = getattr(self, name.replace(" ", "_") + ("_s" if "time" in name else ""))
                raise ValueError(f"{self.shape} shape: {name} must be {rule}, got {value:g}")

    def step_starts(self) -> list[float]:
        """Seconds into the run at which the user count changes (step and spike shapes)."""
        if self.shape == "step":
            steps = -(-self.users // self.step_users)
            return [
                i * self.step_time_s
                for i in range(1, steps)
                if i * self.step_time_s < self.run_time_s
            ]
        if self.shape == "spike":
            start = max(0.0, (self.run_time_s - self.spike_time_s) / 2)
            return [start, start + self.spike_time_s]
        return []

    def to_env(self) -> dict[str, str]:
        """The ``LOAD_*`` variables that reproduce these parameters in a locust process."""
        return {
            ENV_SHAPE: self.shape,
            ENV_USERS: str(self.users),
            ENV_SPAWN_RATE: f"{self.spawn_rate:g}",
            ENV_RUN_TIME: f"{self.run_time_s:g}",
            ENV_STEP_USERS: str(self.step_users),
            ENV_STEP_TIME: f"{self.step_time_s:g}",
            ENV_SPIKE_USERS: str(self.spike_users),
            ENV_SPIKE_TIME: f"{self.spike_time_s:g}",
        }


def default_shape_params(shape: ShapeName, scenario: Scenario) -> ShapeParams:
    """Each shape's defaults: smoke lasts seconds, soak half an hour."""
    if shape == "smoke":
        users = DEFAULT_SMOKE_USERS[scenario]
        return ShapeParams("smoke", users=users, spawn_rate=users, run_time_s=5)
    if shape == "step":
        # 10 steps of 20 s; the knee is where achieved throughput stops following offered.
        if scenario == "sqs_fifo_limits":
            return ShapeParams(
                "step", users=60, spawn_rate=30, run_time_s=200, step_users=6, step_time_s=20
            )
        return ShapeParams(
            "step", users=50, spawn_rate=25, run_time_s=200, step_users=5, step_time_s=20
        )
    if shape == "spike":
        return ShapeParams(
            "spike", users=5, spawn_rate=5, run_time_s=120, spike_users=50, spike_time_s=20
        )
    return ShapeParams("soak", users=10, spawn_rate=2, run_time_s=1800)


def _shape_name(value: str) -> ShapeName:
    if value not in SHAPES:
        raise ValueError(f"unknown load shape {value!r}; choose one of {', '.join(SHAPES)}")
    return value  # type: ignore[return-value]


def scenario_name(value: str) -> Scenario:
    """Validate a scenario name."""
    if value not in SCENARIOS:
        raise ValueError(f"unknown scenario {value!r}; choose one of {', '.join(SCENARIOS)}")
    return value  # type: ignore[return-value]


def shape_params_from_env(
    env: Mapping[str, str] | None = None, scenario: Scenario = "api_ingest"
) -> ShapeParams:
    """Shape parameters from ``LOAD_*`` variables, each missing one taken from the defaults."""
    env = os.environ if env is None else env
    base = default_shape_params(_shape_name(env.get(ENV_SHAPE, "smoke")), scenario)

    def number(name: str, default: float) -> float:
        raw = env.get(name, "")
        if not raw:
            return default
        try:
            value = parse_duration(raw) if name.endswith("_TIME") else float(raw)
        except ValueError:
            kind = "a duration like 30s or 5m" if name.endswith("_TIME") else "a number"
            raise ValueError(f"{name}={raw!r} is not {kind}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name}={raw!r} is not a finite number")
        if value < 0:
            raise ValueError(f"{name}={raw!r} must not be negative")
        return value

    users = int(number(ENV_USERS, base.users))
    step_users = int(number(ENV_STEP_USERS, base.step_users)) or base.step_users
    step_time = number(ENV_STEP_TIME, base.step_time_s) or base.step_time_s
    run_time_default = base.run_time_s
    if base.shape == "step" and step_users > 0:
        # A full ramp by default: one step per increment up to the final user count.
        run_time_default = -(-users // step_users) * step_time
    return ShapeParams(
        shape=base.shape,
        users=users,
        spawn_rate=number(ENV_SPAWN_RATE, base.spawn_rate),
        run_time_s=number(ENV_RUN_TIME, run_time_default),
        step_users=step_users,
        step_time_s=step_time,
        spike_users=int(number(ENV_SPIKE_USERS, base.spike_users)) or base.spike_users,
        spike_time_s=number(ENV_SPIKE_TIME, base.spike_time_s) or base.spike_time_s,
    )


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """A float from the environment, ``default`` when unset or empty."""
    raw = (os.environ if env is None else env).get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
