"""The API's use cases: accept a task, look a task up, and the request-level checks.

Storage and queue are ports (protocols) implemented in :mod:`handlers.adapters`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from handlers.domain.constants import MAX_BODY_BYTES
from handlers.domain.errors import (
    FieldProblem,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from handlers.domain.faults import (
    FaultDirective,
    InvalidFaultDirectiveError,
    fault_injection_enabled,
    parse_fault_directive,
)
from handlers.domain.messages import task_message_body
from handlers.domain.tasks import (
    CreateTaskRequest,
    CreateTaskResponse,
    TaskStatus,
    TaskView,
    is_task_id,
    new_task_item,
)

ACCEPTED_MESSAGE = "Task accepted and queued for processing"


class QueueUnavailableError(Exception):
    """The queue did not take the message (throttling, outage, permissions)."""


class TaskRepository(Protocol):
    """Where the API keeps tasks."""

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Store a new task; the id is fresh, so an existing item is an error."""

    def delete_if_queued(self, task_id: str) -> None:
        """Remove a task that is still QUEUED (undo of an accepted-but-not-queued task)."""

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored item, or None."""


class TaskQueue(Protocol):
    """Where the API sends tasks for processing."""

    def send(self, *, body: str, deduplication_id: str) -> None:
        """Send one message to the task group; raises QueueUnavailableError on failure."""


def check_transport(*, content_type: str | None, body_size: int) -> None:
    """Reject what is not a JSON body of acceptable size (413, then 415).

    A missing Content-Type is read as JSON; parameters such as ``charset`` are allowed.
    """
    if body_size > MAX_BODY_BYTES:
        raise PayloadTooLargeError(body_size)
    if content_type is not None and content_type.strip():
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise UnsupportedMediaTypeError(content_type)


def read_fault_directive(
    header_value: str | None, *, enabled_flag: str | None, header_name: str
) -> FaultDirective | None:
    """The fault directive to attach to a task, or None.

    With fault injection off (``enabled_flag`` not ``"true"``) the header is ignored
    entirely, whatever it holds. With it on, an unknown directive is a 400.
    """
    if not fault_injection_enabled(enabled_flag) or header_value is None:
        return None
    try:
        return parse_fault_directive(header_value)
    except InvalidFaultDirectiveError as exc:
        raise ValidationFailedError(
            "the fault injection header is invalid",
            details=[FieldProblem(header_name, str(exc))],
        ) from None


def submit_task(
    request: CreateTaskRequest,
    fault: FaultDirective | None,
    *,
    repository: TaskRepository,
    queue: TaskQueue,
    now: datetime,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> CreateTaskResponse:
    """Record the task as QUEUED, then queue it; if queueing fails, undo and raise 503.

    The record is written first so the processor always finds it; the message carries
    the task id as its deduplication id, so two identical submissions stay two tasks.
    """
    task_id = new_id()
    item = new_task_item(
        request, task_id=task_id, now=now, fault=None if fault is None else str(fault)
    )
    repository.put_new(item)
    try:
        queue.send(body=task_message_body(item), deduplication_id=task_id)
    except QueueUnavailableError:
        repository.delete_if_queued(task_id)
        raise ServiceUnavailableError(
            "the task could not be queued and was not kept; retry later"
        ) from None
    return CreateTaskResponse(task_id=task_id, message=ACCEPTED_MESSAGE, status=TaskStatus.QUEUED)


def get_task(task_id: str, *, repository: TaskRepository) -> TaskView:
    """The task with this id: 400 if the id is not a UUID, 404 if there is no such task."""
    if not is_task_id(task_id):
        raise ValidationFailedError(
            "the task id is malformed",
            details=[FieldProblem("task_id", "must be a UUID (8-4-4-4-12 hexadecimal digits)")],
        )
    item = repository.get(task_id.lower())
    if item is None:
        raise NotFoundError(f"no task with id {task_id.lower()}")
    return TaskView.from_item(item)
