"""The processor's use case: apply one queue delivery to its task, exactly once, and keep
a record of every real attempt.

Rules, for one delivery (an SQS record) of a task message:

- A body that can never be processed (:class:`~handlers.domain.messages.PoisonMessageError`)
  goes to the dead-letter queue with its reason and counts as handled (no retry).
- Every attempt starts with a *start write*, before any work: the task becomes PROCESSING,
  ``attempts`` goes up by one and ``history`` gets a ``started`` entry (attempt number,
  receive count, the invocation's request id). A crash or a timeout is therefore counted
  too. A record handed back untried (behind a failure in a FIFO batch, or behind a crash)
  never reached this write, so it is not an attempt.
- The start write is conditional: the task must exist, be startable (QUEUED or PROCESSING,
  see :data:`STARTABLE`, or PENDING before its ``pending_until``: the API may not have
  confirmed it yet) and have attempts left. When it is refused, the task's current state
  decides (see :meth:`Processor.process`): a COMPLETED task makes the delivery a duplicate
  (only ``duplicate_deliveries`` goes up); a task whose attempts reached its budget (its
  last attempt crashed or timed out) is dead-lettered now, without another attempt, and
  the batch goes on; a FAILED task delivered by a new message (an operator sent it back
  from the dead-letter queue) gets a new budget of attempts; a CANCELLED task, or a
  PENDING one past its deadline (which the deadline rule makes CANCELLED, and the
  processor marks so), is never processed: the message is dropped and counted; a missing
  task is never recreated from the message: the message goes to the dead-letter queue
  with the reason ``unknown_task``.
- A successful attempt completes the task by a conditional write (only the attempt that
  started it can), with ``applied`` set to 1 and ``processed_at``. When the attempt has
  nothing to do between the two (no fault directive to act on: every production task),
  the start write completes the task itself: one conditional write, the same condition,
  both history entries.
- A failed attempt is recorded (``history`` entry ``failed`` with a short error code; the
  full error goes only to the function's log) and raised, so the batch reports it and the
  queue retries. On the task's last attempt the processor forwards the message to the
  dead-letter queue itself (reason ``attempts_exhausted``) and marks the task FAILED with
  a ``failure_code``, then carries on with the batch: raising would hand back every later
  record of the FIFO batch too, and they would be received as often as this one.

The queue's redrive policy (``maxReceiveCount``) is only a safety net above the attempt
budget; see ``docs/decisions/attempt-budget-and-redrive.md``.

With fault injection enabled, a message carrying a fault directive makes the attempt read
the directive stored on the task (which an operator may have cleared), then misbehave on
the attempts the directive names (see :mod:`handlers.domain.faults`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from handlers.domain.faults import FaultDirective, FaultKind, parse_fault_directive
from handlers.domain.messages import (
    PoisonMessageError,
    PoisonReason,
    TaskMessage,
    parse_task_message,
)
from handlers.domain.tasks import TaskStatus, utc_timestamp

# Statuses from which an attempt may start.
STARTABLE: Final = frozenset({TaskStatus.QUEUED, TaskStatus.PROCESSING})
# A refused start is retried with the task's real state at most this often (a wrong guess
# of the attempt count, then a redrive that reopens a FAILED task).
_MAX_START_TRIES: Final = 3


class FailureCode(StrEnum):
    """Short, stable codes for why an attempt failed (what GET shows for a FAILED task)."""

    INJECTED_FAULT = "injected_fault"
    # The attempt started and never reported an end: a crash or a timeout (the processor
    # cannot tell which afterwards; the function's log and Lambda's metrics can).
    INTERRUPTED = "interrupted"
    THROTTLED = "throttled"
    ACCESS_DENIED = "access_denied"
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
    DEPENDENCY_ERROR = "dependency_error"
    INTERNAL_ERROR = "internal_error"


class HistoryEvent(StrEnum):
    """What a ``history`` entry records."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    # A FAILED task came back from the dead-letter queue and got a new budget of attempts.
    REDRIVEN = "redriven"


@dataclass(frozen=True)
class Delivery:
    """One delivery of a queue message, as the processor sees it."""

    message_id: str
    body: str
    receive_count: int
    sequence_number: str | None
    message_group_id: str | None
    invocation: str = ""  # the Lambda request id of the invocation handling it


@dataclass(frozen=True)
class Attempt:
    """Who delivered what, and when: the facts every write records."""

    delivery: Delivery
    at: str

    def entry(
        self, event: HistoryEvent, attempt: int, error_code: str | None = None
    ) -> dict[str, Any]:
        """One ``history`` entry."""
        entry: dict[str, Any] = {
            "event": event.value,
            "attempt": attempt,
            "receive_count": self.delivery.receive_count,
            "invocation": self.delivery.invocation,
            "at": self.at,
        }
        if error_code is not None:
            entry["error_code"] = error_code
        return entry


@dataclass(frozen=True)
class Started:
    """The start write went through: this is attempt ``attempt`` of at most ``limit``."""

    attempt: int
    limit: int
    fault: str | None = None  # the directive stored on the task, when it was asked for
    completed: bool = False  # the same write completed the task (see TaskLedger.start)


@dataclass(frozen=True)
class TaskState:
    """The task as it was when a start write was refused (``exists`` False: no record)."""

    exists: bool
    status: str | None = None
    attempts: int = 0
    attempt_limit: int | None = None
    message_id: str | None = None
    last_error_code: str | None = None  # of the latest ``failed`` history entry
    pending_until: str | None = None

    def limit(self, budget: int) -> int:
        """The attempt number the task may reach (its budget, raised by redrives)."""
        return self.attempt_limit if self.attempt_limit is not None else budget


class Outcome(StrEnum):
    """How a delivery ended, when it did not raise."""

    COMPLETED = "completed"
    DUPLICATE = "duplicate"
    POISON = "poison"
    # This attempt failed and was the task's last: FAILED and in the DLQ.
    DEAD_LETTERED = "dead_lettered"
    # The task's last attempt had already ended without a result (crash, timeout): it is
    # FAILED and in the DLQ now, without another attempt.
    EXHAUSTED = "exhausted"
    # No such task: the message went to the DLQ (reason unknown_task); nothing was created.
    UNKNOWN_TASK = "unknown_task"
    # The task was cancelled (or never confirmed before its deadline): dropped, not run.
    DROPPED = "dropped"


@dataclass(frozen=True)
class Result:
    """An outcome, plus the error of a dead-lettering failure (for the function's log)."""

    outcome: Outcome
    failure_code: str | None = None
    error: BaseException | None = None


class InjectedFaultError(RuntimeError):
    """The failure a ``fail-attempts=N`` / ``always-fail`` directive asks for."""


class AttemptFailedError(Exception):
    """An attempt failed and will be retried; ``code`` is what the task records."""

    def __init__(self, code: str, cause: BaseException) -> None:
        super().__init__(f"{code}: {type(cause).__name__}")
        self.code = code
        self.cause = cause


class UnexpectedTaskStateError(RuntimeError):
    """The task changed under the processor in a way the rules do not allow."""


class TaskLedger(Protocol):
    """The processor's conditional writes to the tasks table."""

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
        """Attempt ``previous + 1``: only if the task has exactly ``previous`` attempts, is
        startable and has attempts left (``limit`` None: a task never started, which gets
        the budget). Otherwise the task's state. With ``completion`` the same write also
        completes the task (``started`` and ``completed`` entries, as ``complete`` would)."""

    def complete(self, task_id: str, *, attempt_no: int, attempt: Attempt) -> TaskState | None:
        """COMPLETED, only by the attempt that started it; None, or the state that refused."""

    def record_failure(self, task_id: str, *, attempt_no: int, code: str, attempt: Attempt) -> None:
        """Append a ``failed`` entry to the attempt that started it (the task stays
        PROCESSING, to be retried)."""

    def fail(
        self,
        task_id: str,
        *,
        attempt_no: int,
        code: str,
        attempt: Attempt,
        events: tuple[HistoryEvent, ...],
    ) -> None:
        """FAILED with ``failure_code``, appending ``events`` (the task has been forwarded to
        the dead-letter queue)."""

    def redrive(self, task_id: str, *, attempts: int, limit: int, attempt: Attempt) -> bool:
        """A FAILED task sent back: QUEUED with the attempt limit ``limit``; False if the
        task changed meanwhile."""

    def count_duplicate(self, task_id: str) -> None:
        """Count a delivery that found the task finished (changes nothing else)."""

    def cancel_expired(self, task_id: str, *, pending_until: str, attempt: Attempt) -> None:
        """A PENDING task past its deadline: CANCELLED (what the deadline rule says it is)."""


class DeadLetterSink(Protocol):
    """The dead-letter queue, for messages that will not be processed."""

    def send_poison(self, delivery: Delivery, reason: PoisonReason, detail: str) -> None:
        """Forward the delivery's body with the reason attached."""


class FaultEffects(Protocol):
    """The two faults the domain cannot perform itself (they end the invocation)."""

    def time_out(self) -> None:
        """Outlive the invocation's remaining time."""

    def crash(self) -> None:
        """End the process at once."""


class Clock(Protocol):
    """Source of timestamps (strictly increasing in production)."""

    def now(self) -> datetime:
        """The current UTC time."""


ErrorClassifier = Callable[[BaseException], str]


def classify_domain_error(exc: BaseException, fallback: ErrorClassifier | None = None) -> str:
    """The failure code of ``exc``: the domain's own errors here, the rest by ``fallback``."""
    if isinstance(exc, InjectedFaultError):
        return FailureCode.INJECTED_FAULT.value
    if fallback is not None:
        return fallback(exc)
    return FailureCode.INTERNAL_ERROR.value


@dataclass(frozen=True)
class Processor:
    """Everything one delivery needs; :meth:`process` applies it."""

    ledger: TaskLedger
    dead_letters: DeadLetterSink
    effects: FaultEffects
    clock: Clock
    fault_injection: bool
    attempt_budget: int
    classify: ErrorClassifier | None = None

    def process(self, delivery: Delivery) -> Result:
        """Apply one delivery (see the module docstring); raises
        :class:`AttemptFailedError` when the attempt failed and must be retried."""
        try:
            message = parse_task_message(delivery.body)
        except PoisonMessageError as poison:
            self.dead_letters.send_poison(delivery, poison.reason, poison.detail)
            return Result(Outcome.POISON)
        started = self._start(message, delivery)
        if isinstance(started, Result):
            return started
        if started.completed:
            return Result(Outcome.COMPLETED)
        return self._attempt(message, delivery, started)

    # --- the start write and what a refusal means ------------------------------------------

    def _start(self, message: TaskMessage, delivery: Delivery) -> Started | Result:
        read_fault = self.fault_injection and message.fault is not None
        # Without a fault directive to act on, nothing happens between an attempt's start
        # and its completion: one write does both (one call per task, not two). It is the
        # same conditional start, so the attempt is counted, its history recorded and the
        # budget kept exactly as with two writes; a crash or a timeout can only fall
        # before it (no attempt, nothing done) or after it (the task is COMPLETED).
        at_once = not read_fault
        # A first attempt is by far the common case: guess it, learn the truth if refused.
        previous, limit = 0, None
        tries = 0
        while tries < _MAX_START_TRIES:
            facts = self._attempt_facts(delivery)
            try:
                answer = self.ledger.start(
                    message.task_id,
                    previous=previous,
                    limit=limit,
                    attempt=facts,
                    read_fault=read_fault,
                    completion=self._attempt_facts(delivery) if at_once else None,
                )
            except Exception:
                if not at_once:
                    raise
                # Whether the write applied is unknown (an error, a timeout): start again
                # with two writes, which finds out (a completed task refuses the start) and
                # records a failed completion as the attempt's failure, with its code, as
                # for any task.
                at_once = False
                continue
            tries += 1
            if isinstance(answer, Started):
                return answer
            decided = self._refused(message, delivery, answer)
            if isinstance(decided, Result):
                return decided
            previous, limit = decided
        raise UnexpectedTaskStateError(
            f"task {message.task_id} kept changing while attempt {previous + 1} tried to start"
        )

    def _refused(
        self, message: TaskMessage, delivery: Delivery, state: TaskState
    ) -> Result | tuple[int, int]:
        """What a refused start means: a final result, or (attempts, limit) to start from."""
        task_id = message.task_id
        if not state.exists:
            self.dead_letters.send_poison(
                delivery, PoisonReason.UNKNOWN_TASK, f"no task {task_id} in the tasks table"
            )
            return Result(Outcome.UNKNOWN_TASK)
        limit = state.limit(self.attempt_budget)
        if state.status == TaskStatus.COMPLETED:
            self.ledger.count_duplicate(task_id)
            return Result(Outcome.DUPLICATE)
        if state.status == TaskStatus.FAILED:
            if state.message_id == delivery.message_id:
                # The dead-lettered delivery itself, back because its batch was returned.
                self.ledger.count_duplicate(task_id)
                return Result(Outcome.DUPLICATE)
            new_limit = state.attempts + self.attempt_budget
            if not self.ledger.redrive(
                task_id,
                attempts=state.attempts,
                limit=new_limit,
                attempt=self._attempt_facts(delivery),
            ):
                raise UnexpectedTaskStateError(f"task {task_id} changed while being reopened")
            return state.attempts, new_limit
        if state.status == TaskStatus.CANCELLED:
            return Result(Outcome.DROPPED)
        if state.status == TaskStatus.PENDING:
            facts = self._attempt_facts(delivery)
            if state.pending_until is not None and state.pending_until <= facts.at:
                self.ledger.cancel_expired(
                    task_id, pending_until=state.pending_until, attempt=facts
                )
                return Result(Outcome.DROPPED)
            return state.attempts, limit
        if state.status in STARTABLE:
            if state.attempts < limit:
                return state.attempts, limit
            # Attempts exhausted and the last one never reported (crash, timeout) or could
            # not be dead-lettered: finish it now, without another attempt.
            code = state.last_error_code or FailureCode.INTERRUPTED.value
            self.dead_letters.send_poison(delivery, PoisonReason.ATTEMPTS_EXHAUSTED, code)
            self.ledger.fail(
                task_id,
                attempt_no=state.attempts,
                code=code,
                attempt=self._attempt_facts(delivery),
                events=(HistoryEvent.DEAD_LETTERED,),
            )
            return Result(Outcome.EXHAUSTED, failure_code=code)
        raise UnexpectedTaskStateError(f"task {task_id} is {state.status}: not startable")

    # --- one attempt --------------------------------------------------------------------

    def _attempt(self, message: TaskMessage, delivery: Delivery, started: Started) -> Result:
        number = started.attempt
        try:
            if started.fault is not None:
                self._misbehave(parse_fault_directive(started.fault), number)
            refused = self.ledger.complete(
                message.task_id, attempt_no=number, attempt=self._attempt_facts(delivery)
            )
            if refused is not None:
                if refused.status == TaskStatus.COMPLETED:
                    self.ledger.count_duplicate(message.task_id)
                    return Result(Outcome.DUPLICATE)
                raise UnexpectedTaskStateError(
                    f"task {message.task_id} is {refused.status} with {refused.attempts} "
                    f"attempts; attempt {number} cannot complete it"
                )
        except Exception as exc:
            code = classify_domain_error(exc, self.classify)
            if number < started.limit:
                self.ledger.record_failure(
                    message.task_id,
                    attempt_no=number,
                    code=code,
                    attempt=self._attempt_facts(delivery),
                )
                raise AttemptFailedError(code, exc) from exc
            return self._dead_letter(message, delivery, number, code, exc)
        return Result(Outcome.COMPLETED)

    def _dead_letter(
        self, message: TaskMessage, delivery: Delivery, number: int, code: str, exc: Exception
    ) -> Result:
        """The last attempt failed: forward the task to the DLQ, then mark it FAILED.

        Forwarding first: if it fails, the failure is recorded and raised, and the next
        delivery finds the attempts exhausted and forwards it then (the task is never
        FAILED without being in the dead-letter queue).
        """
        try:
            self.dead_letters.send_poison(delivery, PoisonReason.ATTEMPTS_EXHAUSTED, code)
        except Exception as forward_error:
            self.ledger.record_failure(
                message.task_id, attempt_no=number, code=code, attempt=self._attempt_facts(delivery)
            )
            raise AttemptFailedError(code, exc) from forward_error
        self.ledger.fail(
            message.task_id,
            attempt_no=number,
            code=code,
            attempt=self._attempt_facts(delivery),
            events=(HistoryEvent.FAILED, HistoryEvent.DEAD_LETTERED),
        )
        return Result(Outcome.DEAD_LETTERED, failure_code=code, error=exc)

    def _misbehave(self, directive: FaultDirective, attempt: int) -> None:
        if not directive.applies_to(attempt):
            return
        description = f"injected fault {directive} on attempt {attempt}"
        if directive.kind is FaultKind.FAIL:
            raise InjectedFaultError(description)
        # Nothing runs after a timeout or a crash: the next delivery finds the attempt
        # started and unfinished, as after a real one.
        if directive.kind is FaultKind.TIMEOUT:
            self.effects.time_out()
        else:
            self.effects.crash()
        # Only reachable when the effects are stubbed (tests): behave as a failed attempt.
        raise InjectedFaultError(f"{description} did not end the invocation")

    def _attempt_facts(self, delivery: Delivery) -> Attempt:
        return Attempt(delivery=delivery, at=utc_timestamp(self.clock.now()))


def last_error_code(history: object) -> str | None:
    """The error code of the latest ``failed`` entry, if it is the latest entry of all."""
    if not isinstance(history, list) or not history:
        return None
    latest = history[-1]
    if isinstance(latest, Mapping) and latest.get("event") == HistoryEvent.FAILED.value:
        code = latest.get("error_code")
        return str(code) if code is not None else None
    return None
