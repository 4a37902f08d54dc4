"""Faults under load: a thousand-odd tasks through the local stack while the processor fails.

Injected through the test-only ``X-Fault-Injection`` header (ephemeral profile): about
2 % transient failures (``fail-attempts=1``), a few poison tasks (``always-fail``), two
processor crashes (``crash``: the worker process exits) and two timeouts (``timeout``:
the invocation is killed at the function's timeout). The ledger must then show every
accepted task COMPLETED, or FAILED and in the dead-letter queue for the poison ones;
none lost; none applied twice; completed in queue order.

The stack keeps the ephemeral profile's timings (visibility timeout 4 s, processor
timeout 3 s, maxReceiveCount 3). With one message group every failed attempt holds the
whole group for a visibility timeout, so faults come in bursts of adjacent tasks (one
burst costs about one visibility timeout, as a real outage would) and the size of the run
is what a 2-core machine drains in about 90 s. (A 1 s visibility timeout is not a
shortcut: a cold start then outlasts it and healthy messages are redriven to the DLQ,
which is what AWS does too.)
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cdk import contract
from harness.drivers import DeadLetters, TaskApi
from harness.local.cloud import LocalStack
from harness.target import Target
from harness.waiting import wait_until

SEQUENTIAL_TASKS = 120  # submitted one by one: acceptance order is known
CONCURRENT_TASKS = 380  # submitted by a thread pool: order is what the queue saw
CLIENT_THREADS = 8
DRAIN_TIMEOUT_S = 120.0
# Submission index -> fault directive: 12 transient (2.4 %) in bursts of 4, 2 crashes,
# 2 timeouts and 2 poison tasks (0.4 %), among both the sequential and the concurrent
# tasks. Poison in mid-stream is the case that once lost the healthy tasks behind it
# (they were received as often as the poison and redriven with it); the processor now
# dead-letters a task itself on its last attempt and carries on with the batch.
_BURSTS = {"fail-attempts=1": (30, 200, 400)}
_BURST_SIZE = 4
POISON = "always-fail"
_SINGLES = {"crash": (60, 330), "timeout": (100, 450), POISON: (80, 300)}


def _fault_plan() -> dict[int, str]:
    """Which submission index gets which fault directive."""
    plan: dict[int, str] = {}
    for kind, starts in _BURSTS.items():
        for start in starts:
            plan.update({start + k: kind for k in range(_BURST_SIZE)})
    for kind, indices in _SINGLES.items():
        plan.update({index: kind for index in indices})
    return plan


def _submit(api: TaskApi, index: int, fault: str | None) -> tuple[int, str]:
    headers = {contract.FAULT_INJECTION_HEADER: fault} if fault else {}
    task = {
        "title": f"load {index}",
        "description": f"faults under load #{index}",
        "priority": "low",
    }
    response = api.submit(task, headers=headers)
    assert response.status == 200, f"task {index} ({fault}) was refused: {response.describe()}"
    return index, str(response.json["task_id"])


def _scan(target: Target) -> dict[str, dict[str, Any]]:
    """Every stored task, by id (consistent scan, paginated)."""
    dynamodb = target.client("dynamodb")
    from harness.drivers import _plain

    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {
        "TableName": target.output(contract.TASKS_TABLE_NAME),
        "ConsistentRead": True,
    }
    while True:
        page = dynamodb.scan(**kwargs)
        for raw in page["Items"]:
            item = _plain(raw)
            items[str(item["task_id"])] = item
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_no_task_is_lost_or_applied_twice_under_faults(local_stack: LocalStack) -> None:
    target = Target.from_outputs_file(local_stack.outputs_file, "local")
    total = SEQUENTIAL_TASKS + CONCURRENT_TASKS
    plan = _fault_plan()
    began = time.monotonic()
    api = TaskApi(target)
    try:
        sequential = [_submit(api, i, plan.get(i))[1] for i in range(SEQUENTIAL_TASKS)]
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            concurrent = dict(
                pool.map(lambda i: _submit(api, i, plan.get(i)), range(SEQUENTIAL_TASKS, total))
            )
    finally:
        api.close()
    submitted_s = time.monotonic() - began
    ids = {**dict(enumerate(sequential)), **concurrent}
    poison = {ids[i] for i, fault in plan.items() if fault == POISON}

    def all_terminal() -> dict[str, dict[str, Any]] | None:
        items = _scan(target)
        done = [
            t for t in ids.values() if items.get(t, {}).get("status") in {"COMPLETED", "FAILED"}
        ]
        return items if len(done) == total else None

    items = wait_until(
        all_terminal, timeout=DRAIN_TIMEOUT_S, interval=1.0, description=f"{total} tasks terminal"
    )
    drained_s = time.monotonic() - began

    # None lost: every accepted task has a record and a terminal status.
    missing = [t for t in ids.values() if t not in items]
    assert not missing, f"{len(missing)} accepted tasks have no record: {missing[:5]}"
    statuses = Counter(items[t]["status"] for t in ids.values())
    failed = {t for t in ids.values() if items[t]["status"] == "FAILED"}
    assert failed == poison, f"FAILED {sorted(failed)} but the poison tasks are {sorted(poison)}"
    assert statuses["COMPLETED"] == total - len(poison), statuses

    # Poison tasks are in the DLQ; nothing else is.
    # The processor forwards a task to the DLQ in the same attempt that marks it FAILED.
    dead_letters = DeadLetters(target)
    in_dlq = wait_until(
        lambda: (found := set(dead_letters.task_ids())) >= poison and found,
        timeout=15.0,
        description="the poison tasks in the dead-letter queue",
    )
    assert in_dlq == poison, f"DLQ holds {sorted(in_dlq)}, poison is {sorted(poison)}"

    # None applied twice (redeliveries after crashes and timeouts are counted, not applied).
    completed = [items[t] for t in ids.values() if t not in poison]
    twice = [(c["task_id"], c.get("applied")) for c in completed if c.get("applied") != 1]
    assert not twice, f"tasks not applied exactly once: {twice[:5]}"
    duplicates = sum(int(c.get("duplicate_deliveries", 0)) for c in completed)

    # Completed in queue order: processing order == SQS FIFO sequence-number order...
    by_processed = [c["task_id"] for c in sorted(completed, key=lambda c: str(c["processed_at"]))]
    by_sequence = [c["task_id"] for c in sorted(completed, key=lambda c: int(c["sequence_number"]))]
    assert by_processed == by_sequence, "tasks were not completed in queue (sequence) order"
    # ... and for the tasks submitted one at a time, that is their submission order.
    clean_sequential = [t for t in sequential if t not in poison]
    assert [t for t in by_processed if t in set(clean_sequential)] == clean_sequential

    faults = Counter(plan.values())
    print(
        f"\nfaults under load: {total} tasks, faults {dict(faults)}, "
        f"completed {statuses['COMPLETED']}, dead-lettered {len(in_dlq)}, lost 0, "
        f"applied twice 0, duplicate deliveries absorbed {duplicates}; "
        f"submitted in {submitted_s:.1f}s, all terminal after {drained_s:.1f}s"
    )
