"""Faults under load: two thousand tasks through the local stack while the processor fails
and the API's dependencies fail behind it.

Injected through the test-only ``X-Fault-Injection`` header (ephemeral profile):

- processor faults, as incidents of adjacent tasks: bursts of transient failures
  (``fail-attempts=1``), runs of poison tasks (``always-fail``), processor crashes
  (``crash``) and timeouts (``timeout``), and tasks whose every attempt crashes the
  processor (``crash-attempts=3``: the last attempt crashes, with healthy tasks behind it
  in the batch);
- API faults, one per submission, each at one step of accepting the task: the store, the
  send, a lost send response, the confirm, the cancel, the function ended after the store
  or after the send (see ``handlers.domain.submission``). Half of those clients retry with
  the same Idempotency-Key until they get a 200; the other half give up after the first
  answer.

The ledger then holds the API to what each answer promised:

- **lost 0**: every task answered 200 ends COMPLETED (FAILED and in the DLQ for the poison
  and always-crashing ones), applied exactly once;
- **stranded 0**: once every deadline has passed, no task is PENDING, QUEUED or PROCESSING;
- **resurrected 0**: no task whose client got 503 and gave up was ever attempted;
- an unknown outcome (500 ``outcome_unknown``, or 502 when the function ended) settles:
  COMPLETED once or CANCELLED, never both, and a retry with the key ends in one task;
- none applied twice; completed in queue order; only the poison and always-crashing tasks
  in the DLQ.

The stack keeps the ephemeral profile's timings (visibility timeout 4 s, processor timeout
3 s, attempt budget 3, batches of 10, pending window 20 s). With one message group, every
failed attempt holds the whole group for a visibility timeout, so the run's length is set
by the number of failed attempts, not by the task count (a healthy group drains a few
hundred tasks a second): each processor fault costs one stall per failed attempt (a poison
task two, its third is dead-lettered in-line; an always-crashing task three). API faults
cost the group nothing. Incidents stand at least 60 tasks apart, so none is handed back
behind another one's failure before its own fault is met. (A 1 s visibility timeout is
not a shortcut: a cold start then outlasts it and a batch is received twice at once.)
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from cdk import contract
from handlers.domain.faults import ApiFault
from harness.drivers import DeadLetters, TaskApi, _plain
from harness.local_stack.cloud import LocalDeployment
from harness.target import Target
from harness.waiting import wait_until

SEQUENTIAL_TASKS = 400  # submitted one by one: acceptance order is known
CONCURRENT_TASKS = 1600  # submitted by a thread pool: order is what the queue saw
CLIENT_THREADS = 8
# The stage throttle (100 req/s, burst 200) answers 429 before the request reaches the
# function, so a client may send it again; bounded so a throttle that never lifts fails.
MAX_THROTTLED_RETRIES = 200
DRAIN_TIMEOUT_S = 300.0
STALL_S = 1.0  # a gap between two completions this long is a fault stalling the group
TERMINAL = frozenset({"COMPLETED", "FAILED"})
SETTLED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
POISON = "always-fail"
TRANSIENT = "fail-attempts=1"
CRASH = "crash"
TIMEOUT = "timeout"
LAST_ATTEMPT_CRASH = "crash-attempts=3"
DEAD_LETTERED = frozenset({POISON, LAST_ATTEMPT_CRASH})
# Submission index -> processor directive, as incidents of adjacent tasks.
# Poison in mid-stream is the case that once lost the healthy tasks behind it in the batch
# (received as often as the poison and redriven with it); a crash on a task's last attempt
# did the same. The processor now counts attempts and dead-letters such a task itself.
_INCIDENTS: dict[str, tuple[tuple[int, ...], int]] = {
    # kind: (first submission index of each incident, tasks per incident)
    TRANSIENT: ((50, 550, 1150, 1600), 3),
    POISON: ((200, 1000), 3),
    CRASH: ((120, 700, 1300), 1),
    TIMEOUT: ((320, 850, 1450), 1),
    LAST_ATTEMPT_CRASH: ((380, 1750), 1),
}
# API faults: every API fault, at these indices (well away from the incidents); even
# ones retry with their key until 200, odd ones give up after the first answer.
_API_FAULT_STARTS = (10, 460, 1050, 1850)


def _incidents() -> list[list[int]]:
    """The submission indices of each processor incident, in index order."""
    return sorted(
        [
            list(range(start, start + size))
            for starts, size in _INCIDENTS.values()
            for start in starts
        ]
    )


def _fault_plan() -> dict[int, str]:
    """Which submission index gets which processor directive."""
    return {
        start + k: kind
        for kind, (starts, size) in _INCIDENTS.items()
        for start in starts
        for k in range(size)
    }


def _api_fault_plan() -> dict[int, str]:
    """Which submission index gets which API fault (each fault twice per start)."""
    faults = sorted(fault.value for fault in ApiFault)
    return {
        start + offset: faults[offset // 2]
        for start in _API_FAULT_STARTS
        for offset in range(2 * len(faults))
    }


def test_fault_plan_keeps_incidents_apart() -> None:
    """The plan's own invariants: its share of faults, and incidents far apart."""
    plan = _fault_plan()
    total = SEQUENTIAL_TASKS + CONCURRENT_TASKS
    kinds = Counter(plan.values())
    assert kinds == {TRANSIENT: 12, POISON: 6, CRASH: 3, TIMEOUT: 3, LAST_ATTEMPT_CRASH: 2}
    incidents = _incidents()
    assert sum(map(len, incidents)) == len(plan), "incidents overlap"
    assert all(len(i) <= 10 for i in incidents), "an incident must fit in one batch"
    assert 50 <= incidents[0][0] < incidents[-1][-1] < total - 50, "none at the start or end"
    gaps = [b[0] - a[-1] for a, b in itertools.pairwise(incidents)]
    assert min(gaps) >= 60, gaps
    for kind, (starts, _) in _INCIDENTS.items():
        assert min(starts) < SEQUENTIAL_TASKS <= max(starts), f"{kind} only in one phase"
    api_plan = _api_fault_plan()
    assert Counter(api_plan.values()) == {fault.value: 8 for fault in ApiFault}
    assert not set(api_plan) & set(plan), "an API fault on a processor incident"
    assert all(0 <= index < total for index in api_plan)


@dataclass
class Outcome:
    """One submission: its first answer, the answer it ended with, and its task."""

    index: int
    first_status: int
    final_status: int
    task_id: str | None
    throttled: int
    retried: bool

    @property
    def accepted(self) -> bool:
        return self.final_status == 200


def _submit(api: TaskApi, index: int, fault: str | None, api_fault: str | None) -> Outcome:
    """POST task ``index``; an API fault's client retries with its key (even index) or
    gives up (odd index)."""
    task = {
        "title": f"load {index}",
        "description": f"faults under load #{index}",
        "priority": "low",
    }
    key = f"load-{index}"
    directives = [d for d in (fault, api_fault) if d]
    # Only a client that may have to retry needs a key (it costs two DynamoDB calls).
    headers = {"Idempotency-Key": key} if api_fault else {}
    if directives:
        headers[contract.FAULT_INJECTION_HEADER] = ", ".join(directives)
    throttled = 0

    def send(extra: dict[str, str]) -> Any:
        nonlocal throttled
        response = api.submit(task, headers=extra)
        while response.status == 429 and throttled < MAX_THROTTLED_RETRIES:
            throttled += 1
            response = api.submit(task, headers=extra)
        return response

    response = send(headers)
    first = response.status
    retried = api_fault is not None and index % 2 == 0 and first != 200
    if retried:
        # As the answer says: retry with the same key (the fault gone); while the first
        # request's idempotency record is in flight (the function ended) that is a 409.
        again = {"Idempotency-Key": key}
        if fault:
            again[contract.FAULT_INJECTION_HEADER] = fault
        deadline = time.monotonic() + 30.0
        response = send(again)
        while response.status == 409 and time.monotonic() < deadline:
            time.sleep(1.0)  # the client honours Retry-After
            response = send(again)
    if api_fault is None:
        assert response.status == 200, f"task {index} ({fault}) was refused: {response.describe()}"
    body = response.json if isinstance(response.json, dict) else {}
    task_id = body.get("task_id")
    return Outcome(index, first, response.status, task_id, throttled, retried)


def _submit_in_order(
    api: TaskApi, indices: Sequence[int], plan: dict[int, str], api_plan: dict[int, str]
) -> list[Outcome]:
    """POST the tasks ``indices`` one after another (one thread: their order is kept)."""
    return [_submit(api, index, plan.get(index), api_plan.get(index)) for index in indices]


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


def _status(item: dict[str, Any], now: str) -> str:
    """The deadline rule: a PENDING task past its deadline is CANCELLED."""
    if item["status"] == "PENDING" and str(item.get("pending_until")) <= now:
        return "CANCELLED"
    return str(item["status"])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.timeout(900)
def test_no_task_is_lost_stranded_resurrected_or_applied_twice_under_faults(
    local_stack: LocalDeployment,
) -> None:
    target = Target.from_outputs_file(local_stack.outputs_file, "local")
    total = SEQUENTIAL_TASKS + CONCURRENT_TASKS
    plan, api_plan = _fault_plan(), _api_fault_plan()
    processor = target.output(contract.PROCESSOR_FUNCTION_NAME)
    stats_before = local_stack.lambdas.stats()[processor]
    began = time.monotonic()
    api = TaskApi(target)
    try:
        sequential = _submit_in_order(api, range(SEQUENTIAL_TASKS), plan, api_plan)
        concurrent: list[Outcome] = []
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            # Healthy stretches by the pool; each incident in between by one client, so
            # its tasks are adjacent in the queue as an incident's are (a burst spread
            # among other clients' tasks would meet each fault in a batch of its own).
            start = SEQUENTIAL_TASKS
            for incident in [*_incidents(), [total]]:
                if incident[0] < start:
                    continue
                stretch = range(start, incident[0])
                concurrent += pool.map(
                    lambda i: _submit(api, i, plan.get(i), api_plan.get(i)), stretch
                )
                if incident[0] < total:
                    concurrent += _submit_in_order(api, incident, plan, api_plan)
                start = incident[-1] + 1
    finally:
        api.close()
    submitted_s = time.monotonic() - began
    outcomes = {o.index: o for o in sequential + concurrent}
    assert sorted(outcomes) == list(range(total))
    throttled = sum(o.throttled for o in outcomes.values())
    accepted = {i: str(o.task_id) for i, o in outcomes.items() if o.accepted}
    assert len(set(accepted.values())) == len(accepted), "two submissions got the same task id"
    dead_lettered = {accepted[i] for i, fault in plan.items() if fault in DEAD_LETTERED}
    window_s = 20.0  # the ephemeral pending window: every PENDING task has settled after it

    # Every message has left the queue (deleted after processing, dropped, or forwarded to
    # the DLQ) and every deadline has passed before the table is read.
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
    settle_from = time.monotonic()

    def all_settled() -> dict[str, dict[str, Any]] | None:
        found, now = _scan(target), _now()
        unsettled = [t for t, item in found.items() if _status(item, now) not in SETTLED]
        return found if not unsettled else None

    items = wait_until(
        all_settled,
        timeout=window_s + 15.0,
        interval=1.0,
        description="every stored task COMPLETED, FAILED or CANCELLED (none stranded)",
    )
    drained_s = settle_from - began
    now = _now()
    by_title = {str(item["title"]): item for item in items.values()}
    assert len(by_title) == len(items), "two tasks for one submission"

    # Lost 0: every task answered 200 is terminal, and COMPLETED unless dead-lettered.
    missing = [t for t in accepted.values() if t not in items]
    assert not missing, f"{len(missing)} accepted tasks have no record: {missing[:5]}"
    statuses = Counter(_status(items[t], now) for t in accepted.values())
    failed = {t for t in accepted.values() if items[t]["status"] == "FAILED"}
    assert failed == dead_lettered, f"FAILED {sorted(failed)}, expected {sorted(dead_lettered)}"
    assert statuses["COMPLETED"] == len(accepted) - len(dead_lettered), statuses

    # Stranded 0: settled above (no PENDING past its deadline, QUEUED or PROCESSING left).
    stranded = [t for t, item in items.items() if _status(item, now) not in SETTLED]
    assert not stranded, stranded

    # Resurrected 0: a client that got 503 and gave up: its task never attempted.
    resurrected, abandoned_503 = [], 0
    unknown_abandoned: Counter[str] = Counter()
    for index, outcome in outcomes.items():
        item = by_title.get(f"load {index}")
        if outcome.accepted:
            continue
        if outcome.final_status == 503:
            abandoned_503 += 1
            if item is not None and (item.get("history") or int(item["attempts"]) > 0):
                resurrected.append((index, api_plan.get(index), item["status"]))
        else:  # 500 outcome_unknown or 502: either outcome, but settled and applied once
            assert outcome.final_status in (500, 502), outcome
            assert item is not None, f"an unknown outcome left no task: {outcome}"
            status = _status(item, now)
            unknown_abandoned[status] += 1
            assert status in ("COMPLETED", "CANCELLED"), (outcome, item)
            assert int(item.get("applied", 0)) == (1 if status == "COMPLETED" else 0), item
    assert not resurrected, f"tasks answered 503 were processed: {resurrected}"
    retried = [o for o in outcomes.values() if o.retried]
    assert retried, "no client retried"
    assert all(o.accepted for o in retried), [o for o in retried if not o.accepted]

    # The DLQ holds exactly the dead-lettered tasks.
    dead_letters = DeadLetters(target)
    in_dlq = wait_until(
        lambda: (found := set(dead_letters.task_ids())) >= dead_lettered and found,
        timeout=15.0,
        description="the dead-lettered tasks in the dead-letter queue",
    )
    assert in_dlq == dead_lettered, f"DLQ holds {sorted(in_dlq)}, expected {dead_lettered}"

    # None applied twice (redeliveries after crashes and timeouts are counted, not applied).
    completed = [item for item in items.values() if item["status"] == "COMPLETED"]
    twice = [(c["task_id"], c.get("applied")) for c in completed if c.get("applied") != 1]
    assert not twice, f"tasks not applied exactly once: {twice[:5]}"
    duplicates = sum(int(c.get("duplicate_deliveries", 0)) for c in completed)
    # Every injected processor fault was met: each faulty task was attempted more than once
    # (the always-crashing ones exactly 3 times, then dead-lettered as interrupted) ...
    first_try = [
        i for i, f in plan.items() if f not in DEAD_LETTERED and items[accepted[i]]["attempts"] < 2
    ]
    assert not first_try, f"faulty tasks completed on their first attempt: {first_try[:5]}"
    for index, fault in plan.items():
        item = items[accepted[index]]
        if fault in DEAD_LETTERED:
            assert int(item["attempts"]) == 3, item
            expected_code = "interrupted" if fault == LAST_ATTEMPT_CRASH else "injected_fault"
            assert item["failure_code"] == expected_code, item
    # ... each crash and timeout happened (the processor's Lambda counts them) ...
    stats = local_stack.lambdas.stats()[processor]
    crashes, timeouts = stats.crashes - stats_before.crashes, stats.timeouts - stats_before.timeouts
    assert (crashes, timeouts) == (3 + 2 * 3, 3), f"{crashes} crashes and {timeouts} timeouts"
    # ... and every transient task raised once (its attempt 1 is recorded as failed).
    raised = {
        i
        for i, f in plan.items()
        if f == TRANSIENT
        and [e["event"] for e in items[accepted[i]]["history"]][:2] == ["started", "failed"]
    }
    assert raised == {i for i, f in plan.items() if f == TRANSIENT}, raised

    # Completed in queue order: processing order == SQS FIFO sequence-number order...
    by_processed = [c["task_id"] for c in sorted(completed, key=lambda c: str(c["processed_at"]))]
    by_sequence = [c["task_id"] for c in sorted(completed, key=lambda c: int(c["sequence_number"]))]
    assert by_processed == by_sequence, "tasks were not completed in queue (sequence) order"
    # ... and for the tasks submitted one at a time (API faults aside), submission order.
    clean_sequential = [
        str(o.task_id)
        for o in sequential
        if o.index not in api_plan and str(o.task_id) not in dead_lettered
    ]
    assert [t for t in by_processed if t in set(clean_sequential)] == clean_sequential

    # Where the time went: with one message group, each failed attempt stalls the drain
    # for about a visibility timeout; the gaps between consecutive completions show them.
    stamps = sorted(datetime.fromisoformat(str(c["processed_at"])) for c in completed)
    stalls = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    stalls = [gap for gap in stalls if gap >= STALL_S]
    first_answers = Counter(o.first_status for o in outcomes.values() if o.index in api_plan)
    print(
        f"\nfaults under load: {total} tasks ({SEQUENTIAL_TASKS} one by one, "
        f"{CONCURRENT_TASKS} by {CLIENT_THREADS} threads); processor faults "
        f"{dict(Counter(plan.values()))}: crashes {crashes}, timeouts {timeouts}; API faults "
        f"{len(api_plan)} (first answers {dict(first_answers)}, {len(retried)} retried with "
        f"their key, all 200): completed {statuses['COMPLETED']}, dead-lettered "
        f"{len(in_dlq)}, answered 503 and abandoned {abandoned_503}, unknown and abandoned "
        f"{dict(unknown_abandoned)}; lost 0, stranded 0, resurrected 0, applied twice 0, "
        f"duplicate deliveries absorbed {duplicates}, 429s retried {throttled}; submitted in "
        f"{submitted_s:.1f}s, queue drained after {drained_s:.1f}s, of which {len(stalls)} "
        f"stalls of >= {STALL_S:g}s took {sum(stalls):.1f}s"
    )
