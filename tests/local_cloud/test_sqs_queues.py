"""Queues: the attributes CloudFormation/CDK set, counters, errors, dead-letter redrive and
the redrive API (StartMessageMoveTask). Each runs on our endpoint and on plain moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.sqs.testing import SqsBackend, error_of


def receive(backend: SqsBackend, queue: str, **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("MaxNumberOfMessages", 10)
    response = backend.sqs.receive_message(
        QueueUrl=queue, MessageSystemAttributeNames=["All"], **kwargs
    )
    return list(response.get("Messages", []))


def attributes(backend: SqsBackend, queue: str, *names: str) -> dict[str, str]:
    response = backend.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=list(names))
    return dict(response.get("Attributes", {}))


def with_dlq(backend: SqsBackend, *, fifo: bool = True, max_receive: int = 2) -> tuple[str, str]:
    """A source queue (visibility 1 s) whose RedrivePolicy points at a new DLQ."""
    dlq = backend.queue(fifo=fifo)
    policy = {"deadLetterTargetArn": backend.arn(dlq), "maxReceiveCount": max_receive}
    source = backend.queue(fifo=fifo, VisibilityTimeout=1, RedrivePolicy=json.dumps(policy))
    return source, dlq


# -- attributes ---------------------------------------------------------------------------


@pytest.mark.moto_differs("RedriveAllowPolicy is dropped")
def test_the_attributes_cloudformation_sets_are_accepted_and_returned(
    sqs_backend: SqsBackend,
) -> None:
    dlq = sqs_backend.queue()
    redrive = json.dumps({"deadLetterTargetArn": sqs_backend.arn(dlq), "maxReceiveCount": 3})
    allow = json.dumps({"redrivePermission": "allowAll"})
    queue = sqs_backend.queue(
        VisibilityTimeout=300,
        MessageRetentionPeriod=345600,
        RedrivePolicy=redrive,
        SqsManagedSseEnabled="true",
        DeduplicationScope="queue",
        FifoThroughputLimit="perQueue",
        RedriveAllowPolicy=allow,
    )
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "sqs:SendMessage",
                    "Resource": sqs_backend.arn(queue),
                }
            ],
        }
    )
    sqs_backend.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": policy})
    sqs_backend.sqs.tag_queue(QueueUrl=queue, Tags={"ephemeral": "true"})

    got = attributes(sqs_backend, queue, "All")

    assert got["FifoQueue"] == "true"
    assert got["ContentBasedDeduplication"] == "true"
    assert got["VisibilityTimeout"] == "300"
    assert got["MessageRetentionPeriod"] == "345600"
    assert json.loads(got["RedrivePolicy"]) == json.loads(redrive)
    assert json.loads(got["RedriveAllowPolicy"]) == json.loads(allow)
    assert json.loads(got["Policy"]) == json.loads(policy)
    assert got["SqsManagedSseEnabled"] == "true"
    assert got["QueueArn"] == f"arn:aws:sqs:us-east-1:123456789012:{queue.rsplit('/', 1)[1]}"
    assert sqs_backend.sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"ephemeral": "true"}


def test_kms_and_tags_at_creation(sqs_backend: SqsBackend) -> None:
    name = "kms-" + sqs_backend.arn(sqs_backend.queue(fifo=False)).rsplit(":", 1)[1]
    url = sqs_backend.sqs.create_queue(
        QueueName=name,
        Attributes={"KmsMasterKeyId": "alias/aws/sqs"},
        tags={"team": "tasks"},
    )["QueueUrl"]

    assert attributes(sqs_backend, url, "KmsMasterKeyId")["KmsMasterKeyId"] == "alias/aws/sqs"
    assert sqs_backend.sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "tasks"}


def test_message_counters(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    delayed = sqs_backend.queue(fifo=False, DelaySeconds=60)
    for body in ("a", "b", "c"):
        sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody=body)
    sqs_backend.sqs.send_message(QueueUrl=delayed, MessageBody="later")
    receive(sqs_backend, queue, MaxNumberOfMessages=1)

    counts = attributes(
        sqs_backend,
        queue,
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    assert counts == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "ApproximateNumberOfMessagesDelayed": "0",
    }
    assert attributes(sqs_backend, delayed, "ApproximateNumberOfMessagesDelayed") == {
        "ApproximateNumberOfMessagesDelayed": "1"
    }
    assert receive(sqs_backend, delayed) == []


# -- errors -------------------------------------------------------------------------------


def test_a_missing_queue(sqs_backend: SqsBackend) -> None:
    error = error_of(lambda: sqs_backend.sqs.get_queue_url(QueueName="no-such-queue"))

    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["Message"] == "The specified queue does not exist."
    with pytest.raises(sqs_backend.sqs.exceptions.QueueDoesNotExist):
        sqs_backend.sqs.get_queue_url(QueueName="no-such-queue")


@pytest.mark.moto_differs("the message does not name the differing attribute")
def test_creating_an_existing_queue_with_other_attributes_fails(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False, VisibilityTimeout=30)
    name = queue.rsplit("/", 1)[1]
    again = sqs_backend.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})
    assert again["QueueUrl"] == queue

    error = error_of(
        lambda: sqs_backend.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})
    )

    assert error["Code"] == "QueueAlreadyExists"
    assert error["Message"] == (
        "A queue already exists with the same name and a different value for attribute "
        "VisibilityTimeout"
    )


@pytest.mark.moto_differs("out-of-range attribute values are accepted")
def test_an_out_of_range_attribute_is_rejected(sqs_backend: SqsBackend) -> None:
    error = error_of(lambda: sqs_backend.queue(fifo=False, VisibilityTimeout=43201))

    assert error["Code"] == "InvalidAttributeValue"
    assert error["Message"] == "Invalid value for the parameter VisibilityTimeout."


def test_a_fifo_queue_name_must_end_in_fifo(sqs_backend: SqsBackend) -> None:
    error = error_of(
        lambda: sqs_backend.sqs.create_queue(
            QueueName="no-suffix", Attributes={"FifoQueue": "true"}
        )
    )

    assert error["Code"] == "InvalidParameterValue"


# -- dead-letter queues -------------------------------------------------------------------


@pytest.mark.moto_differs("the DLQ copy has no DeadLetterQueueSourceArn")
def test_lazy_redrive_after_max_receive_count(sqs_backend: SqsBackend) -> None:
    source, dlq = with_dlq(sqs_backend, max_receive=2)
    sent = sqs_backend.sqs.send_message(QueueUrl=source, MessageBody="poison", MessageGroupId="g")
    sqs_backend.sqs.send_message(QueueUrl=source, MessageBody="next", MessageGroupId="g")

    received: list[str] = []

    def receive_until_next() -> bool:
        bodies = [m["Body"] for m in receive(sqs_backend, source, MaxNumberOfMessages=1)]
        received.extend(bodies)
        return "next" in bodies

    wait_until(receive_until_next, timeout=15, description="the message after the poison one")

    assert received == ["poison", "poison", "next"]
    (moved,) = receive(sqs_backend, dlq)
    assert moved["MessageId"] == sent["MessageId"]
    assert moved["Body"] == "poison"
    assert moved["Attributes"]["MessageGroupId"] == "g"
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == sqs_backend.arn(source)
    assert sqs_backend.sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]


@pytest.mark.moto_differs("the error code and message differ from AWS's")
def test_a_fifo_queue_needs_a_fifo_dead_letter_queue(sqs_backend: SqsBackend) -> None:
    standard_dlq = sqs_backend.queue(fifo=False)
    policy = json.dumps(
        {"deadLetterTargetArn": sqs_backend.arn(standard_dlq), "maxReceiveCount": 3}
    )

    error = error_of(lambda: sqs_backend.queue(RedrivePolicy=policy))

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == (
        f"Value {policy.replace(' ', '')} for parameter RedrivePolicy is invalid. "
        "Reason: Dead-letter queue must be same type of queue as the source.."
    )


@pytest.mark.moto_differs("maxReceiveCount is not range-checked")
def test_max_receive_count_is_between_1_and_1000(sqs_backend: SqsBackend) -> None:
    dlq = sqs_backend.queue()
    policy = json.dumps({"deadLetterTargetArn": sqs_backend.arn(dlq), "maxReceiveCount": 0})

    error = error_of(lambda: sqs_backend.queue(RedrivePolicy=policy))

    assert error["Code"] == "InvalidParameterValue"
    assert "valid values are from 1 to 1000 both inclusive" in error["Message"]


@pytest.mark.moto_differs("StartMessageMoveTask is not implemented")
def test_start_message_move_task_replays_the_dlq_to_its_source(sqs_backend: SqsBackend) -> None:
    source, dlq = with_dlq(sqs_backend, max_receive=1)
    for body in ("one", "two"):
        sqs_backend.sqs.send_message(QueueUrl=source, MessageBody=body, MessageGroupId=body)
    receive(sqs_backend, source)

    def both_dead_lettered() -> bool:
        # Redrive is lazy: a receive on the source moves what exceeded maxReceiveCount.
        assert receive(sqs_backend, source) == []
        counts = attributes(sqs_backend, dlq, "ApproximateNumberOfMessages")
        return counts["ApproximateNumberOfMessages"] == "2"

    wait_until(both_dead_lettered, timeout=15, description="both messages in the DLQ")

    handle = sqs_backend.sqs.start_message_move_task(SourceArn=sqs_backend.arn(dlq))["TaskHandle"]

    def completed() -> dict[str, Any] | None:
        (task,) = sqs_backend.sqs.list_message_move_tasks(SourceArn=sqs_backend.arn(dlq))["Results"]
        return task if task["Status"] == "COMPLETED" else None

    task = wait_until(completed, timeout=10, description="the move task to complete")
    assert handle
    assert task["ApproximateNumberOfMessagesMoved"] == 2
    replayed = receive(sqs_backend, source)
    assert sorted(m["Body"] for m in replayed) == ["one", "two"]
    assert all(m["Attributes"]["ApproximateReceiveCount"] == "1" for m in replayed)
    assert "DeadLetterQueueSourceArn" not in replayed[0]["Attributes"]


@pytest.mark.moto_differs("StartMessageMoveTask is not implemented")
def test_a_move_task_needs_a_dead_letter_queue_as_source(sqs_backend: SqsBackend) -> None:
    plain = sqs_backend.queue()

    error = error_of(
        lambda: sqs_backend.sqs.start_message_move_task(SourceArn=sqs_backend.arn(plain))
    )

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == "Source queue must be configured as a Dead Letter Queue."
