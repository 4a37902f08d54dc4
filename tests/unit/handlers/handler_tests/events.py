"""Factories for realistic Lambda events: API Gateway REST API (v1) proxy and SQS.

Shapes follow what AWS delivers (see the Lambda developer guide's sample events), with
fresh request ids and timestamps per event.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
STAGE = "prod"
API_ID = "a1b2c3d4e5"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:task-queue.fifo"


def _resource_for(path: str) -> tuple[str, dict[str, str] | None]:
    parts = path.strip("/").split("/")
    if parts == ["tasks"]:
        return "/tasks", None
    if len(parts) == 2 and parts[0] == "tasks" and parts[1]:
        return "/tasks/{task_id}", {"task_id": parts[1]}
    return "/{proxy+}", {"proxy": path.lstrip("/")}


def api_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = "application/json",
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST API proxy-integration event for ``method path``."""
    if json_body is not None:
        body = json.dumps(json_body)
    all_headers: dict[str, str] = {
        "Accept": "application/json",
        "Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "User-Agent": "python-requests/2.34.2",
        "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if content_type is not None and body is not None:
        all_headers["Content-Type"] = content_type
    all_headers.update(headers or {})
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if base64_encoded else body.decode()
    elif base64_encoded and body is not None:
        body = base64.b64encode(body.encode("utf-8", "surrogatepass")).decode()
    resource, path_parameters = _resource_for(path)
    now = time.time()
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "AbCdEfGhIjKlMnO=",
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": "203.0.113.7",
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": "python-requests/2.34.2",
                "user": None,
            },
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    sequence_number: str | None = "18849496460467696128",
    group_id: str = "task-processing",
    deduplication_id: str | None = None,
) -> dict[str, Any]:
    """One record of an SQS (FIFO) event as the event source mapping delivers it."""
    now_ms = str(int(time.time() * 1000))
    attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": now_ms,
        "SenderId": "AROAEXAMPLE:task-api",
        "ApproximateFirstReceiveTimestamp": now_ms,
        "MessageGroupId": group_id,
        "MessageDeduplicationId": deduplication_id or hashlib.sha256(body.encode()).hexdigest(),
    }
    if sequence_number is not None:
        attributes["SequenceNumber"] = sequence_number
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": base64.b64encode(uuid.uuid4().bytes * 4).decode(),
        "body": body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


def sqs_event(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An SQS event holding ``records`` (a batch)."""
    return {"Records": [dict(record) for record in records]}


def records_from_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Turn ``ReceiveMessage`` results (with ``AttributeNames=["All"]``) into event records."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        record = sqs_record(
            message["Body"],
            message_id=message["MessageId"],
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            sequence_number=attributes.get("SequenceNumber"),
            group_id=attributes.get("MessageGroupId", "task-processing"),
            deduplication_id=attributes.get("MessageDeduplicationId"),
        )
        record["receiptHandle"] = message["ReceiptHandle"]
        records.append(record)
    return records


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str = "task-api-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/task-api-function"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 30_000

    @property
    def invoked_function_arn(self) -> str:
        """The function ARN, as Lambda reports it."""
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Time left before the invocation times out."""
        return self.remaining_ms
