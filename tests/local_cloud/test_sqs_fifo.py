"""FIFO queue semantics: our endpoint, and plain moto (a strict xfail where it differs)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.sqs.testing import SqsBackend, error_of


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m["Body"]) for m in messages]


def receive(
    backend: SqsBackend, queue: str, *, max_messages: int = 10, **kwargs: Any
) -> list[dict[str, Any]]:
    response = backend.sqs.receive_message(
        QueueUrl=queue,
        MaxNumberOfMessages=max_messages,
        MessageSystemAttributeNames=["All"],
        **kwargs,
    )
    return list(response.get("Messages", []))


def receive_when_visible(backend: SqsBackend, queue: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Receive once messages are visible again (a visibility timeout must run out first)."""
    return wait_until(
        lambda: receive(backend, queue, WaitTimeSeconds=1, **kwargs),
        timeout=10,
        interval=0.05,
        description="messages to become visible again after their visibility timeout",
    )


def send(backend: SqsBackend, queue: str, body: str, group: str = "g", **kwargs: Any) -> Any:
    return backend.sqs.send_message(
        QueueUrl=queue, MessageBody=body, MessageGroupId=group, **kwargs
    )


@pytest.mark.moto_differs("a later message of a group comes back before an earlier one")
def test_order_within_a_group_survives_redelivery(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(VisibilityTimeout=1)
    for body in ("m1", "m2", "m3"):
        send(sqs_backend, queue, body)

    assert bodies(receive(sqs_backend, queue)) == ["m1", "m2", "m3"]
    # None deleted: after the timeout the whole group comes back, still in order.
    assert bodies(receive_when_visible(sqs_backend, queue)) == ["m1", "m2", "m3"]


@pytest.mark.moto_differs("after a partial delete the rest of the batch comes back out of order")
def test_partial_delete_keeps_the_group_locked_and_the_rest_in_order(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(VisibilityTimeout=1)
    for body in ("m1", "m2", "m3", "m4"):
        send(sqs_backend, queue, body)
    first = receive(sqs_backend, queue)
    assert bodies(first) == ["m1", "m2", "m3", "m4"]

    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=first[0]["ReceiptHandle"])
    assert receive(sqs_backend, queue) == [], "the group stays locked while m2..m4 are in flight"

    assert bodies(receive_when_visible(sqs_backend, queue)) == ["m2", "m3", "m4"]


def test_group_is_locked_while_in_flight_and_a_new_send_does_not_unlock_it(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue()
    send(sqs_backend, queue, "m1")
    (m1,) = receive(sqs_backend, queue)
    send(sqs_backend, queue, "m2")

    assert receive(sqs_backend, queue) == []

    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m1["ReceiptHandle"])
    assert bodies(receive(sqs_backend, queue)) == ["m2"]


def test_other_groups_flow_while_one_is_locked(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    send(sqs_backend, queue, "a1", group="a")
    send(sqs_backend, queue, "a2", group="a")
    assert bodies(receive(sqs_backend, queue, max_messages=1)) == ["a1"]
    send(sqs_backend, queue, "b1", group="b")

    assert bodies(receive(sqs_backend, queue)) == ["b1"]


def test_extending_one_message_keeps_the_later_ones_withheld(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(VisibilityTimeout=1)
    send(sqs_backend, queue, "m1")
    send(sqs_backend, queue, "m2")
    m1, _m2 = receive(sqs_backend, queue)
    sqs_backend.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=m1["ReceiptHandle"], VisibilityTimeout=30
    )

    def m2_visible_again() -> bool:
        attributes = sqs_backend.sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return bool(attributes["ApproximateNumberOfMessages"] == "1")

    wait_until(m2_visible_again, timeout=10, description="m2's visibility timeout to run out")
    assert receive(sqs_backend, queue) == [], "m1 is still in flight, so m2 is withheld"

    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m1["ReceiptHandle"])
    assert bodies(receive(sqs_backend, queue)) == ["m2"]


@pytest.mark.moto_differs("a receive interleaves groups instead of filling from one first")
def test_a_receive_fills_from_one_group_before_the_next(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    for body, group in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b"), ("a3", "a")):
        send(sqs_backend, queue, body, group=group)

    assert bodies(receive(sqs_backend, queue)) == ["a1", "a2", "a3", "b1", "b2"]


@pytest.mark.moto_differs("a duplicate send gets a new MessageId")
def test_a_duplicate_send_succeeds_returns_the_original_id_and_is_not_delivered(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue()
    first = send(sqs_backend, queue, "same body")
    second = send(sqs_backend, queue, "same body")

    assert second["MessageId"] == first["MessageId"]
    assert bodies(receive(sqs_backend, queue)) == ["same body"]


@pytest.mark.moto_differs("deduplication only looks at messages still in the queue")
def test_deduplication_outlives_the_deleted_message(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    send(sqs_backend, queue, "once")
    (message,) = receive(sqs_backend, queue)
    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    send(sqs_backend, queue, "once")

    assert receive(sqs_backend, queue) == []


def test_content_based_id_is_the_sha256_of_the_body_and_an_explicit_id_overrides_it(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue()
    send(sqs_backend, queue, "a", MessageDeduplicationId="one")
    send(sqs_backend, queue, "b", MessageDeduplicationId="one")  # duplicate by id
    send(sqs_backend, queue, "a", MessageDeduplicationId="two")  # same body, new id
    send(sqs_backend, queue, "c")  # content-based

    received = receive(sqs_backend, queue)

    assert bodies(received) == ["a", "a", "c"]
    assert [m["Attributes"]["MessageDeduplicationId"] for m in received] == [
        "one",
        "two",
        hashlib.sha256(b"c").hexdigest(),
    ]


@pytest.mark.moto_differs("DeduplicationScope=messageGroup is ignored")
def test_deduplication_scope_message_group(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(DeduplicationScope="messageGroup")
    send(sqs_backend, queue, "x", group="a")
    send(sqs_backend, queue, "x", group="b")

    assert sorted(bodies(receive(sqs_backend, queue))) == ["x", "x"]


def test_purge_clears_the_deduplication_window(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    send(sqs_backend, queue, "again")
    sqs_backend.sqs.purge_queue(QueueUrl=queue)

    send(sqs_backend, queue, "again")

    assert bodies(receive(sqs_backend, queue)) == ["again"]


@pytest.mark.moto_differs("SequenceNumber is random or missing")
def test_sequence_number_increases_with_every_send(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    sent = [
        send(sqs_backend, queue, f"m{i}", group=f"g{i % 2}", MessageDeduplicationId=f"d{i}")
        for i in range(4)
    ]
    sent += [send(sqs_backend, queue, f"content-{i}", group="g0") for i in range(2)]
    numbers = [int(result["SequenceNumber"]) for result in sent]

    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    received = receive(sqs_backend, queue)
    by_id = {result["MessageId"]: result["SequenceNumber"] for result in sent}
    for message in received:
        assert message["Attributes"]["SequenceNumber"] == by_id[message["MessageId"]]


def test_message_group_id_is_required(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()

    error = error_of(lambda: sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x"))

    assert error["Code"] == "MissingParameter"
    assert error["Message"] == "The request must contain the parameter MessageGroupId."


@pytest.mark.moto_differs("a MessageGroupId over 128 characters is accepted")
def test_message_group_id_is_at_most_128_characters(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    send(sqs_backend, queue, "fits", group="g" * 128)

    error = error_of(lambda: send(sqs_backend, queue, "too long", group="g" * 129))

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == (
        f"Value {'g' * 129} for parameter MessageGroupId is invalid. Reason: MessageGroupId "
        "can only include alphanumeric and punctuation characters. 1 to 128 in length."
    )


def test_no_per_message_delay_on_a_fifo_queue(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()

    error = error_of(lambda: send(sqs_backend, queue, "x", DelaySeconds=5))

    assert error["Code"] == "InvalidParameterValue"
    assert "DelaySeconds is invalid" in error["Message"]


def test_deduplication_id_is_required_without_content_based_deduplication(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(ContentBasedDeduplication="false")

    error = error_of(lambda: send(sqs_backend, queue, "x"))

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == (
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )
