"""Fixtures: a moto account with the stack's tables and queues, and callers for both handlers."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from handlers import api, processor
from handlers.adapters import aws

from .events import REGION, FakeLambdaContext, api_event, records_from_messages, sqs_event

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_sqs.client import SQSClient
    from types_boto3_sqs.type_defs import MessageTypeDef

TASKS_TABLE = "tasks"
IDEMPOTENCY_TABLE = "idempotency"
ATTEMPT_BUDGET = 3
# The queue's redrive, a safety net above the budget (batch 10 x 3 attempts + 1).
MAX_RECEIVE_COUNT = 31
PENDING_WINDOW_S = 20


@dataclass(frozen=True)
class ApiAnswer:
    """What the API function returned, decoded."""

    status: int
    headers: dict[str, str]
    raw_body: str

    @property
    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.raw_body)


@dataclass
class Cloud:
    """The mocked account: clients, resource names and ways to look inside."""

    dynamodb: DynamoDBClient
    sqs: SQSClient
    task_queue_url: str
    dlq_url: str
    monkeypatch: pytest.MonkeyPatch
    _deserializer: TypeDeserializer = field(default_factory=TypeDeserializer)

    def item(self, task_id: str) -> dict[str, Any] | None:
        """A stored task as plain values (numbers as int), or None."""
        raw = self.dynamodb.get_item(TableName=TASKS_TABLE, Key={"task_id": {"S": task_id}}).get(
            "Item"
        )
        if raw is None:
            return None
        plain = {key: self._deserializer.deserialize(value) for key, value in raw.items()}
        return {
            key: int(value) if isinstance(value, Decimal) else value for key, value in plain.items()
        }

    def items(self) -> list[dict[str, Any]]:
        """Every stored task."""
        keys = self.dynamodb.scan(TableName=TASKS_TABLE, ProjectionExpression="task_id")["Items"]
        found = [self.item(key["task_id"]["S"]) for key in keys]
        return [item for item in found if item is not None]

    def receive(self, url: str | None = None, limit: int = 10) -> list[MessageTypeDef]:
        """Receive up to ``limit`` messages (all attributes) without deleting them."""
        return self.sqs.receive_message(
            QueueUrl=url or self.task_queue_url,
            MaxNumberOfMessages=limit,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])

    def queued_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies waiting in the task queue (peeked: visible again afterwards)."""
        messages = self.receive()
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=self.task_queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        return [json.loads(message["Body"]) for message in messages]

    def fault_injection(self, enabled: bool) -> None:
        """Switch fault injection on (``"true"``) or remove the variable, as production does."""
        if enabled:
            self.monkeypatch.setenv("FAULT_INJECTION_ENABLED", "true")
        else:
            self.monkeypatch.delenv("FAULT_INJECTION_ENABLED", raising=False)
        api.reset_dependencies()
        processor.reset_dependencies()


# What the Lambda runtime has in its environment before the handler module is imported
# (powertools reads these at import time).
POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "task-api",
    "POWERTOOLS_METRICS_NAMESPACE": "TaskApiTest",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


@pytest.fixture(scope="package", autouse=True)
def lambda_environment() -> Iterator[None]:
    """Import the handler modules as Lambda does: with the function's environment set."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in POWERTOOLS_ENVIRONMENT.items():
            patch.setenv(name, value)
        for module in (api, processor):
            importlib.reload(sys.modules[module.__name__])
        yield


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    """A fresh mocked account for each test, with the environment the CDK app sets.

    It patches the environment with its own MonkeyPatch, so a test's ``monkeypatch.undo()``
    does not take the account's configuration away.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _mocked_account(monkeypatch)
    api.reset_dependencies()
    processor.reset_dependencies()


@functools.cache
def _shared_clients() -> tuple[DynamoDBClient, SQSClient]:
    """One DynamoDB and one SQS client for the whole run: creating a boto3 client costs
    about 0.3 s, and moto intercepts clients whenever a mock is active."""
    return aws.dynamodb_client(), aws.sqs_client()


def _mocked_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "FAULT_INJECTION_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **POWERTOOLS_ENVIRONMENT,
        "TASKS_TABLE_NAME": TASKS_TABLE,
        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
        "ATTEMPT_BUDGET": str(ATTEMPT_BUDGET),
        "PENDING_WINDOW_SECONDS": str(PENDING_WINDOW_S),
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb, sqs = _shared_clients()
        for module in (api, processor):
            monkeypatch.setattr(module, "dynamodb_client", lambda *_: dynamodb)
            monkeypatch.setattr(module, "sqs_client", lambda *_: sqs)
        for table, key in ((TASKS_TABLE, "task_id"), (IDEMPOTENCY_TABLE, "id")):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        dlq_url = sqs.create_queue(
            QueueName="task-dlq.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="task-queue.fifo",
            Attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "true",
                "VisibilityTimeout": "300",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
                ),
            },
        )["QueueUrl"]
        monkeypatch.setenv("TASK_QUEUE_URL", queue_url)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        api.reset_dependencies()
        processor.reset_dependencies()
        yield Cloud(dynamodb, sqs, queue_url, dlq_url, monkeypatch)


CallApi = Callable[..., ApiAnswer]


@pytest.fixture
def call_api(cloud: Cloud) -> CallApi:
    """Invoke ``handlers.api.handler`` with an API Gateway event built from the arguments
    of :func:`events.api_event`."""

    def call(method: str, path: str, **kwargs: Any) -> ApiAnswer:
        response = api.handler(api_event(method, path, **kwargs), FakeLambdaContext())
        headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.setdefault(str(name), ", ".join(str(v) for v in values))
        return ApiAnswer(int(response["statusCode"]), headers, response.get("body") or "")

    return call


RunProcessor = Callable[..., dict[str, Any]]


@pytest.fixture
def run_processor(cloud: Cloud) -> RunProcessor:
    """Invoke ``handlers.processor.handler`` with the given records (a batch)."""

    def run(
        records: list[Mapping[str, Any]], *, context: FakeLambdaContext | None = None
    ) -> dict[str, Any]:
        return dict(processor.handler(sqs_event(records), context or FakeLambdaContext()))

    return run


@pytest.fixture
def drain(cloud: Cloud, run_processor: RunProcessor) -> Callable[[], list[dict[str, Any]]]:
    """Receive what is in the task queue, run the processor on it as one batch, delete the
    messages it did not report as failed (what the event source mapping does)."""

    def once() -> list[dict[str, Any]]:
        messages = cloud.receive()
        if not messages:
            return []
        records = records_from_messages(messages)
        response = run_processor(records)
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                cloud.sqs.delete_message(
                    QueueUrl=cloud.task_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return records

    return once
