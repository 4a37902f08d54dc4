"""FIFO queues: message groups and their visibility, deduplication, delays, sequence
numbers, high throughput, dead-letter queues.

Replays of AWS-validated cases of LocalStack's ``tests/aws/services/sqs/test_sqs.py``
(see :mod:`tests.parity.test_sqs_messages` for how they are written and compared).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from tests.parity.backends import Sqs
from tests.parity.expect import answer, invalid_parameter_value, missing_parameter, ok
from tests.parity.test_sqs_messages import message

recorded = pytest.mark.aws_recording

FOO, BAR, BAZ = (
    "acbd18db4cc2f85cedef654fccc4a4d8",
    "37b51d194a7513e45b56f6524f2d51f2",
    "73feffa4b7f6bb68e44cf984c85f6e88",
)


def fifo(sqs: Sqs, prefix: str = "queue", **attributes: str) -> str:
    attributes.setdefault("FifoQueue", "true")
    return sqs.create_queue(sqs.name(prefix, ".fifo"), **attributes)


def bodies(response: dict[str, Any]) -> list[str]:
    return [str(m["Body"]) for m in response.get("Messages", [])]


# -- group visibility ---------------------------------------------------------------------

WITHHELD_BY_MOTO = pytest.mark.moto_differs(
    "a message that came back from flight is withheld while its group has one in flight"
)


@recorded(
    "test_fifo_group_visibility_extends_with_change_message_visibility", validated="2025-11-19"
)
@pytest.mark.parametrize(
    ("position", "still_received"),
    [
        pytest.param(0, [], id="0-visible"),
        pytest.param(1, [message(1, "foo", FOO, 4)], id="1-visible", marks=WITHHELD_BY_MOTO),
        pytest.param(
            2,
            [message(1, "foo", FOO, 4), message(2, "bar", BAR, 5)],
            id="2-visible",
            marks=WITHHELD_BY_MOTO,
        ),
    ],
)
def test_fifo_group_visibility_extends_with_change_message_visibility(
    sqs: Sqs, position: int, still_received: list[dict[str, Any]]
) -> None:
    queue = fifo(sqs, "test-queue", VisibilityTimeout="1")
    for body in ("foo", "bar", "baz"):
        sqs.client.send_message(
            QueueUrl=queue, MessageBody=body, MessageGroupId="1", MessageDeduplicationId=body
        )
    received = answer(lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=5))
    sqs.expect(
        "receive_all_messages",
        received,
        ok(Messages=[message(1, "foo", FOO), message(2, "bar", BAR), message(3, "baz", BAZ)]),
    )
    sqs.client.change_message_visibility(
        QueueUrl=queue,
        ReceiptHandle=received["Messages"][position]["ReceiptHandle"],
        VisibilityTimeout=4,
    )
    sqs.sleep(1 + (4 - 1) / 2)
    # Messages before the extended one come back; it and those after it stay withheld.
    again = answer(lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=5))
    expected = ok(Messages=still_received) if still_received else ok()
    sqs.expect("some-messages-invisible", again, expected)


@recorded(
    "test_fifo_message_group_visibility_after_change_message_visibility", validated="2025-11-17"
)
@pytest.mark.moto_differs("a group stays locked while any of its messages is in flight")
def test_fifo_message_group_visibility_after_change_message_visibility(sqs: Sqs) -> None:
    queue = fifo(sqs, VisibilityTimeout="30", ContentBasedDeduplication="true")
    for body, group in (("g1-m1", "group-1"), ("g1-m2", "group-1"), ("g2-m1", "group-2")):
        sqs.client.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=group)
    response = sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=2)
    assert bodies(response) == ["g1-m1", "g1-m2"]
    sqs.client.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=response["Messages"][0]["ReceiptHandle"], VisibilityTimeout=1
    )
    sqs.sleep(2)
    # g1-m1 is visible again while g1-m2 is still in flight: it is delivered, after the
    # group that was waiting all along.
    assert bodies(sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=3)) == [
        "g2-m1",
        "g1-m1",
    ]


@recorded("test_fifo_approximate_number_of_messages_not_visible", validated="2025-09-26")
def test_fifo_approximate_number_of_messages_not_visible(sqs: Sqs) -> None:
    queue = fifo(sqs, ContentBasedDeduplication="True", VisibilityTimeout="60")
    for n, group in ((1, "1"), (2, "1"), (3, "2"), (4, "2"), (5, "3"), (6, "3")):
        sqs.client.send_message(QueueUrl=queue, MessageBody=f"message-{n}", MessageGroupId=group)
    groups = [
        sqs.client.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=1, MessageSystemAttributeNames=["MessageGroupId"]
        )["Messages"][0]["Attributes"]["MessageGroupId"]
        for _ in range(2)
    ]
    assert groups == ["1", "2"]
    # Two groups are locked, but only the two messages received are not visible.
    assert sqs.counts(queue) == ("4", "2", "0")
    sqs.sleep(60)
    assert sqs.counts(queue) == ("6", "0", "0")


@recorded("test_fifo_empty_message_groups_added_back_to_queue", validated="2024-04-30")
def test_fifo_empty_message_groups_added_back_to_queue(sqs: Sqs) -> None:
    queue = fifo(sqs)
    sqs.client.send_message(
        QueueUrl=queue, MessageDeduplicationId="1", MessageGroupId="g1", MessageBody="Message 1"
    )
    first = answer(lambda: sqs.client.receive_message(QueueUrl=queue))
    sqs.expect(
        "inital-fifo-receive",
        first,
        ok(Messages=[message(1, "Message 1", "68390233272823b7adf13a1db79b2cd7")]),
    )
    sqs.client.delete_message(QueueUrl=queue, ReceiptHandle=first["Messages"][0]["ReceiptHandle"])
    sqs.expect(
        "empty-fifo-receive", answer(lambda: sqs.client.receive_message(QueueUrl=queue)), ok()
    )
    sqs.client.send_message(
        QueueUrl=queue, MessageDeduplicationId="2", MessageGroupId="g1", MessageBody="Message 2"
    )
    sqs.expect(
        "final-fifo-receive",
        answer(lambda: sqs.client.receive_message(QueueUrl=queue)),
        ok(Messages=[message(2, "Message 2", "88ef8f31ed540f1c4c03d5fdb06a7935")]),
    )


FOOBAR = "3858f62230ac3c915f300c664312c63f"


@recorded("test_fifo_delete_after_visibility_timeout", validated="2025-03-28")
@pytest.mark.moto_differs("a FIFO receipt handle past its visibility timeout still deletes")
def test_fifo_delete_after_visibility_timeout(sqs: Sqs) -> None:
    queue = fifo(sqs, "test", VisibilityTimeout="1", ContentBasedDeduplication="True")
    sqs.client.send_message(QueueUrl=queue, MessageBody="foobar", MessageGroupId="1")
    received = answer(lambda: sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=5))
    sqs.expect("received_sqs_message", received, ok(Messages=[message(1, "foobar", FOOBAR)]))
    handle = received["Messages"][0]["ReceiptHandle"]
    sqs.sleep(1)
    error = answer(lambda: sqs.client.delete_message(QueueUrl=queue, ReceiptHandle=handle))
    expired = invalid_parameter_value(
        "Value <receipt-handle:1> for parameter ReceiptHandle is invalid. "
        "Reason: The receipt handle has expired."
    )
    sqs.expect("delete_after_timeout_fifo", error, expired.on(sqs.protocol))


@recorded("test_fifo_delete_after_visibility_timeout_extended", validated="2025-10-05")
def test_fifo_delete_after_visibility_timeout_extended(sqs: Sqs) -> None:
    queue = fifo(sqs, "test", VisibilityTimeout="1", ContentBasedDeduplication="True")
    sqs.client.send_message(QueueUrl=queue, MessageBody="foobar", MessageGroupId="1")
    received = answer(lambda: sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=5))
    sqs.expect("received_sqs_message", received, ok(Messages=[message(1, "foobar", FOOBAR)]))
    handle = received["Messages"][0]["ReceiptHandle"]
    sqs.client.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=5)
    sqs.sleep(1 + 0.5)
    sqs.client.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    sqs.expect(
        "delete_after_timeout_fifo_extended",
        answer(lambda: sqs.client.receive_message(QueueUrl=queue)),
        ok(),
    )


# -- sending to FIFO queues ----------------------------------------------------------------


@recorded("test_fifo_queue_send_message_with_delay_seconds_fails", validated="2024-04-30")
@pytest.mark.moto_differs("errors: JSON __type is the short code, query errors have no Detail")
def test_fifo_queue_send_message_with_delay_seconds_fails(sqs: Sqs) -> None:
    queue = fifo(sqs, ContentBasedDeduplication="true")
    error = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody="message-1", MessageGroupId="1", DelaySeconds=2
        )
    )
    sqs.expect(
        "send_message",
        error,
        invalid_parameter_value(
            "Value 2 for parameter DelaySeconds is invalid. Reason: The request include "
            "parameter that is not valid for this queue type."
        ).on(sqs.protocol),
    )


@recorded(
    "test_fifo_queue_send_message_with_zero_delay_defaults_to_queue_delay", validated="2025-07-31"
)
@pytest.mark.moto_differs("SendMessage on a FIFO queue returns no SequenceNumber")
def test_fifo_queue_send_message_with_zero_delay_defaults_to_queue_delay(sqs: Sqs) -> None:
    queue = fifo(sqs, ContentBasedDeduplication="true", DelaySeconds="2")
    sent = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody="message-1", MessageGroupId="1", DelaySeconds=0
        )
    )
    md5 = "3d6b824fd8c1520e9a047d21fee6fb1f"
    sqs.expect(
        "send_message_result",
        sent,
        ok(MD5OfMessageBody=md5, MessageId="<uuid:1>", SequenceNumber="<sequence-number:1>"),
    )
    initial = answer(lambda: sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=1))
    sqs.expect("receive_message_initial_result", initial, ok())
    sqs.sleep(2 + 1)
    after = answer(lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1))
    sqs.expect(
        "receive_message_after_delay_result", after, ok(Messages=[message(1, "message-1", md5)])
    )


@recorded("test_posting_to_fifo_requires_deduplicationid_group_id", validated="2024-04-30")
@pytest.mark.moto_differs("errors: JSON __type is the short code, query errors have no Detail")
def test_posting_to_fifo_requires_deduplicationid_group_id(sqs: Sqs) -> None:
    queue = fifo(sqs)
    no_dedup = invalid_parameter_value(
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )
    no_group = missing_parameter("MessageGroupId")
    for key, client, protocol in (
        ("", sqs.client, sqs.protocol),
        ("-query", sqs.json, "json"),  # the recording's aws_client.sqs, whatever the param
    ):
        error = answer(
            partial(
                client.send_message,
                QueueUrl=queue,
                MessageBody="test1a2b",
                MessageGroupId="fifo_group-1a2b",
            )
        )
        sqs.expect(f"invalid-parameter-value{key}", error, no_dedup.on(protocol))
        error = answer(
            partial(
                client.send_message,
                QueueUrl=queue,
                MessageBody="test1a2b",
                MessageDeduplicationId="fifo_dedup-1a2b",
            )
        )
        sqs.expect(f"missing-parameter{key}", error, no_group.on(protocol))


@recorded("test_send_batch_missing_deduplication_id_for_fifo_queue", validated="2024-04-30")
@pytest.mark.moto_differs("errors: JSON __type is the short code, query errors have no Detail")
def test_send_batch_missing_deduplication_id_for_fifo_queue(sqs: Sqs) -> None:
    queue = fifo(sqs, ContentBasedDeduplication="false")
    entries = [
        {
            "Id": "message-1a2b",
            "MessageBody": "messageBody",
            "MessageGroupId": "test-group",
            "MessageDeduplicationId": "dedup-1a2b",
        },
        {"Id": "message-3c4d", "MessageBody": "messageBody", "MessageGroupId": "test-group"},
    ]
    error = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    expected = invalid_parameter_value(
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )
    sqs.expect("test_missing_deduplication_id_for_fifo_queue", error, expected.on(sqs.protocol))


@recorded("test_send_batch_missing_message_group_id_for_fifo_queue", validated="2024-04-30")
@pytest.mark.moto_differs("the batch is refused with MissingParameter")
def test_send_batch_missing_message_group_id_for_fifo_queue(sqs: Sqs) -> None:
    queue = fifo(sqs, ContentBasedDeduplication="false")
    entries = [
        {
            "Id": "message-1a2b",
            "MessageBody": "messageBody",
            "MessageGroupId": "test-group",
            "MessageDeduplicationId": "dedup-1a2b",
        },
        {
            "Id": "message-3c4d",
            "MessageBody": "messageBody",
            "MessageDeduplicationId": "dedup-3c4d",
        },
    ]
    error = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    # Recorded as InvalidParameterValue (not MissingParameter, which a single send gets).
    expected = invalid_parameter_value("The request must contain the parameter MessageGroupId.")
    sqs.expect("test_missing_message_group_id_for_fifo_queue", error, expected.on(sqs.protocol))


@recorded(
    "test_send_message_to_standard_queue_with_invalid_message_group_id", validated="2025-07-30"
)
@pytest.mark.protocols("json")
@pytest.mark.parametrize(
    "group_id", ["", "a" * 129, "group 123"], ids=["empty", "too_long", "spaces"]
)
@pytest.mark.moto_differs("errors: JSON __type is the short code, query errors have no Detail")
def test_send_message_to_standard_queue_with_invalid_message_group_id(
    sqs: Sqs, group_id: str
) -> None:
    queue = sqs.create_queue()
    error = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody="message", MessageGroupId=group_id
        )
    )
    sqs.expect(
        "error-response",
        error,
        invalid_parameter_value(
            f"Value {group_id} for parameter MessageGroupId is invalid. Reason: MessageGroupId "
            "can only include alphanumeric and punctuation characters. 1 to 128 in length."
        ).on("json"),
    )


@recorded("test_message_deduplication_id_success", validated="2025-07-30")
@pytest.mark.protocols("json")
def test_message_deduplication_id_success(sqs: Sqs) -> None:
    queue = fifo(sqs)
    sent = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue,
            MessageBody="Hello World!",
            MessageGroupId="test",
            MessageDeduplicationId="a" * 128,
        )
    )
    assert sent["ResponseMetadata"]["HTTPStatusCode"] == 200, sent


@recorded("test_message_deduplication_id_invalid", validated="2025-07-30")
@pytest.mark.protocols("json")
@pytest.mark.parametrize(
    "dedup_id", ["", "a" * 129, "group 123"], ids=["empty", "too_long", "spaces"]
)
@pytest.mark.moto_differs("MessageDeduplicationId is not validated")
def test_message_deduplication_id_invalid(sqs: Sqs, dedup_id: str) -> None:
    queue = fifo(sqs)
    error = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue,
            MessageBody="Hello World!",
            MessageGroupId="test",
            MessageDeduplicationId=dedup_id,
        )
    )
    sqs.expect(
        "error-response",
        error,
        invalid_parameter_value(
            f"Value {dedup_id} for parameter MessageDeduplicationId is invalid. Reason: "
            "MessageDeduplicationId can only include alphanumeric and punctuation characters. "
            "1 to 128 in length."
        ).on("json"),
    )


@recorded("test_fair_queue_with_message_group_id", validated="2025-08-18")
def test_fair_queue_with_message_group_id(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sent = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody="message", MessageGroupId="test"
        )
    )
    md5 = "78e731027d8fd50ed642340b7c9a63b3"
    sqs.expect("send_message", sent, ok(MD5OfMessageBody=md5, MessageId="<uuid:1>"))
    received = answer(
        lambda: sqs.client.receive_message(
            QueueUrl=queue, WaitTimeSeconds=5, AttributeNames=["All"]
        )
    )
    attributes = {
        "ApproximateFirstReceiveTimestamp": "<timestamp-ms>",
        "ApproximateReceiveCount": "1",
        "MessageGroupId": "test",
        "SenderId": "<sender-id:1>",
        "SentTimestamp": "<timestamp-ms>",
    }
    sqs.expect(
        "get-message-with-deduplication-id",
        received,
        ok(Messages=[message(1, "message", md5, Attributes=attributes)]),
    )


@recorded("test_fifo_message_attributes", validated="2024-04-30")
def test_fifo_message_attributes(sqs: Sqs) -> None:
    queue = fifo(
        sqs,
        ContentBasedDeduplication="true",
        VisibilityTimeout="0",
        DeduplicationScope="messageGroup",
        FifoThroughputLimit="perMessageGroupId",
    )
    sent = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue,
            MessageBody="message-body-1",
            MessageGroupId="group-1",
            MessageDeduplicationId="dedup-1",
        )
    )
    md5 = "19c9e282d65f9733bc6b35d50062c7ee"
    sqs.expect(
        "send_message",
        sent,
        ok(MD5OfMessageBody=md5, MessageId="<uuid:1>", SequenceNumber="<sequence-number:1>"),
    )
    for count in (1, 2):
        attributes = {
            "ApproximateFirstReceiveTimestamp": "<timestamp-ms>",
            "ApproximateReceiveCount": str(count),
            "MessageDeduplicationId": "dedup-1",
            "MessageGroupId": "group-1",
            "SenderId": "<sender-id:1>",
            "SentTimestamp": "<timestamp-ms>",
            "SequenceNumber": "<sequence-number:1>",
        }
        received = answer(
            lambda: sqs.client.receive_message(
                QueueUrl=queue, AttributeNames=["All"], WaitTimeSeconds=10
            )
        )
        sqs.expect(
            f"receive_message_{count - 1}",
            received,
            ok(Messages=[message(1, "message-body-1", md5, count, Attributes=attributes)]),
        )


# -- deduplication ------------------------------------------------------------------------

ITEM = '{"foo": "bar"}'
ITEM_MD5 = "94232c5b8fc9272f6f73a1e36eb68fcf"


@recorded("test_fifo_deduplication_arrives_once_after_delete", validated="2024-04-30")
@pytest.mark.parametrize("content_based", [True, False], ids=["True", "False"])
@pytest.mark.moto_differs("deduplication only looks at messages still in the queue")
def test_fifo_deduplication_arrives_once_after_delete(sqs: Sqs, content_based: bool) -> None:
    attributes = {"ContentBasedDeduplication": "true"} if content_based else {}
    queue = fifo(sqs, "test-queue", **attributes)
    extra = {} if content_based else {"MessageDeduplicationId": "dedup1"}
    sqs.client.send_message(QueueUrl=queue, MessageBody=ITEM, MessageGroupId="group-1", **extra)
    response = answer(lambda: sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=3))
    sqs.expect("get-messages", response, ok(Messages=[message(1, ITEM, ITEM_MD5)]))
    sqs.client.delete_message(
        QueueUrl=queue, ReceiptHandle=response["Messages"][0]["ReceiptHandle"]
    )
    sqs.client.send_message(QueueUrl=queue, MessageBody=ITEM, MessageGroupId="group-1", **extra)
    again = answer(lambda: sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=1))
    sqs.expect("get-messages-duplicate", again, ok())


@recorded("test_fifo_deduplication_not_on_message_group_id", validated="2024-04-30")
@pytest.mark.parametrize("content_based", [True, False], ids=["True", "False"])
def test_fifo_deduplication_not_on_message_group_id(sqs: Sqs, content_based: bool) -> None:
    attributes = {"ContentBasedDeduplication": "true"} if content_based else {}
    queue = fifo(sqs, "test-queue", **attributes)
    extra = {} if content_based else {"MessageDeduplicationId": "dedup1"}
    for group in ("group-1", "group-2"):
        sqs.client.send_message(QueueUrl=queue, MessageBody=ITEM, MessageGroupId=group, **extra)
    first = answer(
        lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=2)
    )
    sqs.expect("get-messages", first, ok(Messages=[message(1, ITEM, ITEM_MD5)]))
    second = answer(
        lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    )
    sqs.expect("get-dedup-messages", second, ok())


@recorded("test_deduplication_interval", validated="2024-05-29")
def test_deduplication_interval(sqs: Sqs) -> None:
    # Skipped upstream as it takes six minutes of real time; a virtual clock takes none.
    queue = fifo(sqs)

    def send(body: str, dedup: str) -> dict[str, Any]:
        return dict(
            sqs.client.send_message(
                QueueUrl=queue, MessageBody=body, MessageGroupId="fifo_group-1a2b",
                MessageDeduplicationId=dedup,
            )
        )  # fmt: skip

    def receive_and_delete() -> dict[str, Any]:
        response = sqs.client.receive_message(QueueUrl=queue)
        sqs.client.delete_message(
            QueueUrl=queue, ReceiptHandle=response["Messages"][0]["ReceiptHandle"]
        )
        return dict(response["Messages"][0])

    sent = send("test1a2b", "fifo_dedup-1")
    sqs.sleep(3)
    send("test1a2b-duplicate", "fifo_dedup-1")
    first = receive_and_delete()
    assert (first["MessageId"], first["MD5OfBody"]) == (sent["MessageId"], sent["MD5OfMessageBody"])
    assert "Messages" not in sqs.client.receive_message(QueueUrl=queue)

    sent = send("test1a2b", "fifo_dedup-2")
    sqs.sleep(2)
    send("test1a2b-half_time", "fifo_dedup-2")
    sqs.sleep(6 * 60)
    sent_again = send("test1a2b-duplicate", "fifo_dedup-2")
    first = receive_and_delete()
    second = receive_and_delete()
    assert (first["MessageId"], first["MD5OfBody"]) == (sent["MessageId"], sent["MD5OfMessageBody"])
    assert (second["MessageId"], second["MD5OfBody"]) == (
        sent_again["MessageId"],
        sent_again["MD5OfMessageBody"],
    )


TEST = "0cbc6611f5540bd0809a388dc95a615b"
TEST1, TEST2, TEST3, TEST4 = (
    "e1b849f9631ffc1829b2e31402373e3c",
    "c454552d52d55d3ef56408742887362b",
    "b3f66ec1535de7702c38e94408fa4a17",
    "41d5e808720c8ee71257214e952a6721",
)


def _send(sqs: Sqs, queue: str, body: str, group: str, dedup: str | None = None) -> None:
    extra = {"MessageDeduplicationId": dedup} if dedup else {}
    sqs.client.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=group, **extra)


def _receive(sqs: Sqs, queue: str, **kwargs: Any) -> dict[str, Any]:
    return answer(lambda: sqs.client.receive_message(QueueUrl=queue, **kwargs))


def _delete_first(sqs: Sqs, queue: str, response: dict[str, Any]) -> None:
    sqs.client.delete_message(
        QueueUrl=queue, ReceiptHandle=response["Messages"][0]["ReceiptHandle"]
    )


@recorded("test_sqs_fifo_same_dedup_id_different_message_groups", validated="2024-04-30")
@pytest.mark.moto_differs("deduplication only looks at messages still in the queue")
def test_sqs_fifo_same_dedup_id_different_message_groups(sqs: Sqs) -> None:
    queue = fifo(sqs, FifoQueue="True", ContentBasedDeduplication="False")
    _send(sqs, queue, "Test", "group1", "same-dedup")
    response = _receive(sqs, queue)
    sqs.expect("same-dedup-different-grp-1", response, ok(Messages=[message(1, "Test", TEST)]))
    _delete_first(sqs, queue, response)
    _send(sqs, queue, "Test", "group2", "same-dedup")
    sqs.expect("same-dedup-different-grp-2", _receive(sqs, queue), ok())


@recorded("test_fifo_high_throughput_ordering", validated="2024-04-30")
def test_fifo_high_throughput_ordering(sqs: Sqs) -> None:
    queue = fifo(
        sqs,
        FifoQueue="True",
        ContentBasedDeduplication="False",
        DeduplicationScope="messageGroup",
        FifoThroughputLimit="perMessageGroupId",
    )
    _send(sqs, queue, "Test1", "group1", "same-dedup")
    response = _receive(sqs, queue)
    sqs.expect("same-dedup-different-grp-1", response, ok(Messages=[message(1, "Test1", TEST1)]))
    _delete_first(sqs, queue, response)
    _send(sqs, queue, "Test2", "group2", "same-dedup")
    sqs.expect(
        "same-dedup-different-grp-2",
        _receive(sqs, queue),
        ok(Messages=[message(2, "Test2", TEST2)]),
    )


def _fifo_attributes(scope: str, limit: str) -> dict[str, str]:
    return {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesDelayed": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ContentBasedDeduplication": "false",
        "CreatedTimestamp": "<timestamp-s>",
        "DeduplicationScope": scope,
        "DelaySeconds": "0",
        "FifoQueue": "true",
        "FifoThroughputLimit": limit,
        "LastModifiedTimestamp": "<timestamp-s>",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "QueueArn": "arn:<partition>:sqs:<region>:<account>:<resource:1>",
        "ReceiveMessageWaitTimeSeconds": "0",
        "SqsManagedSseEnabled": "true",
        "VisibilityTimeout": "30",
    }


@recorded("test_fifo_change_to_high_throughput_after_creation", validated="2025-08-19")
@pytest.mark.moto_differs("deduplication only looks at messages still in the queue")
def test_fifo_change_to_high_throughput_after_creation(sqs: Sqs) -> None:
    queue = fifo(
        sqs, FifoQueue="True", ContentBasedDeduplication="False", DeduplicationScope="queue"
    )
    _send(sqs, queue, "Test1", "group1", "same-dedup")
    response = _receive(sqs, queue)
    sqs.expect("same-dedup-different-grp-1", response, ok(Messages=[message(1, "Test1", TEST1)]))
    _delete_first(sqs, queue, response)
    _send(sqs, queue, "Test2", "group2", "same-dedup")
    sqs.expect("same-dedup-different-grp-2", _receive(sqs, queue, VisibilityTimeout=0), ok())
    sqs.client.set_queue_attributes(
        QueueUrl=queue,
        Attributes={
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        },
    )
    attributes = answer(
        lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
    )
    sqs.expect(
        "set-to-high-throughput",
        attributes,
        ok(Attributes=_fifo_attributes("messageGroup", "perMessageGroupId")),
    )
    sqs.expect("same-dedup-different-grp-high-throughput", _receive(sqs, queue), ok())
    # Recorded: the new scope does not make a third group's same id new ...
    _send(sqs, queue, "Test3", "group3", "same-dedup")
    sqs.expect("same-dedup-different-grp-high-throughput-2", _receive(sqs, queue), ok())
    # ... nor a fresh id sent again from another group.
    _send(sqs, queue, "Test4", "group4", "dedup_2")
    response = _receive(sqs, queue)
    sqs.expect("new-dedup2-high-throughput", response, ok(Messages=[message(2, "Test4", TEST4)]))
    _delete_first(sqs, queue, response)
    _send(sqs, queue, "Test5", "group5", "dedup_2")
    sqs.expect("same-dedup2-high-throughput", _receive(sqs, queue), ok())


@recorded("test_fifo_change_to_regular_throughput_after_creation", validated="2025-08-19")
@pytest.mark.moto_differs("CreatedTimestamp and LastModifiedTimestamp have fractions of a second")
def test_fifo_change_to_regular_throughput_after_creation(sqs: Sqs) -> None:
    queue = fifo(
        sqs,
        FifoQueue="True",
        ContentBasedDeduplication="False",
        DeduplicationScope="messageGroup",
        FifoThroughputLimit="perMessageGroupId",
    )
    _send(sqs, queue, "Test1", "group1", "same-dedup")
    response = _receive(sqs, queue)
    sqs.expect("same-dedup-different-grp-1", response, ok(Messages=[message(1, "Test1", TEST1)]))
    _delete_first(sqs, queue, response)
    _send(sqs, queue, "Test2", "group2", "same-dedup")
    response = _receive(sqs, queue)
    _delete_first(sqs, queue, response)
    sqs.expect("same-dedup-different-grp-2", response, ok(Messages=[message(2, "Test2", TEST2)]))
    sqs.client.set_queue_attributes(
        QueueUrl=queue,
        Attributes={"DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"},
    )
    attributes = answer(
        lambda: sqs.client.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
    )
    sqs.expect(
        "set-to-regular-throughput",
        attributes,
        ok(Attributes=_fifo_attributes("queue", "perQueue")),
    )
    # Recorded: the scope the queue was created with still applies.
    _send(sqs, queue, "Test3", "group3", "same-dedup")
    sqs.expect(
        "same-dedup-different-grp-regular-throughput",
        _receive(sqs, queue),
        ok(Messages=[message(3, "Test3", TEST3)]),
    )


@recorded("test_sqs_fifo_message_group_scope_no_throughput_setting", validated="2024-05-24")
def test_sqs_fifo_message_group_scope_no_throughput_setting(sqs: Sqs) -> None:
    queue = fifo(
        sqs, FifoQueue="True", ContentBasedDeduplication="True", DeduplicationScope="messageGroup"
    )
    _send(sqs, queue, "Test", "group1")
    response = _receive(sqs, queue)
    sqs.expect("same-dedup-different-grp-1", response, ok(Messages=[message(1, "Test", TEST)]))
    _delete_first(sqs, queue, response)
    _send(sqs, queue, "Test", "group2")
    sqs.expect(
        "same-dedup-different-grp-2", _receive(sqs, queue), ok(Messages=[message(2, "Test", TEST)])
    )


# -- dead-letter queues -------------------------------------------------------------------


@recorded(
    "test_dead_letter_queue_with_fifo_and_content_based_deduplication", validated="2024-05-21"
)
def test_dead_letter_queue_with_fifo_and_content_based_deduplication(sqs: Sqs) -> None:
    dlq = fifo(sqs, "test-dlq", ContentBasedDeduplication="true", MessageRetentionPeriod="1209600")
    policy = json.dumps({"deadLetterTargetArn": sqs.arn(dlq), "maxReceiveCount": 2})
    queue = fifo(
        sqs,
        "test-queue",
        ContentBasedDeduplication="true",
        VisibilityTimeout="60",
        RedrivePolicy=policy,
    )
    first_id = sqs.client.send_message(QueueUrl=queue, MessageBody="foobar", MessageGroupId="1")[
        "MessageId"
    ]
    for _ in range(3):  # twice received, the third receive moves it to the DLQ
        sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=1, VisibilityTimeout=0)
    moved = sqs.client.receive_message(QueueUrl=dlq, WaitTimeSeconds=10)["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in moved] == [(first_id, "foobar")]
    # The queue keeps serving the group.
    second_id = sqs.client.send_message(QueueUrl=queue, MessageBody="foobar2", MessageGroupId="1")[
        "MessageId"
    ]
    again = sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert [(m["MessageId"], m["Body"]) for m in again[:1]] == [(second_id, "foobar2")]


@recorded("test_dead_letter_queue_message_attributes", validated="2024-04-30")
@pytest.mark.protocols("json")
@pytest.mark.moto_differs("the DLQ copy has no DeadLetterQueueSourceArn")
def test_dead_letter_queue_message_attributes(sqs: Sqs) -> None:
    dlq = sqs.create_queue(sqs.name("dl-queue"))
    dlq_arn = sqs.arn(dlq)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    queue = sqs.create_queue(sqs.name("queue"), RedrivePolicy=policy)
    sqs.expect("dlq-arn", dlq_arn, "arn:<partition>:sqs:<region>:<account>:<resource:1>")
    sqs.expect("sourcen-arn", sqs.arn(queue), "arn:<partition>:sqs:<region>:<account>:<resource:2>")
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    my_attribute = {"MyAttribute": {"StringValue": "foobar", "DataType": "String"}}
    sqs.client.send_message(
        QueueUrl=queue,
        MessageBody="message-1",
        MessageSystemAttributes={"AWSTraceHeader": {"StringValue": trace, "DataType": "String"}},
        MessageAttributes=my_attribute,
    )
    sqs.client.send_message(QueueUrl=queue, MessageBody="message-2")
    messages: list[dict[str, Any]] = []
    for _ in range(4):
        response = sqs.client.receive_message(
            QueueUrl=queue,
            VisibilityTimeout=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages += response.get("Messages", [])
    messages.sort(key=lambda m: m["Body"])
    for received in messages:
        del received["Attributes"]["SenderId"]  # as the recording does
    base = {
        "ApproximateFirstReceiveTimestamp": "<timestamp-ms>",
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "<timestamp-ms>",
    }
    with_attributes = {
        "MD5OfMessageAttributes": "adb59cd4678ea5a855436b949cd07ab6",
        "MessageAttributes": my_attribute,
    }
    m1, m2 = "3d6b824fd8c1520e9a047d21fee6fb1f", "95ef155b66299d14edf7ed57c468c13b"
    sqs.expect(
        "rec-pre-dlq",
        messages,
        [
            message(
                1,
                "message-1",
                m1,
                1,
                Attributes={**base, "AWSTraceHeader": trace},
                **with_attributes,
            ),
            message(2, "message-2", m2, 2, Attributes=base),
        ],
    )
    collected: list[dict[str, Any]] = []
    for _ in range(2):
        response = sqs.client.receive_message(
            QueueUrl=dlq,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            MaxNumberOfMessages=10,
        )
        collected += response.get("Messages", [])
        if len(collected) == 2:
            break
    collected.sort(key=lambda m: m["Body"])
    for received in collected:
        del received["Attributes"]["SenderId"]
    moved = {
        **base,
        "ApproximateReceiveCount": "2",
        "DeadLetterQueueSourceArn": "arn:<partition>:sqs:<region>:<account>:<resource:2>",
    }
    sqs.expect(
        "dlq-messages",
        collected,
        [
            message(
                1,
                "message-1",
                m1,
                3,
                Attributes={**moved, "AWSTraceHeader": trace},
                **with_attributes,
            ),
            message(2, "message-2", m2, 4, Attributes=moved),
        ],
    )
