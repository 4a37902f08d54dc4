"""Configuration of the two functions, read from the environment the CDK app sets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.domain.constants import FAULT_INJECTION_ENV


class SettingsError(RuntimeError):
    """A required environment variable is missing or invalid."""


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _positive_int(environ: Mapping[str, str], name: str) -> int:
    raw = _required(environ, name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < 1:
        raise SettingsError(f"{name} must be >= 1, got {value}")
    return value


@dataclass(frozen=True)
class ApiSettings:
    """Environment of the API function."""

    tasks_table_name: str
    idempotency_table_name: str
    task_queue_url: str
    pending_window_s: int
    fault_injection_flag: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """Read ``TASKS_TABLE_NAME``, ``IDEMPOTENCY_TABLE_NAME``, ``TASK_QUEUE_URL``,
        ``PENDING_WINDOW_SECONDS`` (how long a stored task may wait to be confirmed queued
        before the deadline rule cancels it) and ``FAULT_INJECTION_ENABLED`` (optional)."""
        env = os.environ if environ is None else environ
        return cls(
            tasks_table_name=_required(env, "TASKS_TABLE_NAME"),
            idempotency_table_name=_required(env, "IDEMPOTENCY_TABLE_NAME"),
            task_queue_url=_required(env, "TASK_QUEUE_URL"),
            pending_window_s=_positive_int(env, "PENDING_WINDOW_SECONDS"),
            fault_injection_flag=env.get(FAULT_INJECTION_ENV),
        )


@dataclass(frozen=True)
class ProcessorSettings:
    """Environment of the processor function."""

    tasks_table_name: str
    dead_letter_queue_url: str
    attempt_budget: int
    fault_injection_flag: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessorSettings:
        """Read ``TASKS_TABLE_NAME``, ``DEAD_LETTER_QUEUE_URL``, ``ATTEMPT_BUDGET`` (how many
        attempts a task gets before it is dead-lettered) and ``FAULT_INJECTION_ENABLED``
        (optional)."""
        env = os.environ if environ is None else environ
        return cls(
            tasks_table_name=_required(env, "TASKS_TABLE_NAME"),
            dead_letter_queue_url=_required(env, "DEAD_LETTER_QUEUE_URL"),
            attempt_budget=_positive_int(env, "ATTEMPT_BUDGET"),
            fault_injection_flag=env.get(FAULT_INJECTION_ENV),
        )
