"""Message semantics on every queue type: visibility, receipt handles, system attributes,
long polling, size and batch limits. Each runs on our endpoint and on plain moto."""

from __future__ import annotations

import hashlib
import http.client
import json
import struct
import threading
import time
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.sqs.testing import SqsBackend, error_of

ONE_MIB = 1_048_576


def receive(backend: SqsBackend, queue: str, **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("MaxNumberOfMessages", 10)
    response = backend.sqs.receive_message(
        QueueUrl=queue, MessageSystemAttributeNames=["All"], **kwargs
    )
    return list(response.get("Messages", []))


def receive_when_visible(backend: SqsBackend, queue: str) -> list[dict[str, Any]]:
    return wait_until(
        lambda: receive(backend, queue, WaitTimeSeconds=1),
        timeout=10,
        description="the message to become visible again",
    )


def depth(backend: SqsBackend, queue: str) -> dict[str, str]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = backend.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)
    return dict(attributes["Attributes"])


# -- visibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("fifo", [True, False], ids=["fifo", "standard"])
def test_visibility_timeout_of_the_queue_hides_then_returns_the_message(
    sqs_backend: SqsBackend, fifo: bool
) -> None:
    queue = sqs_backend.queue(fifo=fifo, VisibilityTimeout=1)
    sqs_backend.sqs.send_message(
        QueueUrl=queue, MessageBody="x", **({"MessageGroupId": "g"} if fifo else {})
    )
    started = time.monotonic()
    (first,) = receive(sqs_backend, queue)
    assert receive(sqs_backend, queue) == []

    (again,) = receive_when_visible(sqs_backend, queue)

    assert time.monotonic() - started >= 0.9
    assert again["MessageId"] == first["MessageId"]
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert (
        again["Attributes"]["ApproximateFirstReceiveTimestamp"]
        == first["Attributes"]["ApproximateFirstReceiveTimestamp"]
    )


def test_visibility_timeout_of_a_receive_overrides_the_queue(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False, VisibilityTimeout=300)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x")
    receive(sqs_backend, queue, VisibilityTimeout=1)

    assert [m["Body"] for m in receive_when_visible(sqs_backend, queue)] == ["x"]


def test_change_message_visibility_to_zero_returns_the_message_at_once(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(VisibilityTimeout=300)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="g")
    (message,) = receive(sqs_backend, queue)

    sqs_backend.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )

    (again,) = receive(sqs_backend, queue)
    assert again["MessageId"] == message["MessageId"]


def test_system_attributes_of_a_received_message(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    before_ms = int(time.time() * 1000) - 1000
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="g")

    (message,) = receive(sqs_backend, queue)
    attributes = message["Attributes"]
    after_ms = int(time.time() * 1000) + 1000

    assert before_ms <= int(attributes["SentTimestamp"]) <= after_ms
    assert (
        int(attributes["SentTimestamp"])
        <= int(attributes["ApproximateFirstReceiveTimestamp"])
        <= after_ms
    )
    assert attributes["ApproximateReceiveCount"] == "1"
    assert attributes["MessageGroupId"] == "g"
    assert attributes["SenderId"]


def test_message_attributes_round_trip_with_their_md5(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    attributes: dict[str, dict[str, Any]] = {
        "text": {"DataType": "String", "StringValue": "héllo"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    sent = sqs_backend.sqs.send_message(
        QueueUrl=queue, MessageBody="x", MessageAttributes=attributes
    )

    (message,) = receive(sqs_backend, queue, MessageAttributeNames=["All"])

    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert sent["MD5OfMessageAttributes"] == documented_attributes_md5(attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"x").hexdigest()  # noqa: S324 - wire format


def documented_attributes_md5(attributes: dict[str, dict[str, Any]]) -> str:
    """MD5OfMessageAttributes as the SQS developer guide describes it, written out here."""
    data = b""
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name.encode(), value["DataType"].encode()):
            data += struct.pack(">I", len(part)) + part
        if "BinaryValue" in value:
            data += b"\x02" + struct.pack(">I", len(value["BinaryValue"])) + value["BinaryValue"]
        else:
            encoded = value["StringValue"].encode()
            data += b"\x01" + struct.pack(">I", len(encoded)) + encoded
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the SQS wire format


# -- receipt handles ----------------------------------------------------------------------


@pytest.mark.moto_differs("a delete with an expired receipt handle is accepted")
def test_an_expired_receipt_handle_cannot_delete_on_a_fifo_queue(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(VisibilityTimeout=1)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="g")
    (first,) = receive(sqs_backend, queue)
    (second,) = receive_when_visible(sqs_backend, queue)

    error = error_of(
        lambda: sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])
    )

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == (
        f"Value {first['ReceiptHandle']} for parameter ReceiptHandle is invalid. "
        "Reason: The receipt handle has expired."
    )
    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=second["ReceiptHandle"])
    assert depth(sqs_backend, queue)["ApproximateNumberOfMessagesNotVisible"] == "0"


@pytest.mark.moto_differs("a handle whose visibility timeout ran out still deletes")
def test_a_handle_past_its_visibility_timeout_cannot_delete_on_a_fifo_queue(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(VisibilityTimeout=1)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="g")
    (message,) = receive(sqs_backend, queue)
    wait_until(
        lambda: depth(sqs_backend, queue)["ApproximateNumberOfMessages"] == "1",
        timeout=10,
        description="the visibility timeout to run out",
    )

    error = error_of(
        lambda: sqs_backend.sqs.delete_message(
            QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"]
        )
    )

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"].endswith("Reason: The receipt handle has expired.")


@pytest.mark.moto_differs("a stale handle deletes the message on a standard queue")
def test_a_stale_handle_on_a_standard_queue_succeeds_without_deleting(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(fifo=False, VisibilityTimeout=1)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x")
    (first,) = receive(sqs_backend, queue)
    receive_when_visible(sqs_backend, queue)

    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])

    assert depth(sqs_backend, queue)["ApproximateNumberOfMessagesNotVisible"] == "1"


@pytest.mark.moto_differs("the error message does not name the handle")
def test_a_malformed_receipt_handle_is_invalid(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()

    error = error_of(
        lambda: sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-handle")
    )

    assert error["Code"] == "ReceiptHandleIsInvalid"
    assert error["Message"] == (
        'The input receipt handle "not-a-handle" is not a valid receipt handle.'
    )


def test_changing_the_visibility_of_a_message_whose_timeout_ran_out_succeeds(
    sqs_backend: SqsBackend,
) -> None:
    # AWS answers 200 here on a standard queue (recorded: tests/parity, test_change_message_
    # visibility_after_visibility_timeout_expiration).
    queue = sqs_backend.queue(fifo=False, VisibilityTimeout=1)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x")
    (message,) = receive(sqs_backend, queue)
    wait_until(
        lambda: depth(sqs_backend, queue)["ApproximateNumberOfMessages"] == "1",
        timeout=10,
        description="the visibility timeout to run out",
    )

    response = sqs_backend.sqs.change_message_visibility(
        QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=30
    )

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


# -- long polling -------------------------------------------------------------------------


def test_a_long_poll_wakes_on_send(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        result["messages"] = receive(sqs_backend, queue, WaitTimeSeconds=10)
        result["elapsed"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    # Give the poll time to arrive at the server before the send (pacing, not a wait for work).
    time.sleep(0.3)
    sent_at = time.monotonic()
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="wake", MessageGroupId="g")
    poller.join(timeout=15)

    assert [m["Body"] for m in result["messages"]] == ["wake"]
    assert result["elapsed"] < 5, "the poll returned on the send, not at WaitTimeSeconds"
    assert time.monotonic() - sent_at < 5


def test_an_empty_long_poll_waits_then_returns_nothing(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    started = time.monotonic()

    assert receive(sqs_backend, queue, WaitTimeSeconds=1) == []
    assert time.monotonic() - started >= 0.9


@pytest.mark.moto_differs("a long poll never sees its group unlock")
def test_a_long_poll_wakes_when_its_group_unlocks(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="m1", MessageGroupId="g")
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="m2", MessageGroupId="g")
    (m1,) = receive(sqs_backend, queue, MaxNumberOfMessages=1)
    result: dict[str, Any] = {}

    def poll() -> None:
        result["messages"] = receive(sqs_backend, queue, WaitTimeSeconds=10)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # let the poll reach the server first (pacing, not a wait for work)
    sqs_backend.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m1["ReceiptHandle"])
    poller.join(timeout=15)

    assert [m["Body"] for m in result["messages"]] == ["m2"]


# -- limits -------------------------------------------------------------------------------


def test_a_message_of_exactly_one_mib_is_accepted_and_one_byte_more_is_not(
    sqs_backend: SqsBackend,
) -> None:
    queue = sqs_backend.queue(fifo=False)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x" * ONE_MIB)

    error = error_of(
        lambda: sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x" * (ONE_MIB + 1))
    )

    assert error["Code"] == "InvalidParameterValue"
    assert error["Message"] == (
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes."
    )


@pytest.mark.moto_differs("size is counted in characters, not bytes")
def test_size_is_counted_in_utf8_bytes(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    body = "é" * (ONE_MIB // 2 + 1)  # half a million characters, one MiB and two bytes

    error = error_of(lambda: sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody=body))

    assert error["Code"] == "InvalidParameterValue"


@pytest.mark.moto_differs("message attributes do not count towards the size")
def test_message_attributes_count_towards_the_size(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    attributes = {"name": {"DataType": "String", "StringValue": "v" * 20}}

    error = error_of(
        lambda: sqs_backend.sqs.send_message(
            QueueUrl=queue, MessageBody="x" * (ONE_MIB - 10), MessageAttributes=attributes
        )
    )

    assert error["Code"] == "InvalidParameterValue"


def test_a_batch_holds_at_most_ten_entries(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    entries = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]

    error = error_of(lambda: sqs_backend.sqs.send_message_batch(QueueUrl=queue, Entries=entries))

    assert error["Code"] == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    assert error["Message"] == "Maximum number of entries per request are 10. You have sent 11."


def test_batch_entry_ids_must_be_distinct(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    entries = [{"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}]

    error = error_of(lambda: sqs_backend.sqs.send_message_batch(QueueUrl=queue, Entries=entries))

    assert error["Code"] == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    assert error["Message"] == "Id same repeated."


def test_a_batch_may_not_exceed_one_mib_in_total(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    entries = [{"Id": str(i), "MessageBody": "x" * 110_000} for i in range(10)]

    error = error_of(lambda: sqs_backend.sqs.send_message_batch(QueueUrl=queue, Entries=entries))

    assert error["Code"] == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert error["Message"] == (
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1100000 bytes."
    )


def test_a_batch_entry_id_must_be_alphanumeric(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)

    error = error_of(
        lambda: sqs_backend.sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": "not valid", "MessageBody": "x"}]
        )
    )

    assert error["Code"] == "AWS.SimpleQueueService.InvalidBatchEntryId"


@pytest.mark.moto_differs("an invalid entry is accepted instead of failing on its own")
def test_an_invalid_batch_entry_fails_alone(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue()
    entries = [
        {"Id": "ok", "MessageBody": "fine", "MessageGroupId": "g"},
        {"Id": "bad", "MessageBody": "bad group", "MessageGroupId": "g" * 129},
    ]

    response = sqs_backend.sqs.send_message_batch(QueueUrl=queue, Entries=entries)

    assert [entry["Id"] for entry in response["Successful"]] == ["ok"]
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in response["Failed"]] == [
        ("bad", "InvalidParameterValue", True)
    ]


def test_receive_asks_for_one_to_ten_messages(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)

    error = error_of(lambda: receive(sqs_backend, queue, MaxNumberOfMessages=11))

    assert error["Code"] == "InvalidParameterValue"
    assert "MaxNumberOfMessages" in error["Message"]


def test_batch_delete_reports_each_entry(sqs_backend: SqsBackend) -> None:
    queue = sqs_backend.queue(fifo=False)
    sqs_backend.sqs.send_message(QueueUrl=queue, MessageBody="x")
    (message,) = receive(sqs_backend, queue)

    response = sqs_backend.sqs.delete_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "good", "ReceiptHandle": message["ReceiptHandle"]},
            {"Id": "bad", "ReceiptHandle": "garbage"},
        ],
    )

    assert [entry["Id"] for entry in response["Successful"]] == ["good"]
    assert [(f["Id"], f["Code"]) for f in response["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]


# -- throughput quota ---------------------------------------------------------------------


@pytest.mark.moto_differs("there is no throughput quota")
def test_a_burst_beyond_300_receives_per_second_is_throttled(sqs_backend: SqsBackend) -> None:
    """Real time, raw keep-alive requests from 16 threads. The fake-clock tests in
    test_sqs_clock.py pin the quota exactly; this one shows it on the wire."""
    queue = sqs_backend.queue()
    host, port = sqs_backend.url.removeprefix("http://").split(":")
    body = json.dumps({"QueueUrl": queue, "MaxNumberOfMessages": 1}).encode()
    headers = {
        "X-Amz-Target": "AmazonSQS.ReceiveMessage",
        "Content-Type": "application/x-amz-json-1.0",
        # Neither server checks signatures; moto reads the service from the scope.
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/"
        "aws4_request, SignedHeaders=host, Signature=0",
    }
    statuses: list[int] = []
    lock = threading.Lock()

    def burst() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = []
        for _ in range(60):
            connection.request("POST", "/", body, headers)
            response = connection.getresponse()
            payload = response.read()
            mine.append(429 if b"ThrottlingException" in payload else response.status)
        connection.close()
        with lock:
            statuses.extend(mine)

    threads = [threading.Thread(target=burst) for _ in range(16)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    allowed = 300 + 300 * elapsed  # a full bucket plus what refills during the burst
    if len(statuses) < allowed * 1.2:
        pytest.skip(f"{len(statuses) / elapsed:.0f} requests/s: too slow here to exceed the quota")

    throttled = statuses.count(429)
    assert set(statuses) <= {200, 429}
    assert throttled >= len(statuses) - allowed - 50, (throttled, len(statuses), elapsed)
