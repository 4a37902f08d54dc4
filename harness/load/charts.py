"""PNG charts of a run (matplotlib's Agg canvas: no display, no pyplot global state).

- ``throughput.png``: offered load (users x per-user rate) against achieved requests/s,
  plus messages/s per SQS call type or tasks completed/s when the scenario has them;
- ``latency.png``: p50/p95/p99 response time over time (locust's rolling window);
- ``backlog.png``: queue depth (visible, in flight) and, for end_to_end, the age of the
  oldest task not yet processed;
- ``failures.png``: failed and throttled requests per second by cause, with the API
  function's Lambda throttles as the stack counted them;
- ``sqs.png`` (sqs_fifo_limits): accepted calls/s per call type against the FIFO quota,
  and messages/s against the batched quota.

Reference lines mark the limits a run is meant to meet (the API stage throttle, the FIFO
quotas) and dotted verticals the step or spike boundaries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.load.locust_stats import THROTTLED_SUFFIX, HistoryRow, LocustStats
from harness.load.sources import BacklogSample


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    FigureCanvasAgg(figure)  # attaches the Agg canvas: no GUI backend, no pyplot state
    figure.savefig(path, format="png", dpi=100)
    return path


Limit = tuple[float, str]  # (value, label) of a horizontal reference line
_LIMIT_COLORS = ("tab:red", "tab:purple", "tab:brown")


def _limits(axes: Any, limits: Sequence[Limit]) -> None:
    for (value, label), color in zip(limits, _LIMIT_COLORS, strict=False):
        axes.axhline(value, color=color, linestyle="-.", linewidth=1.2, label=label)


def _marks(axes: Any, marks: Sequence[float], label: str = "step / spike boundary") -> None:
    for index, moment in enumerate(marks):
        axes.axvline(
            moment, color="grey", linestyle=":", linewidth=1, label=label if index == 0 else None
        )


def _empty(axes: object, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)  # type: ignore[attr-defined]


def throughput_chart(
    path: Path,
    *,
    t0: float,
    stats: LocustStats,
    history: Sequence[HistoryRow],
    user_rate: float,
    completions: Sequence[float] = (),
    limits: Sequence[Limit] = (),
    marks: Sequence[float] = (),
) -> Path:
    """Offered vs achieved throughput over time, against the limits that apply."""
    figure = Figure(figsize=(10, 5))
    axes = figure.add_subplot()
    aggregated = [row for row in history if row.name == "Aggregated"]
    if aggregated:
        axes.step(
            [row.timestamp - t0 for row in aggregated],
            [row.user_count * user_rate for row in aggregated],
            where="post",
            label=f"offered (users x {user_rate:g}/s)",
            linestyle="--",
            color="grey",
        )
    total = stats.total
    if total.per_second:
        seconds = sorted(total.per_second)
        axes.plot(
            [s - t0 for s in seconds],
            [total.per_second[s] - total.failures_per_second.get(s, 0) for s in seconds],
            label="achieved requests/s (successful)",
            color="black",
        )
        throttled = [e for e in stats.entries if e.name.endswith(THROTTLED_SUFFIX)]
        if throttled:
            per_second = Counter[int]()
            for entry in throttled:
                per_second.update(entry.per_second)
            seconds = sorted(per_second)
            axes.plot(
                [s - t0 for s in seconds],
                [per_second[s] for s in seconds],
                label="throttled requests/s",
                color="tab:orange",
                linewidth=1,
            )
    for entry in stats.entries:
        # sqs_fifo_limits: messages/s per call type (a batch call carries up to 10).
        if not entry.name.startswith("Send") or entry.name.endswith(THROTTLED_SUFFIX):
            continue
        successes = entry.requests - entry.failures
        if not successes:
            continue
        per_call = entry.content_total / successes
        seconds = sorted(entry.per_second)
        axes.plot(
            [s - t0 for s in seconds],
            [
                (entry.per_second[s] - entry.failures_per_second.get(s, 0)) * per_call
                for s in seconds
            ],
            label=f"{entry.name} messages/s",
        )
    if completions:
        per_second = Counter(int(moment) for moment in completions)
        seconds = sorted(per_second)
        axes.plot(
            [s - t0 for s in seconds],
            [per_second[s] for s in seconds],
            label="tasks completed/s (drain)",
            color="tab:green",
        )
    if not axes.lines:
        _empty(axes, "no requests recorded")
    _limits(axes, limits)
    _marks(axes, marks)
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("per second")
    axes.set_title("Offered vs achieved throughput")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def latency_chart(
    path: Path, *, t0: float, history: Sequence[HistoryRow], marks: Sequence[float] = ()
) -> Path:
    """Response-time percentiles over time, with the step/spike boundaries marked."""
    figure = Figure(figsize=(10, 5))
    axes = figure.add_subplot()
    # Rows before the first response carry zeros, not measurements.
    aggregated = [
        row for row in history
        if row.name == "Aggregated" and row.total_requests and any(row.percentiles.values())
    ]  # fmt: skip
    for key, color in (("50%", "tab:blue"), ("95%", "tab:orange"), ("99%", "tab:red")):
        points = [
            (row.timestamp - t0, value)
            for row in aggregated
            if (value := row.percentiles.get(key)) is not None
        ]
        if points:
            axes.plot(*zip(*points, strict=True), label=f"p{key.rstrip('%')}", color=color)
    if not axes.lines:
        _empty(axes, "no latency samples")
    else:
        _marks(axes, marks)
        axes.legend(loc="best", fontsize="small")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("response time (ms)")
    axes.set_title("Latency percentiles over time (locust rolling window)")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def backlog_chart(
    path: Path,
    *,
    t0: float,
    backlog: Sequence[BacklogSample],
    oldest_age: Sequence[tuple[float, float]] = (),
) -> Path:
    """Queue depth over time, and the oldest unprocessed task's age when known."""
    figure = Figure(figsize=(10, 5))
    axes = figure.add_subplot()
    for queue in dict.fromkeys(sample.queue for sample in backlog):
        samples = [s for s in backlog if s.queue == queue]
        times = [s.timestamp - t0 for s in samples]
        visible = [s.visible for s in samples]
        in_flight = [s.in_flight for s in samples]
        # Always draw the first queue (the task queue) so an empty backlog still shows.
        if any(visible) or not axes.lines:
            axes.plot(times, visible, label=f"{queue} visible")
        if any(in_flight):  # an empty line per queue would only crowd the legend
            axes.plot(times, in_flight, label=f"{queue} in flight", linestyle=":")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("messages")
    axes.set_title("Backlog over time")
    axes.grid(alpha=0.3)
    if oldest_age:
        twin = axes.twinx()
        twin.plot(
            [moment - t0 for moment, _ in oldest_age],
            [age for _, age in oldest_age],
            label="oldest unprocessed task age (s)",
            color="tab:red",
            linestyle="--",
        )
        twin.set_ylabel("age of oldest task (s)")
        twin.legend(loc="upper right", fontsize="small")
    if axes.lines:
        axes.legend(loc="upper left", fontsize="small")
    elif not oldest_age:
        _empty(axes, "no queue in the stack outputs: backlog not sampled")
    return _save(figure, path)


def failures_chart(
    path: Path,
    *,
    t0: float,
    causes: Mapping[str, Mapping[int, int]],
    lambda_throttles: Mapping[int, float] | None = None,
    lambda_label: str = "API function: Lambda Throttles metric",
    marks: Sequence[float] = (),
) -> Path:
    """Failed and throttled requests per second, stacked by cause."""
    figure = Figure(figsize=(10, 5))
    axes = figure.add_subplot()
    seconds = sorted({s for series in causes.values() for s in series})
    bottom = [0] * len(seconds)
    for cause, series in sorted(causes.items(), key=lambda item: -sum(item[1].values())):
        heights = [series.get(s, 0) for s in seconds]
        axes.bar(
            [s - t0 for s in seconds], heights, width=1.0, bottom=bottom, label=cause, align="edge"
        )
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if lambda_throttles:
        moments = sorted(lambda_throttles)
        axes.plot(
            [m - t0 for m in moments],
            [lambda_throttles[m] for m in moments],
            color="black",
            marker="o",
            linestyle="none",  # published only in seconds that had throttles: no line between
            label=lambda_label,
        )
    if not seconds and not lambda_throttles:
        _empty(axes, "no failed or throttled request")
    _marks(axes, marks)
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("requests per second")
    axes.set_title("Failed and throttled requests by cause")
    axes.grid(alpha=0.3)
    if seconds or lambda_throttles:
        axes.legend(loc="upper left", fontsize="small")
    return _save(figure, path)


def sqs_chart(
    path: Path,
    *,
    t0: float,
    stats: LocustStats,
    quota: float,
    batch_size: int,
    marks: Sequence[float] = (),
) -> Path:
    """Accepted calls/s per SQS call type vs the quota; messages/s vs the batched quota."""
    figure = Figure(figsize=(10, 8))
    calls_axes, messages_axes = figure.subplots(2, 1, sharex=True)
    for entry in stats.entries:
        if entry.name.endswith(THROTTLED_SUFFIX) or not entry.requests:
            continue
        seconds = sorted(entry.per_second)
        ok = [entry.per_second[s] - entry.failures_per_second.get(s, 0) for s in seconds]
        calls_axes.plot([s - t0 for s in seconds], ok, label=entry.name, linewidth=1)
        if entry.name.startswith("Send"):
            per_call = entry.content_total / max(entry.requests - entry.failures, 1)
            messages_axes.plot(
                [s - t0 for s in seconds], [n * per_call for n in ok], label=entry.name, linewidth=1
            )
    _limits(calls_axes, [(quota, f"FIFO quota: {quota:g} calls/s per action per queue")])
    _limits(
        messages_axes,
        [
            (quota, f"unbatched: {quota:g} messages/s"),
            (quota * batch_size, f"batched: {quota * batch_size:g} messages/s"),
        ],
    )
    for axes, title, unit in (
        (calls_axes, "Accepted SQS calls per second by call type", "calls/s"),
        (messages_axes, "Messages sent per second", "messages/s"),
    ):
        _marks(axes, marks)
        axes.set_title(title)
        axes.set_ylabel(unit)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize="x-small")
    messages_axes.set_xlabel("seconds since start")
    return _save(figure, path)
