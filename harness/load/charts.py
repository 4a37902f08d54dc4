"""PNG charts of a run (matplotlib's Agg canvas: no display, no pyplot global state).

- ``throughput.png``: offered load (users x per-user rate) against achieved requests/s,
  plus messages/s per SQS call type or tasks completed/s when the scenario has them;
- ``latency.png``: p50/p95/p99 response time over time (locust's rolling window);
- ``backlog.png``: queue depth (visible, in flight) and, for end_to_end, the age of the
  oldest task not yet processed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.load.locust_stats import THROTTLED_SUFFIX, HistoryRow, LocustStats
from harness.load.sources import BacklogSample


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    FigureCanvasAgg(figure)  # attaches the Agg canvas: no GUI backend, no pyplot state
    figure.savefig(path, format="png", dpi=100)
    return path


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
) -> Path:
    """Offered vs achieved throughput over time."""
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
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("per second")
    axes.set_title("Offered vs achieved throughput")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def latency_chart(path: Path, *, t0: float, history: Sequence[HistoryRow]) -> Path:
    """Response-time percentiles over time."""
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
