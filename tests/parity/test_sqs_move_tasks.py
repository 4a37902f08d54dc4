"""Dead-letter queue redrive: StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask.

Replays of the AWS-validated cases of LocalStack's ``tests/aws/services/sqs/
test_sqs_move_task.py`` (recorded answers in ``test_sqs_move_task.snapshot.json``; every
case there was last validated against AWS on 2024-04-30). The recordings speak JSON only.
Where they poll (``retry(..., sleep=1)``), this replay moves the virtual clock a second per
poll, a bounded number of times.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.parity.backends import Sqs
from tests.parity.expect import ANY_INT, Error, answer, invalid_parameter_value, ok

pytestmark = pytest.mark.protocols("json")


def recorded(name: str) -> pytest.MarkDecorator:
    return pytest.mark.aws_recording(
        name, validated="2024-04-30", source="tests/aws/services/sqs/test_sqs_move_task.py"
    )


def dlq_pipe(sqs: Sqs, max_receive_count: int = 1) -> tuple[str, str]:
    """A queue whose redrive policy sends to a fresh dead-letter queue: (queue, dlq)."""
    dlq = sqs.create_queue()
    policy = json.dumps({"deadLetterTargetArn": sqs.arn(dlq), "maxReceiveCount": max_receive_count})
    return sqs.create_queue(RedrivePolicy=policy), dlq


def dead_letter(sqs: Sqs, queue: str, dlq: str, bodies: list[str]) -> None:
    """Send ``bodies`` and receive each twice, so maxReceiveCount 1 moves them to ``dlq``."""
    for body in bodies:
        sqs.client.send_message(QueueUrl=queue, MessageBody=body)
    for _ in range(2 * len(bodies)):
        sqs.client.receive_message(QueueUrl=queue, VisibilityTimeout=0)
    depth = sqs.client.get_queue_attributes(
        QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == str(len(bodies))


def poll(sqs: Sqs, probe: Callable[[], Any], what: str, seconds: int = 30) -> Any:
    """The recording's retry(probe, retries=30, sleep=1), on the virtual clock."""
    for _ in range(seconds):
        found = probe()
        if found:
            return found
        sqs.sleep(1)
    raise AssertionError(f"{what}: not seen within {seconds} virtual seconds")


def collect(sqs: Sqs, queue: str, expected: int) -> list[dict[str, Any]]:
    """The recordings' sqs_collect_messages: receive (and delete) until ``expected`` arrived."""
    messages: list[dict[str, Any]] = []

    def more() -> bool:
        response = sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        for message in response.get("Messages", []):
            messages.append(message)
            sqs.client.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return len(messages) >= expected

    poll(sqs, more, f"{expected} messages in {queue}", seconds=60)
    return messages


def task_handle_names(handle: str, source_arn: str) -> None:
    """What the recording checks of a handle: base64 JSON of a UUID task id and the source."""
    document = json.loads(base64.b64decode(handle))
    assert uuid.UUID(document["taskId"]), document
    assert document["sourceArn"] == source_arn, document


ARN = "arn:<partition>:sqs:<region>:<account>:<resource:{}>"


@recorded("test_cancel_with_invalid_task_handle")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_cancel_with_invalid_task_handle(sqs: Sqs) -> None:
    error = answer(lambda: sqs.client.cancel_message_move_task(TaskHandle="foobared"))
    sqs.expect(
        "error",
        error,
        invalid_parameter_value("Value for parameter TaskHandle is invalid.").on("json"),
    )


def _handle(task_id: str, source_arn: str) -> str:
    document = f'{{"taskId":"{task_id}","sourceArn":"{source_arn}"}}'
    return base64.b64encode(document.encode()).decode()


def _not_found(message: str) -> dict[str, Any]:
    error = Error("ResourceNotFoundException", message, "ResourceNotFoundException", 404, True)
    return error.on("json")


@recorded("test_cancel_with_invalid_source_arn_in_task_handle")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_cancel_with_invalid_source_arn_in_task_handle(sqs: Sqs) -> None:
    source_arn = "arn:aws:sqs:us-east-1:878966065785:test-queue-doesnt-exist-123456"
    handle = _handle("10f57157-fc38-4da9-a113-4de7e12d05dd", source_arn)
    error = answer(lambda: sqs.client.cancel_message_move_task(TaskHandle=handle))
    sqs.expect(
        "error",
        error,
        _not_found("The resource that you specified for the SourceArn parameter doesn't exist."),
    )


@recorded("test_cancel_with_invalid_task_id_in_task_handle")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_cancel_with_invalid_task_id_in_task_handle(sqs: Sqs) -> None:
    source_arn = sqs.arn(sqs.create_queue())
    handle = _handle("10f57157-fc38-4da9-a113-4de7e12d05aa", source_arn)
    error = answer(lambda: sqs.client.cancel_message_move_task(TaskHandle=handle))
    sqs.expect("error", error, _not_found("Task does not exist."))


@recorded("test_source_needs_redrive_policy")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_source_needs_redrive_policy(sqs: Sqs) -> None:
    source_arn = sqs.arn(sqs.create_queue())
    destination_arn = sqs.arn(sqs.create_queue())
    error = answer(
        lambda: sqs.client.start_message_move_task(
            SourceArn=source_arn, DestinationArn=destination_arn
        )
    )
    sqs.expect(
        "error",
        error,
        invalid_parameter_value("Source queue must be configured as a Dead Letter Queue.").on(
            "json"
        ),
    )


@recorded("test_destination_needs_to_exist")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_destination_needs_to_exist(sqs: Sqs) -> None:
    _, dlq = dlq_pipe(sqs)
    destination_arn = sqs.arn(sqs.create_queue()) + "doesntexist"
    error = answer(
        lambda: sqs.client.start_message_move_task(
            SourceArn=sqs.arn(dlq), DestinationArn=destination_arn
        )
    )
    sqs.expect(
        "error",
        error,
        _not_found(
            "The resource that you specified for the DestinationArn parameter doesn't exist."
        ),
    )


def _completed(sqs: Sqs, source_arn: str, moved: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        response = answer(lambda: sqs.client.list_message_move_tasks(SourceArn=source_arn))
        results = response.get("Results") or [{}]
        return response if results[0].get("ApproximateNumberOfMessagesMoved") == moved else None

    found: dict[str, Any] = poll(sqs, done, f"the move task to have moved {moved}")
    return found


@recorded("test_basic_move_task_workflow")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_basic_move_task_workflow(sqs: Sqs) -> None:
    queue, dlq = dlq_pipe(sqs)
    source_arn = sqs.arn(dlq)
    destination = sqs.create_queue()
    destination_arn = sqs.arn(destination)
    dead_letter(sqs, queue, dlq, ["message-1", "message-2"])
    started = answer(
        lambda: sqs.client.start_message_move_task(
            SourceArn=source_arn, DestinationArn=destination_arn
        )
    )
    sqs.expect("start-message-move-task-response", started, ok(TaskHandle="<task-handle:1>"))
    task_handle_names(started["TaskHandle"], source_arn)
    assert sorted(m["Body"] for m in collect(sqs, destination, 2)) == ["message-1", "message-2"]
    sqs.expect(
        "list-message-move-task-response",
        _completed(sqs, source_arn, 2),
        ok(
            Results=[
                {
                    "ApproximateNumberOfMessagesMoved": 2,
                    "ApproximateNumberOfMessagesToMove": 2,
                    "DestinationArn": ARN.format(1),
                    "SourceArn": ARN.format(2),
                    "StartedTimestamp": "<timestamp-ms>",
                    "Status": "COMPLETED",
                }
            ]
        ),
    )
    assert not sqs.client.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages")


@recorded("test_move_task_workflow_with_default_destination")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_move_task_workflow_with_default_destination(sqs: Sqs) -> None:
    queue, dlq = dlq_pipe(sqs)
    source_arn = sqs.arn(dlq)
    sqs.expect("source-arn", source_arn, ARN.format(1))
    sqs.expect("original-source", sqs.arn(queue), ARN.format(2))
    dead_letter(sqs, queue, dlq, ["message-1", "message-2"])
    started = answer(lambda: sqs.client.start_message_move_task(SourceArn=source_arn))
    sqs.expect("start-message-move-task-response", started, ok(TaskHandle="<task-handle:1>"))
    task_handle_names(started["TaskHandle"], source_arn)
    assert sorted(m["Body"] for m in collect(sqs, queue, 2)) == ["message-1", "message-2"]
    sqs.expect(
        "list-message-move-task-response",
        _completed(sqs, source_arn, 2),
        ok(
            Results=[
                {
                    "ApproximateNumberOfMessagesMoved": 2,
                    "ApproximateNumberOfMessagesToMove": 2,
                    "SourceArn": ARN.format(1),
                    "StartedTimestamp": "<timestamp-ms>",
                    "Status": "COMPLETED",
                }
            ]
        ),
    )
    assert not sqs.client.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages")


@recorded("test_move_task_workflow_with_multiple_sources_as_default_destination")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_move_task_workflow_with_multiple_sources_as_default_destination(sqs: Sqs) -> None:
    queue1, dlq = dlq_pipe(sqs)
    source_arn = sqs.arn(dlq)
    policy = json.dumps({"deadLetterTargetArn": source_arn, "maxReceiveCount": 1})
    queue2 = sqs.create_queue(RedrivePolicy=policy)
    sqs.expect("source-arn", source_arn, ARN.format(1))
    sqs.expect("original-source-1", sqs.arn(queue1), ARN.format(2))
    sqs.expect("original-source-2", sqs.arn(queue2), ARN.format(3))
    for queue, bodies in (
        (queue1, ["message-1-1", "message-1-2"]),
        (queue2, ["message-2-1", "message-2-2"]),
    ):
        for body in bodies:
            sqs.client.send_message(QueueUrl=queue, MessageBody=body)
    for queue in (queue1, queue2):
        for _ in range(4):
            sqs.client.receive_message(QueueUrl=queue, VisibilityTimeout=0)
    started = answer(lambda: sqs.client.start_message_move_task(SourceArn=source_arn))
    sqs.expect("start-message-move-task-response", started, ok(TaskHandle="<task-handle:1>"))
    assert sorted(m["Body"] for m in collect(sqs, queue1, 2)) == ["message-1-1", "message-1-2"]
    assert sorted(m["Body"] for m in collect(sqs, queue2, 2)) == ["message-2-1", "message-2-2"]
    sqs.expect(
        "list-message-move-task-response",
        _completed(sqs, source_arn, 4),
        ok(
            Results=[
                {
                    "ApproximateNumberOfMessagesMoved": 4,
                    "ApproximateNumberOfMessagesToMove": 4,
                    "SourceArn": ARN.format(1),
                    "StartedTimestamp": "<timestamp-ms>",
                    "Status": "COMPLETED",
                }
            ]
        ),
    )
    assert not sqs.client.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages")


def _ten_dead_lettered(sqs: Sqs) -> tuple[str, str, str, str]:
    queue, dlq = dlq_pipe(sqs)
    destination = sqs.create_queue()
    dead_letter(sqs, queue, dlq, [f"message-{i}" for i in range(10)])
    return queue, dlq, destination, sqs.arn(destination)


@recorded("test_move_task_with_throughput_limit")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_move_task_with_throughput_limit(sqs: Sqs) -> None:
    queue, dlq = dlq_pipe(sqs)
    destination = sqs.create_queue()
    dead_letter(sqs, queue, dlq, [f"message-{i}" for i in range(4)])
    slept_before = sqs.slept
    started = answer(
        lambda: sqs.client.start_message_move_task(
            SourceArn=sqs.arn(dlq),
            DestinationArn=sqs.arn(destination),
            MaxNumberOfMessagesPerSecond=1,
        )
    )
    sqs.expect("start-message-move-task-response", started, ok(TaskHandle="<task-handle:1>"))
    bodies = sorted(m["Body"] for m in collect(sqs, destination, 4))
    assert bodies == ["message-0", "message-1", "message-2", "message-3"]
    # At one message per second, four take at least three seconds.
    assert sqs.slept - slept_before >= 3


@recorded("test_move_task_cancel")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_move_task_cancel(sqs: Sqs) -> None:
    _, dlq, destination, destination_arn = _ten_dead_lettered(sqs)
    source_arn = sqs.arn(dlq)
    started = sqs.client.start_message_move_task(
        SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1
    )
    assert len(collect(sqs, destination, 2)) == 2
    task = {
        "ApproximateNumberOfMessagesMoved": 2,
        "ApproximateNumberOfMessagesToMove": 10,
        "DestinationArn": ARN.format(1),
        "MaxNumberOfMessagesPerSecond": 1,
        "SourceArn": ARN.format(2),
        "StartedTimestamp": "<timestamp-ms>",
        "Status": "RUNNING",
        "TaskHandle": "<task-handle:1>",
    }
    sqs.expect(
        "list-while",
        answer(lambda: sqs.client.list_message_move_tasks(SourceArn=source_arn)),
        ok(Results=[task]),
    )
    cancelled = answer(
        lambda: sqs.client.cancel_message_move_task(TaskHandle=started["TaskHandle"])
    )
    sqs.expect("cancel", cancelled, ok(ApproximateNumberOfMessagesMoved=2))

    def cancelled_task() -> dict[str, Any] | None:
        response = answer(lambda: sqs.client.list_message_move_tasks(SourceArn=source_arn))
        return response if response["Results"][0]["Status"] == "CANCELLED" else None

    after = poll(sqs, cancelled_task, "the task to be CANCELLED")
    # The count after the cancel is marked non-deterministic by the recording's test.
    del task["TaskHandle"]
    sqs.expect(
        "list-after",
        after,
        ok(Results=[{**task, "Status": "CANCELLED", "ApproximateNumberOfMessagesMoved": ANY_INT}]),
    )
    assert sqs.client.receive_message(QueueUrl=dlq)["Messages"]


@recorded("test_move_task_delete_destination_queue_while_running")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_move_task_delete_destination_queue_while_running(sqs: Sqs) -> None:
    _, dlq, destination, destination_arn = _ten_dead_lettered(sqs)
    source_arn = sqs.arn(dlq)
    sqs.client.start_message_move_task(
        SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1
    )
    sqs.client.delete_queue(QueueUrl=destination)

    def finished() -> dict[str, Any] | None:
        response = answer(lambda: sqs.client.list_message_move_tasks(SourceArn=source_arn))
        return response if response["Results"][0]["Status"] != "RUNNING" else None

    sqs.expect(
        "list",
        poll(sqs, finished, "the task to stop running"),
        ok(
            Results=[
                {
                    # Marked non-deterministic by the recording's test.
                    "ApproximateNumberOfMessagesMoved": ANY_INT,
                    "ApproximateNumberOfMessagesToMove": 10,
                    "DestinationArn": ARN.format(1),
                    "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
                    "MaxNumberOfMessagesPerSecond": 1,
                    "SourceArn": ARN.format(2),
                    "StartedTimestamp": "<timestamp-ms>",
                    "Status": "FAILED",
                }
            ]
        ),
    )
    assert sqs.client.receive_message(QueueUrl=dlq)["Messages"]


@recorded("test_start_multiple_move_tasks")
@pytest.mark.moto_differs("message move tasks are not implemented (500)")
def test_start_multiple_move_tasks(sqs: Sqs) -> None:
    _, dlq, _, destination_arn = _ten_dead_lettered(sqs)
    source_arn = sqs.arn(dlq)
    sqs.client.start_message_move_task(
        SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1
    )
    error = answer(
        lambda: sqs.client.start_message_move_task(
            SourceArn=source_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1
        )
    )
    sqs.expect(
        "error",
        error,
        invalid_parameter_value(
            "There is already a task running. Only one active task is allowed for a source queue "
            "arn at a given time."
        ).on("json"),
    )
