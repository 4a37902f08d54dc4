"""``handlers.processor.handler`` with SQS FIFO events against the mocked table and queues."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers import processor
from handlers.adapters import aws
from handlers.adapters.ledger import DynamoTaskLedger
from handlers.domain.constants import (
    DLQ_DETAIL_ATTRIBUTE,
    DLQ_REASON_ATTRIBUTE,
    DLQ_SOURCE_MESSAGE_ID_ATTRIBUTE,
    DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE,
    MESSAGE_GROUP_ID,
)
from handlers.domain.messages import task_message_body
from handlers.domain.processing import Attempt, Delivery, Started, TaskState
from harness.payloads import valid_task

from .conftest import ATTEMPT_BUDGET, CallApi, Cloud, RunProcessor
from .events import FakeLambdaContext, sqs_record

# Powertools warns about normal situations here (an invocation cut short, multipart).
pytestmark = [pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")]

Drain = Callable[[], list[dict[str, Any]]]


class SimulatedKill(BaseException):
    """Stands in for the end of the process (a crash, or Lambda killing a timed-out run)."""


class Deliveries:
    """Builds the records SQS would deliver for stored tasks: one message id per task,
    sequence numbers increasing in submission order, any receive count."""

    def __init__(self, cloud: Cloud) -> None:
        self._cloud = cloud
        self._sequence: dict[str, str] = {}

    def record(self, task_id: str, receive_count: int = 1) -> dict[str, Any]:
        """The record of ``task_id``'s message on its ``receive_count``-th receive."""
        item = self._cloud.item(task_id)
        assert item is not None, f"task {task_id} is not stored"
        sequence = self._sequence.setdefault(
            task_id, f"{18849496460467696128 + len(self._sequence)}"
        )
        return sqs_record(
            task_message_body(item),
            message_id=f"msg-{task_id}",
            receive_count=receive_count,
            sequence_number=sequence,
            deduplication_id=task_id,
        )

    def batch(self, task_ids: list[str], receive_counts: dict[str, int]) -> list[dict[str, Any]]:
        """One batch of ``task_ids``, each on its next receive (counted in ``receive_counts``),
        as the queue delivers a batch that was handed back."""
        records = []
        for task_id in task_ids:
            receive_counts[task_id] = receive_counts.get(task_id, 0) + 1
            records.append(self.record(task_id, receive_counts[task_id]))
        return records


@pytest.fixture
def deliveries(cloud: Cloud) -> Deliveries:
    return Deliveries(cloud)


def _submit(call_api: CallApi, count: int = 1, fault: str | None = None) -> list[str]:
    headers = {"X-Fault-Injection": fault} if fault else {}
    ids = []
    for index in range(count):
        answer = call_api(
            "POST", "/tasks", json_body=valid_task(title=f"Task {index}"), headers=headers
        )
        assert answer.status == 200, answer
        ids.append(answer.json["task_id"])
    return ids


def _failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def _item(cloud: Cloud, task_id: str) -> dict[str, Any]:
    item = cloud.item(task_id)
    assert item is not None, f"task {task_id} is not stored"
    return item


def _events(item: dict[str, Any]) -> list[tuple[str, int]]:
    """The task's history as (event, attempt) pairs."""
    return [(entry["event"], int(entry["attempt"])) for entry in item["history"]]


def _processed_order(cloud: Cloud, task_ids: list[str]) -> list[str]:
    items = [_item(cloud, task_id) for task_id in task_ids]
    return [item["task_id"] for item in sorted(items, key=lambda item: item["processed_at"])]


def _submit_faulty(cloud: Cloud, call_api: CallApi, fault: str) -> str:
    """Turn fault injection on and submit one task carrying ``fault``; returns its id."""
    cloud.fault_injection(True)
    (task_id,) = _submit(call_api, fault=fault)
    return task_id


def _submit_faulty_to_the_real_queue(cloud: Cloud, call_api: CallApi, fault: str) -> str:
    """``_submit_faulty``, with the real queue redelivering the task as soon as it fails."""
    cloud.sqs.set_queue_attributes(
        QueueUrl=cloud.task_queue_url, Attributes={"VisibilityTimeout": "0"}
    )
    return _submit_faulty(cloud, call_api, fault)


def _dead_letters(cloud: Cloud) -> list[dict[str, Any]]:
    """The DLQ's messages: task id, attributes and message id."""
    return [
        {
            "task_id": json.loads(message["Body"]).get("task_id"),
            **{name: value["StringValue"] for name, value in message["MessageAttributes"].items()},
        }
        for message in cloud.receive(cloud.dlq_url)
    ]


def _fail_completion(
    monkeypatch: pytest.MonkeyPatch, error: Exception, *, only: str | None = None
) -> None:
    """Every write that would complete a task (``only`` that one) raises ``error``: the
    start write that also completes (a task without a fault directive) and the completion
    after a separate start (what the processor falls back to when the first one fails)."""
    real_start, real_complete = DynamoTaskLedger.start, DynamoTaskLedger.complete

    def start(self: DynamoTaskLedger, task_id: str, **kwargs: Any) -> Any:
        if kwargs.get("completion") is not None and only in (None, task_id):
            raise error
        return real_start(self, task_id, **kwargs)

    def complete(self: DynamoTaskLedger, task_id: str, **kwargs: Any) -> Any:
        if only in (None, task_id):
            raise error
        return real_complete(self, task_id, **kwargs)

    monkeypatch.setattr(DynamoTaskLedger, "start", start)
    monkeypatch.setattr(DynamoTaskLedger, "complete", complete)


# --- completing tasks in order ----------------------------------------------------------------


def test_a_batch_completes_every_task_in_order_and_records_the_attempt(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    ids = _submit(call_api, 4)
    records = [deliveries.record(task_id) for task_id in ids]
    context = FakeLambdaContext()

    response = run_processor(records, context=context)

    assert response == {"batchItemFailures": []}
    for task_id, record in zip(ids, records, strict=True):
        item = _item(cloud, task_id)
        assert item["status"] == "COMPLETED"
        assert (item["attempts"], item["receive_count"], item["applied"]) == (1, 1, 1)
        assert item["message_id"] == record["messageId"]
        assert item["sequence_number"] == record["attributes"]["SequenceNumber"]
        assert item["processed_at"] == item["updated_at"] > item["created_at"]
        started, completed = item["history"]
        assert started == {
            "event": "started",
            "attempt": 1,
            "receive_count": 1,
            "invocation": context.aws_request_id,
            "at": started["at"],
        }
        assert completed["event"] == "completed"
        assert completed["invocation"] == context.aws_request_id
        assert started["at"] < completed["at"] == item["processed_at"]
    stamps = [_item(cloud, task_id)["processed_at"] for task_id in ids]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)


def test_messages_from_the_real_queue_complete_their_tasks(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    ids = _submit(call_api, 3)
    assert len(drain()) == 3
    assert [_item(cloud, task_id)["status"] for task_id in ids] == ["COMPLETED"] * 3
    assert cloud.receive() == []


def test_a_message_whose_task_is_missing_never_recreates_it(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    before, missing, after = _submit(call_api, 3)
    batch = [deliveries.record(task_id) for task_id in (before, missing, after)]
    cloud.dynamodb.delete_item(TableName="tasks", Key={"task_id": {"S": missing}})

    assert run_processor(batch) == {"batchItemFailures": []}

    assert cloud.item(missing) is None, "the processor recreated a task from its message"
    assert [_item(cloud, t)["status"] for t in (before, after)] == ["COMPLETED"] * 2
    (dead,) = _dead_letters(cloud)
    assert (dead["task_id"], dead[DLQ_REASON_ATTRIBUTE]) == (missing, "unknown_task")


# --- partial failures keep the order and count only real attempts -----------------------


def test_the_first_failure_and_everything_after_it_are_reported(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    # The spec's example: A succeeds, B fails once, C and D are handed back untried.
    cloud.fault_injection(True)
    a = _submit(call_api)
    b = _submit(call_api, fault="fail-attempts=1")
    c_d = _submit(call_api, 2)
    batch = [deliveries.record(task_id) for task_id in a + b + c_d]

    response = run_processor(batch)

    assert _failures(response) == [record["messageId"] for record in batch[1:]]
    assert _item(cloud, a[0])["status"] == "COMPLETED"
    failed = _item(cloud, b[0])
    assert (failed["status"], failed["attempts"]) == ("PROCESSING", 1)
    assert _events(failed) == [("started", 1), ("failed", 1)]
    assert failed["history"][-1]["error_code"] == "injected_fault"
    for task_id in c_d:  # never attempted: untouched
        untried = _item(cloud, task_id)
        assert (untried["status"], untried["attempts"], untried["history"]) == ("QUEUED", 0, [])

    # The queue redelivers the reported records, in order, with a higher receive count.
    retry = [deliveries.record(task_id, receive_count=2) for task_id in b + c_d]
    assert run_processor(retry) == {"batchItemFailures": []}

    all_ids = a + b + c_d
    assert _processed_order(cloud, all_ids) == all_ids
    b_done = _item(cloud, b[0])
    assert (b_done["attempts"], b_done["receive_count"]) == (2, 2)
    assert _events(b_done) == [("started", 1), ("failed", 1), ("started", 2), ("completed", 2)]
    for task_id in c_d:  # received twice, attempted once
        done = _item(cloud, task_id)
        assert (done["attempts"], done["receive_count"]) == (1, 2)
        assert _events(done) == [("started", 1), ("completed", 1)]
        assert done["history"][0]["receive_count"] == 2


def test_an_infrastructure_error_is_a_retryable_failure_with_a_short_code(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _submit(call_api, 3)
    throttled = ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "arn:aws:dynamodb:us-east-1:123456789012:table/tasks is slow",
            }
        },
        "UpdateItem",
    )
    _fail_completion(monkeypatch, throttled, only=ids[1])
    batch = [deliveries.record(task_id) for task_id in ids]
    response = run_processor(batch)

    assert _failures(response) == [record["messageId"] for record in batch[1:]]
    assert _item(cloud, ids[0])["status"] == "COMPLETED"
    item = _item(cloud, ids[1])
    assert item["status"] == "PROCESSING"
    assert item["history"][-1]["error_code"] == "throttled"
    assert "123456789012" not in json.dumps(item, default=str), "internals stored on the task"


def test_a_failed_write_that_would_start_and_complete_is_retried_as_two_writes(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one write of a task without a fault directive fails (an error, or a timeout whose
    # write may have applied): the processor starts the attempt again in two writes, in the
    # same invocation, and the task is completed once, with its whole history.
    (task_id,) = _submit(call_api)
    real_start = DynamoTaskLedger.start
    failed: list[str] = []

    def start_once_failing(self: DynamoTaskLedger, task_id: str, **kwargs: Any) -> Any:
        if kwargs.get("completion") is not None and not failed:
            failed.append(task_id)
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "UpdateItem")
        return real_start(self, task_id, **kwargs)

    monkeypatch.setattr(DynamoTaskLedger, "start", start_once_failing)
    assert run_processor([deliveries.record(task_id)]) == {"batchItemFailures": []}
    assert failed == [task_id]
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"], item["applied"]) == ("COMPLETED", 1, 1)
    assert _events(item) == [("started", 1), ("completed", 1)]


def test_a_batch_whose_every_record_fails_is_reported_not_raised(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    # Every record comes back, as for a function error, but the invocation succeeds: the
    # failed record is counted once (ProcessingFailures), not also as a Lambda error.
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    (behind,) = _submit(call_api)
    batch = [deliveries.record(task_id), deliveries.record(behind)]
    assert _failures(run_processor(batch)) == [record["messageId"] for record in batch]
    assert _item(cloud, task_id)["status"] == "PROCESSING"


# --- the last attempt -------------------------------------------------------------------------


def test_a_task_that_always_fails_gets_exactly_its_budget_and_the_batch_goes_on(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    (behind,) = _submit(call_api)
    counts: dict[str, int] = {}

    for attempt in range(1, ATTEMPT_BUDGET):
        batch = deliveries.batch([task_id, behind], counts)
        assert _failures(run_processor(batch)) == [record["messageId"] for record in batch]
        item = _item(cloud, task_id)
        assert (item["attempts"], item["status"]) == (attempt, "PROCESSING"), item

    # The last attempt: the processor forwards the task to the DLQ itself, so the task
    # behind it (received just as often) is processed instead of being redriven with it.
    assert run_processor(deliveries.batch([task_id, behind], counts)) == {"batchItemFailures": []}
    item = _item(cloud, task_id)
    assert (item["attempts"], item["status"]) == (ATTEMPT_BUDGET, "FAILED"), item
    assert item["failure_code"] == "injected_fault"
    assert _events(item) == [
        ("started", 1), ("failed", 1), ("started", 2), ("failed", 2),
        ("started", 3), ("failed", 3), ("dead_lettered", 3),
    ]  # fmt: skip
    done = _item(cloud, behind)
    assert (done["status"], done["attempts"], done["receive_count"]) == ("COMPLETED", 1, 3)
    (dead,) = _dead_letters(cloud)
    assert dead["task_id"] == task_id
    assert dead[DLQ_REASON_ATTRIBUTE] == "attempts_exhausted"
    assert dead[DLQ_DETAIL_ATTRIBUTE] == "injected_fault"
    assert dead[DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE] == str(ATTEMPT_BUDGET)


def test_failing_tasks_in_a_row_each_get_their_whole_budget(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    # Counting receives instead of attempts gave the second poison task one attempt: it
    # had been received twice behind the first one before its own first attempt.
    cloud.fault_injection(True)
    first = _submit(call_api, fault="always-fail")
    second = _submit(call_api, fault="always-fail")
    (healthy,) = _submit(call_api)
    queue = [*first, *second, healthy]
    counts: dict[str, int] = {}
    for _ in range(2 * ATTEMPT_BUDGET):
        if not queue:
            break
        batch = deliveries.batch(queue, counts)
        failed = set(_failures(run_processor(batch)))
        queue = [record["body"] and json.loads(record["body"])["task_id"] for record in batch]
        queue = [t for t, record in zip(queue, batch, strict=True) if record["messageId"] in failed]

    assert queue == [], "tasks left in the queue"
    for task_id in (*first, *second):
        item = _item(cloud, task_id)
        assert (item["status"], item["attempts"]) == ("FAILED", ATTEMPT_BUDGET), item
    done = _item(cloud, healthy)
    # Held back by 2 x 2 failed receives, then attempted once.
    assert (done["status"], done["attempts"], done["receive_count"]) == ("COMPLETED", 1, 5)


def test_a_real_failure_on_the_last_attempt_marks_the_task_failed_with_a_code(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (task_id,) = _submit(call_api)
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "role arn:aws:iam::1:x"}},
        "UpdateItem",
    )
    _fail_completion(monkeypatch, denied)
    for attempt in range(1, ATTEMPT_BUDGET):
        assert _failures(run_processor([deliveries.record(task_id, attempt)]))
    assert run_processor([deliveries.record(task_id, ATTEMPT_BUDGET)]) == {"batchItemFailures": []}
    item = _item(cloud, task_id)
    assert (item["status"], item["failure_code"]) == ("FAILED", "access_denied")
    assert "arn:aws:iam" not in json.dumps(item, default=str)
    (dead,) = _dead_letters(cloud)
    assert dead["task_id"] == task_id
    assert "arn:aws:iam" not in json.dumps(dead)


def test_with_the_real_queue_a_failing_task_ends_failed_and_in_the_dlq(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    task_id = _submit_faulty_to_the_real_queue(cloud, call_api, "always-fail")

    for attempt in range(1, ATTEMPT_BUDGET):
        drain()
        assert _item(cloud, task_id)["attempts"] == attempt

    drain()  # the last attempt forwards it to the dead-letter queue
    assert _item(cloud, task_id)["status"] == "FAILED"
    assert drain() == []
    assert [dead["task_id"] for dead in _dead_letters(cloud)] == [task_id]


def test_with_the_real_queue_a_task_failing_twice_completes_on_attempt_3(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    task_id = _submit_faulty_to_the_real_queue(cloud, call_api, "fail-attempts=2")
    for _ in range(3):
        drain()
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"]) == ("COMPLETED", 3)
    assert cloud.receive() == []
    assert cloud.receive(cloud.dlq_url) == []


def test_a_last_attempt_that_cannot_reach_the_dlq_is_dead_lettered_on_the_next_delivery(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    for attempt in range(1, ATTEMPT_BUDGET):
        run_processor([deliveries.record(task_id, attempt)])

    real_client = aws.sqs_client()

    class DlqDown:
        def send_message(self, **kwargs: Any) -> None:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "Send")

    monkeypatch.setattr(processor, "sqs_client", DlqDown)
    processor.reset_dependencies()
    last = deliveries.record(task_id, ATTEMPT_BUDGET)
    assert _failures(run_processor([last])) == [last["messageId"]]
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"]) == ("PROCESSING", ATTEMPT_BUDGET)

    monkeypatch.setattr(processor, "sqs_client", lambda: real_client)
    processor.reset_dependencies()
    assert run_processor([deliveries.record(task_id, ATTEMPT_BUDGET + 1)]) == {
        "batchItemFailures": []
    }
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"], item["failure_code"]) == (
        "FAILED",
        ATTEMPT_BUDGET,
        "injected_fault",
    )
    assert [dead["task_id"] for dead in _dead_letters(cloud)] == [task_id]


# --- a crash or timeout on the last attempt ----------------------------------------------------


@pytest.fixture
def kills(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Replace the real sleep and exit of the fault effects; record what they were asked."""
    seen: list[tuple[str, float]] = []

    def sleep(seconds: float) -> None:
        seen.append(("sleep", seconds))
        raise SimulatedKill

    def exit_(code: int) -> None:
        seen.append(("exit", float(code)))
        raise SimulatedKill

    monkeypatch.setattr(processor, "_sleep", sleep)
    monkeypatch.setattr(processor, "_exit", exit_)
    return seen


@pytest.mark.parametrize(("fault", "effect"), [("crash", "exit"), ("timeout", "sleep")])
def test_a_crash_on_the_last_attempt_dead_letters_that_task_alone(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    kills: list[tuple[str, float]],
    fault: str,
    effect: str,
) -> None:
    cloud.fault_injection(True)
    (before,) = _submit(call_api)
    (doomed,) = _submit(call_api, fault=f"{fault}-attempts={ATTEMPT_BUDGET}")
    behind = _submit(call_api, 2)
    queue = [before, doomed, *behind]
    counts: dict[str, int] = {}

    # Every attempt of the doomed task ends the invocation: the whole batch comes back.
    for _ in range(ATTEMPT_BUDGET):
        with pytest.raises(SimulatedKill):
            run_processor(deliveries.batch(queue, counts))
    assert [kind for kind, _ in kills] == [effect] * ATTEMPT_BUDGET
    item = _item(cloud, doomed)
    assert (item["status"], item["attempts"]) == ("PROCESSING", ATTEMPT_BUDGET)
    for task_id in behind:  # received three times, never attempted
        assert _item(cloud, task_id)["attempts"] == 0

    # The next delivery dead-letters it without a fourth attempt; the batch goes on.
    assert run_processor(deliveries.batch(queue, counts)) == {"batchItemFailures": []}
    assert len(kills) == ATTEMPT_BUDGET
    item = _item(cloud, doomed)
    assert (item["status"], item["attempts"], item["failure_code"]) == (
        "FAILED",
        ATTEMPT_BUDGET,
        "interrupted",
    )
    assert _events(item)[-2:] == [("started", ATTEMPT_BUDGET), ("dead_lettered", ATTEMPT_BUDGET)]
    assert item["history"][-1]["receive_count"] == ATTEMPT_BUDGET + 1
    for task_id in behind:
        done = _item(cloud, task_id)
        assert (done["status"], done["attempts"], done["applied"]) == ("COMPLETED", 1, 1)
        assert done["receive_count"] == ATTEMPT_BUDGET + 1
    assert _item(cloud, before)["applied"] == 1  # delivered four times, applied once
    (dead,) = _dead_letters(cloud)
    assert (dead["task_id"], dead[DLQ_DETAIL_ATTRIBUTE]) == (doomed, "interrupted")
    assert _processed_order(cloud, [before, *behind]) == [before, *behind]


def test_timeout_outlives_the_invocation_on_the_first_attempt_only(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    kills: list[tuple[str, float]],
) -> None:
    task_id = _submit_faulty(cloud, call_api, "timeout")
    with pytest.raises(SimulatedKill):
        run_processor([deliveries.record(task_id)], context=FakeLambdaContext(remaining_ms=1500))
    # Sleeps through what is left of the invocation, and then some.
    assert kills == [("sleep", 1.5 + processor._TIMEOUT_OVERSHOOT_S)]
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"]) == ("PROCESSING", 1)

    assert run_processor([deliveries.record(task_id, 2)]) == {"batchItemFailures": []}
    assert len(kills) == 1
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"]) == ("COMPLETED", 2)
    assert _events(item) == [("started", 1), ("started", 2), ("completed", 2)]


def test_crash_mid_batch_and_the_redelivery_applies_nothing_twice(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    kills: list[tuple[str, float]],
) -> None:
    cloud.fault_injection(True)
    ids = _submit(call_api, 2) + _submit(call_api, fault="crash") + _submit(call_api, 2)
    with pytest.raises(SimulatedKill):
        run_processor([deliveries.record(task_id) for task_id in ids])
    assert kills == [("exit", 70.0)]
    done = {task_id: _item(cloud, task_id) for task_id in ids[:2]}
    assert all(item["status"] == "COMPLETED" for item in done.values())
    assert [_item(cloud, task_id)["status"] for task_id in ids[2:]] == [
        "PROCESSING",
        "QUEUED",
        "QUEUED",
    ]

    # A crash returns the whole batch to the queue: everything comes again.
    response = run_processor([deliveries.record(task_id, 2) for task_id in ids])

    assert response == {"batchItemFailures": []}
    for task_id, before in done.items():
        after = _item(cloud, task_id)
        assert after["processed_at"] == before["processed_at"]
        assert after["history"] == before["history"], "a duplicate appended to the history"
        assert (after["applied"], after["duplicate_deliveries"]) == (1, 1)
    assert all(_item(cloud, task_id)["applied"] == 1 for task_id in ids)
    assert _processed_order(cloud, ids) == ids


# --- duplicates ------------------------------------------------------------------------------


def test_a_redelivered_message_changes_nothing_but_the_duplicate_count(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    (task_id,) = _submit(call_api)
    run_processor([deliveries.record(task_id)])
    before = _item(cloud, task_id)

    again = sqs_record(
        task_message_body(before),
        message_id="another-delivery",
        receive_count=1,
        sequence_number="99999999999999999999",
    )
    assert run_processor([again]) == {"batchItemFailures": []}
    assert run_processor([deliveries.record(task_id, receive_count=2)]) == {"batchItemFailures": []}

    after = _item(cloud, task_id)
    assert after.pop("duplicate_deliveries") == 2
    before.pop("duplicate_deliveries")
    assert after == before  # history, attempts, message id, sequence number: unchanged


def test_a_duplicate_inside_one_batch_is_applied_once(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    (task_id,) = _submit(call_api)
    first = deliveries.record(task_id)
    copy = {**first, "messageId": "copy-of-first"}
    assert run_processor([first, copy]) == {"batchItemFailures": []}
    item = _item(cloud, task_id)
    assert (item["applied"], item["duplicate_deliveries"]) == (1, 1)
    assert item["message_id"] == first["messageId"]


def test_the_dead_lettered_delivery_coming_back_is_a_duplicate(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    for attempt in range(1, ATTEMPT_BUDGET + 1):
        run_processor([deliveries.record(task_id, attempt)])
    before = _item(cloud, task_id)
    assert before["status"] == "FAILED"

    # Its batch was handed back after it was dead-lettered (e.g. a later record crashed).
    assert run_processor([deliveries.record(task_id, ATTEMPT_BUDGET + 1)]) == {
        "batchItemFailures": []
    }
    after = _item(cloud, task_id)
    assert after.pop("duplicate_deliveries") == 1
    before.pop("duplicate_deliveries")
    assert after == before
    assert len(_dead_letters(cloud)) == 1, "forwarded to the DLQ twice"


def test_a_duplicate_of_a_completed_faulty_task_does_not_fail(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "fail-attempts=1")
    assert _failures(run_processor([deliveries.record(task_id, 1)]))
    run_processor([deliveries.record(task_id, 2)])
    assert _item(cloud, task_id)["status"] == "COMPLETED"
    assert run_processor([deliveries.record(task_id, 3)]) == {"batchItemFailures": []}
    assert _item(cloud, task_id)["duplicate_deliveries"] == 1


# --- poison goes straight to the dead-letter queue ----------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{this is not json", "malformed_json"),
        ('{"schema_version": 1, "task_id": "nope"}', "schema_violation"),
        ('["a", "list"]', "schema_violation"),
        ('{"schema_version": 99, "task_id": "x"}', "unknown_schema_version"),
    ],
)
def test_poison_is_forwarded_with_its_reason_and_not_retried(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    body: str,
    reason: str,
) -> None:
    (before,) = _submit(call_api)
    (after,) = _submit(call_api)
    poison = sqs_record(body, message_id="poison-1", sequence_number="18849496460467696999")
    batch = [deliveries.record(before), poison, deliveries.record(after)]

    assert run_processor(batch) == {"batchItemFailures": []}

    assert [_item(cloud, task_id)["status"] for task_id in (before, after)] == ["COMPLETED"] * 2
    (dead,) = cloud.receive(cloud.dlq_url)
    assert dead["Body"] == body
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes[DLQ_REASON_ATTRIBUTE] == reason
    assert attributes[DLQ_DETAIL_ATTRIBUTE]
    assert attributes[DLQ_SOURCE_MESSAGE_ID_ATTRIBUTE] == "poison-1"
    assert attributes[DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE] == "1"
    assert dead["Attributes"]["MessageGroupId"] == MESSAGE_GROUP_ID
    assert dead["Attributes"]["MessageDeduplicationId"] == "poison-1"


def test_poison_details_are_made_safe_for_message_attributes(
    cloud: Cloud, run_processor: RunProcessor
) -> None:
    body = json.dumps({"schema_version": 1, "task_id": "\u2603" * 2000})
    run_processor([sqs_record(body)])
    (dead,) = cloud.receive(cloud.dlq_url)
    detail = dead["MessageAttributes"][DLQ_DETAIL_ATTRIBUTE]["StringValue"]
    assert detail.isascii()
    assert len(detail) <= 1000


def test_poison_that_cannot_be_forwarded_is_retried(
    cloud: Cloud, run_processor: RunProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoDlq:
        def send_message(self, **kwargs: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")

    monkeypatch.setattr(processor, "sqs_client", NoDlq)
    processor.reset_dependencies()
    record = sqs_record("{not json")
    assert _failures(run_processor([record])) == [record["messageId"]]


# --- fault directives count real attempts -------------------------------------------------


def test_fail_attempts_fails_exactly_the_first_n_attempts(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "fail-attempts=2")
    (behind,) = _submit(call_api)
    counts: dict[str, int] = {}
    returned = [
        len(_failures(run_processor(deliveries.batch([task_id, behind], counts)))) for _ in range(3)
    ]
    assert returned == [2, 2, 0]
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"]) == ("COMPLETED", 3)
    assert _processed_order(cloud, [task_id, behind]) == [task_id, behind]


def test_a_directive_counts_attempts_not_receives(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    # Handed back untried behind a failing task, a fail-attempts=1 task still fails its
    # own first attempt, on its second receive.
    cloud.fault_injection(True)
    (first,) = _submit(call_api, fault="fail-attempts=1")
    (second,) = _submit(call_api, fault="fail-attempts=1")
    counts: dict[str, int] = {}
    run_processor(deliveries.batch([first, second], counts))
    response = run_processor(deliveries.batch([first, second], counts))
    assert len(_failures(response)) == 1, "the second task did not fail its first attempt"
    item = _item(cloud, second)
    assert (item["attempts"], item["receive_count"]) == (1, 2)
    assert item["history"][-1]["error_code"] == "injected_fault"


def test_a_fault_cleared_on_the_task_is_not_obeyed_even_if_the_message_carries_it(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    record = deliveries.record(task_id)
    assert json.loads(record["body"])["fault"] == "always-fail"
    cloud.dynamodb.update_item(
        TableName="tasks", Key={"task_id": {"S": task_id}}, UpdateExpression="REMOVE fault"
    )
    assert run_processor([record]) == {"batchItemFailures": []}
    assert _item(cloud, task_id)["status"] == "COMPLETED"


def test_a_failed_task_sent_back_from_the_dlq_gets_a_new_budget(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "fail-attempts=3")
    for attempt in range(1, ATTEMPT_BUDGET + 1):
        run_processor([deliveries.record(task_id, attempt)])
    assert _item(cloud, task_id)["status"] == "FAILED"

    # An operator sends it back: a new message (new id), received for the first time.
    (dead,) = cloud.receive(cloud.dlq_url)
    again = sqs_record(dead["Body"], message_id="replayed-1", sequence_number="99")
    assert run_processor([again]) == {"batchItemFailures": []}

    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"], item["applied"]) == ("COMPLETED", 4, 1)
    assert "failure_code" not in item
    assert _events(item)[-4:] == [
        ("dead_lettered", 3), ("redriven", 3), ("started", 4), ("completed", 4),
    ]  # fmt: skip


def test_an_always_failing_task_sent_back_fails_its_new_budget_again(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    for attempt in range(1, ATTEMPT_BUDGET + 1):
        run_processor([deliveries.record(task_id, attempt)])
    body = task_message_body(_item(cloud, task_id))
    for receive in range(1, ATTEMPT_BUDGET + 1):
        run_processor([sqs_record(body, message_id="replayed-2", receive_count=receive)])
    item = _item(cloud, task_id)
    assert (item["status"], item["attempts"]) == ("FAILED", 2 * ATTEMPT_BUDGET)


def test_with_fault_injection_off_the_processor_ignores_directives_in_messages(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    kills: list[tuple[str, float]],
) -> None:
    cloud.fault_injection(True)
    ids = [_submit(call_api, fault=fault)[0] for fault in ("always-fail", "crash", "timeout")]
    records = [deliveries.record(task_id) for task_id in ids]
    cloud.fault_injection(False)

    assert run_processor(records) == {"batchItemFailures": []}
    assert kills == []
    assert all(_item(cloud, task_id)["status"] == "COMPLETED" for task_id in ids)


def test_fault_injection_off_end_to_end_the_header_changes_nothing(
    cloud: Cloud, call_api: CallApi, drain: Drain, kills: list[tuple[str, float]]
) -> None:
    cloud.fault_injection(False)
    ids = [_submit(call_api, fault=fault)[0] for fault in ("always-fail", "crash", "explode")]
    records = drain()
    assert all("fault" not in json.loads(record["body"]) for record in records)
    assert kills == []
    for task_id in ids:
        item = _item(cloud, task_id)
        assert (item["status"], item["attempts"]) == ("COMPLETED", 1)
        assert "fault" not in item


# --- the ledger's start write -------------------------------------------------------------


def test_two_starts_of_the_same_attempt_cannot_both_win(cloud: Cloud, call_api: CallApi) -> None:
    (task_id,) = _submit(call_api)
    ledger = DynamoTaskLedger(cloud.dynamodb, "tasks", attempt_budget=ATTEMPT_BUDGET)
    facts = Attempt(Delivery("m-1", "{}", 1, None, MESSAGE_GROUP_ID, "inv-1"), "2026-01-01T00Z")

    first = ledger.start(task_id, previous=0, limit=None, attempt=facts, read_fault=False)
    second = ledger.start(task_id, previous=0, limit=None, attempt=facts, read_fault=False)

    assert first == Started(attempt=1, limit=ATTEMPT_BUDGET)
    assert isinstance(second, TaskState)
    assert (second.status, second.attempts, second.attempt_limit) == ("PROCESSING", 1, 3)


# --- metrics -----------------------------------------------------------------------------------


def _emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        blob = json.loads(line)
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "TaskApiTest"
        for metric in directive["Metrics"]:
            values[metric["Name"]] = values.get(metric["Name"], 0) + sum(blob[metric["Name"]])
    return values


def test_every_failed_record_is_counted_once_as_a_processing_failure(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud.fault_injection(True)
    done, failing = _submit(call_api), _submit(call_api, fault="always-fail")
    run_processor([deliveries.record(done[0])])
    capsys.readouterr()
    counts: dict[str, int] = {}
    for _ in range(ATTEMPT_BUDGET - 1):  # attempts that fail and are retried
        run_processor(deliveries.batch(failing, counts))
    run_processor(
        [deliveries.record(done[0]), sqs_record("{poison"), *deliveries.batch(failing, counts)]
    )
    values = _emitted(capsys)
    # Two retried attempts and the last one: three failed records, no Lambda error raised.
    assert values["ProcessingFailures"] == ATTEMPT_BUDGET
    assert values["TasksFailed"] == 1
    assert values["DuplicateDeliveries"] == 1
    assert values["PoisonMessages"] == 1


def test_a_healthy_task_behind_a_batch_of_crashing_tasks_is_attempted_before_the_redrive(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    kills: list[tuple[str, float]],
) -> None:
    # The worst case the redrive count must cover: every other task of the healthy one's
    # first batch crashes on each of its attempts (each crash hands the whole batch back).
    from cdk.config import PRODUCTION

    cloud.fault_injection(True)
    crashing = _submit(
        call_api, PRODUCTION.batch_size - 1, fault=f"crash-attempts={ATTEMPT_BUDGET}"
    )
    (healthy,) = _submit(call_api)
    queue = [*crashing, healthy]
    counts: dict[str, int] = {}
    while _item(cloud, healthy)["status"] != "COMPLETED":
        assert counts.get(healthy, 0) < PRODUCTION.max_receive_count, (
            "the queue would have redriven the healthy task before its attempt"
        )
        batch = deliveries.batch(queue, counts)
        try:
            failed = set(_failures(run_processor(batch)))
        except SimulatedKill:
            continue
        queue = [t for t, record in zip(queue, batch, strict=True) if record["messageId"] in failed]
    assert counts[healthy] == (PRODUCTION.batch_size - 1) * ATTEMPT_BUDGET + 1
    assert len(kills) == (PRODUCTION.batch_size - 1) * ATTEMPT_BUDGET
    assert all(_item(cloud, t)["failure_code"] == "interrupted" for t in crashing)
