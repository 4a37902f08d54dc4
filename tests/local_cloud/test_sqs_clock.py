"""Time-driven rules on a fake clock, so five minutes pass in a microsecond.

Plain moto reads the system clock and cannot be driven this way; these run on our
endpoint only (through boto3, over HTTP, like every other fidelity test).
"""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.endpoint import AwsEndpoint
from localcloud.sqs import FakeClock
from localcloud.sqs.testing import SqsBackend, client, error_of


@pytest.fixture
def backend(clocked_endpoint: tuple[AwsEndpoint, FakeClock]) -> SqsBackend:
    endpoint, _ = clocked_endpoint
    return SqsBackend(kind="engine", url=endpoint.url, sqs=client("sqs", endpoint.url))


@pytest.fixture
def clock(clocked_endpoint: tuple[AwsEndpoint, FakeClock]) -> FakeClock:
    return clocked_endpoint[1]


def bodies(backend: SqsBackend, queue: str, **kwargs: Any) -> list[str]:
    kwargs.setdefault("MaxNumberOfMessages", 10)
    response = backend.sqs.receive_message(QueueUrl=queue, **kwargs)
    return [str(m["Body"]) for m in response.get("Messages", [])]


def send(backend: SqsBackend, queue: str, body: str, **kwargs: Any) -> Any:
    return backend.sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId="g", **kwargs)


def test_the_deduplication_window_is_five_minutes(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue()
    send(backend, queue, "x")
    clock.advance(299)
    send(backend, queue, "x")
    assert bodies(backend, queue, VisibilityTimeout=0) == ["x"]

    clock.advance(1)
    send(backend, queue, "x")

    assert bodies(backend, queue, VisibilityTimeout=0) == ["x", "x"]


def test_messages_expire_after_the_retention_period(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue(fifo=False, MessageRetentionPeriod=60)
    backend.sqs.send_message(QueueUrl=queue, MessageBody="old")
    clock.advance(30)
    backend.sqs.send_message(QueueUrl=queue, MessageBody="new")
    clock.advance(30)

    assert bodies(backend, queue) == ["new"]


def test_an_in_flight_message_expires_too(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue(MessageRetentionPeriod=60)
    send(backend, queue, "m1")
    send(backend, queue, "m2")
    assert bodies(backend, queue, MaxNumberOfMessages=1) == ["m1"]
    clock.advance(61)

    counts = backend.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
    assert counts["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert counts["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_delay_queue_holds_messages_back(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue(fifo=False)
    backend.sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=10)
    assert bodies(backend, queue) == []
    clock.advance(10)

    assert bodies(backend, queue) == ["later"]


def test_visibility_runs_on_the_clock(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue(VisibilityTimeout=30)
    send(backend, queue, "x")
    assert bodies(backend, queue) == ["x"]
    clock.advance(29)
    assert bodies(backend, queue) == []

    clock.advance(1)

    assert bodies(backend, queue) == ["x"]


def test_total_visibility_is_capped_at_twelve_hours_from_the_receive(
    backend: SqsBackend, clock: FakeClock
) -> None:
    queue = backend.queue()
    send(backend, queue, "x")
    (message,) = backend.sqs.receive_message(QueueUrl=queue)["Messages"]
    handle = message["ReceiptHandle"]
    backend.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=43200
    )
    clock.advance(100)

    error = error_of(
        lambda: backend.sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=43200
        )
    )

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == (
        "Value 43200 for parameter VisibilityTimeout is invalid. Reason: Total "
        "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
    )
    backend.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=43100
    )


def test_purge_is_allowed_once_a_minute(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue()
    backend.sqs.purge_queue(QueueUrl=queue)

    error = error_of(lambda: backend.sqs.purge_queue(QueueUrl=queue))
    assert error["Code"] == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert error["Message"] == (
        f"Only one PurgeQueue operation on {queue.rsplit('/', 1)[1]} is allowed every 60 seconds."
    )
    clock.advance(60)
    backend.sqs.purge_queue(QueueUrl=queue)


def test_age_of_the_oldest_message(
    clocked_endpoint: tuple[AwsEndpoint, FakeClock], backend: SqsBackend
) -> None:
    endpoint, clock = clocked_endpoint
    queue = backend.queue()
    assert endpoint.sqs.queue_depth(queue).age_of_oldest_s == 0.0
    send(backend, queue, "first")
    clock.advance(40)
    send(backend, queue, "second")
    clock.advance(2)

    depth = endpoint.sqs.queue_depth(queue)

    assert depth.age_of_oldest_s == pytest.approx(42)
    assert (depth.visible, depth.not_visible, depth.delayed) == (2, 0, 0)


# -- throughput quotas ----------------------------------------------------------------------


def test_a_fifo_queue_allows_300_sends_per_second_then_throttles(
    backend: SqsBackend, clock: FakeClock
) -> None:
    queue = backend.queue()
    for i in range(300):
        send(backend, queue, f"m{i}")

    error = error_of(lambda: send(backend, queue, "one too many"))

    assert error["Code"] == "ThrottlingException"
    assert error["Message"] == "Rate exceeded"
    # Other API actions have their own quota.
    assert len(bodies(backend, queue)) == 10
    clock.advance(1)
    send(backend, queue, "next second")


def test_a_batch_is_one_transaction(backend: SqsBackend, clock: FakeClock) -> None:
    queue = backend.queue(ContentBasedDeduplication="false")
    for batch in range(300):
        entries = [
            {
                "Id": str(i),
                "MessageBody": "x",
                "MessageGroupId": f"g{i}",
                "MessageDeduplicationId": f"{batch}-{i}",
            }
            for i in range(10)
        ]
        assert not backend.sqs.send_message_batch(QueueUrl=queue, Entries=entries).get("Failed")

    depth = backend.sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "3000"
    error = error_of(
        lambda: backend.sqs.send_message_batch(
            QueueUrl=queue,
            Entries=[
                {
                    "Id": "x",
                    "MessageBody": "x",
                    "MessageGroupId": "g",
                    "MessageDeduplicationId": "x",
                }
            ],
        )
    )
    assert error["Code"] == "ThrottlingException"


def test_high_throughput_fifo_and_standard_queues_are_not_throttled(backend: SqsBackend) -> None:
    high = backend.queue(DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    standard = backend.queue(fifo=False)
    for i in range(400):
        send(backend, high, f"m{i}")
        backend.sqs.send_message(QueueUrl=standard, MessageBody="x")


def test_quotas_can_be_switched_off() -> None:
    with AwsEndpoint(clock=FakeClock(), throttling=False) as endpoint:
        sqs = client("sqs", endpoint.url)
        queue = sqs.create_queue(
            QueueName="free.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        for i in range(400):
            sqs.send_message(QueueUrl=queue, MessageBody=f"m{i}", MessageGroupId="g")
