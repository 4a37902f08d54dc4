"""Faults under load: two thousand tasks through the local stack while the processor fails.

Injected through the test-only ``X-Fault-Injection`` header (ephemeral profile): 40
tasks (2 %) with a transient failure (``fail-attempts=1``), 10 poison tasks (0.5 %,
``always-fail``), three processor crashes (``crash``: the worker process exits) and
three timeouts (``timeout``: the invocation is killed at the function's timeout). The
ledger must then show every accepted task COMPLETED, or FAILED and in the dead-letter
queue for the poison ones; none lost; none applied twice; completed in queue order.

The stack keeps the ephemeral profile's timings (visibility timeout 4 s, processor
timeout 3 s, maxReceiveCount 3, batches of 10). With one message group, every failed
attempt holds the whole group for a visibility timeout, so the run's length is set by the
number of failed attempts, not by the task count (a healthy group drains a few hundred
tasks a second). Faults therefore come as incidents, as real ones do: a burst of 10
adjacent transient failures, a run of 5 poison tasks. FIFO batch processing stops at a
batch's first failure and hands back the records behind it unprocessed, so a burst costs
about two stalls: its first task raises, the ones behind it come back and raise in turn
when they are first in a later batch, or pass if they were already received once. Every
faulty task is thus delivered at least twice; how many actually raised is printed.
Incidents stand at least 60 tasks apart, so none is handed back behind another one's
failure before its own fault is met. (A 1 s visibility timeout is not a shortcut: a cold
start then outlasts it and healthy messages are redriven to the DLQ, as on AWS.)
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from cdk import contract
from harness.drivers import DeadLetters, TaskApi, _plain
from harness.local.cloud import LocalStack
from harness.target import Target
from harness.waiting import wait_until

SEQUENTIAL_TASKS = 400  # submitted one by one: acceptance order is known
CONCURRENT_TASKS = 1600  # submitted by a thread pool: order is what the queue saw
CLIENT_THREADS = 8
# The stage throttle (100 req/s, burst 200) answers 429 before the request reaches the
# function, so a client may send it again; bounded so a throttle that never lifts fails.
MAX_THROTTLED_RETRIES = 200
DRAIN_TIMEOUT_S = 150.0
STALL_S = 1.0  # a gap between two completions this long is a fault stalling the group
TERMINAL = frozenset({"COMPLETED", "FAILED"})
POISON = "always-fail"
TRANSIENT = "fail-attempts=1"
CRASH = "crash"
TIMEOUT = "timeout"
# Submission index -> fault directive, as incidents of adjacent tasks.
# Poison in mid-stream is the case that once lost the healthy tasks behind it in the batch
# (received as often as the poison and redriven with it); the processor now dead-letters
# a task itself on its last attempt and carries on with the batch.
_INCIDENTS: dict[str, tuple[tuple[int, ...], int]] = {
    # kind: (first submission index of each incident, tasks per incident)
    TRANSIENT: ((50, 550, 1150, 1600), 10),
    POISON: ((200, 1000), 5),
    CRASH: ((120, 700, 1300), 1),
    TIMEOUT: ((320, 850, 1450), 1),
}


def _incidents() -> list[list[int]]:
    """The submission indices of each incident, in index order."""
    return sorted(
        [
            list(range(start, start + size))
            for starts, size in _INCIDENTS.values()
            for start in starts
        ]
    )


def _fault_plan() -> dict[int, str]:
    """Which submission index gets which fault directive."""
    return {
        start + k: kind
        for kind, (starts, size) in _INCIDENTS.items()
        for start in starts
        for k in range(size)
    }


def test_fault_plan_keeps_incidents_apart() -> None:
    """The plan's own invariants: its share of faults, and incidents far apart."""
    plan = _fault_plan()
    total = SEQUENTIAL_TASKS + CONCURRENT_TASKS
    kinds = Counter(plan.values())
    assert kinds == {TRANSIENT: 40, POISON: 10, CRASH: 3, TIMEOUT: 3}
    assert (kinds[TRANSIENT] / total, kinds[POISON] / total) == (0.02, 0.005)
    incidents = _incidents()
    assert sum(map(len, incidents)) == len(plan), "incidents overlap"
    assert all(len(i) <= 10 for i in incidents), "an incident must fit in one batch"
    assert 50 <= incidents[0][0] < incidents[-1][-1] < total - 50, "none at the start or end"
    gaps = [b[0] - a[-1] for a, b in itertools.pairwise(incidents)]
    assert min(gaps) >= 60, gaps
    for kind, (starts, _) in _INCIDENTS.items():
        assert min(starts) < SEQUENTIAL_TASKS <= max(starts), f"{kind} only in one phase"


def _submit(api: TaskApi, index: int, fault: str | None) -> tuple[int, str, int]:
    """POST task ``index``; returns (index, task id, 429s retried)."""
    headers = {contract.FAULT_INJECTION_HEADER: fault} if fault else {}
    task = {
        "title": f"load {index}",
        "description": f"faults under load #{index}",
        "priority": "low",
    }
    throttled = 0
    response = api.submit(task, headers=headers)
    while response.status == 429 and throttled < MAX_THROTTLED_RETRIES:
        throttled += 1
        response = api.submit(task, headers=headers)
    assert response.status == 200, f"task {index} ({fault}) was refused: {response.describe()}"
    return index, str(response.json["task_id"]), throttled


def _submit_in_order(
    api: TaskApi, indices: Sequence[int], plan: dict[int, str]
) -> list[tuple[int, str, int]]:
    """POST the tasks ``indices`` one after another (one thread: their order is kept)."""
    return [_submit(api, index, plan.get(index)) for index in indices]


def _scan(target: Target) -> dict[str, dict[str, Any]]:
    """Every stored task, by id (consistent scan, paginated)."""
    dynamodb = target.client("dynamodb")
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


def _queue_depth(target: Target) -> int:
    """Messages in the task queue, visible or in flight (cheap, unlike a table scan)."""
    attributes = target.client("sqs").get_queue_attributes(
        QueueUrl=target.output(contract.TASK_QUEUE_URL),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_no_task_is_lost_or_applied_twice_under_faults(local_stack: LocalStack) -> None:
    target = Target.from_outputs_file(local_stack.outputs_file, "local")
    total = SEQUENTIAL_TASKS + CONCURRENT_TASKS
    plan = _fault_plan()
    processor = target.output(contract.PROCESSOR_FUNCTION_NAME)
    stats_before = local_stack.lambdas.stats()[processor]
    began = time.monotonic()
    api = TaskApi(target)
    try:
        sequential = _submit_in_order(api, range(SEQUENTIAL_TASKS), plan)
        concurrent: list[tuple[int, str, int]] = []
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            # Healthy stretches by the pool; each incident in between by one client, so
            # its tasks are adjacent in the queue as an incident's are (a burst spread
            # among other clients' tasks would meet each fault in a batch of its own).
            start = SEQUENTIAL_TASKS
            for incident in [*_incidents(), [total]]:
                if incident[0] < start:
                    continue
                stretch = range(start, incident[0])
                concurrent += pool.map(lambda i: _submit(api, i, plan.get(i)), stretch)
                if incident[0] < total:
                    concurrent += _submit_in_order(api, incident, plan)
                start = incident[-1] + 1
    finally:
        api.close()
    submitted_s = time.monotonic() - began
    ids = {index: task_id for index, task_id, _ in sequential + concurrent}
    throttled = sum(retries for _, _, retries in sequential + concurrent)
    assert len(set(ids.values())) == total, "two submissions got the same task id"
    poison = {ids[i] for i, fault in plan.items() if fault == POISON}

    # Every accepted message has left the queue (deleted after processing, or forwarded to
    # the DLQ) before the table is read; one scan then sees the final state.
    try:
        wait_until(
            lambda: _queue_depth(target) == 0,
            timeout=DRAIN_TIMEOUT_S,
            interval=0.5,
            description=f"the task queue to drain after {total} submissions",
        )
    except TimeoutError as timeout:
        mappings = list(local_stack.mappings.stats().values())
        raise AssertionError(
            f"{timeout}: {_queue_depth(target)} messages left; processor "
            f"{local_stack.lambdas.stats()[processor]}; event source mapping {mappings}"
        ) from None

    def all_terminal() -> dict[str, dict[str, Any]] | None:
        found = _scan(target)
        done = [t for t in ids.values() if found.get(t, {}).get("status") in TERMINAL]
        return found if len(done) == total else None

    items = wait_until(
        all_terminal,
        timeout=10.0,
        interval=1.0,
        description=f"{total} tasks terminal once the task queue is empty",
    )
    drained_s = time.monotonic() - began

    # None lost: every accepted task has a record and a terminal status.
    missing = [t for t in ids.values() if t not in items]
    assert not missing, f"{len(missing)} accepted tasks have no record: {missing[:5]}"
    # ... and nothing else has one: a throttled (429) request never reached the function.
    assert len(items) == total, f"{len(items) - total} tasks were stored that nobody accepted"
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
    # Every injected fault was met. Each faulty task was delivered more than once...
    first_try = [i for i, f in plan.items() if f != POISON and int(items[ids[i]]["attempts"]) < 2]
    assert not first_try, f"faulty tasks completed on their first attempt: {first_try[:5]}"
    # ... each crash and timeout happened, once (the processor's Lambda counts them) ...
    stats = local_stack.lambdas.stats()[processor]
    crashes, timeouts = stats.crashes - stats_before.crashes, stats.timeouts - stats_before.timeouts
    assert (crashes, timeouts) == (3, 3), f"{crashes} crashes and {timeouts} timeouts, not 3 and 3"
    # ... and in each transient burst at least its first task raised (its error is recorded).
    raised = {
        i
        for i, f in plan.items()
        if f == TRANSIENT and any(e["event"] == "failed" for e in items[ids[i]]["history"])
    }
    bursts = [set(incident) for incident in _incidents() if plan[incident[0]] == TRANSIENT]
    assert all(b & raised for b in bursts), f"a burst where nothing raised: {sorted(raised)}"

    # Completed in queue order: processing order == SQS FIFO sequence-number order...
    by_processed = [c["task_id"] for c in sorted(completed, key=lambda c: str(c["processed_at"]))]
    by_sequence = [c["task_id"] for c in sorted(completed, key=lambda c: int(c["sequence_number"]))]
    assert by_processed == by_sequence, "tasks were not completed in queue (sequence) order"
    # ... and for the tasks submitted one at a time, that is their submission order.
    clean_sequential = [t for _, t, _ in sequential if t not in poison]
    assert [t for t in by_processed if t in set(clean_sequential)] == clean_sequential

    # Where the time went: with one message group, each failed attempt stalls the drain
    # for about a visibility timeout; the gaps between consecutive completions show them.
    stamps = sorted(datetime.fromisoformat(str(c["processed_at"])) for c in completed)
    stalls = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    stalls = [gap for gap in stalls if gap >= STALL_S]
    faults = Counter(plan.values())
    print(
        f"\nfaults under load: {total} tasks ({SEQUENTIAL_TASKS} one by one, "
        f"{CONCURRENT_TASKS} by {CLIENT_THREADS} threads), faults {dict(faults)}, "
        f"transient failures raised {len(raised)}, processor crashes {crashes} and timeouts "
        f"{timeouts}; completed {statuses['COMPLETED']}, dead-lettered {len(in_dlq)}, lost 0, "
        f"applied twice 0, duplicate deliveries absorbed {duplicates}, "
        f"429s retried {throttled}; submitted in {submitted_s:.1f}s, "
        f"all terminal after {drained_s:.1f}s, of which {len(stalls)} stalls of >= {STALL_S:g}s "
        f"took {sum(stalls):.1f}s"
    )
