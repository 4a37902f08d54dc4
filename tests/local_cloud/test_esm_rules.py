"""Lambda's rules for an SQS batch, one by one: what is deleted after an invoke, and the shape
of the event (pure functions; the wiring is tested in test_esm_mapping.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from localcloud.lambda_service.esm import decide, sqs_event
from localcloud.specs import InvokeResult

ARN = "arn:aws:sqs:us-east-1:123456789012:tasks.fifo"


def messages(n: int) -> list[dict[str, Any]]:
    return [{"MessageId": f"m{i}", "ReceiptHandle": f"rh{i}", "Body": f"b{i}"} for i in range(n)]


def ok(payload: bytes) -> InvokeResult:
    return InvokeResult(status_code=200, payload=payload)


def deleted(result: InvokeResult, *, report: bool = True, n: int = 4) -> list[str] | None:
    """Ids deleted, or None when the whole batch failed."""
    decision = decide(result, messages(n), report_failures=report)
    if decision.whole_batch_failed:
        assert decision.delete == ()
        return None
    return [m["MessageId"] for m in decision.delete]


@pytest.mark.parametrize(
    "payload",
    [b"null", b"", b"  ", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}'],
    ids=["null", "empty", "blank", "empty-object", "empty-list", "null-list"],
)
def test_empty_or_null_responses_are_full_success(payload: bytes) -> None:
    assert deleted(ok(payload)) == ["m0", "m1", "m2", "m3"]


def test_reported_items_stay_and_the_rest_is_deleted() -> None:
    payload = json.dumps(
        {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    )
    assert deleted(ok(payload.encode())) == ["m0", "m1"]


def test_only_the_reported_items_stay_even_if_not_a_suffix() -> None:
    # Lambda deletes what is not reported; keeping FIFO order is the handler's job.
    payload = json.dumps({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    assert deleted(ok(payload.encode())) == ["m0", "m2", "m3"]


def test_every_item_reported_deletes_nothing_but_is_not_a_batch_failure() -> None:
    payload = json.dumps({"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(4)]})
    assert deleted(ok(payload.encode())) == []


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": "not-in-this-batch"}],
        [{"itemIdentifier": "m1"}, {"itemIdentifier": "unknown"}],
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"itemIdentifier": 7}],
        [{"itemId": "m1"}],
        ["m1"],
    ],
    ids=[
        "unknown-id",
        "one-unknown-among-known",
        "empty-id",
        "null-id",
        "number-id",
        "bad-key",
        "bare-string",
    ],
)
def test_a_bad_item_identifier_fails_the_whole_batch(failures: list[Any]) -> None:
    assert deleted(ok(json.dumps({"batchItemFailures": failures}).encode())) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'"ok"',
        b"[1, 2]",
        b"42",
        b'{"batchItemFailures": "m1"}',
        b'{"batchItemFailures": {}}',
    ],
    ids=["invalid-json", "string", "list", "number", "failures-string", "failures-object"],
)
def test_a_malformed_response_fails_the_whole_batch(payload: bytes) -> None:
    assert deleted(ok(payload)) is None


def test_without_report_batch_item_failures_any_success_deletes_all() -> None:
    payload = json.dumps({"batchItemFailures": [{"itemIdentifier": "m1"}]}).encode()
    assert deleted(ok(payload), report=False) == ["m0", "m1", "m2", "m3"]
    assert deleted(ok(b"not json"), report=False) == ["m0", "m1", "m2", "m3"]


@pytest.mark.parametrize(
    "result",
    [
        InvokeResult(
            200, b'{"errorType": "ValueError"}', function_error="Unhandled", error_type="ValueError"
        ),
        InvokeResult(200, b"{}", function_error="Unhandled", error_type="Runtime.ExitError"),
        InvokeResult(200, b"{}", function_error="Unhandled", error_type="Sandbox.Timedout"),
        InvokeResult(429, b"{}", error_type="TooManyRequestsException"),
    ],
    ids=["error", "crash", "timeout", "throttle"],
)
@pytest.mark.parametrize("report", [True, False])
def test_function_error_crash_timeout_or_throttle_deletes_nothing(
    result: InvokeResult, report: bool
) -> None:
    assert deleted(result, report=report) is None


def test_the_sqs_event_has_the_shape_lambda_sends() -> None:
    received = [
        {
            "MessageId": "id-1",
            "ReceiptHandle": "rh-1",
            "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
            "MD5OfMessageAttributes": "abc",
            "Body": "hello",
            "Attributes": {
                "ApproximateReceiveCount": "2",
                "SentTimestamp": "1700000000000",
                "SequenceNumber": "18881111111111111111",
                "MessageGroupId": "task-processing",
                "SenderId": "AIDAEXAMPLE",
                "MessageDeduplicationId": "dedup-1",
                "ApproximateFirstReceiveTimestamp": "1700000000100",
                "SomethingElse": "not passed on",
            },
            "MessageAttributes": {
                "kind": {"StringValue": "task", "DataType": "String"},
                "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
            },
        }
    ]

    event = sqs_event(received, event_source_arn=ARN, region="us-east-1")

    assert event == {
        "Records": [
            {
                "messageId": "id-1",
                "receiptHandle": "rh-1",
                "body": "hello",
                "attributes": {
                    "ApproximateReceiveCount": "2",
                    "SentTimestamp": "1700000000000",
                    "SequenceNumber": "18881111111111111111",
                    "MessageGroupId": "task-processing",
                    "SenderId": "AIDAEXAMPLE",
                    "MessageDeduplicationId": "dedup-1",
                    "ApproximateFirstReceiveTimestamp": "1700000000100",
                },
                "messageAttributes": {
                    "kind": {
                        "stringValue": "task",
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    },
                    "blob": {
                        "binaryValue": base64.b64encode(b"\x00\x01").decode(),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "Binary",
                    },
                },
                "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
                "md5OfMessageAttributes": "abc",
                "eventSource": "aws:sqs",
                "eventSourceARN": ARN,
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_the_event_parses_with_powertools_sqs_model() -> None:
    # The production handlers read records through Powertools' parser models.
    from aws_lambda_powertools.utilities.parser.models import SqsModel

    received = [
        {
            "MessageId": "id-1",
            "ReceiptHandle": "rh",
            "MD5OfBody": "x",
            "Body": "{}",
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1700000000000",
                "SenderId": "AIDA",
                "ApproximateFirstReceiveTimestamp": "1700000000001",
                "MessageGroupId": "g",
                "MessageDeduplicationId": "d",
                "SequenceNumber": "1",
            },
            "MessageAttributes": {"kind": {"StringValue": "task", "DataType": "String"}},
        }
    ]

    model = SqsModel.model_validate(sqs_event(received, event_source_arn=ARN, region="us-east-1"))

    assert model.Records[0].attributes.MessageGroupId == "g"
    assert model.Records[0].messageAttributes["kind"].stringValue == "task"
