"""The SQS wire: JSON protocol (what boto3 and the AWS CLI speak) and the query protocol.

Both decode a request into the operation's input shape (a dict keyed like the botocore
model), call one :class:`SqsApi` method that drives the engine, and encode its output
dict. Query requests are parsed and answered with moto's query parser and SQS XML
serializer over moto's query-compatible SQS model; the rules stay in the engine.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from localcloud.sqs.engine import (
    DEFAULT_SENDER_ID,
    BatchError,
    ReceivedMessage,
    SendEntry,
    SendResult,
    SqsEngine,
)
from localcloud.sqs.errors import (
    NON_EXISTENT_QUEUE,
    NON_EXISTENT_QUEUE_QUERY_MESSAGE,
    SqsError,
    invalid_parameter_value,
    missing_parameter,
)

logger = logging.getLogger(__name__)

Response = tuple[int, list[tuple[str, str]], bytes]
Params = dict[str, Any]

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
_XML_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"


def _blob(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise invalid_parameter_value("Invalid binary value: not base64.") from None


def _message_attributes(raw: Any) -> dict[str, dict[str, Any]]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise invalid_parameter_value("MessageAttributes must be a map.")
    result: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if not isinstance(value, Mapping):
            raise invalid_parameter_value(f"The message attribute '{name}' is invalid.")
        entry: dict[str, Any] = {"DataType": value.get("DataType")}
        if value.get("BinaryValue") is not None:
            entry["BinaryValue"] = _blob(value["BinaryValue"])
        elif "StringValue" in value:
            entry["StringValue"] = value["StringValue"]
        result[str(name)] = entry
    return result


def _int(params: Params, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_parameter_value(f"Value {value} for parameter {name} is invalid.") from None


def _entries(params: Params) -> list[Params]:
    entries = params.get("Entries") or []
    if not isinstance(entries, list):
        raise invalid_parameter_value("Entries must be a list.")
    return entries


def _send_result(result: SendResult) -> Params:
    out: Params = {"MessageId": result.message_id, "MD5OfMessageBody": result.md5_of_body}
    if result.md5_of_message_attributes:
        out["MD5OfMessageAttributes"] = result.md5_of_message_attributes
    if result.md5_of_message_system_attributes:
        out["MD5OfMessageSystemAttributes"] = result.md5_of_message_system_attributes
    if result.sequence_number:
        out["SequenceNumber"] = result.sequence_number
    return out


def _failure(error: BatchError) -> Params:
    return {
        "Id": error.id,
        "SenderFault": error.sender_fault,
        "Code": error.code,
        "Message": error.message,
    }


def _batch_result(successful: list[Params], failed: list[BatchError]) -> Params:
    # AWS leaves an empty list out (a batch that fully succeeded has no Failed: recorded).
    out: Params = {}
    if successful:
        out["Successful"] = successful
    if failed:
        out["Failed"] = [_failure(error) for error in failed]
    return out


def _received(message: ReceivedMessage) -> Params:
    out: Params = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.md5_of_body,
        "Body": message.body,
    }
    if message.attributes:
        out["Attributes"] = message.attributes
    if message.message_attributes:
        out["MessageAttributes"] = message.message_attributes
        out["MD5OfMessageAttributes"] = message.md5_of_message_attributes
    return out


@dataclass(frozen=True)
class RequestContext:
    """What a request carries besides its parameters."""

    sender_id: str = DEFAULT_SENDER_ID
    # X-Amzn-Trace-Id: SendMessage(Batch) keep it as the AWSTraceHeader system attribute.
    trace_header: str | None = None
    protocol: str = "json"  # "json" or "query"


class SqsApi:
    """One method per SQS operation: input-shape dict in, output-shape dict out."""

    def __init__(self, engine: SqsEngine) -> None:
        self.engine = engine
        self.operations: dict[str, Callable[[Params, RequestContext], Params]] = {
            "CreateQueue": self.create_queue,
            "DeleteQueue": self.delete_queue,
            "GetQueueUrl": self.get_queue_url,
            "ListQueues": self.list_queues,
            "GetQueueAttributes": self.get_queue_attributes,
            "SetQueueAttributes": self.set_queue_attributes,
            "PurgeQueue": self.purge_queue,
            "TagQueue": self.tag_queue,
            "UntagQueue": self.untag_queue,
            "ListQueueTags": self.list_queue_tags,
            "AddPermission": self.add_permission,
            "RemovePermission": self.remove_permission,
            "ListDeadLetterSourceQueues": self.list_dead_letter_source_queues,
            "SendMessage": self.send_message,
            "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message,
            "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch,
            "ChangeMessageVisibility": self.change_message_visibility,
            "ChangeMessageVisibilityBatch": self.change_message_visibility_batch,
            "StartMessageMoveTask": self.start_message_move_task,
            "CancelMessageMoveTask": self.cancel_message_move_task,
            "ListMessageMoveTasks": self.list_message_move_tasks,
        }

    # -- queues -------------------------------------------------------------------------

    def create_queue(self, p: Params, ctx: RequestContext) -> Params:
        queue = self.engine.create_queue(
            str(p.get("QueueName") or ""), p.get("Attributes") or {}, p.get("tags") or None
        )
        return {"QueueUrl": queue.url}

    def delete_queue(self, p: Params, ctx: RequestContext) -> Params:
        self.engine.delete_queue(p.get("QueueUrl") or "")
        return {}

    def get_queue_url(self, p: Params, ctx: RequestContext) -> Params:
        name = p.get("QueueName")
        if not name:
            raise missing_parameter("QueueName")
        return {"QueueUrl": self.engine.get_queue_url(str(name), p.get("QueueOwnerAWSAccountId"))}

    def list_queues(self, p: Params, ctx: RequestContext) -> Params:
        urls = self.engine.list_queues(p.get("QueueNamePrefix"))
        max_results = _int(p, "MaxResults")
        if max_results is None:
            return {"QueueUrls": urls[:1000]} if urls else {}
        if not 1 <= max_results <= 1000:
            raise invalid_parameter_value(
                f"Value {max_results} for parameter MaxResults is invalid. "
                "Reason: MaxResults must be an integer between 1 and 1000."
            )
        start = int(p.get("NextToken") or 0)
        page = urls[start : start + max_results]
        out: Params = {"QueueUrls": page} if page else {}
        if start + max_results < len(urls):
            out["NextToken"] = str(start + max_results)
        return out

    def get_queue_attributes(self, p: Params, ctx: RequestContext) -> Params:
        names = list(p.get("AttributeNames") or [])
        attributes = self.engine.get_queue_attributes(p.get("QueueUrl") or "", names)
        return {"Attributes": attributes} if attributes else {}

    def set_queue_attributes(self, p: Params, ctx: RequestContext) -> Params:
        self.engine.set_queue_attributes(p.get("QueueUrl") or "", p.get("Attributes") or {})
        return {}

    def purge_queue(self, p: Params, ctx: RequestContext) -> Params:
        self.engine.purge_queue(p.get("QueueUrl") or "")
        return {}

    def tag_queue(self, p: Params, ctx: RequestContext) -> Params:
        self.engine.tag_queue(p.get("QueueUrl") or "", p.get("Tags") or {})
        return {}

    def untag_queue(self, p: Params, ctx: RequestContext) -> Params:
        self.engine.untag_queue(p.get("QueueUrl") or "", p.get("TagKeys") or [])
        return {}

    def list_queue_tags(self, p: Params, ctx: RequestContext) -> Params:
        tags = self.engine.list_queue_tags(p.get("QueueUrl") or "")
        return {"Tags": tags} if tags else {}

    def add_permission(self, p: Params, ctx: RequestContext) -> Params:
        label = p.get("Label")
        if not label:
            raise missing_parameter("Label")
        actions = list(p.get("Actions") or [])
        accounts = list(p.get("AWSAccountIds") or [])
        if not actions:
            raise missing_parameter("Actions")
        if not accounts:
            raise missing_parameter("AWSAccountIds")
        self.engine.add_permission(p.get("QueueUrl") or "", str(label), accounts, actions)
        return {}

    def remove_permission(self, p: Params, ctx: RequestContext) -> Params:
        self.engine.remove_permission(p.get("QueueUrl") or "", str(p.get("Label") or ""))
        return {}

    def list_dead_letter_source_queues(self, p: Params, ctx: RequestContext) -> Params:
        return {"queueUrls": self.engine.list_dead_letter_source_queues(p.get("QueueUrl") or "")}

    # -- messages -----------------------------------------------------------------------

    def send_message(self, p: Params, ctx: RequestContext) -> Params:
        if p.get("MessageBody") is None:
            raise missing_parameter("MessageBody")
        result = self.engine.send_message(
            p.get("QueueUrl") or "",
            str(p["MessageBody"]),
            delay_seconds=_int(p, "DelaySeconds"),
            message_attributes=_message_attributes(p.get("MessageAttributes")),
            system_attributes=_message_attributes(p.get("MessageSystemAttributes")),
            deduplication_id=p.get("MessageDeduplicationId"),
            group_id=p.get("MessageGroupId"),
            sender_id=ctx.sender_id,
            trace_header=ctx.trace_header,
        )
        return _send_result(result)

    def send_message_batch(self, p: Params, ctx: RequestContext) -> Params:
        entries = [
            SendEntry(
                id=str(entry.get("Id") or ""),
                body=str(entry.get("MessageBody") or ""),
                delay_seconds=_int(entry, "DelaySeconds"),
                message_attributes=_message_attributes(entry.get("MessageAttributes")),
                system_attributes=_message_attributes(entry.get("MessageSystemAttributes")),
                deduplication_id=entry.get("MessageDeduplicationId"),
                group_id=entry.get("MessageGroupId"),
                trace_header=ctx.trace_header,
            )
            for entry in _entries(p)
        ]
        done, failed = self.engine.send_message_batch(
            p.get("QueueUrl") or "", entries, sender_id=ctx.sender_id
        )
        return _batch_result(
            [{"Id": entry_id, **_send_result(result)} for entry_id, result in done], failed
        )

    def receive_message(self, p: Params, ctx: RequestContext) -> Params:
        # Given both, the JSON protocol takes MessageSystemAttributeNames and the query
        # protocol AttributeName.N (recorded).
        preferred, other = ("MessageSystemAttributeNames", "AttributeNames")
        if ctx.protocol == "query":
            preferred, other = other, preferred
        names = list(p.get(preferred) or p.get(other) or [])
        messages = self.engine.receive_message(
            p.get("QueueUrl") or "",
            max_messages=_int(p, "MaxNumberOfMessages") or 1,
            wait_time_s=_int(p, "WaitTimeSeconds"),
            visibility_timeout=_int(p, "VisibilityTimeout"),
            system_attribute_names=names,
            message_attribute_names=list(p.get("MessageAttributeNames") or []),
        )
        return {"Messages": [_received(m) for m in messages]} if messages else {}

    def delete_message(self, p: Params, ctx: RequestContext) -> Params:
        handle = p.get("ReceiptHandle")
        if not handle:
            raise missing_parameter("ReceiptHandle")
        self.engine.delete_message(p.get("QueueUrl") or "", str(handle))
        return {}

    def delete_message_batch(self, p: Params, ctx: RequestContext) -> Params:
        entries = [
            (str(entry.get("Id") or ""), str(entry.get("ReceiptHandle") or ""))
            for entry in _entries(p)
        ]
        done, failed = self.engine.delete_message_batch(p.get("QueueUrl") or "", entries)
        return _batch_result([{"Id": entry_id} for entry_id in done], failed)

    def change_message_visibility(self, p: Params, ctx: RequestContext) -> Params:
        timeout = _int(p, "VisibilityTimeout")
        if timeout is None:
            raise missing_parameter("VisibilityTimeout")
        handle = p.get("ReceiptHandle")
        if not handle:
            raise missing_parameter("ReceiptHandle")
        self.engine.change_message_visibility(p.get("QueueUrl") or "", str(handle), timeout)
        return {}

    def change_message_visibility_batch(self, p: Params, ctx: RequestContext) -> Params:
        entries = [
            (
                str(entry.get("Id") or ""),
                str(entry.get("ReceiptHandle") or ""),
                _int(entry, "VisibilityTimeout") or 0,
            )
            for entry in _entries(p)
        ]
        done, failed = self.engine.change_message_visibility_batch(p.get("QueueUrl") or "", entries)
        return _batch_result([{"Id": entry_id} for entry_id in done], failed)

    # -- redrive ------------------------------------------------------------------------

    def start_message_move_task(self, p: Params, ctx: RequestContext) -> Params:
        source = p.get("SourceArn")
        if not source:
            raise missing_parameter("SourceArn")
        handle = self.engine.start_message_move_task(
            str(source), p.get("DestinationArn"), _int(p, "MaxNumberOfMessagesPerSecond")
        )
        return {"TaskHandle": handle}

    def cancel_message_move_task(self, p: Params, ctx: RequestContext) -> Params:
        moved = self.engine.cancel_message_move_task(str(p.get("TaskHandle") or ""))
        return {"ApproximateNumberOfMessagesMoved": moved}

    def list_message_move_tasks(self, p: Params, ctx: RequestContext) -> Params:
        source = p.get("SourceArn")
        if not source:
            raise missing_parameter("SourceArn")
        tasks = self.engine.list_message_move_tasks(str(source), _int(p, "MaxResults") or 1)
        results: list[Params] = []
        for task in tasks:
            entry: Params = {
                "Status": task.status,
                "SourceArn": task.source_arn,
                "ApproximateNumberOfMessagesMoved": task.messages_moved,
                "ApproximateNumberOfMessagesToMove": task.messages_to_move,
                "StartedTimestamp": task.started_ms,
            }
            if task.status == "RUNNING":
                entry["TaskHandle"] = task.task_handle
            if task.destination_arn:
                entry["DestinationArn"] = task.destination_arn
            if task.max_messages_per_second is not None:
                entry["MaxNumberOfMessagesPerSecond"] = task.max_messages_per_second
            if task.failure_reason:
                entry["FailureReason"] = task.failure_reason
            results.append(entry)
        return {"Results": results}

    def call(
        self, operation: str, params: Params, ctx: RequestContext = RequestContext()
    ) -> Params:
        handler = self.operations.get(operation)
        if handler is None:
            raise SqsError(
                "InvalidAction",
                f"The action {operation} is not valid for this endpoint.",
                shape="UnknownOperationException",
            )
        return handler(params, ctx)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot encode {type(value).__name__}")


class SqsWire:
    """Turn raw SQS requests into responses (status, headers, body) for the HTTP front."""

    def __init__(self, engine: SqsEngine) -> None:
        self.api = SqsApi(engine)
        self._query: _QueryCodec | None = None

    def handle_json(self, target: str, body: bytes, trace_header: str | None = None) -> Response:
        """A JSON-protocol request: ``X-Amz-Target: AmazonSQS.<Operation>``."""
        request_id = str(uuid.uuid4())
        operation = target.rsplit(".", 1)[-1]
        try:
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                raise SqsError("SerializationException", "Malformed JSON request body.") from None
            if not isinstance(params, dict):
                raise SqsError("SerializationException", "Request body must be a JSON object.")
            result = self.api.call(operation, params, RequestContext(trace_header=trace_header))
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            # Parameters of the wrong shape (botocore validates them; hand-made requests may not).
            return self._json_error(
                invalid_parameter_value(f"Invalid request: {error!r}"), request_id
            )
        except SqsError as error:
            return self._json_error(error, request_id)
        except Exception as error:
            logger.exception("SQS %s failed", operation)
            return self._json_error(
                SqsError("InternalError", repr(error), status=500, sender_fault=False), request_id
            )
        payload = json.dumps(result, default=_json_default, separators=(",", ":")).encode()
        return 200, [("Content-Type", JSON_CONTENT_TYPE), ("x-amzn-RequestId", request_id)], payload

    @staticmethod
    def _json_error(error: SqsError, request_id: str) -> Response:
        payload = json.dumps(
            {"__type": f"com.amazonaws.sqs#{error.shape}", "message": error.message}
        ).encode()
        fault = "Sender" if error.sender_fault else "Receiver"
        return (
            error.status,
            [
                ("Content-Type", JSON_CONTENT_TYPE),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-query-error", f"{error.code};{fault}"),
            ],
            payload,
        )

    def handle_query(
        self, form: Mapping[str, str], path: str, trace_header: str | None = None
    ) -> Response:
        """A query-protocol request (``Action=...`` form or query string)."""
        request_id = str(uuid.uuid4())
        operation = form.get("Action", "")
        try:
            if self._query is None:
                self._query = _QueryCodec()
            params = self._query.parse(operation, form)
            if "QueueUrl" not in params and operation not in _NO_QUEUE_URL:
                # Old clients send the request to the queue URL itself.
                segments = [segment for segment in path.split("/") if segment]
                if len(segments) >= 2:
                    params["QueueUrl"] = "/".join(segments[-2:])
            ctx = RequestContext(trace_header=trace_header, protocol="query")
            result = self.api.call(operation, params, ctx)
            body = self._query.serialize(operation, result, request_id)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            bad = invalid_parameter_value(f"Invalid request: {error!r}")
            return bad.status, [("Content-Type", "text/xml")], _query_error(bad, request_id)
        except SqsError as error:
            return error.status, [("Content-Type", "text/xml")], _query_error(error, request_id)
        except Exception as error:
            logger.exception("SQS %s failed", operation)
            internal = SqsError("InternalError", repr(error), status=500, sender_fault=False)
            return 500, [("Content-Type", "text/xml")], _query_error(internal, request_id)
        return 200, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body


_NO_QUEUE_URL = frozenset(
    {
        "CreateQueue",
        "GetQueueUrl",
        "ListQueues",
        "StartMessageMoveTask",
        "CancelMessageMoveTask",
        "ListMessageMoveTasks",
    }
)


def _query_error(error: SqsError, request_id: str) -> bytes:
    fault = "Sender" if error.sender_fault else "Receiver"
    message = error.message
    if error.code == NON_EXISTENT_QUEUE:
        message = NON_EXISTENT_QUEUE_QUERY_MESSAGE
    return (
        f'<?xml version="1.0"?><ErrorResponse xmlns="{_XML_NAMESPACE}"><Error>'
        f"<Type>{fault}</Type><Code>{escape(error.code)}</Code>"
        f"<Message>{escape(message)}</Message><Detail/></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


class _QueryCodec:
    """moto's query parser and SQS XML serializer over its query-compatible SQS model."""

    def __init__(self) -> None:
        from localcloud.moto_compat import QueryParser, SqsQuerySerializer, get_service_model

        self._model = get_service_model("sqs")
        self._parser = QueryParser
        self._serializer = SqsQuerySerializer

    def parse(self, operation: str, form: Mapping[str, str]) -> Params:
        try:
            operation_model = self._model.operation_model(operation)
        except Exception:  # botocore's OperationNotFoundError
            raise SqsError(
                "InvalidAction", f"The action {operation} is not valid for this endpoint."
            ) from None
        parser = self._parser(operation_model)
        try:
            request: Any = {
                "values": dict(form),
                "body": b"",
                "headers": {},
                "method": "POST",
                "url_params": {},
                "url_path": "/",
            }
            parsed = parser.parse(request)
        except (ValueError, TypeError) as error:
            raise invalid_parameter_value(str(error)) from None
        return dict(parsed)

    def serialize(self, operation: str, result: Params, request_id: str) -> bytes:
        from localcloud.moto_compat import SerializationContext

        operation_model = self._model.operation_model(operation)
        serializer = self._serializer(operation_model, SerializationContext(request_id))
        response = serializer.serialize(result)
        body = response["body"]
        return body.encode() if isinstance(body, str) else bytes(body)


class InProcessSqsClient:
    """The SQS calls the local cloud's own pollers make, on the engine without HTTP.

    Same answers as boto3 through the endpoint (JSON-protocol shapes, binary values as
    base64 text, the engine's throttling), minus a request's serialization, signing and
    HTTP round trip: an event source mapping's receive and delete are on the critical
    path of a single-group drain, which runs one batch at a time. Errors raise
    :class:`~localcloud.sqs.errors.SqsError`.
    """

    def __init__(self, engine: SqsEngine) -> None:
        self._api = SqsApi(engine)

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        result = self._api.call(operation, params)
        # Through JSON as on the wire, so callers never see the engine's own objects.
        encoded = json.dumps(result, default=_json_default, separators=(",", ":"))
        decoded: dict[str, Any] = json.loads(encoded)
        return decoded

    def receive_message(self, **params: Any) -> dict[str, Any]:
        """``ReceiveMessage`` (long polls block the calling thread, as with boto3)."""
        return self._call("ReceiveMessage", params)

    def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        """``DeleteMessageBatch``."""
        return self._call("DeleteMessageBatch", params)

    def get_queue_attributes(self, **params: Any) -> dict[str, Any]:
        """``GetQueueAttributes``."""
        return self._call("GetQueueAttributes", params)
