"""The processor's use case: apply one queue delivery to its task, exactly once.

Rules, for one delivery (an SQS record) of a task message:

- a body that can never be processed (:class:`~handlers.domain.messages.PoisonMessageError`)
  goes to the dead-letter queue with its reason, and counts as handled (no retry);
- a task already COMPLETED is left as it was; the delivery is a duplicate and only
  ``duplicate_deliveries`` goes up;
- otherwise the task moves to COMPLETED by a conditional write (only if it is not
  COMPLETED already), recording the attempt (``ApproximateReceiveCount``), the SQS
  message id and sequence number, and ``processed_at``;
- a failure is recorded on the task (``last_error``, ``attempts``) and raised so the
  batch reports it and the queue retries; on the last allowed attempt
  (``ApproximateReceiveCount >= max_receive_count``) the task is marked FAILED and the
  processor forwards the message to the dead-letter queue itself (reason
  ``attempts_exhausted``), so the records behind it in the batch are still processed.
  The queue's redrive policy stays as the safety net for an attempt that cannot finish
  (a crash or timeout on the last attempt).

With fault injection enabled, a message carrying a fault directive first marks the task
PROCESSING (reading the directive stored on the task, which an operator may have
cleared), then misbehaves as the directive says (see :mod:`handlers.domain.faults`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from handlers.domain.faults import FaultDirective, FaultKind, parse_fault_directive
from handlers.domain.messages import (
    PoisonMessageError,
    PoisonReason,
    TaskMessage,
    parse_task_message,
)
from handlers.domain.tasks import utc_timestamp

MAX_ERROR_CHARS = 1000


@dataclass(frozen=True)
class Delivery:
    """One delivery of a queue message, as the processor sees it."""

    message_id: str
    body: str
    receive_count: int
    sequence_number: str | None
    message_group_id: str | None


@dataclass(frozen=True)
class Attempt:
    """What a write records about the attempt: who delivered it, which one, and when."""

    delivery: Delivery
    at: str


class Outcome(StrEnum):
    """How a delivery ended, when it did not raise."""

    COMPLETED = "completed"
    DUPLICATE = "duplicate"
    POISON = "poison"
    DEAD_LETTERED = "dead_lettered"


class InjectedFaultError(RuntimeError):
    """The failure a ``fail-attempts=N`` / ``always-fail`` directive asks for."""


class TaskLedger(Protocol):
    """The processor's conditional writes to the tasks table."""

    def start(self, message: TaskMessage, attempt: Attempt) -> tuple[bool, str | None] | None:
        """Mark PROCESSING unless COMPLETED; returns (record existed, stored fault) or None
        when the task is already COMPLETED."""

    def complete(self, message: TaskMessage, attempt: Attempt) -> bool:
        """Mark COMPLETED unless already COMPLETED; False means it already was."""

    def record_failure(
        self, message: TaskMessage, attempt: Attempt, error: str, *, final: bool
    ) -> None:
        """Record a failed attempt; ``final`` marks the task FAILED."""

    def count_duplicate(self, task_id: str) -> None:
        """Count a delivery that found the task COMPLETED (changes nothing else)."""


class DeadLetterSink(Protocol):
    """The dead-letter queue, for messages that can never be processed."""

    def send_poison(self, delivery: Delivery, reason: PoisonReason, detail: str) -> None:
        """Forward the delivery's body with the reason attached."""


class FaultEffects(Protocol):
    """The two faults the domain cannot perform itself (they end the invocation)."""

    def time_out(self) -> None:
        """Outlive the invocation's remaining time."""

    def crash(self) -> None:
        """End the process at once."""


class Clock(Protocol):
    """Source of completion timestamps (strictly increasing in production)."""

    def now(self) -> datetime:
        """The current UTC time."""


def describe_error(exc: BaseException) -> str:
    """``Type: message``, bounded, for ``last_error``."""
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def process_delivery(
    delivery: Delivery,
    *,
    ledger: TaskLedger,
    dead_letters: DeadLetterSink,
    effects: FaultEffects,
    clock: Clock,
    fault_injection: bool,
    max_receive_count: int,
) -> Outcome:
    """Apply one delivery (see the module docstring); raises when it must be retried."""
    try:
        message = parse_task_message(delivery.body)
    except PoisonMessageError as poison:
        dead_letters.send_poison(delivery, poison.reason, poison.detail)
        return Outcome.POISON

    final = delivery.receive_count >= max_receive_count
    try:
        if fault_injection and message.fault is not None:
            started = ledger.start(message, _attempt(delivery, clock))
            if started is None:
                ledger.count_duplicate(message.task_id)
                return Outcome.DUPLICATE
            existed, stored_fault = started
            directive_text = stored_fault if existed else message.fault
            if directive_text is not None:
                _misbehave(
                    parse_fault_directive(directive_text),
                    message,
                    delivery,
                    ledger,
                    effects,
                    clock,
                    final=final,
                )
        if not ledger.complete(message, _attempt(delivery, clock)):
            ledger.count_duplicate(message.task_id)
            return Outcome.DUPLICATE
    except Exception as exc:
        error = describe_error(exc)
        ledger.record_failure(message, _attempt(delivery, clock), error, final=final)
        if not final:
            raise
        # The last allowed attempt: dead-letter the task here and let the batch go on.
        # Raising would report every later record of the FIFO batch as failed too; they
        # have been received as often as this one, so the queue's redrive would move
        # healthy, never-attempted tasks to the DLQ with it.
        dead_letters.send_poison(delivery, PoisonReason.ATTEMPTS_EXHAUSTED, error)
        return Outcome.DEAD_LETTERED
    return Outcome.COMPLETED


def _attempt(delivery: Delivery, clock: Clock) -> Attempt:
    return Attempt(delivery=delivery, at=utc_timestamp(clock.now()))


def _misbehave(
    directive: FaultDirective,
    message: TaskMessage,
    delivery: Delivery,
    ledger: TaskLedger,
    effects: FaultEffects,
    clock: Clock,
    *,
    final: bool,
) -> None:
    if not directive.applies_to(delivery.receive_count):
        return
    description = f"injected fault {directive} on attempt {delivery.receive_count}"
    if directive.kind is FaultKind.FAIL:
        raise InjectedFaultError(description)
    if final:
        # Nothing runs after a timeout or crash: record the end while we still can.
        ledger.record_failure(
            message, _attempt(delivery, clock), f"InjectedFault: {description}", final=True
        )
    if directive.kind is FaultKind.TIMEOUT:
        effects.time_out()
    else:
        effects.crash()
    # Only reachable when the effects are stubbed (tests): behave as a failed attempt.
    raise InjectedFaultError(f"{description} did not end the invocation")
