"""The end-to-end ledger: every accepted task accounted for, order and duplicates checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.load.ledger import (
    AcceptedTask,
    TaskState,
    compute_ledger,
    oldest_age_series,
    parse_time,
    read_records,
)


def accepted(n: int, *, sent: float, took: float = 0.01, **extra: object) -> AcceptedTask:
    return AcceptedTask(
        task_id=f"t{n}",
        sent_at=sent,
        accepted_at=sent + took,
        **extra,  # type: ignore[arg-type]
    )


def done(n: int, processed: float, seq: int | None = None, **extra: object) -> TaskState:
    values: dict[str, object] = dict(
        task_id=f"t{n}", status="COMPLETED", attempts=1, created_at=processed - 0.5,
        processed_at=processed, sequence_number=seq if seq is not None else n,
    )  # fmt: skip
    values.update(extra)
    return TaskState(**values)  # type: ignore[arg-type]


def serial_run(count: int) -> tuple[list[AcceptedTask], dict[str, TaskState]]:
    """``count`` tasks sent one after another, processed in order."""
    records = [accepted(i, sent=100.0 + i) for i in range(count)]
    states = {f"t{i}": done(i, processed=100.5 + i) for i in range(count)}
    return records, states


def test_a_clean_run_balances() -> None:
    records, states = serial_run(5)
    ledger = compute_ledger(records, states, dlq_added=0)
    assert (ledger.accepted, ledger.completed, ledger.lost) == (5, 5, 0)
    assert ledger.balanced
    assert ledger.order_preserved
    assert ledger.order_checked_by_sequence
    assert ledger.e2e_p50_ms == pytest.approx(500.0)
    assert ledger.drain_per_s == pytest.approx(1.0)  # one task a second


def test_a_task_missing_or_stuck_is_lost() -> None:
    records, states = serial_run(5)
    del states["t1"]  # the system never heard of it
    states["t3"] = TaskState("t3", "QUEUED")  # still waiting when the drain gave up
    ledger = compute_ledger(records, states)
    assert ledger.lost == 2
    assert sorted(ledger.lost_ids) == ["t1", "t3"]
    assert not ledger.balanced


def test_dead_lettered_tasks_count_as_accounted_for_and_poison_is_expected() -> None:
    records, states = serial_run(4)
    records[1] = accepted(1, sent=101.0, poison=True)
    states["t1"] = TaskState("t1", "FAILED", attempts=3)
    states["t2"] = TaskState("t2", "FAILED", attempts=3)  # not poison: unexpected
    ledger = compute_ledger(records, states, dlq_added=2)
    assert (ledger.completed, ledger.dead_lettered, ledger.lost) == (2, 2, 0)
    assert ledger.balanced
    assert (ledger.expected_dead_lettered, ledger.unexpected_dead_lettered) == (1, 1)
    assert ledger.redelivered == 2


def test_applied_twice_from_the_record_or_from_an_idempotency_key() -> None:
    records, states = serial_run(4)
    states["t0"] = TaskState.from_item(
        {"task_id": "t0", "status": "COMPLETED", "processed_at": 100.5, "applied": 2}
    )
    # Two requests with one Idempotency-Key must name one task; here they named two.
    records[2] = accepted(2, sent=102.0, idempotency_key="k1")
    records[3] = accepted(3, sent=103.0, idempotency_key="k1")
    ledger = compute_ledger(records, states)
    assert ledger.applied_twice == 3
    assert ledger.applied_twice_ids == ["t0", "t2", "t3"]


def test_an_idempotent_retry_with_the_same_id_is_one_task() -> None:
    records, states = serial_run(2)
    records.append(accepted(1, sent=105.0, idempotency_key="k"))
    records[1] = accepted(1, sent=101.0, idempotency_key="k")
    ledger = compute_ledger(records, states)
    assert ledger.accepted == 2
    assert ledger.applied_twice == 0
    assert ledger.balanced


def test_duplicate_deliveries_are_reported_not_failed() -> None:
    records, states = serial_run(2)
    states["t1"] = done(1, processed=101.5, duplicate_deliveries=2, attempts=2)
    ledger = compute_ledger(records, states)
    assert ledger.duplicate_deliveries == 2
    assert ledger.applied_twice == 0


def test_sequence_order_violation_is_caught() -> None:
    records, states = serial_run(4)
    # t2 went into the queue before t3 (sequence numbers) but was processed after it.
    states["t2"] = done(2, processed=104.0, seq=2)
    ledger = compute_ledger(records, states)
    assert ledger.order_violations_sequence == 1
    assert not ledger.order_preserved


def test_client_order_violation_needs_non_overlapping_requests() -> None:
    # No sequence numbers: only what the client saw can decide.
    records = [accepted(0, sent=100.0, took=0.5), accepted(1, sent=100.1, took=0.5)]
    overlapping = {
        "t0": TaskState("t0", "COMPLETED", processed_at=102.0),
        "t1": TaskState("t1", "COMPLETED", processed_at=101.0),
    }
    # t1 was sent before t0's 200 arrived: the two were concurrent, any order is fine.
    ledger = compute_ledger(records, overlapping)
    assert not ledger.order_checked_by_sequence
    assert ledger.order_violations_client == 0
    records[1] = accepted(1, sent=100.6, took=0.1)  # now sent after t0 was accepted
    ledger = compute_ledger(records, overlapping)
    assert ledger.order_violations_client == 1
    assert ledger.order_violation_ids == ["t1"]


def test_oldest_age_series_tracks_the_oldest_unprocessed_task() -> None:
    records = [accepted(0, sent=10.0, took=0.0), accepted(1, sent=11.0, took=0.0)]
    states = {
        "t0": TaskState("t0", "COMPLETED", processed_at=13.0),
        "t1": TaskState("t1", "COMPLETED", processed_at=14.0),
    }
    series = dict(oldest_age_series(records, states, [9.0, 12.0, 13.5, 15.0]))
    assert series == {9.0: 0.0, 12.0: 2.0, 13.5: 2.5, 15.0: 0.0}


def test_task_state_normalises_table_items_and_api_bodies() -> None:
    from decimal import Decimal

    state = TaskState.from_item(
        {
            "task_id": "a",
            "status": "completed",
            "attempts": Decimal(2),
            "processed_at": "2026-01-01T00:00:01.000001+00:00",
            "created_at": "2026-01-01T00:00:00",
            "sequence_number": "18889999999999999999",
            "title": "ignored",
        }
    )
    assert state.status == "COMPLETED"
    assert state.attempts == 2
    assert state.terminal
    assert state.sequence_number == 18889999999999999999
    assert state.processed_at is not None
    assert state.created_at is not None
    assert state.processed_at - state.created_at == pytest.approx(1.000001)
    assert parse_time("not a time") is None
    assert parse_time(None) is None


def test_read_records(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    rows = [{"task_id": "a", "sent_at": 1.0, "accepted_at": 1.5, "poison": True}, {
        "task_id": "b", "sent_at": 2.0, "accepted_at": 2.5, "idempotency_key": "k"}]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_records(path) == [
        AcceptedTask("a", 1.0, 1.5, poison=True),
        AcceptedTask("b", 2.0, 2.5, idempotency_key="k"),
    ]
    assert read_records(tmp_path / "missing.jsonl") == []
