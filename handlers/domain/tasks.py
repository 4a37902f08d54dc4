"""Tasks: the submission model with its validation and sanitization rules, stored tasks and
the response models.

Validation rules of ``POST /tasks`` (unknown fields are rejected):

- ``title``: required string, 1-200 characters after removing control characters and
  trimming whitespace (see :mod:`handlers.domain.sanitize` for the exact steps);
- ``description``: required string, 1-2000 characters after the same steps, tabs and new
  lines kept;
- ``priority``: required, ``low``, ``medium`` or ``high`` in any letter case (surrounding
  whitespace ignored), stored in lower case;
- ``due_date``: optional (absent or null), an RFC 3339 / ISO 8601 full date ``YYYY-MM-DD``
  or a date-time with a time zone ``YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)``. A date-time
  without a time zone, or an impossible date such as 2026-02-30, is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from handlers.domain.constants import DESCRIPTION_MAX_CHARS, TITLE_MAX_CHARS
from handlers.domain.sanitize import EDGE_CLASS, clean_text, finish_text, text_pattern, trim


class TaskStatus(StrEnum):
    """Life cycle of a task: PENDING (stored, not yet confirmed queued) -> QUEUED ->
    PROCESSING -> COMPLETED, or FAILED when given up; PENDING -> CANCELLED when it could
    not be queued (or its deadline passed): a CANCELLED task is never processed."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Priority(StrEnum):
    """Task priority, stored in lower case."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


TITLE_PATTERN: Final = text_pattern(max_chars=TITLE_MAX_CHARS, keep_tab_newline=False)
DESCRIPTION_PATTERN: Final = text_pattern(max_chars=DESCRIPTION_MAX_CHARS, keep_tab_newline=True)
PRIORITY_PATTERN: Final = (
    f"^[{EDGE_CLASS}]*(?:[Ll][Oo][Ww]|[Mm][Ee][Dd][Ii][Uu][Mm]|[Hh][Ii][Gg][Hh])[{EDGE_CLASS}]*$"
)
UUID_PATTERN: Final = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_UUID: Final = re.compile(UUID_PATTERN.replace("$", r"\Z"), re.ASCII)

_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATE_TIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<oh>\d{2}):(?P<om>\d{2}))?",
    re.ASCII,
)
_DUE_DATE_FORMAT_HINT: Final = (
    "must be an ISO 8601 date (YYYY-MM-DD) or date-time with a time zone "
    "(YYYY-MM-DDThh:mm:ssZ or ±hh:mm offset)"
)


def _text_rule(max_chars: int, *, keep_tab_newline: bool) -> AfterValidator:
    def sanitize(value: str) -> str:
        cleaned = clean_text(value, keep_tab_newline=keep_tab_newline)
        if not 1 <= len(cleaned) <= max_chars:
            raise PydanticCustomError(
                "text_length",
                "must be at least 1 and at most {max_chars} characters after trimming "
                "whitespace and removing control characters (got {length})",
                {"max_chars": max_chars, "length": len(cleaned)},
            )
        return finish_text(cleaned)

    return AfterValidator(sanitize)


def _parse_priority(value: object) -> Priority:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string")
    word = trim(value)
    # isascii(): str.lower() maps a few non-ASCII letters (e.g. KELVIN SIGN) onto ASCII.
    if word.isascii() and word.lower() in Priority._value2member_map_:
        return Priority(word.lower())
    raise PydanticCustomError(
        "priority",
        "must be one of low, medium, high (any letter case), got {value}",
        {"value": value[:40]},
    )


def parse_due_date(value: str) -> str:
    """Validate a due date and return its canonical form (see the module docstring).

    A date stays ``YYYY-MM-DD``; a date-time keeps its own offset, written ``Z`` for UTC,
    with microsecond precision when it has a fraction (longer fractions are truncated).
    """
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise PydanticCustomError(
                "due_date", "{value} is not a valid calendar date", {"value": value}
            ) from None
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise PydanticCustomError("due_date", _DUE_DATE_FORMAT_HINT)
    if not (match["utc"] or match["sign"]):
        raise PydanticCustomError(
            "due_date",
            "a date-time needs a time zone (Z or ±hh:mm), as in {value}Z",
            {"value": value},
        )
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    try:
        offset = timedelta(0)
        if match["sign"]:
            hours, minutes = int(match["oh"]), int(match["om"])
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            offset = timedelta(hours=hours, minutes=minutes)
            offset = -offset if match["sign"] == "-" else offset
        parsed = datetime(year, month, day, hour, minute, second, micro, timezone(offset))
    except ValueError:
        raise PydanticCustomError(
            "due_date", "{value} is not a valid date-time", {"value": value}
        ) from None
    text = parsed.isoformat(timespec="microseconds" if match[7] else "seconds")
    return text.removesuffix("+00:00") + "Z" if parsed.utcoffset() == timedelta(0) else text


def _due_date(value: str | None) -> str | None:
    return None if value is None else parse_due_date(value)


_TEXT_DESCRIPTION: Final = (
    "{n} characters at most after control characters (Unicode Cc{extra}) are removed and "
    "leading/trailing whitespace is trimmed; at least one character must remain. Stored "
    "NFC-normalized with HTML special characters escaped (& < > \" ' become entities)."
)

Title = Annotated[
    str,
    _text_rule(TITLE_MAX_CHARS, keep_tab_newline=False),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TITLE_PATTERN,
            "description": _TEXT_DESCRIPTION.format(n=TITLE_MAX_CHARS, extra=""),
        }
    ),
]
Description = Annotated[
    str,
    _text_rule(DESCRIPTION_MAX_CHARS, keep_tab_newline=True),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DESCRIPTION_PATTERN,
            "description": _TEXT_DESCRIPTION.format(
                n=DESCRIPTION_MAX_CHARS, extra=" except tab and new line"
            ),
        }
    ),
]
PriorityInput = Annotated[
    Priority,
    BeforeValidator(_parse_priority),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PRIORITY_PATTERN,
            "description": "low, medium or high, in any letter case; stored in lower case.",
            "examples": ["low", "Medium", "HIGH"],
        }
    ),
]
DueDate = Annotated[
    str | None,
    AfterValidator(_due_date),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
                {"type": "null"},
            ],
            "description": (
                "Optional. An RFC 3339 full date (2026-12-31) or date-time with a time zone "
                "(2026-12-31T17:30:00Z, 2026-12-31T17:30:00+02:00). A date-time without a "
                "time zone and impossible dates (2026-02-30) are rejected."
            ),
        }
    ),
]


# The API's request and response models below are built on first use (``defer_build``),
# not at import: the processor imports this module too and never validates them, and
# building a model's validator is most of its cost.
class CreateTaskRequest(BaseModel):
    """A task to create. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    title: Title
    description: Description
    priority: PriorityInput
    due_date: DueDate = None


class CreateTaskResponse(BaseModel):
    """The answer to an accepted task: it is stored and queued for processing."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    task_id: Annotated[str, Field(json_schema_extra={"format": "uuid"})]
    message: str
    status: Literal[TaskStatus.QUEUED]


class TaskView(BaseModel):
    """A stored task as ``GET /tasks/{task_id}`` returns it."""

    model_config = ConfigDict(extra="ignore", defer_build=True)

    task_id: Annotated[str, Field(json_schema_extra={"format": "uuid"})]
    title: str
    description: str
    priority: Priority
    due_date: str | None = None
    status: TaskStatus
    attempts: Annotated[
        int,
        Field(
            ge=0,
            description="How many times the processor attempted the task (a delivery handed "
            "back untried behind another task's failure is not an attempt)",
        ),
    ]
    created_at: str
    updated_at: str
    processed_at: Annotated[
        str | None, Field(description="When the processor completed the task (UTC, µs)")
    ] = None
    failure_code: Annotated[
        str | None,
        Field(
            description="Why a FAILED task failed, as a short code (e.g. injected_fault, "
            "interrupted, throttled, dependency_unavailable); the full error is only in the "
            "processor's log"
        ),
    ] = None
    duplicate_deliveries: Annotated[
        int, Field(ge=0, description="Deliveries that found the task already COMPLETED")
    ] = 0
    message_id: str | None = None
    sequence_number: Annotated[
        str | None, Field(description="SQS FIFO SequenceNumber of the latest delivery")
    ] = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> TaskView:
        """Build the view from a stored item (plain Python values)."""
        return cls.model_validate(dict(item))


class FieldErrorDetail(BaseModel):
    """Why one field (body field, header or path parameter) is invalid."""

    model_config = ConfigDict(defer_build=True)

    field: str
    message: str


class ErrorResponse(BaseModel):
    """Every error the API returns has this shape."""

    model_config = ConfigDict(defer_build=True)

    error: Annotated[str, Field(description="Stable machine-readable error code")]
    message: Annotated[str, Field(description="What went wrong, for people")]
    details: Annotated[
        list[FieldErrorDetail] | None, Field(description="One entry per invalid field (400)")
    ] = None
    request_id: Annotated[
        str | None, Field(description="API Gateway request id (500), for support")
    ] = None
    task_id: Annotated[
        str | None,
        Field(
            description="The task whose outcome is unknown (500 outcome_unknown): look it up, "
            "or retry with the same Idempotency-Key, which resumes it"
        ),
    ] = None


def is_task_id(value: str) -> bool:
    """Whether ``value`` is a UUID in canonical 8-4-4-4-12 hex form (any letter case)."""
    return _UUID.match(value) is not None


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and ``Z``: fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def effective_status(item: Mapping[str, Any], now: datetime) -> TaskStatus:
    """The task's status under the deadline rule: a PENDING task past ``pending_until`` is
    CANCELLED (the processor drops its message; nobody may confirm it any more)."""
    status = TaskStatus(str(item["status"]))
    if status is TaskStatus.PENDING and str(item.get("pending_until", "")) <= utc_timestamp(now):
        return TaskStatus.CANCELLED
    return status


def new_task_item(
    request: CreateTaskRequest,
    *,
    task_id: str,
    now: datetime,
    fault: str | None,
    pending_until: str,
    purge_at: int,
) -> dict[str, Any]:
    """The item stored for a task being accepted: PENDING until confirmed queued, with its
    deadline, and ``purge_at`` (DynamoDB TTL) until then."""
    stamp = utc_timestamp(now)
    item: dict[str, Any] = {
        "task_id": task_id,
        "title": request.title,
        "description": request.description,
        "priority": request.priority.value,
        "status": TaskStatus.PENDING.value,
        "pending_until": pending_until,
        "acceptance": 1,
        "purge_at": purge_at,
        "created_at": stamp,
        "updated_at": stamp,
        "attempts": 0,
        "duplicate_deliveries": 0,
        # The processor's record of attempts, appended by every start, completion and failure.
        "history": [],
    }
    if request.due_date is not None:
        item["due_date"] = request.due_date
    if fault is not None:
        item["fault"] = fault
    return item
