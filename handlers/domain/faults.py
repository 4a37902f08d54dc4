"""Test-only fault directives: how the harness makes the processor misbehave on purpose.

A client sends a directive in the ``X-Fault-Injection`` request header. It is honoured only
when the function's ``FAULT_INJECTION_ENABLED`` environment variable is exactly ``"true"``
(the ``ephemeral`` profile sets it; ``production`` never does). Otherwise the header is
ignored end to end: not validated, not stored, not sent, and the processor ignores any
directive it finds.

Grammar (lower case, surrounding whitespace ignored; ``N`` is an integer 1..1000). An
attempt is a real one, as the processor counts them (the task's ``attempts``): a delivery
handed back untried behind another task's failure is not an attempt::

    fail-attempts=N     raise on the task's attempts 1..N
    always-fail         raise on every attempt (the task ends in the dead-letter queue)
    timeout             = timeout-attempts=1
    timeout-attempts=N  on attempts 1..N, sleep past the function's remaining time so
                        Lambda times the invocation out
    crash               = crash-attempts=1
    crash-attempts=N    on attempts 1..N, end the process at once (``os._exit``), as a
                        runtime crash does

The API's own faults make a dependency fail at one step of accepting the task (see
:mod:`handlers.domain.submission` for the steps); the API honours them, they are neither
stored nor sent::

    store-fails       storing the task fails (nothing is stored)
    end-after-store   the function ends right after the task is stored
    send-fails        sending the message fails (nothing is sent)
    send-lost         the message is sent, then the send fails as if its response was lost
    end-after-send    the function ends right after the message is sent
    confirm-fails     confirming the task as queued fails (nothing is written)
    cancel-fails      cancelling the task after a failed send fails (nothing is written)

A header holds one processor directive, API faults, or both, separated by commas (e.g.
``send-lost, cancel-fails`` or ``crash, confirm-fails``).

Anything else is rejected with 400 when fault injection is enabled. The API stores the
processor directive's canonical form (``str(directive)``) on the task as ``fault`` and puts
it in the queue message; the processor obeys the directive stored on the task, so an
operator can clear a fault (``REMOVE fault``) before redriving a dead-lettered task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

MAX_FAULT_ATTEMPTS: Final = 1000
_ATTEMPTS_FORM: Final = re.compile(r"(fail|timeout|crash)-attempts=([0-9]{1,4})", re.ASCII)


class FaultKind(StrEnum):
    """What an injected fault does to the attempt it applies to."""

    FAIL = "fail"
    TIMEOUT = "timeout"
    CRASH = "crash"


class InvalidFaultDirectiveError(ValueError):
    """The header holds something that is not a fault directive."""


@dataclass(frozen=True)
class FaultDirective:
    """A parsed directive: ``kind`` applies to attempts 1..``attempts`` (None: all)."""

    kind: FaultKind
    attempts: int | None

    def applies_to(self, attempt: int) -> bool:
        """Whether the task's attempt number ``attempt`` (1 for the first) must misbehave."""
        return self.attempts is None or attempt <= self.attempts

    def __str__(self) -> str:
        if self.attempts is None:
            return "always-fail"
        return f"{self.kind.value}-attempts={self.attempts}"


def parse_fault_directive(text: str) -> FaultDirective:
    """Parse a directive (see the module docstring); raises InvalidFaultDirectiveError."""
    value = text.strip()
    if value == "always-fail":
        return FaultDirective(FaultKind.FAIL, None)
    if value in (FaultKind.TIMEOUT.value, FaultKind.CRASH.value):
        return FaultDirective(FaultKind(value), 1)
    match = _ATTEMPTS_FORM.fullmatch(value)
    if match is None:
        raise InvalidFaultDirectiveError(
            f"unknown fault directive {value[:60]!r}; expected one of fail-attempts=N, "
            "always-fail, timeout, timeout-attempts=N, crash, crash-attempts=N"
        )
    attempts = int(match.group(2))
    if not 1 <= attempts <= MAX_FAULT_ATTEMPTS:
        raise InvalidFaultDirectiveError(
            f"N in {value!r} must be between 1 and {MAX_FAULT_ATTEMPTS}"
        )
    return FaultDirective(FaultKind(match.group(1)), attempts)


class ApiFault(StrEnum):
    """A step of accepting a task that fails (or ends the function) on purpose."""

    STORE_FAILS = "store-fails"
    END_AFTER_STORE = "end-after-store"
    SEND_FAILS = "send-fails"
    SEND_LOST = "send-lost"
    END_AFTER_SEND = "end-after-send"
    CONFIRM_FAILS = "confirm-fails"
    CANCEL_FAILS = "cancel-fails"


@dataclass(frozen=True)
class FaultPlan:
    """What one request asks for: a directive for the processor and faults for the API."""

    processor: FaultDirective | None = None
    api: frozenset[ApiFault] = field(default_factory=frozenset)

    def __str__(self) -> str:
        parts = [str(self.processor)] if self.processor is not None else []
        return ", ".join(parts + sorted(fault.value for fault in self.api))


def parse_fault_plan(text: str) -> FaultPlan:
    """Parse a header (see the module docstring); raises InvalidFaultDirectiveError."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise InvalidFaultDirectiveError(f"empty directive in {text[:60]!r}")
    processor: FaultDirective | None = None
    api: set[ApiFault] = set()
    for part in parts:
        if part in ApiFault._value2member_map_:
            api.add(ApiFault(part))
            continue
        try:
            directive = parse_fault_directive(part)
        except InvalidFaultDirectiveError:
            raise InvalidFaultDirectiveError(
                f"unknown fault directive {part[:60]!r}; expected fail-attempts=N, "
                "always-fail, timeout, timeout-attempts=N, crash, crash-attempts=N or one "
                f"of {', '.join(fault.value for fault in ApiFault)}"
            ) from None
        if processor is not None:
            raise InvalidFaultDirectiveError(
                f"{text[:60]!r} holds two processor directives; give at most one"
            )
        processor = directive
    return FaultPlan(processor, frozenset(api))


def fault_injection_enabled(environ_value: str | None) -> bool:
    """The switch: only the exact string ``"true"`` turns fault injection on."""
    return environ_value == "true"
