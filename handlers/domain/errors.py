"""The API's error vocabulary: every failure a client can see, with its status and code.

Every error body has the same shape, ``{"error": code, "message": text, "details"?: [...]}``
(see :class:`handlers.domain.tasks.ErrorResponse`); ``details`` lists one
``{"field", "message"}`` entry per invalid field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from handlers.domain.constants import MAX_BODY_BYTES, RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: its name (a body field, header or path parameter) and why."""

    field: str
    message: str


class ApiError(Exception):
    """A failure with a stable HTTP status and machine-readable ``code``."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[FieldProblem] | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        task_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details) if details else None
        self.headers = dict(headers or {})
        self.request_id = request_id
        self.task_id = task_id


class ValidationFailedError(ApiError):
    """400: one or more fields break a rule; ``details`` names each."""

    status = 400
    code = "validation_error"


class MalformedJsonError(ApiError):
    """400: the body is not JSON at all."""

    status = 400
    code = "malformed_json"


class InvalidBodyError(ApiError):
    """400: the body is JSON but not an object (a list, a string, null, nothing)."""

    status = 400
    code = "invalid_body"


class NotFoundError(ApiError):
    """404: no such route, or no such task."""

    status = 404
    code = "not_found"


class MethodNotAllowedError(ApiError):
    """405: the path exists but not with this method; ``Allow`` lists the ones that do."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )


class RequestInProgressError(ApiError):
    """409: a request with the same Idempotency-Key is still being handled."""

    status = 409
    code = "request_in_progress"

    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class PayloadTooLargeError(ApiError):
    """413: the body is over ``MAX_BODY_BYTES``."""

    status = 413
    code = "payload_too_large"

    def __init__(self, size: int) -> None:
        super().__init__(f"the body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes (16 KiB)")


class UnsupportedMediaTypeError(ApiError):
    """415: the body is declared as something other than JSON."""

    status = 415
    code = "unsupported_media_type"

    def __init__(self, content_type: str) -> None:
        super().__init__(
            f"Content-Type {content_type[:100]!r} is not supported; send application/json"
        )


class IdempotencyKeyReusedError(ApiError):
    """422: the Idempotency-Key was already used with a different request body."""

    status = 422
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new task"
        )


class ServiceUnavailableError(ApiError):
    """503: the task was not accepted and nothing of it will ever be processed; the client
    may retry."""

    status = 503
    code = "service_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class InternalError(ApiError):
    """500: anything unexpected. The message never carries internals, only the request id."""

    status = 500
    code = "internal_error"

    def __init__(self, request_id: str | None) -> None:
        super().__init__(
            "an internal error occurred; quote the request id when reporting it",
            request_id=request_id,
        )


class OutcomeUnknownError(ApiError):
    """500: the task was stored and may have been queued, but neither could be confirmed
    nor undone; a retry with the same Idempotency-Key resumes it."""

    status = 500
    code = "outcome_unknown"

    def __init__(self, task_id: str) -> None:
        super().__init__(
            f"task {task_id} may or may not be processed: it could be neither confirmed nor "
            "cancelled; look it up (it becomes QUEUED or CANCELLED), or retry with the same "
            "Idempotency-Key, which resumes this task",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            task_id=task_id,
        )
