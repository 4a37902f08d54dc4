"""What a run's figures mean against the limits it was meant to find (pure functions).

- :func:`step_windows` and :func:`knee`: per step of the step shape, the offered and the
  achieved rate; the knee is the first step where achieved falls below 90 % of offered.
- :func:`quota_figures` (sqs_fifo_limits): per call type (each on its own queue), the
  highest accepted and attempted rate over any 5-second window against the FIFO quota,
  whether calls offered above the quota were throttled, and batching's factor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.load.locust_stats import THROTTLED_SUFFIX, LocustStats, RequestFigures
from harness.load.settings import FIFO_BATCH_SIZE, ShapeParams

KNEE_RATIO = 0.9  # achieved below this share of offered: past the knee
RAMP_SKIP_S = 2  # seconds at the start of a step while users are still being spawned
QUOTA_WINDOW_S = 5  # the quota is per second; a token bucket may burst one second's worth
# Over QUOTA_WINDOW_S seconds a full bucket lets through (window + 1) seconds of quota.
QUOTA_BURST_ALLOWANCE = (QUOTA_WINDOW_S + 1) / QUOTA_WINDOW_S


@dataclass(frozen=True)
class StepFigures:
    """One step of a step run: its users and the rates over its steady part."""

    index: int
    start_s: float
    end_s: float
    users: int
    offered_per_s: float
    achieved_per_s: float
    throttled_per_s: float
    failed_per_s: float

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def step_windows(params: ShapeParams) -> list[tuple[float, float, int]]:
    """``(start_s, end_s, users)`` of each step (one window for the other shapes)."""
    if params.shape != "step":
        return [(0.0, params.run_time_s, params.users)]
    windows = []
    start = 0.0
    index = 1
    while start < params.run_time_s:
        end = min(start + params.step_time_s, params.run_time_s)
        windows.append((start, end, min(params.users, index * params.step_users)))
        start, index = end, index + 1
    return windows


def _rate(per_second: Mapping[int, int], t0: float, start: float, end: float) -> float:
    first, last = int(t0 + start + RAMP_SKIP_S), int(t0 + end)
    seconds = max(last - first, 1)
    return sum(n for second, n in per_second.items() if first <= second < last) / seconds


def _ok_per_second(entries: Sequence[RequestFigures]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for entry in entries:
        for second, n in entry.per_second.items():
            merged[second] = merged.get(second, 0) + n - entry.failures_per_second.get(second, 0)
    return merged


def _merged(entries: Sequence[RequestFigures], failures: bool) -> dict[int, int]:
    merged: dict[int, int] = {}
    for entry in entries:
        source = entry.failures_per_second if failures else entry.per_second
        for second, n in source.items():
            merged[second] = merged.get(second, 0) + n
    return merged


def steps(
    stats: LocustStats, params: ShapeParams, *, t0: float, user_rate: float, names: Sequence[str]
) -> list[StepFigures]:
    """Per step: offered (users x rate), achieved (answered, not throttled or failed)."""
    served = [e for e in stats.entries if e.name in names]
    throttled = [e for e in stats.entries if e.name.removesuffix(THROTTLED_SUFFIX) in names
                 and e.name.endswith(THROTTLED_SUFFIX)]  # fmt: skip
    ok, failed, limited = _ok_per_second(served), _merged(served, True), _merged(throttled, False)
    rows = []
    for index, (start, end, users) in enumerate(step_windows(params), start=1):
        if end - start <= RAMP_SKIP_S:
            continue
        rows.append(
            StepFigures(
                index=index,
                start_s=start,
                end_s=end,
                users=users,
                offered_per_s=users * user_rate,
                achieved_per_s=_rate(ok, t0, start, end),
                throttled_per_s=_rate(limited, t0, start, end),
                failed_per_s=_rate(failed, t0, start, end),
            )
        )
    return rows


def knee(rows: Sequence[StepFigures]) -> StepFigures | None:
    """The first step whose achieved rate fell below 90 % of the offered one."""
    return next((r for r in rows if r.achieved_per_s < KNEE_RATIO * r.offered_per_s), None)


def _peak_window(per_second: Mapping[int, int]) -> float:
    """The highest mean rate over any QUOTA_WINDOW_S consecutive seconds."""
    if not per_second:
        return 0.0
    first, last = min(per_second), max(per_second)
    best = 0
    for start in range(first, max(first, last - QUOTA_WINDOW_S + 1) + 1):
        best = max(best, sum(per_second.get(s, 0) for s in range(start, start + QUOTA_WINDOW_S)))
    return best / QUOTA_WINDOW_S


def quota_figures(stats: LocustStats, quota: float) -> dict[str, Any]:
    """Per SQS call type: peak accepted/attempted calls/s against ``quota``; the checks."""
    calls: dict[str, dict[str, Any]] = {}
    for entry in stats.entries:
        if entry.name.endswith(THROTTLED_SUFFIX):
            continue
        throttled = stats.by_name(entry.name + THROTTLED_SUFFIX)
        accepted = _ok_per_second([entry])
        attempted = dict(entry.per_second)
        if throttled:
            for second, n in throttled.per_second.items():
                attempted[second] = attempted.get(second, 0) + n
        calls[entry.name] = {
            "peak_accepted_per_s": round(_peak_window(accepted), 2),
            "peak_attempted_per_s": round(_peak_window(attempted), 2),
            "throttled": throttled.requests if throttled else 0,
        }
    over = {
        n: c for n, c in calls.items() if c["peak_attempted_per_s"] > quota * QUOTA_BURST_ALLOWANCE
    }
    peak = max((c["peak_accepted_per_s"] for c in calls.values()), default=None)
    single = _messages_per_call(stats, "SendMessage ")
    batch = _messages_per_call(stats, "SendMessageBatch ")
    return {
        "quota_calls_per_s": quota,
        "quota_messages_per_s_batched": quota * FIFO_BATCH_SIZE,
        "calls": calls,
        "peak_calls_vs_quota": round(peak / quota, 3) if peak is not None else None,
        "offered_over_quota": sorted(over),
        "throttled_over_quota": all(c["throttled"] > 0 for c in over.values()) if over else None,
        "batch_factor": round(batch / single, 2) if batch and single else None,
    }


def _messages_per_call(stats: LocustStats, prefix: str) -> float | None:
    entries = [e for e in stats.entries if e.name.startswith(prefix)
               and not e.name.endswith(THROTTLED_SUFFIX)]  # fmt: skip
    ok = sum(e.requests - e.failures for e in entries)
    return sum(e.content_total for e in entries) / ok if ok else None
