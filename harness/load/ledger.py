"""The end-to-end ledger: every accepted task accounted for, computed after the run.

Pure functions over what the load users recorded (which tasks the API accepted, when)
and what the system says happened to them (the tasks table or ``GET /tasks/{id}``):

- accepted = completed + dead-lettered, nothing lost;
- nothing applied twice (the table's ``applied`` counter above 1, or one idempotent
  request that produced two task ids);
- order preserved in the single message group, checked two ways: SQS ``SequenceNumber``
  order against ``processed_at`` order, and the client-observable rule that a task
  accepted before another was sent must be processed first;
- end-to-end latency (``created_at`` -> ``processed_at``) and drain throughput.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})
_SAMPLE_IDS = 20  # how many ids of each problem the summary lists


@dataclass(frozen=True)
class AcceptedTask:
    """One task the API accepted, as a load user saw it (client clock, epoch seconds)."""

    task_id: str
    sent_at: float
    accepted_at: float
    poison: bool = False
    idempotency_key: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AcceptedTask:
        return cls(
            task_id=str(raw["task_id"]),
            sent_at=float(raw["sent_at"]),
            accepted_at=float(raw["accepted_at"]),
            poison=bool(raw.get("poison", False)),
            idempotency_key=raw.get("idempotency_key") or None,
        )


def read_records(path: Path) -> list[AcceptedTask]:
    """Read the JSON-lines file the end_to_end users write (missing file: none)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            records.append(AcceptedTask.from_json(json.loads(line)))
    return records


def parse_time(value: object) -> float | None:
    """Epoch seconds from an ISO 8601 string (naive = UTC) or a number; ``None`` if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class TaskState:
    """What the system says about one task (a tasks-table item or a GET body, normalised)."""

    task_id: str
    status: str
    attempts: int = 0
    created_at: float | None = None
    processed_at: float | None = None
    sequence_number: int | None = None
    duplicate_deliveries: int = 0
    applied_count: int | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> TaskState:
        """Normalise a table item or API body; unknown fields are ignored."""
        # The processor adds 1 to ``applied`` in the same conditional write that completes
        # a task, so anything above 1 means the work was applied twice.
        applied = item.get("applied", item.get("applied_count"))
        return cls(
            task_id=str(item["task_id"]),
            status=str(item.get("status", "")).upper(),
            attempts=_int_or_none(item.get("attempts")) or 0,
            created_at=parse_time(item.get("created_at")),
            processed_at=parse_time(item.get("processed_at")),
            sequence_number=_int_or_none(item.get("sequence_number")),
            duplicate_deliveries=_int_or_none(item.get("duplicate_deliveries")) or 0,
            applied_count=_int_or_none(applied),
        )


@dataclass(frozen=True)
class Ledger:
    """The accounting of one end-to-end run."""

    accepted: int
    completed: int
    dead_lettered: int
    expected_dead_lettered: int  # poison tasks (fault injection) that ended in the DLQ
    unexpected_dead_lettered: int
    lost: int  # accepted but neither completed nor dead-lettered (missing or stuck)
    applied_twice: int
    duplicate_deliveries: int  # redeliveries the processor recognised and skipped
    redelivered: int  # tasks with more than one attempt
    order_checked_by_sequence: bool
    order_violations_sequence: int
    order_violations_client: int
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    e2e_p99_ms: float | None
    e2e_max_ms: float | None
    drain_per_s: float | None
    dlq_added: int | None
    # Answers to an Idempotency-Key retry: the task they name is counted once, in accepted.
    idempotent_retries: int = 0
    accepted_per_s: float | None = None  # arrival rate over the span of acceptances
    lost_ids: list[str] = field(default_factory=list)
    applied_twice_ids: list[str] = field(default_factory=list)
    order_violation_ids: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """accepted = completed + dead-lettered, with nothing lost."""
        return self.lost == 0 and self.accepted == self.completed + self.dead_lettered

    @property
    def drain_ratio(self) -> float | None:
        """Drain rate over arrival rate: about 1 when the processor keeps up."""
        if not self.drain_per_s or not self.accepted_per_s:
            return None
        return self.drain_per_s / self.accepted_per_s

    @property
    def order_preserved(self) -> bool:
        return self.order_violations_sequence == 0 and self.order_violations_client == 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["balanced"] = self.balanced
        data["order_preserved"] = self.order_preserved
        data["drain_ratio"] = self.drain_ratio
        return data


def _nearest_rank(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * fraction // 1))  # ceil, nearest-rank method
    return sorted_values[int(rank) - 1]


def _sequence_violations(done: Sequence[tuple[AcceptedTask, TaskState]]) -> tuple[bool, list[str]]:
    """Adjacent pairs in SequenceNumber order whose processed_at goes backwards."""
    if not done or any(s.sequence_number is None for _, s in done):
        return False, []
    ordered = sorted(done, key=lambda pair: pair[1].sequence_number or 0)
    bad = [
        later.task_id
        for (_, earlier), (_, later) in itertools.pairwise(ordered)
        if (later.processed_at or 0.0) < (earlier.processed_at or 0.0)
    ]
    return True, bad


def _client_order_violations(done: Sequence[tuple[AcceptedTask, TaskState]]) -> list[str]:
    """Tasks processed before a task that was accepted before they were even sent.

    Concurrent requests have no defined order; only "A's 200 arrived before B was sent"
    does, and then FIFO in one group means A is processed first.
    """
    by_sent = sorted(done, key=lambda pair: pair[0].sent_at)
    pending: list[tuple[float, float]] = []  # (accepted_at, processed_at) of earlier sends
    latest_processed_of_accepted = float("-inf")
    bad: list[str] = []
    for record, state in by_sent:
        while pending and pending[0][0] < record.sent_at:
            _, processed = heapq.heappop(pending)
            latest_processed_of_accepted = max(latest_processed_of_accepted, processed)
        processed_at = state.processed_at or 0.0
        if latest_processed_of_accepted > processed_at:
            bad.append(record.task_id)
        heapq.heappush(pending, (record.accepted_at, processed_at))
    return bad


def compute_ledger(
    records: Iterable[AcceptedTask],
    states: Mapping[str, TaskState],
    *,
    dlq_added: int | None = None,
) -> Ledger:
    """Account for every accepted task (``states`` may lack ids the system never stored)."""
    unique: dict[str, AcceptedTask] = {}
    ids_by_key: dict[str, set[str]] = {}
    retries = 0
    for record in records:
        # An idempotent retry returns the same id: it is one task, keep the first sighting.
        retries += record.task_id in unique
        unique.setdefault(record.task_id, record)
        if record.idempotency_key:
            ids_by_key.setdefault(record.idempotency_key, set()).add(record.task_id)

    completed: list[tuple[AcceptedTask, TaskState]] = []
    dead: list[tuple[AcceptedTask, TaskState]] = []
    lost_ids: list[str] = []
    for task_id, record in unique.items():
        state = states.get(task_id)
        if state is None or not state.terminal:
            lost_ids.append(task_id)
        elif state.status == "COMPLETED":
            completed.append((record, state))
        else:
            dead.append((record, state))

    applied_twice_ids = sorted(
        {s.task_id for _, s in completed + dead if (s.applied_count or 0) > 1}
        | {i for ids in ids_by_key.values() if len(ids) > 1 for i in ids}
    )
    by_sequence, seq_bad = _sequence_violations(completed)
    client_bad = _client_order_violations(completed)

    latencies = sorted(
        1000.0 * (s.processed_at - (s.created_at if s.created_at is not None else r.accepted_at))
        for r, s in completed
        if s.processed_at is not None
    )
    processed = sorted(s.processed_at for _, s in completed if s.processed_at is not None)
    span = processed[-1] - processed[0] if len(processed) > 1 else 0.0
    every_state = [s for _, s in completed + dead]
    arrivals = sorted(r.accepted_at for r in unique.values())
    arrival_span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return Ledger(
        accepted=len(unique),
        completed=len(completed),
        dead_lettered=len(dead),
        expected_dead_lettered=sum(1 for r, _ in dead if r.poison),
        unexpected_dead_lettered=sum(1 for r, _ in dead if not r.poison),
        lost=len(lost_ids),
        applied_twice=len(applied_twice_ids),
        duplicate_deliveries=sum(s.duplicate_deliveries for s in every_state),
        redelivered=sum(1 for s in every_state if s.attempts > 1),
        order_checked_by_sequence=by_sequence,
        order_violations_sequence=len(seq_bad),
        order_violations_client=len(client_bad),
        e2e_p50_ms=_nearest_rank(latencies, 0.50),
        e2e_p95_ms=_nearest_rank(latencies, 0.95),
        e2e_p99_ms=_nearest_rank(latencies, 0.99),
        e2e_max_ms=latencies[-1] if latencies else None,
        drain_per_s=(len(processed) - 1) / span if span > 0 else None,
        dlq_added=dlq_added,
        idempotent_retries=retries,
        accepted_per_s=(len(arrivals) - 1) / arrival_span if arrival_span > 0 else None,
        lost_ids=lost_ids[:_SAMPLE_IDS],
        applied_twice_ids=applied_twice_ids[:_SAMPLE_IDS],
        order_violation_ids=(seq_bad + client_bad)[:_SAMPLE_IDS],
    )


def oldest_age_series(
    records: Iterable[AcceptedTask], states: Mapping[str, TaskState], times: Iterable[float]
) -> list[tuple[float, float]]:
    """Age in seconds of the oldest accepted, not yet processed task at each of ``times``.

    SQS reports the age of the oldest message only as a CloudWatch metric; the ledger
    knows each task's acceptance and processing time, so it can say the same thing.
    """
    spans = sorted(
        (r.accepted_at, states[r.task_id].processed_at if r.task_id in states else None)
        for r in records
    )
    series = []
    for moment in times:
        age = 0.0
        for accepted_at, processed_at in spans:
            if accepted_at > moment:
                break
            if processed_at is None or processed_at > moment:
                age = moment - accepted_at
                break
        series.append((moment, age))
    return series
