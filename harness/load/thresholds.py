"""Pass/fail thresholds: a checked-in TOML file, run figures, verdicts, an exit code.

``loadtest/thresholds.toml`` has one table per scenario; a sub-table named after a
target (``local``/``aws``) or a shape (``smoke``/``step``/``spike``/``soak``) overrides
keys for that case (base, then target, then shape). :func:`run_figures` turns locust's
stats and the ledger into named figures; :func:`evaluate` compares them with the limits.
Both are pure, so the tests drive them directly.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.load.ledger import Ledger
from harness.load.locust_stats import THROTTLED_SUFFIX, LocustStats, aggregate

Figure = float | int | bool | None
Comparison = Literal["max", "min", "require"]

# threshold key -> (figure it limits, how); "require" means the figure must be true.
THRESHOLD_KEYS: Mapping[str, tuple[str, Comparison]] = {
    "min_requests": ("requests", "min"),
    "max_error_ratio": ("error_ratio", "max"),
    "max_throttle_ratio": ("throttle_ratio", "max"),
    "max_lambda_throttle_ratio": ("lambda_throttle_ratio", "max"),
    "max_p95_ms": ("p95_ms", "max"),
    "max_p99_ms": ("p99_ms", "max"),
    "min_throughput_rps": ("throughput_rps", "min"),
    "min_throughput_msgs": ("throughput_msgs", "min"),
    "max_lost": ("lost", "max"),
    "max_applied_twice": ("applied_twice", "max"),
    "max_unexpected_dead_lettered": ("unexpected_dead_lettered", "max"),
    "require_balanced": ("balanced", "require"),
    "require_order": ("order_preserved", "require"),
    "max_e2e_p95_ms": ("e2e_p95_ms", "max"),
    "max_e2e_p99_ms": ("e2e_p99_ms", "max"),
    "min_drain_per_s": ("drain_per_s", "min"),
    "min_drain_ratio": ("drain_ratio", "min"),
    "max_calls_vs_quota": ("peak_calls_vs_quota", "max"),
    "require_throttled_over_quota": ("throttled_over_quota", "require"),
    "min_batch_factor": ("batch_factor", "min"),
}
_OVERRIDE_SECTIONS = ("local", "aws", "smoke", "step", "spike", "soak")


@dataclass(frozen=True)
class Verdict:
    """One threshold checked against one figure."""

    threshold: str
    figure: str
    limit: float | bool
    actual: Figure
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_thresholds(
    path: Path, scenario: str, *, target: str | None = None, shape: str | None = None
) -> dict[str, float | bool]:
    """The limits for one scenario, with the target's then the shape's overrides applied."""
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    section = document.get(scenario)
    if not isinstance(section, dict):
        raise ValueError(f"{path}: no [{scenario}] table")
    limits: dict[str, float | bool] = {}
    layers: list[tuple[str | None, dict[str, Any]]] = [(None, section)]
    layers += [(name, section.get(name, {})) for name in (target, shape) if name]
    for layer_name, layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict):
                if layer_name is None and key in _OVERRIDE_SECTIONS:
                    continue  # an override table, applied in its own turn
                raise ValueError(f"{path}: [{scenario}.{key}] is not a target or shape name")
            if key not in THRESHOLD_KEYS:
                known = ", ".join(sorted(THRESHOLD_KEYS))
                raise ValueError(
                    f"{path}: unknown threshold {key!r} in [{scenario}]; known: {known}"
                )
            limits[key] = value
    return limits


def run_figures(
    stats: LocustStats, ledger: Ledger | None = None, *, lambda_throttled: int = 0
) -> dict[str, Figure]:
    """The named figures thresholds can limit.

    Throttled calls (the stage throttle's 429s, SQS throttles, and the ``lambda_throttled``
    500s API Gateway answered for a throttled API function) are not errors here: they are
    counted apart as the throttle ratio (the Lambda ones also as their own ratio), and
    latency and throughput are over the calls that got through.
    """
    throttled = [e for e in stats.entries if e.name.endswith(THROTTLED_SUFFIX)]
    served = aggregate(e for e in stats.entries if not e.name.endswith(THROTTLED_SUFFIX))
    everything = stats.total
    successes = served.requests - served.failures
    # Throughput over the whole run window, so a throttled tail still counts as time spent.
    duration = everything.duration_s if everything.requests else 0.0
    senders = [
        e
        for e in stats.entries
        if e.name.startswith("Send") and not e.name.endswith(THROTTLED_SUFFIX)
    ]
    send_messages = sum(e.content_total for e in senders)
    figures: dict[str, Figure] = {
        "requests": everything.requests,
        "error_ratio": (
            (served.failures - lambda_throttled) / served.requests if served.requests else None
        ),
        "throttle_ratio": (
            (sum(e.requests for e in throttled) + lambda_throttled) / everything.requests
            if everything.requests
            else None
        ),
        "lambda_throttle_ratio": (
            lambda_throttled / everything.requests if everything.requests else None
        ),
        "p50_ms": served.pct(0.50) if served.requests else None,
        "p95_ms": served.pct(0.95) if served.requests else None,
        "p99_ms": served.pct(0.99) if served.requests else None,
        "throughput_rps": successes / duration if duration else None,
        "throughput_msgs": send_messages / duration if duration and senders else None,
    }
    if ledger is not None:
        figures.update(
            lost=ledger.lost,
            applied_twice=ledger.applied_twice,
            unexpected_dead_lettered=ledger.unexpected_dead_lettered,
            balanced=ledger.balanced,
            order_preserved=ledger.order_preserved,
            e2e_p95_ms=ledger.e2e_p95_ms,
            e2e_p99_ms=ledger.e2e_p99_ms,
            drain_per_s=ledger.drain_per_s,
            drain_ratio=ledger.drain_ratio,
        )
    return figures


def evaluate(limits: Mapping[str, float | bool], figures: Mapping[str, Figure]) -> list[Verdict]:
    """Check every limit; a limit whose figure was not measured fails (it cannot be shown met)."""
    verdicts = []
    for key, limit in limits.items():
        figure, how = THRESHOLD_KEYS[key]
        actual = figures.get(figure)
        if actual is None:
            passed, message = False, f"{figure} was not measured in this run"
        elif how == "require":
            passed = bool(actual) or not bool(limit)
            message = f"{figure} is {actual}" + ("" if passed else f" (required {limit})")
        elif how == "max":
            passed = float(actual) <= float(limit)
            message = f"{figure} = {actual:.6g} {'<=' if passed else '>'} {limit}"
        else:
            passed = float(actual) >= float(limit)
            message = f"{figure} = {actual:.6g} {'>=' if passed else '<'} {limit}"
        verdicts.append(Verdict(key, figure, limit, actual, passed, message))
    return verdicts


def exit_code(verdicts: list[Verdict]) -> int:
    """0 when every threshold holds, 1 otherwise."""
    return 0 if all(v.passed for v in verdicts) else 1
