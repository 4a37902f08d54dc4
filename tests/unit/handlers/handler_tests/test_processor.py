"""``handlers.processor.handler`` with SQS FIFO events against the mocked table and queues."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from handlers import processor
from handlers.adapters.dynamodb import DynamoTaskTable
from handlers.domain.constants import (
    DLQ_DETAIL_ATTRIBUTE,
    DLQ_REASON_ATTRIBUTE,
    DLQ_SOURCE_MESSAGE_ID_ATTRIBUTE,
    DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE,
    MESSAGE_GROUP_ID,
)
from handlers.domain.messages import task_message_body

from .conftest import MAX_RECEIVE_COUNT, CallApi, Cloud, RunProcessor, valid_task
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


def _returned(run_processor: RunProcessor, batch: list[dict[str, Any]]) -> list[str]:
    """Message ids that go back to the queue: the reported items, or the whole batch when
    the invocation fails (powertools raises when every record failed)."""
    try:
        response = run_processor(batch)
    except BatchProcessingError:
        return [record["messageId"] for record in batch]
    return _failures(response)


def _item(cloud: Cloud, task_id: str) -> dict[str, Any]:
    item = cloud.item(task_id)
    assert item is not None, f"task {task_id} is not stored"
    return item


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


# --- completing tasks in order ----------------------------------------------------------------


def test_a_batch_completes_every_task_in_order_and_records_the_delivery(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    ids = _submit(call_api, 4)
    records = [deliveries.record(task_id) for task_id in ids]

    response = run_processor(records)

    assert response == {"batchItemFailures": []}
    for task_id, record in zip(ids, records, strict=True):
        item = _item(cloud, task_id)
        assert item["status"] == "COMPLETED"
        assert item["attempts"] == 1
        assert item["message_id"] == record["messageId"]
        assert item["sequence_number"] == record["attributes"]["SequenceNumber"]
        assert item["processed_at"] == item["updated_at"] > item["created_at"]
        assert item["applied"] == 1
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


def test_a_message_whose_record_is_missing_still_completes_the_whole_task(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    (task_id,) = _submit(call_api)
    record = deliveries.record(task_id)
    original = _item(cloud, task_id)
    cloud.dynamodb.delete_item(TableName="tasks", Key={"task_id": {"S": task_id}})

    assert run_processor([record]) == {"batchItemFailures": []}

    item = _item(cloud, task_id)
    assert item["status"] == "COMPLETED"
    for key in ("title", "description", "priority", "due_date", "created_at"):
        assert item[key] == original[key]


# --- partial failures keep the order ------------------------------------------------------


def test_the_first_failure_and_everything_after_it_are_reported(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    cloud.fault_injection(True)
    first = _submit(call_api)
    failing = _submit(call_api, fault="fail-attempts=1")
    rest = _submit(call_api, 2)
    batch = [deliveries.record(task_id) for task_id in first + failing + rest]

    response = run_processor(batch)

    assert _failures(response) == [record["messageId"] for record in batch[1:]]
    assert _item(cloud, first[0])["status"] == "COMPLETED"
    failed = _item(cloud, failing[0])
    assert failed["status"] == "PROCESSING"
    assert failed["attempts"] == 1
    assert "injected fault fail-attempts=1 on attempt 1" in failed["last_error"]
    for task_id in rest:  # never attempted: untouched
        assert _item(cloud, task_id)["status"] == "QUEUED"

    # The queue redelivers the reported records, in order, with a higher receive count.
    retry = [deliveries.record(task_id, receive_count=2) for task_id in failing + rest]
    assert run_processor(retry) == {"batchItemFailures": []}

    all_ids = first + failing + rest
    assert _processed_order(cloud, all_ids) == all_ids
    assert _item(cloud, failing[0])["attempts"] == 2
    assert [_item(cloud, task_id)["attempts"] for task_id in rest] == [2, 2]


def test_an_infrastructure_error_is_a_retryable_failure(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _submit(call_api, 3)
    real_complete = DynamoTaskTable.complete

    def throttled(self: DynamoTaskTable, message: Any, attempt: Any) -> bool:
        if message.task_id == ids[1]:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "UpdateItem",
            )
        return real_complete(self, message, attempt)

    monkeypatch.setattr(DynamoTaskTable, "complete", throttled)
    batch = [deliveries.record(task_id) for task_id in ids]
    response = run_processor(batch)

    assert _failures(response) == [record["messageId"] for record in batch[1:]]
    assert _item(cloud, ids[0])["status"] == "COMPLETED"
    item = _item(cloud, ids[1])
    assert item["status"] == "PROCESSING"
    assert "ProvisionedThroughputExceeded" in item["last_error"]


def test_a_batch_whose_every_record_fails_is_a_function_error(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    # Powertools raises when nothing succeeded: the whole batch goes back, as AWS does
    # for a function error, and the failure shows in the Lambda Errors metric.
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    with pytest.raises(BatchProcessingError):
        run_processor([deliveries.record(task_id)])
    assert _item(cloud, task_id)["status"] == "PROCESSING"


# --- the last attempt -------------------------------------------------------------------------


def test_a_task_that_always_fails_is_dead_lettered_on_the_last_attempt_and_the_batch_goes_on(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    (behind,) = _submit(call_api)

    for attempt in range(1, MAX_RECEIVE_COUNT):
        batch = [deliveries.record(task_id, attempt), deliveries.record(behind, attempt)]
        assert _returned(run_processor, batch) == [record["messageId"] for record in batch]
        item = _item(cloud, task_id)
        assert (item["attempts"], item["status"]) == (attempt, "PROCESSING"), item

    # The last attempt: the processor forwards the task to the DLQ itself, so the task
    # behind it (received just as often) is processed instead of being redriven with it.
    last = [
        deliveries.record(task_id, MAX_RECEIVE_COUNT),
        deliveries.record(behind, MAX_RECEIVE_COUNT),
    ]
    assert _returned(run_processor, last) == []
    item = _item(cloud, task_id)
    assert (item["attempts"], item["status"]) == (MAX_RECEIVE_COUNT, "FAILED"), item
    assert "always-fail" in item["last_error"]
    assert _item(cloud, behind)["status"] == "COMPLETED"
    (dead,) = cloud.receive(cloud.dlq_url)
    assert json.loads(dead["Body"])["task_id"] == task_id
    attributes = {name: value["StringValue"] for name, value in dead["MessageAttributes"].items()}
    assert attributes[DLQ_REASON_ATTRIBUTE] == "attempts_exhausted"
    assert attributes[DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE] == str(MAX_RECEIVE_COUNT)


def test_a_real_failure_on_the_last_attempt_marks_the_task_failed(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (task_id,) = _submit(call_api)

    def broken(self: DynamoTaskTable, message: Any, attempt: Any) -> bool:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")

    monkeypatch.setattr(DynamoTaskTable, "complete", broken)
    with pytest.raises(BatchProcessingError):
        run_processor([deliveries.record(task_id, receive_count=MAX_RECEIVE_COUNT - 1)])
    assert run_processor([deliveries.record(task_id, receive_count=MAX_RECEIVE_COUNT)]) == {
        "batchItemFailures": []
    }
    item = _item(cloud, task_id)
    assert item["status"] == "FAILED"
    assert "InternalServerError" in item["last_error"]
    (dead,) = cloud.receive(cloud.dlq_url)
    assert json.loads(dead["Body"])["task_id"] == task_id


def test_with_the_real_queue_a_failing_task_ends_failed_and_in_the_dlq(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    task_id = _submit_faulty_to_the_real_queue(cloud, call_api, "always-fail")

    for attempt in range(1, MAX_RECEIVE_COUNT):
        with pytest.raises(BatchProcessingError):
            drain()
        assert _item(cloud, task_id)["attempts"] == attempt

    drain()  # the last attempt forwards it to the dead-letter queue
    assert _item(cloud, task_id)["status"] == "FAILED"
    assert drain() == []
    (dead,) = cloud.receive(cloud.dlq_url)
    assert json.loads(dead["Body"])["task_id"] == task_id


def test_with_the_real_queue_a_task_failing_twice_completes_on_attempt_3(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    task_id = _submit_faulty_to_the_real_queue(cloud, call_api, "fail-attempts=2")
    for _ in range(2):
        with pytest.raises(BatchProcessingError):
            drain()
    drain()
    item = _item(cloud, task_id)
    assert item["status"] == "COMPLETED"
    assert item["attempts"] == 3
    assert cloud.receive() == []
    assert cloud.receive(cloud.dlq_url) == []


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
    assert after == before  # processed_at, attempts, message id, sequence number: unchanged


def test_a_duplicate_inside_one_batch_is_applied_once(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    (task_id,) = _submit(call_api)
    first = deliveries.record(task_id)
    copy = {**first, "messageId": "copy-of-first"}
    assert run_processor([first, copy]) == {"batchItemFailures": []}
    item = _item(cloud, task_id)
    assert item["applied"] == 1
    assert item["duplicate_deliveries"] == 1
    assert item["message_id"] == first["messageId"]


def test_a_duplicate_of_a_completed_faulty_task_does_not_fail(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "fail-attempts=1")
    run_processor([deliveries.record(task_id, 2)])
    assert _item(cloud, task_id)["status"] == "COMPLETED"
    assert run_processor([deliveries.record(task_id, 1)]) == {"batchItemFailures": []}
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
    with pytest.raises(BatchProcessingError):
        run_processor([sqs_record("{not json")])


# --- fault directives ------------------------------------------------------------------------


def test_fail_attempts_fails_exactly_the_first_n_attempts(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "fail-attempts=2")
    (behind,) = _submit(call_api)
    returned = [
        len(
            _returned(
                run_processor,
                [deliveries.record(task_id, attempt), deliveries.record(behind, attempt)],
            )
        )
        for attempt in (1, 2, 3)
    ]
    assert returned == [2, 2, 0]
    item = _item(cloud, task_id)
    assert item["status"] == "COMPLETED"
    assert item["attempts"] == 3
    assert _processed_order(cloud, [task_id, behind]) == [task_id, behind]


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
    assert item["status"] == "PROCESSING"
    assert item["attempts"] == 1

    assert run_processor([deliveries.record(task_id, 2)]) == {"batchItemFailures": []}
    assert len(kills) == 1
    assert _item(cloud, task_id)["status"] == "COMPLETED"


def test_crash_ends_the_process_mid_batch_and_the_redelivery_applies_nothing_twice(
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
        assert after["applied"] == 1
        assert after["duplicate_deliveries"] == 1
    assert all(_item(cloud, task_id)["applied"] == 1 for task_id in ids)
    assert _processed_order(cloud, ids) == ids


@pytest.mark.parametrize(
    ("directive", "effect"), [("timeout-attempts=3", "sleep"), ("crash-attempts=3", "exit")]
)
def test_a_fatal_fault_on_the_last_attempt_marks_the_task_failed_first(
    cloud: Cloud,
    call_api: CallApi,
    run_processor: RunProcessor,
    deliveries: Deliveries,
    kills: list[tuple[str, float]],
    directive: str,
    effect: str,
) -> None:
    task_id = _submit_faulty(cloud, call_api, directive)
    with pytest.raises(SimulatedKill):
        run_processor([deliveries.record(task_id, MAX_RECEIVE_COUNT)])
    assert kills[0][0] == effect
    item = _item(cloud, task_id)
    assert item["status"] == "FAILED"
    assert directive in item["last_error"]


def test_a_fault_cleared_on_the_task_is_not_obeyed_even_if_the_message_carries_it(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "always-fail")
    record = deliveries.record(task_id, MAX_RECEIVE_COUNT)
    assert json.loads(record["body"])["fault"] == "always-fail"
    cloud.dynamodb.update_item(
        TableName="tasks", Key={"task_id": {"S": task_id}}, UpdateExpression="REMOVE fault"
    )
    # e.g. an operator redrives it from the dead-letter queue: a fresh receive count.
    assert run_processor(
        [{**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": "1"}}]
    ) == {"batchItemFailures": []}
    assert _item(cloud, task_id)["status"] == "COMPLETED"


def test_a_failed_task_redriven_from_the_dlq_can_complete(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor, deliveries: Deliveries
) -> None:
    task_id = _submit_faulty(cloud, call_api, "fail-attempts=3")
    for attempt in (1, 2):
        with pytest.raises(BatchProcessingError):
            run_processor([deliveries.record(task_id, attempt)])
    # The last attempt dead-letters it (handled, so nothing is reported back).
    assert run_processor([deliveries.record(task_id, 3)]) == {"batchItemFailures": []}
    assert _item(cloud, task_id)["status"] == "FAILED"
    # Redriven, the message starts counting again; attempt 4 of the task is past N=3.
    assert run_processor([deliveries.record(task_id, 4)]) == {"batchItemFailures": []}
    assert _item(cloud, task_id)["status"] == "COMPLETED"


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
        assert item["status"] == "COMPLETED"
        assert item["attempts"] == 1
        assert "fault" not in item


# --- metrics -----------------------------------------------------------------------------------


def test_outcomes_are_published_as_emf_metrics(
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
    run_processor(
        [
            deliveries.record(done[0]),
            sqs_record("{poison"),
            deliveries.record(failing[0], MAX_RECEIVE_COUNT),
        ]
    )
    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"')
    ]
    values: dict[str, float] = {}
    for blob in emitted:
        for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values[metric["Name"]] = sum(blob[metric["Name"]])
    assert values["DuplicateDeliveries"] == 1
    assert values["PoisonMessages"] == 1
    assert values["ProcessingFailures"] == 1
    assert values["TasksFailed"] == 1
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TaskApiTest"
