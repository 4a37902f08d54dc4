"""Figures from locust's own outputs: the ``--json-file`` stats and the ``--csv`` history.

The JSON file is written once at shutdown and is complete; the CSV files are snapshots
taken every second and can miss the last second, so totals come from the JSON and only
the time series (users, percentiles over time) from the history CSV.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# sqs_fifo_limits records throttled calls as failures under "<name> [throttled]", so the
# JSON (which keeps failure counts per name, not per error) still tells throttles apart.
THROTTLED_SUFFIX = " [throttled]"


def percentile(histogram: Mapping[float, int], total: int, fraction: float) -> float:
    """The response time at ``fraction`` (0..1) of a locust histogram, as locust computes it."""
    if total <= 0:
        return 0.0
    wanted = int(total * fraction)
    seen = 0
    for value in sorted(histogram, reverse=True):
        seen += histogram[value]
        if total - seen <= wanted:
            return float(value)
    return 0.0


@dataclass(frozen=True)
class RequestFigures:
    """One locust stats entry (or the aggregate of several)."""

    method: str
    name: str
    requests: int
    failures: int
    total_response_ms: float
    max_ms: float
    min_ms: float
    content_total: int  # sum of response_length; sqs_fifo_limits reports messages here
    start_time: float
    last_request_time: float
    histogram: dict[float, int] = field(default_factory=dict)
    per_second: dict[int, int] = field(default_factory=dict)
    failures_per_second: dict[int, int] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last request (locust's own denominator)."""
        return max(self.last_request_time - self.start_time, 1e-9)

    @property
    def rps(self) -> float:
        """Requests per second over the run (failures included, as locust counts)."""
        return self.requests / self.duration_s if self.requests else 0.0

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def avg_ms(self) -> float:
        return self.total_response_ms / self.requests if self.requests else 0.0

    def pct(self, fraction: float) -> float:
        """The ``fraction`` percentile of response time, in ms."""
        return percentile(self.histogram, self.requests, fraction)

    def summary(self) -> dict[str, Any]:
        """The headline figures as plain JSON values."""
        return {
            "method": self.method,
            "name": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "error_ratio": round(self.error_ratio, 6),
            "rps": round(self.rps, 3),
            "avg_ms": round(self.avg_ms, 3),
            "p50_ms": self.pct(0.50),
            "p95_ms": self.pct(0.95),
            "p99_ms": self.pct(0.99),
            "max_ms": self.max_ms,
            "content_total": self.content_total,
        }


def _entry(raw: Mapping[str, Any]) -> RequestFigures:
    return RequestFigures(
        method=str(raw.get("method") or ""),
        name=str(raw["name"]),
        requests=int(raw.get("num_requests", 0)),
        failures=int(raw.get("num_failures", 0)),
        total_response_ms=float(raw.get("total_response_time", 0.0)),
        max_ms=float(raw.get("max_response_time", 0.0) or 0.0),
        min_ms=float(raw.get("min_response_time", 0.0) or 0.0),
        content_total=int(raw.get("total_content_length", 0)),
        start_time=float(raw.get("start_time", 0.0)),
        last_request_time=float(raw.get("last_request_timestamp") or raw.get("start_time", 0.0)),
        histogram={float(k): int(v) for k, v in dict(raw.get("response_times", {})).items()},
        per_second={
            int(float(k)): int(v) for k, v in dict(raw.get("num_reqs_per_sec", {})).items()
        },
        failures_per_second={
            int(float(k)): int(v) for k, v in dict(raw.get("num_fail_per_sec", {})).items()
        },
    )


def aggregate(entries: Iterable[RequestFigures], name: str = "Aggregated") -> RequestFigures:
    """Merge entries the way locust's "Aggregated" row does."""
    items = [e for e in entries if e.requests]
    histogram: dict[float, int] = {}
    per_second: dict[int, int] = {}
    failures_per_second: dict[int, int] = {}
    for e in items:
        for bucket, count in e.histogram.items():
            histogram[bucket] = histogram.get(bucket, 0) + count
        for second, count in e.per_second.items():
            per_second[second] = per_second.get(second, 0) + count
        for second, count in e.failures_per_second.items():
            failures_per_second[second] = failures_per_second.get(second, 0) + count
    return RequestFigures(
        method="",
        name=name,
        requests=sum(e.requests for e in items),
        failures=sum(e.failures for e in items),
        total_response_ms=sum(e.total_response_ms for e in items),
        max_ms=max((e.max_ms for e in items), default=0.0),
        min_ms=min((e.min_ms for e in items), default=0.0),
        content_total=sum(e.content_total for e in items),
        start_time=min((e.start_time for e in items), default=0.0),
        last_request_time=max((e.last_request_time for e in items), default=0.0),
        histogram=histogram,
        per_second=per_second,
        failures_per_second=failures_per_second,
    )


@dataclass(frozen=True)
class LocustStats:
    """All entries of one run plus their aggregate."""

    entries: tuple[RequestFigures, ...]

    @property
    def total(self) -> RequestFigures:
        return aggregate(self.entries)

    @property
    def throttles(self) -> int:
        """Throttled calls (entries named ``... [throttled]``)."""
        return sum(e.requests for e in self.entries if e.name.endswith(THROTTLED_SUFFIX))

    def by_name(self, name: str) -> RequestFigures | None:
        return next((e for e in self.entries if e.name == name), None)


def read_stats_json(path: Path) -> LocustStats:
    """Parse the file locust writes with ``--json-file``."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected locust's list of stats entries")
    return LocustStats(tuple(_entry(item) for item in raw))


@dataclass(frozen=True)
class HistoryRow:
    """One row of ``<prefix>_stats_history.csv``."""

    timestamp: int
    user_count: int
    name: str
    rps: float
    failures_per_s: float
    percentiles: dict[str, float | None]  # "50%", "95%", "99%" ... in ms; None when N/A
    total_requests: int
    total_content_avg: float


def read_history_csv(path: Path) -> list[HistoryRow]:
    """Parse ``<prefix>_stats_history.csv`` (empty list if locust wrote none)."""
    if not path.exists():
        return []
    rows: list[HistoryRow] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            pcts = {
                key: (None if value in ("N/A", "") else float(value))
                for key, value in row.items()
                if key.endswith("%") and not key.startswith("Total")
            }
            rows.append(
                HistoryRow(
                    timestamp=int(row["Timestamp"]),
                    user_count=int(row["User Count"]),
                    name=row["Name"],
                    rps=float(row["Requests/s"]),
                    failures_per_s=float(row["Failures/s"]),
                    percentiles=pcts,
                    total_requests=int(row["Total Request Count"]),
                    total_content_avg=float(row["Total Average Content Size"] or 0),
                )
            )
    return rows
