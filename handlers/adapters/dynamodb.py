"""The tasks table (partition key ``task_id``, string): every write is conditional.

Implements :class:`~handlers.domain.submission.TaskRepository` for the API and
:class:`~handlers.domain.processing.TaskLedger` for the processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handlers.domain.messages import TaskMessage
from handlers.domain.processing import Attempt
from handlers.domain.tasks import TaskStatus

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()
# Writes by the processor: the task must not be COMPLETED yet. A missing record is
# accepted (the message carries the whole task) so a delivery is never lost.
_NOT_COMPLETED = "attribute_not_exists(task_id) OR #status <> :completed"


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _to_attributes(values: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {key: _SERIALIZER.serialize(value) for key, value in values.items()}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as plain Python values: DynamoDB numbers become int (all ours are)."""
    result: dict[str, Any] = {}
    for key, raw in item.items():
        value = _DESERIALIZER.deserialize(raw)
        result[key] = int(value) if isinstance(value, Decimal) else value
    return result


class DynamoTaskTable:
    """Tasks in DynamoDB, for the API (create, undo, read) and the processor (transitions)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # --- API ---------------------------------------------------------------------------

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Store a new task; fails if the id exists (UUID4 collisions do not happen)."""
        self._client.put_item(
            TableName=self._table,
            Item=_to_attributes(item),
            ConditionExpression="attribute_not_exists(task_id)",
        )

    def delete_if_queued(self, task_id: str) -> None:
        """Remove the task only if still QUEUED: never undo work the processor did."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                ConditionExpression="#status = :queued",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":queued": {"S": TaskStatus.QUEUED.value}},
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored task (strongly consistent read), or None."""
        item = self._client.get_item(
            TableName=self._table, Key={"task_id": {"S": task_id}}, ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    # --- processor ---------------------------------------------------------------------

    def start(self, message: TaskMessage, attempt: Attempt) -> tuple[bool, str | None] | None:
        """Mark PROCESSING; None if COMPLETED, else (record existed, its stored fault)."""
        old = self._transition(
            message,
            attempt,
            set_values={"status": TaskStatus.PROCESSING.value},
            return_old=True,
        )
        if old is None:
            return None
        fault = old.get("fault")
        return bool(old), None if fault is None else str(fault)

    def complete(self, message: TaskMessage, attempt: Attempt) -> bool:
        """Mark COMPLETED with ``processed_at``; False if it already was COMPLETED."""
        result = self._transition(
            message,
            attempt,
            set_values={"status": TaskStatus.COMPLETED.value, "processed_at": attempt.at},
            add_values={"applied": 1},
        )
        return result is not None

    def record_failure(
        self, message: TaskMessage, attempt: Attempt, error: str, *, final: bool
    ) -> None:
        """Record ``last_error``; FAILED when ``final``, else PROCESSING (will be retried)."""
        status = TaskStatus.FAILED if final else TaskStatus.PROCESSING
        self._transition(message, attempt, set_values={"status": status.value, "last_error": error})

    def count_duplicate(self, task_id: str) -> None:
        """``duplicate_deliveries += 1`` on a COMPLETED task; nothing else changes."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="ADD duplicate_deliveries :one",
                ConditionExpression="#status = :completed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":completed": {"S": TaskStatus.COMPLETED.value},
                },
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    def _transition(
        self,
        message: TaskMessage,
        attempt: Attempt,
        *,
        set_values: Mapping[str, Any],
        add_values: Mapping[str, int] | None = None,
        return_old: bool = False,
    ) -> dict[str, Any] | None:
        """One conditional update of a not-yet-COMPLETED task; None if it was COMPLETED.

        Besides ``set_values`` it records the attempt (receive count, message id, sequence
        number, ``updated_at``) and fills the task's own fields from the message when the
        record is missing (``if_not_exists``), so the item is always complete.
        """
        delivery = attempt.delivery
        values: dict[str, Any] = {
            **set_values,
            "attempts": delivery.receive_count,
            "message_id": delivery.message_id,
            "updated_at": attempt.at,
        }
        if delivery.sequence_number is not None:
            values["sequence_number"] = delivery.sequence_number
        task = message.task
        defaults: dict[str, Any] = {
            "title": task.title,
            "description": task.description,
            "priority": task.priority.value,
            "created_at": task.created_at,
            "duplicate_deliveries": 0,
        }
        if task.due_date is not None:
            defaults["due_date"] = task.due_date

        names = {"#status": "status"}
        attribute_values: dict[str, Any] = {":completed": TaskStatus.COMPLETED.value}
        assignments = []
        for index, (name, value) in enumerate(values.items()):
            names[f"#s{index}"] = name
            attribute_values[f":s{index}"] = value
            assignments.append(f"#s{index} = :s{index}")
        for index, (name, value) in enumerate(defaults.items()):
            names[f"#d{index}"] = name
            attribute_values[f":d{index}"] = value
            assignments.append(f"#d{index} = if_not_exists(#d{index}, :d{index})")
        expression = "SET " + ", ".join(assignments)
        if add_values:
            additions = []
            for index, (name, amount) in enumerate(add_values.items()):
                names[f"#a{index}"] = name
                attribute_values[f":a{index}"] = amount
                additions.append(f"#a{index} :a{index}")
            expression += " ADD " + ", ".join(additions)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": message.task_id}},
                UpdateExpression=expression,
                ConditionExpression=_NOT_COMPLETED,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_attributes(attribute_values),
                ReturnValues="ALL_OLD" if return_old else "NONE",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return _plain(response.get("Attributes", {}))
