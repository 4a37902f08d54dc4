"""The API function: ``handlers.api.handler``, behind an API Gateway REST API (v1 proxy events).

Routes:

- ``POST /tasks``: validate and sanitize a task (:mod:`handlers.domain.tasks`), store it
  PENDING, queue it, confirm it QUEUED; 200 ``{task_id, message, status: "QUEUED"}`` once
  it is known to be queued, 503 once it is known that nothing of it will be processed, 500
  ``outcome_unknown`` when neither can be known (:mod:`handlers.domain.submission`).
  Optional ``Idempotency-Key`` header: the same key and body within 24 h answer with the
  first response and queue nothing new; the same key with another body is 422; a retry
  after a 5xx resumes the same task.
- ``GET /tasks/{task_id}``: the stored task; 400 for a malformed id, 404 if unknown.

Errors are JSON ``{error, message, details?}`` (:mod:`handlers.domain.errors`). Requests
to other paths get 404, other methods on these paths 405 with ``Allow``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Final, NoReturn, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import WithJsonSchema

from handlers.adapters.aws import API_CLIENT_CONFIG, TRACED_LIBRARIES, dynamodb_client, sqs_client
from handlers.adapters.dynamodb import DynamoTaskTable
from handlers.adapters.sqs import SqsTaskQueue
from handlers.domain.constants import (
    FAULT_INJECTION_HEADER,
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_MAX_CHARS,
    IDEMPOTENCY_WINDOW_SECONDS,
    MAX_BODY_BYTES,
    RETRY_AFTER_SECONDS,
)
from handlers.domain.errors import (
    ApiError,
    FieldProblem,
    IdempotencyKeyReusedError,
    InternalError,
    InvalidBodyError,
    MalformedJsonError,
    MethodNotAllowedError,
    NotFoundError,
    RequestInProgressError,
    ValidationFailedError,
)
from handlers.domain.submission import (
    FaultyQueue,
    FaultyRepository,
    TaskQueue,
    TaskRepository,
    check_transport,
    get_task,
    read_fault_plan,
    submit_task,
    task_id_for_key,
)
from handlers.domain.tasks import (
    CreateTaskRequest,
    CreateTaskResponse,
    ErrorResponse,
    FieldErrorDetail,
    TaskView,
)
from handlers.settings import ApiSettings

logger = Logger()
tracer = Tracer(patch_modules=TRACED_LIBRARIES)
metrics = Metrics()
# An invocation with no application metric (a CORS preflight, an attempt cut short) is
# normal here; powertools would print a UserWarning into the function's log for each.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x21-\x7e]+$"
"""Visible ASCII, no spaces: what an HTTP header can carry without surprises."""

# Paths this API serves and their methods, for 405 versus 404 on unmatched requests.
# Like the resolver's own matching, a trailing slash is tolerated.
_ALLOWED_METHODS: Final = (
    (re.compile(r"/tasks/?"), ("POST", "OPTIONS")),
    (re.compile(r"/tasks/[^/]+/?"), ("GET", "OPTIONS")),
)

app = APIGatewayRestResolver(
    cors=CORSConfig(
        allow_origin="*",
        allow_headers=[IDEMPOTENCY_HEADER],
        expose_headers=["Retry-After", "Allow"],
        max_age=600,
    ),
)

# --- OpenAPI response documentation ---------------------------------------------------


def _error(description: str, headers: Mapping[str, str] | None = None) -> OpenAPIResponse:
    response: OpenAPIResponse = {
        "description": description,
        "content": {"application/json": {"model": ErrorResponse}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


_RETRY_AFTER: Final = {"Retry-After": f"Seconds to wait before retrying ({RETRY_AFTER_SECONDS})"}
# API Gateway's own answer when IAM authorization refuses a request (the function never
# runs): `message` for a missing or bad signature, `Message` for a caller whose policies
# do not allow execute-api:Invoke (docs/local-cloud/apigateway.md#iam-authorization).
_REFUSED_BY_GATEWAY: Final[OpenAPIResponse] = {
    "description": "Refused by API Gateway's IAM authorization before the function runs: "
    "no signature (`Missing Authentication Token`), a malformed, expired or wrong one, an "
    "unknown key, or a caller not allowed `execute-api:Invoke` on the method.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"message": {"type": "string"}, "Message": {"type": "string"}},
                "minProperties": 1,
                "maxProperties": 1,
            }
        }
    },
}
_POST_RESPONSES: Final[dict[int, OpenAPIResponse]] = {
    200: {"description": "The task is stored and queued (status QUEUED)."},
    400: _error(
        "Invalid task (one `details` entry per invalid field or header), malformed JSON, "
        "or a body that is not a JSON object."
    ),
    403: _REFUSED_BY_GATEWAY,
    409: _error("A request with the same Idempotency-Key is still in progress.", _RETRY_AFTER),
    413: _error(f"The body is larger than {MAX_BODY_BYTES} bytes (16 KiB)."),
    415: _error("The Content-Type is not application/json."),
    422: _error("The Idempotency-Key was already used with a different request body."),
    500: _error(
        "Unexpected error (the body carries the request id, never internals), or "
        "`outcome_unknown`: the task (`task_id`) could be neither confirmed queued nor "
        "cancelled; it becomes QUEUED or CANCELLED, and a retry with the same "
        "Idempotency-Key resumes it.",
        _RETRY_AFTER,
    ),
    503: _error(
        "The task was not accepted and nothing of it will ever be processed; retry later.",
        _RETRY_AFTER,
    ),
}
_GET_RESPONSES: Final[dict[int, OpenAPIResponse]] = {
    200: {"description": "The task, its status, attempts and timestamps."},
    400: _error("The task id is not a UUID."),
    403: _REFUSED_BY_GATEWAY,
    404: _error("There is no task with this id."),
    500: _error("Unexpected error; the body carries the request id, never internals."),
}

# --- dependencies (built on first use, from the environment) ---------------------------

_IDEMPOTENCY_CONFIG: Final = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="request",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_WINDOW_SECONDS,
    hash_function="sha256",
    response_hook=lambda response, _record: _count_replay(response),
)


def _count_replay(response: Any) -> Any:
    metrics.add_metric(name="IdempotentReplays", unit=MetricUnit.Count, value=1)
    return response


@dataclass(frozen=True)
class _Services:
    settings: ApiSettings
    table: DynamoTaskTable
    queue: SqsTaskQueue
    once: Callable[..., dict[str, Any]]


@cache
def _services() -> _Services:
    settings = ApiSettings.from_env()
    dynamodb = dynamodb_client(API_CLIENT_CONFIG)
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name, boto3_client=dynamodb
    )

    def once(*, submission: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        # ``submission`` is what identifies and validates the request; ``run`` does it.
        del submission
        return run()

    guarded = idempotent_function(
        once,
        data_keyword_argument="submission",
        persistence_store=persistence,
        config=_IDEMPOTENCY_CONFIG,
    )
    return _Services(
        settings=settings,
        table=DynamoTaskTable(dynamodb, settings.tasks_table_name),
        queue=SqsTaskQueue(sqs_client(API_CLIENT_CONFIG), settings.task_queue_url),
        once=cast("Callable[..., dict[str, Any]]", guarded),
    )


def reset_dependencies() -> None:
    """Forget the clients and settings (tests change the environment between cases)."""
    _services.cache_clear()


_END_EXIT_CODE = 70
# Indirection the unit tests replace: a real exit would end pytest.
_exit = os._exit


class _EndFunction:
    """Ends the function now, as a crash or a timeout would (test-only API faults)."""

    def end(self) -> NoReturn:
        logger.warning("fault injection: ending the function")
        _exit(_END_EXIT_CODE)
        raise SystemExit(_END_EXIT_CODE)  # only reached when _exit is replaced


# --- request-level checks ----------------------------------------------------------------


def _body_size() -> int:
    body = app.current_event.body or ""
    if app.current_event.is_base64_encoded:
        try:
            return len(base64.b64decode(body, validate=False))
        except (binascii.Error, ValueError):
            return len(body)
    return len(body.encode("utf-8", "surrogatepass"))


def _body_problem() -> ApiError | None:
    """What makes a POST body not a task at all, in this order: over the size limit (413),
    not declared as JSON (415), not JSON (400), not a JSON object (400)."""
    event = app.current_event
    try:
        check_transport(content_type=event.headers.get("content-type"), body_size=_body_size())
    except ApiError as problem:
        return problem
    try:
        body = event.json_body
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 JSON"
        return MalformedJsonError(f"the body is not valid JSON: {reason}")
    if not isinstance(body, dict):
        return InvalidBodyError("the body must be a JSON object with the task's fields")
    return None


def _body_guard(router: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Checks bodies that passed validation (powertools unwraps ``[task]`` to ``task``);
    bodies that failed it are checked in the error handlers below."""
    problem = _body_problem()
    if problem is not None:
        return error_response(problem)
    return next_middleware(router)


# --- routes -----------------------------------------------------------------------------


@app.post(
    "/tasks",
    enable_validation=True,
    summary="Submit a task",
    description=(
        f"Validates and sanitizes the task, stores it as PENDING, sends it to the FIFO "
        f"queue (one message group, so tasks are processed in submission order) and "
        f"confirms it QUEUED: a 200 means it will end COMPLETED or FAILED, a 503 that "
        f"nothing of it will be processed. The body must be `application/json` and at "
        f"most {MAX_BODY_BYTES} bytes."
    ),
    operation_id="createTask",
    tags=["tasks"],
    responses=_POST_RESPONSES,
    middlewares=[_body_guard],
)
def create_task(
    task: Annotated[CreateTaskRequest, Body(description="The task to create.")],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description=(
                "Optional. Retrying with the same key and body within 24 hours returns the "
                "first answer and queues nothing new; the same key with a different body "
                "is refused with 422."
            ),
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX_CHARS,
            pattern=IDEMPOTENCY_KEY_PATTERN,
        ),
        # A header is absent or a string, never null: document just the string.
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "maxLength": IDEMPOTENCY_KEY_MAX_CHARS,
                "pattern": IDEMPOTENCY_KEY_PATTERN,
            }
        ),
    ] = None,
) -> CreateTaskResponse:
    """Accept a task (see the module docstring)."""
    services = _services()
    plan = read_fault_plan(
        app.current_event.headers.get(FAULT_INJECTION_HEADER),
        enabled_flag=services.settings.fault_injection_flag,
        header_name=FAULT_INJECTION_HEADER,
    )
    fault = None if plan is None or plan.processor is None else str(plan.processor)
    repository: TaskRepository = services.table
    queue: TaskQueue = services.queue
    if plan is not None and plan.api:
        repository = FaultyRepository(repository, plan.api, _EndFunction())
        queue = FaultyQueue(queue, plan.api, _EndFunction())
    # The parsed body, not the sanitized task: "same body" means what the client sent. The
    # processor directive is part of the task; the API's own faults are not (a retry
    # without them is the same submission).
    request = {"body": app.current_event.json_body, "fault": fault}

    def run() -> dict[str, Any]:
        task_id = (
            str(uuid.uuid4())
            if idempotency_key is None
            else task_id_for_key(idempotency_key, request)
        )
        logger.set_correlation_id(task_id)
        accepted = submit_task(
            task,
            fault,
            task_id=task_id,
            repository=repository,
            queue=queue,
            clock=lambda: datetime.now(UTC),
            pending_window_s=services.settings.pending_window_s,
        )
        logger.info(
            "task accepted",
            extra={"task_id": accepted.task_id, **({"fault": str(plan)} if plan else {})},
        )
        metrics.add_metric(name="TasksAccepted", unit=MetricUnit.Count, value=1)
        return accepted.model_dump(mode="json")

    if idempotency_key is None:
        return CreateTaskResponse.model_validate(run())
    submission = {"key": idempotency_key, "request": request}
    return CreateTaskResponse.model_validate(services.once(submission=submission, run=run))


@app.get(
    "/tasks/<task_id>",
    enable_validation=True,
    summary="Look a task up",
    description="The task with its status (PENDING, QUEUED, PROCESSING, COMPLETED, FAILED, "
    "CANCELLED), attempts, timestamps and, for a FAILED task, a short failure code.",
    operation_id="getTask",
    tags=["tasks"],
    responses=_GET_RESPONSES,
)
def read_task(
    task_id: Annotated[
        str,
        Path(
            description="The task id returned by POST /tasks (a UUID).",
            json_schema_extra={"format": "uuid"},
        ),
    ],
) -> TaskView:
    """Return one task (see the module docstring)."""
    logger.set_correlation_id(task_id)
    found = get_task(task_id, repository=_services().table, now=datetime.now(UTC))
    metrics.add_metric(name="TaskLookups", unit=MetricUnit.Count, value=1)
    return found


# --- errors -----------------------------------------------------------------------------


_Handler = TypeVar("_Handler", bound=Callable[..., Response[str]])


def _on(exceptions: type[Exception] | list[type[Exception]]) -> Callable[[_Handler], _Handler]:
    """``app.exception_handler`` with its types kept (powertools leaves it untyped)."""
    return cast("Callable[[_Handler], _Handler]", app.exception_handler(exceptions))


def error_response(error: ApiError) -> Response[str]:
    """The JSON error body every failure uses."""
    details = None
    if error.details is not None:
        details = [FieldErrorDetail(field=d.field, message=d.message) for d in error.details]
    body = ErrorResponse(
        error=error.code,
        message=error.message,
        details=details,
        request_id=error.request_id,
        task_id=error.task_id,
    )
    metrics.add_metric(
        name="ServerErrors" if error.status >= 500 else "ClientErrors",
        unit=MetricUnit.Count,
        value=1,
    )
    return Response(
        status_code=error.status,
        content_type="application/json",
        body=body.model_dump_json(exclude_none=True),
        headers=dict(error.headers),
    )


@_on(ApiError)
def _api_error(error: ApiError) -> Response[str]:
    if error.status >= 500:
        logger.warning("request failed", extra={"error": error.code, "reason": error.message})
    return error_response(error)


@_on(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    problem = _body_problem() if app.current_event.http_method.upper() == "POST" else None
    return error_response(problem or _field_errors(exc.errors()))


@_on([RequestUnsupportedContentType, UnicodeDecodeError, RecursionError])
def _unreadable_body(_exc: Exception) -> Response[str]:
    # Raised while powertools reads the body, before any route code runs: an exotic
    # content type, a body that is not UTF-8, or JSON nested deeper than the parser goes.
    # _body_problem re-reads the body and names which of these it is.
    return error_response(_body_problem() or MalformedJsonError("the body could not be read"))


@_on(ValueError)
def _unparsable_body(exc: ValueError) -> Response[str]:
    # Powertools parses a multipart body before any route code runs and raises a bare
    # ValueError when the Content-Type has no boundary: that request is a 415, not a 500.
    problem = _body_problem() if app.current_event.http_method.upper() == "POST" else None
    return error_response(problem) if problem is not None else _unexpected(exc)


@_on(IdempotencyValidationError)
def _key_reused(_exc: IdempotencyValidationError) -> Response[str]:
    return error_response(IdempotencyKeyReusedError())


@_on(IdempotencyAlreadyInProgressError)
def _key_in_progress(_exc: IdempotencyAlreadyInProgressError) -> Response[str]:
    return error_response(RequestInProgressError())


@app.not_found
def _no_route(_exc: RouteNotFound) -> Response[str]:
    method = app.current_event.http_method.upper()
    path = app.current_event.path
    for pattern, allowed in _ALLOWED_METHODS:
        if pattern.fullmatch(path):
            return error_response(MethodNotAllowedError(method, path, allowed))
    return error_response(NotFoundError(f"no route for {method} {path}"))


@_on(Exception)
def _unexpected(exc: Exception) -> Response[str]:
    request_id = app.current_event.request_context.request_id
    logger.exception("unhandled error", extra={"request_id": request_id})
    return error_response(InternalError(request_id))


def _field_errors(errors: Any) -> ValidationFailedError:
    """Powertools/pydantic validation errors as one 400 with a detail per field."""
    problems: list[FieldProblem] = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        source, name = ((*loc, "", ""))[:2]
        if source == "header" and str(name).lower() == IDEMPOTENCY_HEADER.lower():
            name = IDEMPOTENCY_HEADER
        problems.append(
            FieldProblem(str(name or source), _message_for(source, error.get("type", ""), error))
        )
    count = len(problems)
    return ValidationFailedError(
        f"{count} invalid field{'' if count == 1 else 's'}", details=problems
    )


def _message_for(source: str, kind: str, error: Mapping[str, Any]) -> str:
    if kind == "missing":
        return "field required"
    if kind == "extra_forbidden":
        return "unknown field; allowed fields are title, description, priority, due_date"
    if kind == "string_type":
        return "must be a string"
    if source == "header":  # the Idempotency-Key's own constraints
        return {
            "string_pattern_mismatch": "must be visible ASCII characters without spaces",
            "string_too_long": f"must be at most {IDEMPOTENCY_KEY_MAX_CHARS} characters",
            "string_too_short": "must not be empty",
        }.get(kind, str(error.get("msg", "invalid value")))
    return str(error.get("msg", "invalid value"))


# --- entry point ------------------------------------------------------------------------


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (API Gateway REST API proxy integration)."""
    _IDEMPOTENCY_CONFIG.register_lambda_context(context)
    logger.append_keys(request_id=event.get("requestContext", {}).get("requestId"))
    return app.resolve(event, context)


__all__ = ["app", "handler", "reset_dependencies"]
