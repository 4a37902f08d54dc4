"""The tasks table as the processor uses it: attempts and their outcomes, every write
conditional.

Implements :class:`~handlers.domain.processing.TaskLedger` on top of the API's
:class:`~handlers.adapters.dynamodb.DynamoTaskTable` (the same client, table and item
conversions).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from handlers.adapters.dynamodb import (
    DynamoTaskTable,
    _is_condition_failure,
    _old_item,
    _plain,
    _to_attributes,
)
from handlers.domain.processing import (
    STARTABLE,
    Attempt,
    HistoryEvent,
    Started,
    TaskState,
    last_error_code,
)
from handlers.domain.tasks import TaskStatus

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient


class DynamoTaskLedger(DynamoTaskTable):
    """Tasks in DynamoDB, for the processor: starts, completions, failures, redrives."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, attempt_budget: int = 1) -> None:
        super().__init__(client, table_name)
        self._attempt_budget = attempt_budget  # what a task gets on its first start

    def start(
        self,
        task_id: str,
        *,
        previous: int,
        limit: int | None,
        attempt: Attempt,
        read_fault: bool,
        completion: Attempt | None = None,
    ) -> Started | TaskState:
        """The start write of attempt ``previous + 1`` (see :class:`TaskLedger`).

        ``limit`` None means the task was never started: it gets ``attempt_limit`` = the
        budget now. The condition pins the attempt count, so two starts cannot both win.
        With ``completion``, the same write completes the task, as :meth:`complete` does.
        """
        number = previous + 1
        delivery = attempt.delivery
        entries = [attempt.entry(HistoryEvent.STARTED, number)]
        values: dict[str, Any] = {
            ":status": TaskStatus.PROCESSING.value,
            ":previous": previous,
            ":number": number,
            ":receive_count": delivery.receive_count,
            ":message_id": delivery.message_id,
            ":at": attempt.at,
            ":pending": TaskStatus.PENDING.value,
            **_status_values(STARTABLE, "startable"),
        }
        assignments = [
            "#status = :status",
            "attempts = :number",
            "receive_count = :receive_count",
            "message_id = :message_id",
            "updated_at = :at",
            "history = list_append(history, :entries)",
        ]
        add = ""
        if completion is not None:
            entries.append(completion.entry(HistoryEvent.COMPLETED, number))
            values.update(
                {":status": TaskStatus.COMPLETED.value, ":done": completion.at, ":one": 1}
            )
            assignments[assignments.index("updated_at = :at")] = "updated_at = :done"
            assignments.append("processed_at = :done")
            add = " ADD applied :one"
        values[":entries"] = entries
        if delivery.sequence_number is not None:
            values[":sequence_number"] = delivery.sequence_number
            assignments.append("sequence_number = :sequence_number")
        # A PENDING task may start before its deadline (the API has sent it and may not
        # have confirmed it yet); after it, the deadline rule says it is CANCELLED.
        condition = (
            f"attempts = :previous AND (#status IN ({_placeholders(STARTABLE, 'startable')}) "
            "OR (#status = :pending AND pending_until > :at))"
        )
        if limit is None:
            condition += " AND attribute_not_exists(attempt_limit)"
            values[":budget"] = self._attempt_budget
            assignments.append("attempt_limit = :budget")
            limit = self._attempt_budget
        else:
            condition += " AND attempt_limit = :limit"
            values[":limit"] = limit
        if number > limit:
            raise ValueError(f"attempt {number} of task {task_id} is past its limit {limit}")
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                # Started, the task is real: no TTL may remove it any more.
                UpdateExpression="SET " + ", ".join(assignments) + " REMOVE purge_at" + add,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_attributes(values),
                ReturnValues="ALL_NEW" if read_fault else "NONE",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            return _refusal(exc)
        fault = _plain(response["Attributes"]).get("fault") if read_fault else None
        return Started(
            attempt=number,
            limit=limit,
            fault=None if fault is None else str(fault),
            completed=completion is not None,
        )

    def complete(self, task_id: str, *, attempt_no: int, attempt: Attempt) -> TaskState | None:
        """COMPLETED with ``processed_at`` and ``applied`` 1, by the attempt that started it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=(
                    "SET #status = :completed, processed_at = :at, updated_at = :at, "
                    "history = list_append(history, :entry) ADD applied :one"
                ),
                ConditionExpression="#status = :processing AND attempts = :number",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_attributes(
                    {
                        ":completed": TaskStatus.COMPLETED.value,
                        ":processing": TaskStatus.PROCESSING.value,
                        ":number": attempt_no,
                        ":at": attempt.at,
                        ":one": 1,
                        ":entry": [attempt.entry(HistoryEvent.COMPLETED, attempt_no)],
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            return _refusal(exc)
        return None

    def record_failure(self, task_id: str, *, attempt_no: int, code: str, attempt: Attempt) -> None:
        """A ``failed`` entry for the attempt that started it; the task stays PROCESSING."""
        self._after_attempt(
            task_id,
            attempt_no=attempt_no,
            attempt=attempt,
            entries=[attempt.entry(HistoryEvent.FAILED, attempt_no, code)],
        )

    def fail(
        self,
        task_id: str,
        *,
        attempt_no: int,
        code: str,
        attempt: Attempt,
        events: tuple[HistoryEvent, ...],
    ) -> None:
        """FAILED with ``failure_code``, appending one entry per event."""
        self._after_attempt(
            task_id,
            attempt_no=attempt_no,
            attempt=attempt,
            entries=[attempt.entry(event, attempt_no, code) for event in events],
            failure_code=code,
        )

    def redrive(self, task_id: str, *, attempts: int, limit: int, attempt: Attempt) -> bool:
        """A FAILED task sent back from the DLQ: QUEUED, ``attempt_limit`` = ``limit``."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                UpdateExpression=(
                    "SET #status = :queued, attempt_limit = :limit, updated_at = :at, "
                    "history = list_append(history, :entry) REMOVE failure_code"
                ),
                ConditionExpression="#status = :failed AND attempts = :attempts",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_attributes(
                    {
                        ":queued": TaskStatus.QUEUED.value,
                        ":failed": TaskStatus.FAILED.value,
                        ":attempts": attempts,
                        ":limit": limit,
                        ":at": attempt.at,
                        ":entry": [attempt.entry(HistoryEvent.REDRIVEN, attempts)],
                    }
                ),
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def count_duplicate(self, task_id: str) -> None:
        """``duplicate_deliveries += 1`` on a finished task; nothing else changes."""
        finished = (TaskStatus.COMPLETED, TaskStatus.FAILED)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="ADD duplicate_deliveries :one",
                ConditionExpression=f"#status IN ({_placeholders(finished, 'finished')})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_attributes(
                    {":one": 1, **_status_values(finished, "finished")}
                ),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    def cancel_expired(self, task_id: str, *, pending_until: str, attempt: Attempt) -> None:
        """CANCELLED, if still the PENDING task whose deadline passed (changes nothing else)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"task_id": {"S": task_id}},
                UpdateExpression="SET #status = :cancelled, updated_at = :at",
                ConditionExpression="#status = :pending AND pending_until = :until",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_attributes(
                    {
                        ":cancelled": TaskStatus.CANCELLED.value,
                        ":pending": TaskStatus.PENDING.value,
                        ":until": pending_until,
                        ":at": attempt.at,
                    }
                ),
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise

    def _after_attempt(
        self,
        task_id: str,
        *,
        attempt_no: int,
        attempt: Attempt,
        entries: list[dict[str, Any]],
        failure_code: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            ":processing": TaskStatus.PROCESSING.value,
            ":number": attempt_no,
            ":at": attempt.at,
            ":entries": entries,
        }
        expression = "SET updated_at = :at, history = list_append(history, :entries)"
        if failure_code is not None:
            expression += ", #status = :failed, failure_code = :code"
            values.update({":failed": TaskStatus.FAILED.value, ":code": failure_code})
        self._client.update_item(
            TableName=self._table,
            Key={"task_id": {"S": task_id}},
            UpdateExpression=expression,
            ConditionExpression="#status = :processing AND attempts = :number",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_to_attributes(values),
        )


def _placeholders(statuses: Iterable[TaskStatus], prefix: str) -> str:
    return ", ".join(f":{prefix}{index}" for index, _ in enumerate(sorted(statuses)))


def _status_values(statuses: Iterable[TaskStatus], prefix: str) -> dict[str, str]:
    return {f":{prefix}{index}": status.value for index, status in enumerate(sorted(statuses))}


def _refusal(exc: ClientError) -> TaskState:
    """The task's state from a failed condition's ``ALL_OLD``; other errors re-raised."""
    if not _is_condition_failure(exc):
        raise exc
    item = _old_item(exc)
    if item is None:
        return TaskState(exists=False)
    limit = item.get("attempt_limit")
    return TaskState(
        exists=True,
        status=str(item.get("status")),
        attempts=int(item.get("attempts", 0)),
        attempt_limit=None if limit is None else int(limit),
        message_id=None if item.get("message_id") is None else str(item["message_id"]),
        last_error_code=last_error_code(item.get("history")),
        pending_until=None if item.get("pending_until") is None else str(item["pending_until"]),
    )
