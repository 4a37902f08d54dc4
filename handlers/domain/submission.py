"""The API's use cases: accept a task, look a task up, and the request-level checks.

Accepting a task is a small state machine on the task's record, so that an answer always
tells the truth about what will happen (``docs/decisions/task-lifecycle.md``):

1. **store** the task as PENDING with a deadline ``pending_until`` (``now + pending
   window``) and ``acceptance`` 1;
2. **send** its message to the FIFO queue (deduplication id: the task id, or
   ``<task id>#<acceptance>`` after a reopen);
3. **confirm** it: PENDING -> QUEUED, only while its deadline is more than
   :data:`CONFIRM_MARGIN_S` away. Then, and only then, the answer is 200.

If the store fails, nothing was sent: 503 (a record stored despite the error stays PENDING
and is cancelled by its deadline). If the send fails (an error, or a lost response while
the message did arrive), the task is **cancelled** (PENDING -> CANCELLED) before the answer
is 503: the processor drops a message whose task is CANCELLED, so nothing of it will ever
be processed. If the cancel is refused because the processor already took the task, the
answer is 200. When neither the confirm nor the cancel can be written (the tasks table
failing too) nobody can know yet whether the task will run: the answer is 500
``outcome_unknown`` with the task id, and a retry with the same Idempotency-Key resumes
that same task (its id is derived from the key and the request).

The deadline rule closes every other gap: a PENDING task past ``pending_until`` *is*
cancelled (GET shows CANCELLED, the processor drops its message and marks it so), so a
function that ends between two steps leaves nothing stranded. Storage and queue are ports
(protocols) implemented in :mod:`handlers.adapters`; test-only faults wrap them
(:class:`FaultyRepository`, :class:`FaultyQueue`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn, Protocol

from handlers.domain.constants import MAX_BODY_BYTES
from handlers.domain.errors import (
    FieldProblem,
    NotFoundError,
    OutcomeUnknownError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from handlers.domain.faults import (
    ApiFault,
    FaultPlan,
    InvalidFaultDirectiveError,
    fault_injection_enabled,
    parse_fault_plan,
)
from handlers.domain.messages import task_message_body
from handlers.domain.tasks import (
    CreateTaskRequest,
    CreateTaskResponse,
    TaskStatus,
    TaskView,
    effective_status,
    is_task_id,
    new_task_item,
    utc_timestamp,
)

ACCEPTED_MESSAGE: Final = "Task accepted and queued for processing"
CONFIRM_MARGIN_S: Final = 3
"""The API confirms a task only while its deadline is at least this far away, so the
processor (which drops a PENDING task's message once the deadline has passed, by its own
clock) can never have dropped a task the API then confirms; covers clock skew between
function instances (milliseconds on Lambda)."""
PURGE_AFTER: Final = timedelta(days=15)
"""A task never confirmed is removed by DynamoDB TTL (``purge_at``) this long after it was
stored: after every message that names it is gone (queue 4 days, DLQ 14 days)."""
# Statuses of a task the processor has or will have: accepting it again is a 200.
_ACCEPTED: Final = frozenset(
    {TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.COMPLETED, TaskStatus.FAILED}
)
_TASK_ID_NAMESPACE: Final = "task-api/idempotency-key/v1"


class QueueUnavailableError(Exception):
    """The queue did not take the message, or did not say it had (throttling, outage,
    permissions, a timeout)."""


class StoreUnavailableError(Exception):
    """The tasks table did not answer, or answered with an error."""


class TaskRepository(Protocol):
    """Where the API keeps tasks; every write is conditional."""

    def put_new(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """Store a new task: None, or the task already stored under this id."""

    def confirm(
        self, task_id: str, *, acceptance: int, deadline_after: str, at: str
    ) -> dict[str, Any] | None:
        """PENDING -> QUEUED if ``acceptance`` matches and ``pending_until`` is later than
        ``deadline_after``: None, or the task as it is (the condition failed)."""

    def cancel(self, task_id: str, *, acceptance: int, at: str) -> dict[str, Any] | None:
        """PENDING -> CANCELLED if ``acceptance`` matches: None, or the task as it is."""

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
        """A CANCELLED (or expired PENDING) task, accepted again: PENDING with a new
        deadline and ``acceptance + 1``; False if it changed meanwhile."""

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored item, or None."""


class TaskQueue(Protocol):
    """Where the API sends tasks for processing."""

    def send(self, *, body: str, deduplication_id: str) -> None:
        """Send one message to the task group; raises QueueUnavailableError on failure."""


class FunctionEnd(Protocol):
    """Ends the function at once, as a crash or a timeout would (test-only faults)."""

    def end(self) -> NoReturn:
        """Stop the process; nothing after this runs."""


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


def read_fault_plan(
    header_value: str | None, *, enabled_flag: str | None, header_name: str
) -> FaultPlan | None:
    """The test-only faults a request asks for, or None.

    With fault injection off (``enabled_flag`` not ``"true"``) the header is ignored
    entirely, whatever it holds. With it on, an unknown directive is a 400.
    """
    if not fault_injection_enabled(enabled_flag) or header_value is None:
        return None
    try:
        return parse_fault_plan(header_value)
    except InvalidFaultDirectiveError as exc:
        raise ValidationFailedError(
            "the fault injection header is invalid",
            details=[FieldProblem(header_name, str(exc))],
        ) from None


def task_id_for_key(idempotency_key: str, request: Mapping[str, Any]) -> str:
    """The task id of a keyed submission: the same key and request always give the same id,
    so a retry after an unknown outcome resumes the same task instead of adding another.

    A UUID in the version-4 layout (what clients are told to expect), its bits taken from a
    SHA-256 of the key and the request rather than from a random source.
    """
    canonical = json.dumps(
        {"key": idempotency_key, "request": request}, sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(f"{_TASK_ID_NAMESPACE}\n{canonical}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def deduplication_id(task_id: str, acceptance: int) -> str:
    """The message's deduplication id: the task id, plus the acceptance after a reopen (a
    message of an earlier acceptance may still be inside the queue's 5-minute window)."""
    return task_id if acceptance == 1 else f"{task_id}#{acceptance}"


def submit_task(
    request: CreateTaskRequest,
    fault: str | None,
    *,
    task_id: str,
    repository: TaskRepository,
    queue: TaskQueue,
    clock: Callable[[], datetime],
    pending_window_s: int,
) -> CreateTaskResponse:
    """Accept a task (see the module docstring): 200 only once it is known to be queued,
    503 only once it is known that nothing of it will be processed, else 500
    ``outcome_unknown``."""
    now = clock()
    item = new_task_item(
        request,
        task_id=task_id,
        now=now,
        fault=fault,
        pending_until=utc_timestamp(now + timedelta(seconds=pending_window_s)),
        purge_at=int((now + PURGE_AFTER).timestamp()),
    )
    try:
        existing = repository.put_new(item)
    except StoreUnavailableError:
        raise ServiceUnavailableError(
            "the task could not be stored; nothing of it will be processed; retry later"
        ) from None
    acceptance = 1
    if existing is not None:
        status = effective_status(existing, clock())
        if status in _ACCEPTED:
            return _accepted(task_id)
        acceptance = int(existing.get("acceptance", 1))
        if not _confirmable(existing, clock()):
            acceptance = _reopen(repository, existing, clock(), pending_window_s)
        item = existing
    try:
        queue.send(
            body=task_message_body(item), deduplication_id=deduplication_id(task_id, acceptance)
        )
    except QueueUnavailableError:
        return _cancel(repository, task_id, acceptance, clock)
    try:
        current = repository.confirm(
            task_id,
            acceptance=acceptance,
            deadline_after=utc_timestamp(clock() + timedelta(seconds=CONFIRM_MARGIN_S)),
            at=utc_timestamp(clock()),
        )
    except StoreUnavailableError:
        raise OutcomeUnknownError(task_id) from None
    if current is None or effective_status(current, clock()) in _ACCEPTED:
        return _accepted(task_id)
    # Still PENDING but too close to its deadline (or cancelled meanwhile): settle it.
    return _cancel(repository, task_id, acceptance, clock)


def _confirmable(item: Mapping[str, Any], now: datetime) -> bool:
    """A PENDING task whose deadline is far enough away to send and confirm it now."""
    if item.get("status") != TaskStatus.PENDING.value:
        return False
    margin = utc_timestamp(now + timedelta(seconds=CONFIRM_MARGIN_S))
    return str(item.get("pending_until", "")) > margin


def _reopen(
    repository: TaskRepository, existing: Mapping[str, Any], now: datetime, window_s: int
) -> int:
    """Accept a cancelled submission again (a retry with its Idempotency-Key)."""
    acceptance = int(existing.get("acceptance", 1))
    try:
        reopened = repository.reopen(
            str(existing["task_id"]),
            status=str(existing["status"]),
            acceptance=acceptance,
            pending_until=utc_timestamp(now + timedelta(seconds=window_s)),
            purge_at=int((now + PURGE_AFTER).timestamp()),
            at=utc_timestamp(now),
        )
    except StoreUnavailableError:
        raise ServiceUnavailableError(
            "the task could not be stored; nothing of it will be processed; retry later"
        ) from None
    if not reopened:
        raise OutcomeUnknownError(str(existing["task_id"]))
    return acceptance + 1


def _cancel(
    repository: TaskRepository, task_id: str, acceptance: int, clock: Callable[[], datetime]
) -> CreateTaskResponse:
    """The send failed (or its response was lost): make the outcome definitive."""
    try:
        current = repository.cancel(task_id, acceptance=acceptance, at=utc_timestamp(clock()))
    except StoreUnavailableError:
        raise OutcomeUnknownError(task_id) from None
    if current is not None and effective_status(current, clock()) in _ACCEPTED:
        return _accepted(task_id)  # the processor took it before the cancel: it will run
    if current is None or effective_status(current, clock()) is TaskStatus.CANCELLED:
        raise ServiceUnavailableError(
            "the task could not be queued and was cancelled; nothing of it will be "
            "processed; retry later"
        )
    raise OutcomeUnknownError(task_id)


def _accepted(task_id: str) -> CreateTaskResponse:
    return CreateTaskResponse(task_id=task_id, message=ACCEPTED_MESSAGE, status=TaskStatus.QUEUED)


def get_task(task_id: str, *, repository: TaskRepository, now: datetime) -> TaskView:
    """The task with this id: 400 if the id is not a UUID, 404 if there is no such task."""
    if not is_task_id(task_id):
        raise ValidationFailedError(
            "the task id is malformed",
            details=[FieldProblem("task_id", "must be a UUID (8-4-4-4-12 hexadecimal digits)")],
        )
    item = repository.get(task_id.lower())
    if item is None:
        raise NotFoundError(f"no task with id {task_id.lower()}")
    return TaskView.from_item({**item, "status": effective_status(item, now).value})


# --- test-only faults around the ports --------------------------------------------------


class FaultyRepository:
    """A :class:`TaskRepository` whose writes fail (or end the function) as a plan says."""

    def __init__(self, inner: TaskRepository, faults: frozenset[ApiFault], end: FunctionEnd):
        self._inner = inner
        self._faults = faults
        self._end = end

    def put_new(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        self._fail_if(ApiFault.STORE_FAILS)
        existing = self._inner.put_new(item)
        if ApiFault.END_AFTER_STORE in self._faults:
            self._end.end()
        return existing

    def confirm(
        self, task_id: str, *, acceptance: int, deadline_after: str, at: str
    ) -> dict[str, Any] | None:
        self._fail_if(ApiFault.CONFIRM_FAILS)
        return self._inner.confirm(
            task_id, acceptance=acceptance, deadline_after=deadline_after, at=at
        )

    def cancel(self, task_id: str, *, acceptance: int, at: str) -> dict[str, Any] | None:
        self._fail_if(ApiFault.CANCEL_FAILS)
        return self._inner.cancel(task_id, acceptance=acceptance, at=at)

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
        return self._inner.reopen(
            task_id,
            status=status,
            acceptance=acceptance,
            pending_until=pending_until,
            purge_at=purge_at,
            at=at,
        )

    def get(self, task_id: str) -> dict[str, Any] | None:
        return self._inner.get(task_id)

    def _fail_if(self, fault: ApiFault) -> None:
        if fault in self._faults:
            raise StoreUnavailableError(f"injected fault {fault.value}")


class FaultyQueue:
    """A :class:`TaskQueue` whose send fails, loses its response or ends the function."""

    def __init__(self, inner: TaskQueue, faults: frozenset[ApiFault], end: FunctionEnd):
        self._inner = inner
        self._faults = faults
        self._end = end

    def send(self, *, body: str, deduplication_id: str) -> None:
        if ApiFault.SEND_FAILS in self._faults:
            raise QueueUnavailableError("injected fault send-fails")
        self._inner.send(body=body, deduplication_id=deduplication_id)
        if ApiFault.END_AFTER_SEND in self._faults:
            self._end.end()
        if ApiFault.SEND_LOST in self._faults:
            raise QueueUnavailableError("injected fault send-lost: the message was sent")
