"""Messages on standard queues: send, receive, delete, batches, sizes, attributes and MD5s.

Each test replays one AWS-validated case of LocalStack's ``tests/aws/services/sqs/
test_sqs.py`` (the calls read at :data:`~tests.parity.expect.LOCALSTACK_COMMIT`, written
here anew) and compares every answer with the one recorded from AWS in
``test_sqs.snapshot.json`` under the key named in ``sqs.expect``; cases without a recorded
snapshot assert what the recording's test asserted against AWS.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from functools import partial
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.parity.backends import Sqs
from tests.parity.expect import Error, answer, invalid_parameter_value, missing_parameter, ok

recorded = pytest.mark.aws_recording

MAX_MESSAGE_BYTES = 1_048_576
ATTRIBUTE_K = {"k": {"DataType": "String", "StringValue": "x"}}
ATTRIBUTE_K_SIZE = len("k") + len("String") + len("x")


def message(n: int, body: str, md5: str, handle: int | None = None, **extra: Any) -> dict[str, Any]:
    """A received message as recorded: ``<uuid:n>`` and ``<receipt-handle:handle>``."""
    return {
        "Body": body,
        "MD5OfBody": md5,
        "MessageId": f"<uuid:{n}>",
        "ReceiptHandle": f"<receipt-handle:{handle or n}>",
        **extra,
    }


# -- send and receive ----------------------------------------------------------------------


@recorded("test_send_receive_message", validated="2024-04-30")
def test_send_receive_message(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sent = answer(lambda: sqs.client.send_message(QueueUrl=queue, MessageBody="message"))
    sqs.expect("send", sent, ok(MessageId="<uuid:1>", MD5OfMessageBody=MD5_MESSAGE))
    received = answer(lambda: sqs.client.receive_message(QueueUrl=queue))
    sqs.expect("receive", received, ok(Messages=[message(1, "message", MD5_MESSAGE)]))


MD5_MESSAGE = "78e731027d8fd50ed642340b7c9a63b3"


@recorded("test_send_empty_message", validated="2025-09-22")
@pytest.mark.moto_differs("an empty MessageBody is accepted")
def test_send_empty_message(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    error = answer(lambda: sqs.client.send_message(QueueUrl=queue, MessageBody=""))
    sqs.expect("send_empty_message", error, missing_parameter("MessageBody").on(sqs.protocol))


@recorded("test_send_receive_max_number_of_messages", validated="2024-04-30")
@pytest.mark.moto_differs("the error message is worded differently")
def test_send_receive_max_number_of_messages(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.send_message(QueueUrl=queue, MessageBody="message")
    error = answer(lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=11))
    sqs.expect(
        "send_max_number_of_messages",
        error,
        invalid_parameter_value(
            "Value 11 for parameter MaxNumberOfMessages is invalid. "
            "Reason: Must be between 1 and 10, if provided."
        ).on(sqs.protocol),
    )


@recorded("test_receive_empty_queue", validated="2025-02-10")
def test_receive_empty_queue(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.expect(
        "empty_short_poll_resp_no_param",
        answer(lambda: sqs.client.receive_message(QueueUrl=queue)),
        ok(),
    )
    sqs.expect(
        "empty_short_poll_resp",
        answer(lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)),
        ok(),
    )
    sqs.expect(
        "empty_long_poll_resp",
        answer(
            lambda: sqs.client.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=1
            )
        ),
        ok(),
    )


@recorded("test_send_receive_wait_time_seconds", validated="2025-02-10")
@pytest.mark.moto_differs("the error message is worded differently")
def test_send_receive_wait_time_seconds(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.send_message(QueueUrl=queue, MessageBody="message")
    sqs.client.send_message(QueueUrl=queue, MessageBody="message")
    for key, wait in (
        ("recieve_message_error_too_large", 21),
        ("recieve_message_error_too_small", -1),
    ):
        error = answer(partial(sqs.client.receive_message, QueueUrl=queue, WaitTimeSeconds=wait))
        sqs.expect(
            key,
            error,
            invalid_parameter_value(
                f"Value {wait} for parameter WaitTimeSeconds is invalid. "
                "Reason: Must be >= 0 and <= 20, if provided."
            ).on(sqs.protocol),
        )
    by_default = answer(lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1))
    sqs.expect(
        "empty_short_poll_by_default_resp",
        by_default,
        ok(Messages=[message(1, "message", MD5_MESSAGE)]),
    )
    explicit = answer(
        lambda: sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=0)
    )
    sqs.expect(
        "empty_short_poll_explicit_resp",
        explicit,
        ok(Messages=[message(2, "message", MD5_MESSAGE)]),
    )


@recorded("test_wait_time_seconds_waits_correctly", validated="2025-01-23")
def test_wait_time_seconds_waits_correctly(sqs: Sqs) -> None:
    # The recording sends from a timer thread one second into a 10 s long poll; here the
    # send goes out as soon as the poll is seen waiting (real-time waits for this case).
    queue = sqs.create_queue()
    result: dict[str, Any] = {}

    def poll() -> None:
        result["response"] = sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=10)

    with sqs.real_time_waits():
        poller = threading.Thread(target=poll)
        poller.start()
        try:
            sqs.await_long_poll()
            sqs.client.send_message(QueueUrl=queue, MessageBody="foobared")
        finally:
            poller.join(timeout=15)
    assert len(result["response"].get("Messages", [])) == 1, result


@recorded("test_receive_message_attributes_timestamp_types", validated="2024-04-30")
def test_receive_message_attributes_timestamp_types(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.send_message(QueueUrl=queue, MessageBody="message")
    received = answer(
        lambda: sqs.client.receive_message(
            QueueUrl=queue, VisibilityTimeout=0, AttributeNames=["All"]
        )
    )
    # The recording asserts both timestamps are whole numbers; the full shape of this
    # answer is recorded by test_receive_message_attribute_names_filters.
    attributes = {
        "ApproximateFirstReceiveTimestamp": "<timestamp-ms>",
        "ApproximateReceiveCount": "1",
        "SenderId": "<sender-id:1>",
        "SentTimestamp": "<timestamp-ms>",
    }
    sqs.expect(
        "r0", received, ok(Messages=[message(1, "message", MD5_MESSAGE, Attributes=attributes)])
    )


@recorded("test_send_receive_message_multiple_queues", validated="2024-04-30")
@pytest.mark.protocols("json")
def test_send_receive_message_multiple_queues(sqs: Sqs) -> None:
    queue0, queue1 = sqs.create_queue(), sqs.create_queue()
    sqs.client.send_message(QueueUrl=queue0, MessageBody="message")
    sqs.expect("queue1", answer(lambda: sqs.client.receive_message(QueueUrl=queue1)), ok())
    received = answer(lambda: sqs.client.receive_message(QueueUrl=queue0))
    sqs.expect("queue0", received, ok(Messages=[message(1, "message", MD5_MESSAGE)]))


@recorded("test_send_receive_message_encoded_content", validated="2024-04-30")
def test_send_receive_message_encoded_content(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    body = '"&quot;&quot;\r'
    sqs.client.send_message(QueueUrl=queue, MessageBody=body)
    received = sqs.client.receive_message(QueueUrl=queue)
    assert [m["Body"] for m in received["Messages"]] == [body]


# -- batches ------------------------------------------------------------------------------


@recorded("test_send_message_batch", validated="2024-04-30")
def test_send_message_batch(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": "1", "MessageBody": "message-0"}, {"Id": "2", "MessageBody": "message-1"}],
    )
    bodies = [
        [m["Body"] for m in sqs.client.receive_message(QueueUrl=queue).get("Messages", [])]
        for _ in range(3)
    ]
    assert bodies == [["message-0"], ["message-1"], []]


@recorded("test_send_batch_receive_multiple", validated="2024-04-30")
def test_send_batch_receive_multiple(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": "1", "MessageBody": "message-0"}, {"Id": "2", "MessageBody": "message-1"}],
    )
    sqs.client.send_message(QueueUrl=queue, MessageBody="message-2")
    received: list[dict[str, Any]] = []
    for _ in range(3):
        if len(received) < 3:
            response = sqs.client.receive_message(QueueUrl=queue, MaxNumberOfMessages=3)
            received += response.get("Messages", [])
    assert sorted(m["Body"] for m in received) == ["message-0", "message-1", "message-2"]


@recorded("test_send_message_batch_with_empty_list", validated="2024-04-30")
@pytest.mark.protocols("json")
def test_send_message_batch_with_empty_list(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    error = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=[]))
    # What the recording asserts: an EmptyBatchRequest error, 400 or 404.
    assert "EmptyBatchRequest" in error["Error"]["Code"], error
    assert error["ResponseMetadata"]["HTTPStatusCode"] in (400, 404), error


@recorded("test_too_many_entries_in_batch_request", validated="2024-04-30")
@pytest.mark.moto_differs(
    "query errors carry extra message fields and no Detail", protocols=("query",)
)
def test_too_many_entries_in_batch_request(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    entries = [{"Id": f"message-{i}", "MessageBody": f"messageBody-{i}"} for i in range(20)]
    error = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    sqs.expect("test_too_many_entries_in_batch_request", error, TOO_MANY_ENTRIES.on(sqs.protocol))


TOO_MANY_ENTRIES = Error(
    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "Maximum number of entries per request are 10. You have sent 20.",
    "TooManyEntriesInBatchRequest",
)
INVALID_BATCH_ID = Error(
    "AWS.SimpleQueueService.InvalidBatchEntryId",
    "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
    "It can be at most 80 letters long.",
    "InvalidBatchEntryId",
)


@recorded("test_invalid_batch_id", validated="2024-04-30")
@pytest.mark.moto_differs(
    "query errors carry extra message fields and no Detail", protocols=("query",)
)
def test_invalid_batch_id(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    entries = [{"Id": "message:1a2b3c4d", "MessageBody": "messageBody-1a2b3c4d"}]
    error = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    sqs.expect("test_invalid_batch_id", error, INVALID_BATCH_ID.on(sqs.protocol))


@recorded("test_delete_message_batch_invalid_msg_id", validated="2024-04-30")
@pytest.mark.parametrize("entry_id", ["", "testLongId" * 10, "invalid:id"])
@pytest.mark.moto_differs("a batch entry id is not validated")
def test_delete_message_batch_invalid_msg_id(sqs: Sqs, entry_id: str) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    entries = [{"Id": entry_id, "ReceiptHandle": "testHandle1"}]
    error = answer(lambda: sqs.client.delete_message_batch(QueueUrl=queue, Entries=entries))
    sqs.expect("error_response", error, INVALID_BATCH_ID.on(sqs.protocol))


def _twenty_in_flight(sqs: Sqs, queue: str) -> list[dict[str, Any]]:
    entries = [{"Id": f"message-{i}", "MessageBody": f"messageBody-{i}"} for i in range(10)]
    for _ in range(2):
        sent = sqs.client.send_message_batch(QueueUrl=queue, Entries=entries)
        assert len(sent["Successful"]) == 10
    received: list[dict[str, Any]] = []
    while len(received) < 20:
        response = sqs.client.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=min(10, 20 - len(received))
        )
        assert response.get("Messages"), f"only {len(received)} of 20 messages received"
        received += response["Messages"]
    return received


@recorded("test_delete_message_batch_with_too_large_batch", validated="2024-04-30")
@pytest.mark.moto_differs("more than 10 entries are accepted")
def test_delete_message_batch_with_too_large_batch(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    received = _twenty_in_flight(sqs, queue)
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    error = answer(lambda: sqs.client.delete_message_batch(QueueUrl=queue, Entries=entries))
    sqs.expect("error_response", error, TOO_MANY_ENTRIES.on(sqs.protocol))


@recorded("test_change_message_visibility_batch_with_too_large_batch", validated="2024-04-30")
@pytest.mark.moto_differs("more than 10 entries are accepted")
def test_change_message_visibility_batch_with_too_large_batch(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    received = _twenty_in_flight(sqs, queue)
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 123}
        for i, m in enumerate(received)
    ]
    error = answer(
        lambda: sqs.client.change_message_visibility_batch(QueueUrl=queue, Entries=entries)
    )
    sqs.expect("error_response", error, TOO_MANY_ENTRIES.on(sqs.protocol))


# -- sizes --------------------------------------------------------------------------------


def _too_long(limit: int) -> Error:
    return invalid_parameter_value(
        f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes."
    )


@recorded("test_send_oversized_message", validated="2025-08-19")
@pytest.mark.moto_differs("message attributes do not count towards the size")
def test_send_oversized_message(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    body = "a" * (MAX_MESSAGE_BYTES - ATTRIBUTE_K_SIZE + 1)
    error = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody=body, MessageAttributes=ATTRIBUTE_K
        )
    )
    sqs.expect("send_oversized_message", error, _too_long(MAX_MESSAGE_BYTES).on(sqs.protocol))


@recorded("test_send_message_with_updated_maximum_message_size", validated="2024-04-30")
@pytest.mark.moto_differs("message attributes do not count towards the size")
def test_send_message_with_updated_maximum_message_size(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"MaximumMessageSize": "1024"})
    sqs.client.send_message(QueueUrl=queue, MessageBody="a" * 1024)
    body = "a" * (1024 - ATTRIBUTE_K_SIZE + 1)
    error = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody=body, MessageAttributes=ATTRIBUTE_K
        )
    )
    sqs.expect("send_oversized_message", error, _too_long(1024).on(sqs.protocol))


@recorded("test_send_message_batch_with_oversized_contents", validated="2025-08-19")
@pytest.mark.moto_differs("BatchRequestTooLong is not enforced")
def test_send_message_batch_with_oversized_contents(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    entries = [
        {
            "Id": "1",
            "MessageBody": "a" * (MAX_MESSAGE_BYTES - ATTRIBUTE_K_SIZE),
            "MessageAttributes": ATTRIBUTE_K,
        },
        {"Id": "2", "MessageBody": "a"},
    ]
    error = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    expected = Error(
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.",
        "BatchRequestTooLong",
    )
    sqs.expect("send_oversized_message_batch", error, expected.on(sqs.protocol))


@recorded(
    "test_send_message_batch_with_oversized_contents_with_updated_maximum_message_size",
    validated="2024-04-30",
)
@pytest.mark.moto_differs("an empty Failed list is returned", protocols=("json",))
def test_send_message_batch_with_oversized_contents_with_updated_maximum_message_size(
    sqs: Sqs,
) -> None:
    queue = sqs.create_queue()
    sqs.client.set_queue_attributes(QueueUrl=queue, Attributes={"MaximumMessageSize": "2048"})
    entries = [
        {
            "Id": "1",
            "MessageBody": "a" * (2048 - ATTRIBUTE_K_SIZE),
            "MessageAttributes": ATTRIBUTE_K,
        },
        {"Id": "2", "MessageBody": "a"},
    ]
    sent = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    sqs.expect(
        "send_oversized_message_batch",
        sent,
        ok(
            Successful=[
                {
                    "Id": "1",
                    "MD5OfMessageAttributes": "a45daa70926828a2f0a1db3418e6feb4",
                    "MD5OfMessageBody": "f44facf5a7ee0af446ecf3e0f854441e",
                    "MessageId": "<uuid:1>",
                },
                {
                    "Id": "2",
                    "MD5OfMessageBody": "0cc175b9c0f1b6a831c399e269772661",
                    "MessageId": "<uuid:2>",
                },
            ]
        ),
    )


@recorded("test_send_batch_message_size", validated="2024-04-30")
@pytest.mark.protocols("json")
@pytest.mark.moto_differs("an oversized entry fails the whole batch")
def test_send_batch_message_size(sqs: Sqs) -> None:
    queue = sqs.create_queue(MaximumMessageSize="1024")
    entries = [
        {"Id": "a4cff0d1-1961-44bd-ae53-c6d5ed71ed08", "MessageBody": "a" * 1024},
        {"Id": "35b535ed-b76a-4ebd-b749-6eb35cdb55ee", "MessageBody": "a" * 1025},
    ]
    sent = answer(lambda: sqs.client.send_message_batch(QueueUrl=queue, Entries=entries))
    sqs.expect(
        "send-message-batch-result",
        sent,
        ok(
            Failed=[
                {
                    "Code": "InvalidParameterValue",
                    "Id": "35b535ed-b76a-4ebd-b749-6eb35cdb55ee",
                    "Message": "One or more parameters cannot be validated. Reason: Message must "
                    "be shorter than 1024 bytes.",
                    "SenderFault": True,
                }
            ],
            Successful=[
                {
                    "Id": "a4cff0d1-1961-44bd-ae53-c6d5ed71ed08",
                    "MD5OfMessageBody": "c9a34cfc85d982698c6ac89f76071abd",
                    "MessageId": "<uuid:3>",
                }
            ],
        ),
    )


# -- visibility and deletes on standard queues ----------------------------------------------


@recorded("test_delete_after_visibility_timeout", validated="2025-03-28")
def test_delete_after_visibility_timeout(sqs: Sqs) -> None:
    queue = sqs.create_queue(VisibilityTimeout="1")
    sqs.client.send_message(QueueUrl=queue, MessageBody="foobar")
    initial = sqs.client.receive_message(QueueUrl=queue, WaitTimeSeconds=5)
    handle = initial["Messages"][0]["ReceiptHandle"]
    sqs.sleep(1)
    sqs.client.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    sqs.expect(
        "delete_after_timeout_queue_empty",
        answer(lambda: sqs.client.receive_message(QueueUrl=queue)),
        ok(),
    )


@recorded(
    "test_change_message_visibility_after_visibility_timeout_expiration", validated="2024-04-30"
)
def test_change_message_visibility_after_visibility_timeout_expiration(sqs: Sqs) -> None:
    queue = sqs.create_queue(VisibilityTimeout="1")
    sqs.client.send_message(QueueUrl=queue, MessageBody="test")
    handle = sqs.client.receive_message(QueueUrl=queue)["Messages"][0]["ReceiptHandle"]
    sqs.sleep(2)
    changed = answer(
        lambda: sqs.client.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=2
        )
    )
    sqs.expect("visibility_timeout_expired", changed, ok())


# -- message attributes and their MD5s ----------------------------------------------------


@recorded("test_send_message_with_binary_attributes", validated="2024-04-30")
def test_send_message_with_binary_attributes(sqs: Sqs) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    attributes = {
        "attr1": {
            "BinaryValue": b"traceparent\x1e00-774062d6c37081a5a0b9b5b88e30627c-"
            b"2d2482211f6489da-01",
            "DataType": "Binary",
        }
    }
    sent = sqs.client.send_message(QueueUrl=queue, MessageBody="test", MessageAttributes=attributes)
    received = answer(
        lambda: sqs.client.receive_message(QueueUrl=queue, MessageAttributeNames=["All"])
    )
    sqs.expect(
        "binary-attrs-msg",
        received,
        ok(
            Messages=[
                message(
                    1,
                    "test",
                    "098f6bcd4621d373cade4e832627b4f6",
                    MD5OfMessageAttributes="8cbe4db156db8a94db8b801b7addb984",
                    MessageAttributes=attributes,
                )
            ]
        ),
    )
    assert sent["MD5OfMessageAttributes"] == "8cbe4db156db8a94db8b801b7addb984"


@recorded("test_send_message_with_empty_string_attribute", validated="2024-04-30")
@pytest.mark.moto_differs("an empty attribute value is accepted")
def test_send_message_with_empty_string_attribute(sqs: Sqs) -> None:
    queue = sqs.create_queue()
    error = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue,
            MessageBody="test",
            MessageAttributes={"ErrorDetails": {"StringValue": "", "DataType": "String"}},
        )
    )
    sqs.expect(
        "empty-string-attr",
        error,
        invalid_parameter_value(
            "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type "
            "'String'."
        ).on(sqs.protocol),
    )


HELLO_THERE = {
    "Help.Me": {"DataType": "String", "StringValue": "Me"},
    "Hello": {"DataType": "String", "StringValue": "There"},
    "General": {"DataType": "String", "StringValue": "Kenobi"},
}
MD5_MSG = "6e2baaf3b97dbeef01c0043275f9a0e7"


@recorded("test_receive_message_message_attribute_names_filters", validated="2024-04-30")
@pytest.mark.moto_differs("'*' selects no message attributes")
def test_receive_message_message_attribute_names_filters(sqs: Sqs) -> None:
    queue = sqs.create_queue(VisibilityTimeout="0")
    sent = answer(
        lambda: sqs.client.send_message(
            QueueUrl=queue, MessageBody="msg", MessageAttributes=HELLO_THERE
        )
    )
    sqs.expect(
        "send_message_response",
        sent,
        ok(
            MD5OfMessageAttributes="4c360f3fdafd970e05fae2f149d997f5",
            MD5OfMessageBody=MD5_MSG,
            MessageId="<uuid:1>",
        ),
    )
    handles = iter(range(1, 11))

    def receive(names: list[str]) -> dict[str, Any]:
        return answer(
            lambda: sqs.client.receive_message(
                QueueUrl=queue, WaitTimeSeconds=5, MessageAttributeNames=names
            )
        )

    def received(**attributes: Any) -> dict[str, Any]:
        return message(1, "msg", MD5_MSG, next(handles), **attributes)

    everything = {
        "MD5OfMessageAttributes": "4c360f3fdafd970e05fae2f149d997f5",
        "MessageAttributes": HELLO_THERE,
    }
    sqs.expect("empty_filter", receive([]), ok(Messages=[received()]))
    sqs.expect("all_name", receive(["All"]), ok(Messages=[received(**everything)]))
    sqs.expect("all_wildcard_asterisk", receive(["*"])["Messages"][0], received(**everything))
    sqs.expect("all_wildcard", receive([".*"])["Messages"][0], received(**everything))
    sqs.expect("only_non_existing_names", receive(["Foo", "Help"])["Messages"][0], received())
    sqs.expect(
        "only_existing",
        receive(["Hello", "General"])["Messages"][0],
        received(
            MD5OfMessageAttributes="fca026605781cb4126a1e9044df24232",
            MessageAttributes={"General": HELLO_THERE["General"], "Hello": HELLO_THERE["Hello"]},
        ),
    )
    sqs.expect(
        "existing_and_non_existing",
        receive(["Foo", "Hello"])["Messages"][0],
        received(
            MD5OfMessageAttributes="a311262e065454b75da111d535b8dacd",
            MessageAttributes={"Hello": HELLO_THERE["Hello"]},
        ),
    )
    sqs.expect(
        "prefix_filter",
        receive(["Hel.*"])["Messages"][0],
        received(
            MD5OfMessageAttributes="83fee93c1bcd8b9a5a923ffacdc636c7",
            MessageAttributes={"Hello": HELLO_THERE["Hello"], "Help.Me": HELLO_THERE["Help.Me"]},
        ),
    )
    sqs.expect("illegal_name_1", receive(["AWS."]), ok(Messages=[received()]))
    sqs.expect("illegal_name_2", receive(["..foo"]), ok(Messages=[received()]))


FOO_BAR = {"Foo": {"DataType": "String", "StringValue": "Bar"}}
ALL_SYSTEM = {
    "ApproximateFirstReceiveTimestamp": "<timestamp-ms>",
    "ApproximateReceiveCount": "1",
    "SenderId": "<sender-id:1>",
    "SentTimestamp": "<timestamp-ms>",
}


def _attribute_filters(sqs: Sqs, parameter: str) -> None:
    queue = sqs.create_queue(VisibilityTimeout="0")
    sqs.client.send_message(QueueUrl=queue, MessageBody="msg", MessageAttributes=FOO_BAR)

    def receive(names: list[str], message_names: list[str] | None = None) -> dict[str, Any]:
        return answer(
            lambda: sqs.client.receive_message(
                QueueUrl=queue,
                WaitTimeSeconds=5,
                MessageAttributeNames=message_names or [],
                **{parameter: names},
            )
        )

    sqs.expect(
        "all_attributes",
        receive(["All"]),
        ok(Messages=[message(1, "msg", MD5_MSG, 1, Attributes=ALL_SYSTEM)]),
    )
    sqs.expect(
        "all_system_and_message_attributes",
        receive(["All"], ["All"]),
        ok(
            Messages=[
                message(
                    1,
                    "msg",
                    MD5_MSG,
                    2,
                    Attributes={**ALL_SYSTEM, "ApproximateReceiveCount": "2"},
                    MD5OfMessageAttributes="ae7155c6026991b6d54b11589678bf9c",
                    MessageAttributes=FOO_BAR,
                )
            ]
        ),
    )
    single = {"SenderId": "<sender-id:1>"}
    sqs.expect(
        "single_attribute",
        receive(["SenderId"]),
        ok(Messages=[message(1, "msg", MD5_MSG, 3, Attributes=single)]),
    )
    sqs.expect(
        "multiple_attributes",
        receive(["SenderId", "SequenceNumber"]),
        ok(Messages=[message(1, "msg", MD5_MSG, 4, Attributes=single)]),
    )


@recorded("test_receive_message_attribute_names_filters", validated="2024-06-04")
def test_receive_message_attribute_names_filters(sqs: Sqs) -> None:
    _attribute_filters(sqs, "AttributeNames")


@recorded("test_receive_message_message_system_attribute_names_filters", validated="2024-06-04")
def test_receive_message_message_system_attribute_names_filters(sqs: Sqs) -> None:
    _attribute_filters(sqs, "MessageSystemAttributeNames")


@recorded("test_message_system_attribute_names_with_attribute_names", validated="2024-06-04")
@pytest.mark.moto_differs(
    "the query protocol's AttributeName.N does not take precedence", protocols=("query",)
)
def test_message_system_attribute_names_with_attribute_names(sqs: Sqs) -> None:
    queue = sqs.create_queue(VisibilityTimeout="0")
    sqs.client.send_message(QueueUrl=queue, MessageBody="msg", MessageAttributes=FOO_BAR)

    def receive(system_names: list[str], names: list[str]) -> dict[str, Any]:
        return answer(
            lambda: sqs.client.receive_message(
                QueueUrl=queue,
                WaitTimeSeconds=5,
                MessageSystemAttributeNames=system_names,
                AttributeNames=names,
            )
        )

    sqs.expect(
        "same_values",
        receive(["All"], ["All"]),
        ok(Messages=[message(1, "msg", MD5_MSG, 1, Attributes=ALL_SYSTEM)]),
    )
    # The JSON protocol took MessageSystemAttributeNames (All); the query protocol's
    # AttributeName.N (SenderId) won, as recorded for each.
    different = (
        {**ALL_SYSTEM, "ApproximateReceiveCount": "2"}
        if sqs.protocol == "json"
        else {"SenderId": "<sender-id:1>"}
    )
    sqs.expect(
        "different_values",
        receive(["All"], ["SenderId"]),
        ok(Messages=[message(1, "msg", MD5_MSG, 2, Attributes=different)]),
    )


@recorded("test_aws_trace_header_propagation", validated="2025-06-27")
@pytest.mark.moto_differs("X-Amzn-Trace-Id does not become AWSTraceHeader")
def test_aws_trace_header_propagation(sqs: Sqs) -> None:
    trace = "Root=1-3152b799-8954dae64eda91bc9a23a7e8;Parent=7fa8c0f79203be72;Sampled=1"

    def add_trace_header(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = trace

    queue = sqs.create_queue()
    attributes = {"timestamp": {"StringValue": "1493147359900", "DataType": "Number"}}
    events = sqs.client.meta.events
    events.register("before-send.sqs.SendMessage", add_trace_header)
    try:
        sqs.client.send_message(QueueUrl=queue, MessageBody="test", MessageAttributes=attributes)
    finally:
        events.unregister("before-send.sqs.SendMessage", add_trace_header)
    response = sqs.client.receive_message(
        QueueUrl=queue,
        AttributeNames=["SentTimestamp", "AWSTraceHeader"],
        MaxNumberOfMessages=1,
        MessageAttributeNames=["All"],
        VisibilityTimeout=2,
        WaitTimeSeconds=2,
    )
    # The recording masks the attribute's value as "timestamp"; its MD5 pins it.
    sqs.expect(
        "xray-msg",
        response["Messages"][0],
        message(
            1,
            "test",
            "098f6bcd4621d373cade4e832627b4f6",
            Attributes={"AWSTraceHeader": trace, "SentTimestamp": "<timestamp-ms>"},
            MD5OfMessageAttributes="235c5c510d26fb653d073faed50ae77c",
            MessageAttributes=attributes,
        ),
    )


@recorded("test_marker_serialization_json_protocol", validated="2024-05-07")
@pytest.mark.protocols("json")
@pytest.mark.deviation("query-json-responses")
@pytest.mark.moto_differs("a query request that accepts JSON is answered in XML")
@pytest.mark.parametrize(
    "body",
    ['{"foo": "ba\rr", "foo2": "ba&quot;r&quot;"}', json.dumps('{"foo": "ba\rr"}')],
    ids=["object", "string"],
)
def test_marker_serialization_json_protocol(sqs: Sqs, body: str) -> None:
    queue = sqs.create_queue(sqs.name("queue"))
    sqs.json.send_message(QueueUrl=queue, MessageBody=body)
    # A signed query-protocol GET that asks for JSON, as the recording sent it.
    params = {
        "Action": "ReceiveMessage",
        "QueueUrl": queue,
        "Version": "2012-11-05",
        "VisibilityTimeout": "0",
    }
    request = AWSRequest(
        method="GET",
        url=f"{sqs.url}/?{urllib.parse.urlencode(params)}",
        headers={"Accept": "application/json"},
    )
    SigV4Auth(Credentials("testing", "testing"), "sqs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    signed = urllib.request.Request(prepared.url, headers=dict(prepared.headers))  # noqa: S310
    with urllib.request.urlopen(signed, timeout=10) as response:  # noqa: S310 - local endpoint
        content = response.read().decode()
    parsed = json.loads(content)
    result = parsed["ReceiveMessageResponse"]["ReceiveMessageResult"]
    assert result["messages"][0]["Body"] == body
    received = sqs.json.receive_message(QueueUrl=queue)
    assert received["Messages"][0]["Body"] == body
