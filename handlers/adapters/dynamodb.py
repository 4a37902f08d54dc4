"""The tasks table (partition key ``task_id``, string), as the API uses it: every write
is conditional.

Implements :class:`~handlers.domain.submission.TaskRepository`. The processor's side,
:class:`~handlers.domain.processing.TaskLedger`, is :mod:`handlers.adapters.ledger`, on
top of this class: the API's cold start does not load the processor's domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from handlers.domain.submission import StoreUnavailableError
from handlers.domain.tasks import TaskStatus

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


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
    """Tasks in DynamoDB, for the API: store, confirm, cancel, read."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put_new(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """Store a new task: None, or the task already stored under its id (a keyed
        submission's id is derived from the key, so a retry finds its first try)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_attributes(item),
                ConditionExpression="attribute_not_exists(task_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return _old_item(exc)
            raise StoreUnavailableError(_error_code(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        return None

    def confirm(
        self, task_id: str, *, acceptance: int, deadline_after: str, at: str
    ) -> dict[str, Any] | None:
        """PENDING -> QUEUED while the deadline is later than ``deadline_after``; the task
        no longer needs its TTL."""
        return self._settle(
            task_id,
            update="SET #status = :queued, updated_at = :at REMOVE purge_at",
            condition=(
                "#status = :pending AND acceptance = :acceptance AND pending_until > :after"
            ),
            values={
                ":queued": TaskStatus.QUEUED.value,
                ":pending": TaskStatus.PENDING.value,
                ":acceptance": acceptance,
                ":after": deadline_after,
                ":at": at,
            },
        )

    def cancel(self, task_id: str, *, acceptance: int, at: str) -> dict[str, Any] | None:
        """PENDING -> CANCELLED (the processor will drop its message)."""
        return self._settle(
            task_id,
            update="SET #status = :cancelled, updated_at = :at",
            condition="#status = :pending AND acceptance = :acceptance",
            values={
                ":cancelled": TaskStatus.CANCELLED.value,
                ":pending": TaskStatus.PENDING.value,
                ":acceptance": acceptance,
                ":at": at,
            },
        )

    def reopen(
        self,
        task_id: str,
        *,
        status: str,
        acceptance: int,
        pending_until: str,
        purge_at: int,
        at: str,
    ) -> bool:
        """PENDING again with a new deadline and the next acceptance, if unchanged."""
        refused = self._settle(
            task_id,
            update=(
                "SET #status = :pending, pending_until = :until, acceptance = :next, "
                "purge_at = :purge, updated_at = :at"
            ),
            condition="#status = :seen AND acceptance = :acceptance",
            values={
                ":pending": TaskStatus.PENDING.value,
                ":seen": status,
                ":until": pending_until,
                ":acceptance": acceptance,
                ":next": acceptance + 1,
                ":purge": purge_at,
                ":at": at,
            },
        )
        return refused is None

    def _settle(
        self, task_id: str, *, update: str, condition: str, values: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """One conditional update: None, or the task as it is when the condition failed
        (``{}`` if there is none). AWS errors become StoreUnavailableError."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_attributes(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return _old_item(exc) or {}
            raise StoreUnavailableError(_error_code(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailableError(type(exc).__name__) from exc
        return None

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored task (strongly consistent read), or None."""
        item = self._client.get_item(
            TableName=self._table, Key={"task_id": {"S": task_id}}, ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


def _old_item(exc: ClientError) -> dict[str, Any] | None:
    """The item a failed condition returned (``ReturnValuesOnConditionCheckFailure``)."""
    raw: Mapping[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
    return _plain(raw) if raw else None
