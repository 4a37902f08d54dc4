"""What the local API Gateway answers with: gateway errors, a request's outcome, counters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from localcloud.specs import InvokeResult


class Invoke(Protocol):
    """The Lambda service's synchronous Invoke, with the request's ``X-Amzn-Trace-Id``
    (a traced function continues that trace)."""

    def __call__(
        self, function_name: str, payload: bytes, *, trace_header: str | None = None
    ) -> InvokeResult: ...


ACCOUNT_ID = "123456789012"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit
_IDLE_TIMEOUT_S = 120.0  # keep-alive connections idle longer than this are closed
_PROXY_RESPONSE_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
)
# Headers API Gateway does not pass through from an integration but renames.
_REMAPPED_HEADERS = frozenset(
    {"connection", "content-length", "date", "server", "transfer-encoding", "keep-alive"}
)


@dataclass(frozen=True)
class GatewayError:
    """One of API Gateway's own responses (its "gateway response types")."""

    status: int
    message: str
    error_type: str  # x-amzn-ErrorType
    response_type: str  # $context.error.responseType
    body_key: str = "message"  # "Message" in IAM authorization's AccessDenied body, as AWS


# Status codes and messages are API Gateway's defaults ("Gateway response types for
# API Gateway", developer guide). Lambda errors: "If the Lambda API rejects the invocation
# request, API Gateway returns a 500 error code. If the function runs but returns an
# error, or returns a response in the wrong format, API Gateway returns a 502. In both
# cases, the body ... is {"message": "Internal server error"}" - Lambda developer guide,
# https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
FORBIDDEN_STAGE = GatewayError(403, "Forbidden", "ForbiddenException", "DEFAULT_4XX")
MISSING_TOKEN = GatewayError(
    403,
    "Missing Authentication Token",
    "MissingAuthenticationTokenException",
    "MISSING_AUTHENTICATION_TOKEN",
)
INVALID_API_KEY = GatewayError(403, "Forbidden", "ForbiddenException", "INVALID_API_KEY")
THROTTLED = GatewayError(429, "Too Many Requests", "TooManyRequestsException", "THROTTLED")
TOO_LARGE = GatewayError(413, "Request Too Long", "RequestTooLongException", "REQUEST_TOO_LARGE")
BAD_REQUEST = GatewayError(400, "Bad Request", "BadRequestException", "DEFAULT_4XX")
LAMBDA_REJECTED = GatewayError(
    500, "Internal server error", "InternalServerErrorException", "DEFAULT_5XX"
)
CONFIGURATION_ERROR = GatewayError(
    500, "Internal server error", "InternalServerErrorException", "API_CONFIGURATION_ERROR"
)
LAMBDA_FAILED = GatewayError(
    502, "Internal server error", "InternalServerErrorException", "DEFAULT_5XX"
)
INTEGRATION_TIMEOUT = GatewayError(
    504, "Endpoint request timed out", "InternalServerErrorException", "INTEGRATION_TIMEOUT"
)


@dataclass
class ApiGatewayStats:
    """Counters over every API this service serves."""

    requests: int = 0
    status_2xx: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    throttled: int = 0  # 429s from stage throttling
    integration_errors: int = 0  # 5xx caused by the Lambda integration
    integration_timeouts: int = 0
    lambda_throttles: int = 0  # invocations Lambda rejected with 429

    def as_dict(self) -> dict[str, int]:
        """A plain snapshot for reports and ``harness local status``."""
        return dict(self.__dict__)


@dataclass
class _Outcome:
    """What one request produced, for the response, the access log and the metrics."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    resource_path: str | None = None
    error: GatewayError | None = None
    integration_status: int | None = None
    integration_latency_ms: int | None = None
    integration_error: str | None = None
    api_key: str | None = None


def _gateway_error(error: GatewayError, resource_path: str | None = None) -> _Outcome:
    body = json.dumps({error.body_key: error.message}, separators=(",", ":")).encode()
    return _Outcome(
        error.status,
        [("Content-Type", "application/json")],
        body,
        resource_path=resource_path,
        error=error,
    )
