"""Drivers: what feature steps and load scenarios do to a target, in domain terms.

Steps stay thin: they call these drivers, which speak HTTP to the API and boto3 to the
queues, table, alarms and metrics of whichever :class:`~harness.target.Target` they get.
Every wait here is a bounded poll whose message says what was awaited and what was seen.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import requests

from cdk import contract
from harness.target import Target
from harness.waiting import wait_until

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP answer from the Task API."""

    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def describe(self) -> str:
        """A one-line summary for assertion messages."""
        return f"HTTP {self.status} {self.text[:300]}"


class TaskApi:
    """The public HTTP API of the stack."""

    def __init__(self, target: Target, timeout_s: float = 35.0) -> None:
        self._base = target.output(contract.API_URL).rstrip("/")
        self._timeout = timeout_s
        self._session = requests.Session()

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def submit(
        self,
        task: Mapping[str, Any] | None = None,
        *,
        raw_body: str | bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """POST a task (as JSON, or ``raw_body`` exactly as given)."""
        body = raw_body if raw_body is not None else json.dumps(task)
        all_headers = {"Content-Type": content_type, **(headers or {})}
        return self.request("POST", "/tasks", data=body, headers=all_headers)

    def get(self, task_id: str) -> ApiResponse:
        """GET one task by id."""
        return self.request("GET", f"/tasks/{task_id}")

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: str | bytes | None = None,
    ) -> ApiResponse:
        """Any request to the API (also for gateway-level behaviour: CORS, unknown routes)."""
        response = self._session.request(
            method, self._base + path, headers=headers, data=data, timeout=self._timeout
        )
        return ApiResponse(response.status_code, dict(response.headers), response.text)


class TaskStore:
    """The tasks table: the processor's record of what it did, in which order."""

    def __init__(self, target: Target) -> None:
        self._table_name = target.output(contract.TASKS_TABLE_NAME)
        self._dynamodb = target.client("dynamodb")

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored task as plain Python values, or None."""
        item = self._dynamodb.get_item(
            TableName=self._table_name, Key={"task_id": {"S": task_id}}, ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    def wait_for_status(
        self, task_id: str, statuses: Iterable[str], *, timeout: float
    ) -> dict[str, Any]:
        """Poll until the task has one of ``statuses``; the timeout names what was seen."""
        wanted = frozenset(statuses)
        seen: dict[str, Any] = {}

        def probe() -> dict[str, Any] | None:
            item = self.get(task_id)
            seen["item"] = item
            return item if item and item.get("status") in wanted else None

        try:
            return wait_until(
                probe,
                timeout=timeout,
                interval=0.1,
                description=f"task {task_id} to become {'/'.join(sorted(wanted))}",
            )
        except TimeoutError:
            item = seen.get("item")
            state = (
                "no record"
                if item is None
                else (f"status {item.get('status')}, attempts {item.get('attempts')}")
            )
            raise TimeoutError(
                f"task {task_id} did not become {'/'.join(sorted(wanted))} within {timeout:.0f}s; "
                f"last seen: {state}"
            ) from None

    def wait_all(
        self, task_ids: Sequence[str], statuses: Iterable[str], *, timeout: float
    ) -> list[dict[str, Any]]:
        """Wait for every task in ``task_ids`` (one shared deadline); returns them in order."""
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        items = []
        for task_id in task_ids:
            remaining = max(0.5, (deadline - datetime.now(UTC)).total_seconds())
            items.append(self.wait_for_status(task_id, statuses, timeout=remaining))
        return items


def processing_order(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The task ids of completed ``items`` sorted by when the processor completed them."""
    completed = [item for item in items if item.get("processed_at")]
    return [
        str(item["task_id"]) for item in sorted(completed, key=lambda i: str(i["processed_at"]))
    ]


class DeadLetters:
    """The dead-letter queue, inspected without taking messages away for good."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._sqs = target.client("sqs")
        self.url = target.output(contract.DEAD_LETTER_QUEUE_URL)

    def task_ids(self) -> dict[str, dict[str, Any]]:
        """Every task id in the DLQ with its message's attributes (peeks, then releases)."""
        found: dict[str, dict[str, Any]] = {}
        handles = []
        for _ in range(20):  # bounded: the DLQ of a test stack holds few messages
            messages = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                task_id = _task_id_of(message["Body"]) or message["MessageId"]
                found[task_id] = {
                    "attributes": {
                        key: value.get("StringValue")
                        for key, value in message.get("MessageAttributes", {}).items()
                    },
                    "body": message["Body"],
                }
        for index in range(0, len(handles), 10):
            chunk = handles[index : index + 10]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(chunk)
                ],
            )
        return found

    def wait_for_task(self, task_id: str, *, timeout: float) -> dict[str, Any]:
        """Poll until ``task_id`` is in the DLQ; returns what the DLQ holds for it."""
        return wait_until(
            lambda: self.task_ids().get(task_id),
            timeout=timeout,
            interval=0.5,
            description=f"task {task_id} to reach the dead-letter queue",
        )

    def send_back(self, task_id: str) -> None:
        """Replay one task's DLQ message to the task queue and remove it from the DLQ.

        What an operator does for a single task: the message goes back unchanged (same
        body and group) under a new deduplication id, so the queue does not drop it.
        """
        task_queue = self._target.output(contract.TASK_QUEUE_URL)
        messages = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        ).get("Messages", [])
        mine = [m for m in messages if _task_id_of(m["Body"]) == task_id]
        others = [m for m in messages if m not in mine]
        if others:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(others)
                ],
            )
        if not mine:
            raise AssertionError(
                f"task {task_id} is not among the first {len(messages)} dead-letter messages"
            )
        message = mine[0]
        self._sqs.send_message(
            QueueUrl=task_queue,
            MessageBody=message["Body"],
            MessageGroupId=message["Attributes"].get("MessageGroupId", contract.MESSAGE_GROUP_ID),
            MessageDeduplicationId=f"replay-{message['MessageId']}",
        )
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


class Alarms:
    """The stack's CloudWatch alarms."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._cloudwatch = target.client("cloudwatch")

    def describe(self, output_key: str) -> dict[str, Any]:
        """The alarm whose name the stack emits under ``output_key``."""
        name = self._target.output(output_key)
        alarms = self._cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if not alarms:
            raise AssertionError(f"alarm {name} ({output_key}) does not exist")
        return dict(alarms[0])

    def wait_for_state(self, output_key: str, state: str, *, timeout: float) -> dict[str, Any]:
        """Poll until the alarm is in ``state`` (e.g. ``ALARM``)."""
        last: dict[str, Any] = {}

        def probe() -> dict[str, Any] | None:
            last.update(self.describe(output_key))
            return last if last.get("StateValue") == state else None

        try:
            return wait_until(
                probe,
                timeout=timeout,
                interval=0.5,
                description=f"alarm {output_key} to be {state}",
            )
        except TimeoutError:
            raise TimeoutError(
                f"alarm {self._target.output(output_key)} did not reach {state} within "
                f"{timeout:.0f}s; it is {last.get('StateValue')} ({last.get('StateReason')})"
            ) from None


class FunctionMetrics:
    """AWS/Lambda metrics of one function, as CloudWatch has them."""

    def __init__(self, target: Target, function_output_key: str) -> None:
        self._cloudwatch = target.client("cloudwatch")
        self.function_name = target.output(function_output_key)

    def sum(self, metric: str, *, since: datetime) -> float:
        """The sum of ``metric`` (e.g. ``Errors``) from ``since`` until now."""
        now = datetime.now(UTC)
        datapoints = self._cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=[{"Name": "FunctionName", "Value": self.function_name}],
            StartTime=since - timedelta(minutes=1),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return float(sum(point["Sum"] for point in datapoints))


def new_idempotency_key() -> str:
    """A fresh key for the ``Idempotency-Key`` header."""
    return f"qa-{uuid.uuid4()}"


def _task_id_of(body: str) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, dict):
        task_id = payload.get("task_id")
        return str(task_id) if task_id else None
    return None


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute-value form) as plain Python values."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    result = {}
    for key, value in item.items():
        plain = deserializer.deserialize(value)
        # Decimal -> int/float so assertions and JSON reports read naturally.
        if isinstance(plain, Decimal):
            plain = int(plain) if plain == int(plain) else float(plain)
        result[key] = plain
    return result
