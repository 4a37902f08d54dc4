"""The task queue message: what the API sends and the processor reads.

Body (JSON, ASCII only, keys sorted)::

    {"schema_version": 1,
     "task_id": "<uuid4>",
     "task": {"title", "description", "priority", "due_date"?, "created_at"},
     "fault": "<directive>"?}      # only when fault injection is enabled

A body the processor cannot read is *poison*: malformed JSON, a schema violation, or a
schema version it does not know. Poison is never retried; the processor forwards it to
the dead-letter queue with the reason as message attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from handlers.domain.constants import SCHEMA_VERSION
from handlers.domain.faults import parse_fault_directive
from handlers.domain.tasks import UUID_PATTERN, Priority

SUPPORTED_SCHEMA_VERSIONS: Final = frozenset({SCHEMA_VERSION})


class PoisonReason(StrEnum):
    """Why a message can never be processed."""

    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    # Not poison by content: a task that failed every allowed attempt.
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    # A readable task message whose task is not in the tasks table: never recreated.
    UNKNOWN_TASK = "unknown_task"


class PoisonMessageError(Exception):
    """A message that no retry can fix; ``reason`` and ``detail`` go with it to the DLQ."""

    def __init__(self, reason: PoisonReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def _canonical_fault(value: str | None) -> str | None:
    return None if value is None else str(parse_fault_directive(value))


class TaskPayload(BaseModel):
    """The sanitized task as the API stored it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    title: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    # Lax for this one field: strict mode only takes Priority instances, JSON gives strings.
    priority: Annotated[Priority, Field(strict=False)]
    due_date: str | None = None
    created_at: Annotated[str, Field(min_length=1)]


# Both models are built on first use (``defer_build``): the API imports this module to
# write messages and never reads one; the processor builds them at its init
# (:mod:`handlers.processor`), not on its first message.
class TaskMessage(BaseModel):
    """A task queue message of schema version 1."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    schema_version: int
    task_id: Annotated[str, Field(pattern=UUID_PATTERN)]
    task: TaskPayload
    fault: Annotated[str | None, AfterValidator(_canonical_fault)] = None


def task_message_body(item: Mapping[str, Any]) -> str:
    """The message body for a stored task item (the API sends exactly this).

    Deterministic: the same item always gives the same body, which is what the queue's
    content-based deduplication and the harness's "send it again" checks rely on.
    """
    task: dict[str, Any] = {
        "title": item["title"],
        "description": item["description"],
        "priority": item["priority"],
        "created_at": item["created_at"],
    }
    if item.get("due_date") is not None:
        task["due_date"] = item["due_date"]
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "task_id": item["task_id"],
        "task": task,
    }
    if item.get("fault") is not None:
        body["fault"] = item["fault"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def parse_task_message(body: str) -> TaskMessage:
    """Read a message body; raises PoisonMessageError when it can never be processed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PoisonMessageError(PoisonReason.MALFORMED_JSON, str(exc)) from None
    if not isinstance(data, dict):
        raise PoisonMessageError(
            PoisonReason.SCHEMA_VIOLATION,
            f"the body is a JSON {type(data).__name__}, not an object",
        )
    version = data.get("schema_version")
    if "schema_version" not in data:
        raise PoisonMessageError(PoisonReason.SCHEMA_VIOLATION, "schema_version is missing")
    if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
        raise PoisonMessageError(
            PoisonReason.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {str(version)[:40]!r} is not one of "
            f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}",
        )
    try:
        return TaskMessage.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise PoisonMessageError(PoisonReason.SCHEMA_VIOLATION, problems) from None
