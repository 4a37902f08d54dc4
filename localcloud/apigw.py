"""The local API Gateway: REST API (v1) semantics in front of the local Lambda service.

:class:`ApiGatewayService` serves each :class:`~localcloud.specs.RestApiSpec` on its own
loopback port (one port per API, like one ``execute-api`` host per API) at
``http://127.0.0.1:PORT/<stage>/``. What it reproduces from API Gateway:

- Routing over the template's resources: literal segments, ``{param}`` and a trailing
  ``{proxy+}``, the most specific resource first; ``ANY`` methods. A path outside the
  stage answers 403 ``Forbidden``, an unknown resource or method 403
  ``Missing Authentication Token`` (what REST APIs answer, not 404).
- ``AWS_PROXY`` methods: the REST v1 proxy event (the fields Powertools'
  ``APIGatewayProxyEvent`` and ``APIGatewayRestResolver`` read), and the Lambda proxy
  response mapped back to HTTP. A malformed response or a function error, crash or
  timeout answers 502, a rejected invocation (throttle) 500, an integration slower than
  its timeout (29 s by default) 504 ``Endpoint request timed out``.
- ``MOCK`` methods (the CORS preflight CDK generates): the request template picks the
  status code, the integration responses map it, ``method.response.header.*`` parameters
  become headers (``'literal'`` quoting, ``method.request.*`` references), and the
  origin-reflecting template CDK emits for a list of origins is honoured.
- Stage throttling as a token bucket (rate, burst) -> 429; API keys -> 403 ``Forbidden``;
  request bodies over 10 MB -> 413. Gateway errors carry ``x-amzn-ErrorType``; every
  response carries ``x-amzn-RequestId`` and ``x-amz-apigw-id``.
- Access logs in the stage's format (``$context.*`` variables) to the CloudWatch Logs
  group the template names, and the ``AWS/ApiGateway`` metrics (Count, 4XXError,
  5XXError, Latency, IntegrationLatency by ApiName and Stage), both batched by a
  background thread so requests never wait for them.

Known differences: no binary media types (a body that is not UTF-8 reaches the function
base64-encoded with ``isBase64Encoded``; AWS would need ``binaryMediaTypes`` for that),
no authorizers, usage plans or request validation, and ``domainName`` is the Host the
client used (so URLs a handler builds point back here).

The HTTP layer is a small HTTP/1.1 server (threaded, keep-alive, ``TCP_NODELAY``, each
response in one write, requests read by :mod:`localcloud.http11`): the front must add
little to the ingest path.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import heapq
import http
import ipaddress
import itertools
import json
import logging
import os
import re
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

from localcloud.clients import local_client
from localcloud.closing import ClosesOnExit
from localcloud.http11 import BadRequestError, Reader, Request, read_request
from localcloud.specs import ApiMethod, IntegrationResponse, InvokeResult, RestApiSpec
from localcloud.telemetry import LogShipper, put_metric_data

logger = logging.getLogger(__name__)

Invoke = Callable[[str, bytes], InvokeResult]

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


# --------------------------------------------------------------------------- routing


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, _Node] | None = None
    resource_path: str | None = None  # set when a resource with methods ends here


class _Router:
    """Resource tree of one REST API; match the most specific resource with methods."""

    def __init__(self, methods: Iterable[ApiMethod]) -> None:
        self.root = _Node()
        self.methods: dict[str, dict[str, ApiMethod]] = {}
        for method in methods:
            path = _normalise_resource(method.resource_path)
            self.methods.setdefault(path, {})[method.http_method.upper()] = method
            self._insert(path)

    def _insert(self, path: str) -> None:
        node = self.root
        segments = [s for s in path.split("/") if s]
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index != len(segments) - 1:
                    raise ValueError(f"greedy path variable must be last: {path!r}")
                if node.greedy is None:
                    node.greedy = (segment[1:-2], _Node())
                node = node.greedy[1]
            elif segment.startswith("{") and segment.endswith("}"):
                if node.param is None:
                    node.param = (segment[1:-1], _Node())
                elif node.param[0] != segment[1:-1]:
                    raise ValueError(f"two path variables at one level: {path!r}")
                node = node.param[1]
            else:
                node = node.literal.setdefault(segment, _Node())
        node.resource_path = path

    def match(self, segments: list[str]) -> tuple[str, dict[str, str]] | None:
        """``(resource_path, path_parameters)`` for decoded path segments, or None."""
        return self._match(self.root, segments, 0, {})

    def _match(
        self, node: _Node, segments: list[str], index: int, params: dict[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        if index == len(segments):
            return (node.resource_path, params) if node.resource_path else None
        segment = segments[index]
        child = node.literal.get(segment)
        if child is not None:
            found = self._match(child, segments, index + 1, params)
            if found:
                return found
        if node.param is not None:
            name, child = node.param
            found = self._match(child, segments, index + 1, {**params, name: segment})
            if found:
                return found
        if node.greedy is not None:
            name, child = node.greedy
            if child.resource_path:
                return child.resource_path, {**params, name: "/".join(segments[index:])}
        return None


def _normalise_resource(path: str) -> str:
    return "/" + "/".join(s for s in path.split("/") if s)


def _resource_id(api_id: str, resource_path: str) -> str:
    # Stable per resource, shaped like API Gateway's 6-character resource ids.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{api_id}{resource_path}").hex[:6]


# ------------------------------------------------------------------------ throttling


class _TokenBucket:
    """API Gateway's throttle: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.capacity = float(max(burst, 0))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


# --------------------------------------------------------------------------- HTTP


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _serialise(
    status: int, headers: list[tuple[str, str]], body: bytes, *, keep_alive: bool, head: bool
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason_phrase(status)}\r\n"]
    for name, value in headers:
        # A CR or LF in a value would split the response: API Gateway never passes one.
        lines.append(f"{name}: {value.replace(chr(13), ' ').replace(chr(10), ' ')}\r\n")
    lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("Connection: keep-alive\r\n\r\n" if keep_alive else "Connection: close\r\n\r\n")
    return "".join(lines).encode("utf-8") + (b"" if head else body)


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: _RestApi) -> None:
        self.api = api
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        # Nagle + delayed ACK would add ~40 ms per keep-alive response (DESIGN.md).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_IDLE_TIMEOUT_S)
        with self.server.connections_lock:
            self.server.connections.add(sock)
        raw_file = sock.makefile("rb", buffering=65536)
        rfile = cast("Reader", raw_file)
        source_ip = self.client_address[0]
        try:
            while True:
                try:
                    request = read_request(rfile, sock, max_body=MAX_PAYLOAD_BYTES)
                except BadRequestError:
                    sock.sendall(self.server.api.gateway_error_bytes(BAD_REQUEST))
                    return
                if request is None:
                    return
                response = self.server.api.handle(request, source_ip, sock)
                if response is None:
                    return  # answered 504 by the watchdog, with Connection: close
                sock.sendall(response)
                if not request.keep_alive:
                    return
        except (OSError, ValueError):
            return  # client went away, idle timeout, or shutdown closed the socket
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(sock)
            raw_file.close()


# ---------------------------------------------------------------- one REST API


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


@dataclass
class _Exchange:
    """One request in flight and the identifiers API Gateway gives it."""

    request: Request
    source_ip: str
    sock: socket.socket
    started: float
    request_id: str
    extended_id: str


class _RestApi:
    def __init__(self, spec: RestApiSpec, service: ApiGatewayService) -> None:
        self.spec = spec
        self.service = service
        self.router = _Router(spec.methods)
        self.stage = spec.stage_name
        self.stage_prefix = f"/{spec.stage_name}"
        self.deployment_id = uuid.uuid5(uuid.NAMESPACE_URL, spec.api_id).hex[:6]
        self.bucket = (
            _TokenBucket(spec.throttling_rate_limit, spec.throttling_burst_limit or 0)
            if spec.throttling_rate_limit is not None
            else None
        )
        self.api_keys = frozenset(spec.api_keys)
        self.log_group = _log_group_name(spec.access_log_group_arn)
        self.log_stream = f"{spec.api_id}-{spec.stage_name}"
        self.resource_ids = {path: _resource_id(spec.api_id, path) for path in self.router.methods}
        self.gateway_responses = {r.response_type: r for r in spec.gateway_responses}
        self.server: _Server | None = None
        self.thread: threading.Thread | None = None

    # ---- request handling

    def handle(self, request: Request, source_ip: str, sock: socket.socket) -> bytes | None:
        """The response bytes for ``request``; None if the watchdog has already answered."""
        exchange = _Exchange(
            request,
            source_ip,
            sock,
            time.time(),
            str(uuid.uuid4()),
            base64.b64encode(os.urandom(11)).decode("ascii"),
        )
        try:
            outcome = self._dispatch(exchange)
        except Exception:  # a bug here must still answer like a gateway, not hang up
            logger.exception(
                "the local API Gateway failed on %s %s", request.method, request.target
            )
            outcome = _gateway_error(CONFIGURATION_ERROR)
        if outcome is None:
            return None
        return self._finish(exchange, outcome)

    def _customized(self, outcome: _Outcome, request_id: str) -> _Outcome:
        """The gateway's own error as the API's gateway responses shape it.

        As API Gateway: the response configured for the error's response type, else the
        one for ``DEFAULT_4XX``/``DEFAULT_5XX`` by the status class; its status code, static
        headers (e.g. CORS) and application/json template replace the defaults.
        """
        error = outcome.error
        if error is None or not self.gateway_responses:
            return outcome
        fallback = "DEFAULT_4XX" if outcome.status < 500 else "DEFAULT_5XX"
        response = self.gateway_responses.get(error.response_type) or (
            self.gateway_responses.get(fallback)
        )
        if response is None:
            return outcome
        names = {name.lower() for name in response.headers}
        headers = [(k, v) for k, v in outcome.headers if k.lower() not in names]
        headers += list(response.headers.items())
        body = outcome.body
        if response.template is not None:
            values = {
                "$context.error.messageString": json.dumps(error.message),
                "$context.error.message": error.message,
                "$context.error.responseType": error.response_type,
                "$context.requestId": request_id,
            }
            text = response.template
            for variable in sorted(values, key=len, reverse=True):
                text = text.replace(variable, values[variable])
            body = text.encode()
        return dataclasses.replace(
            outcome, status=response.status_code or outcome.status, headers=headers, body=body
        )

    def _finish(self, exchange: _Exchange, outcome: _Outcome) -> bytes:
        """Serialise the response; count it and queue its access-log line."""
        outcome = self._customized(outcome, exchange.request_id)
        request = exchange.request
        headers = [
            ("Date", formatdate(exchange.started, usegmt=True)),
            *outcome.headers,
            ("x-amzn-RequestId", exchange.request_id),
            ("x-amz-apigw-id", exchange.extended_id),
        ]
        if outcome.error is not None:
            headers.append(("x-amzn-ErrorType", outcome.error.error_type))
        payload = _serialise(
            outcome.status,
            headers,
            outcome.body,
            keep_alive=request.keep_alive,
            head=request.method == "HEAD",
        )
        latency_ms = int((time.time() - exchange.started) * 1000)
        self.service._record(self, outcome, latency_ms)
        if self.log_group is not None and self.spec.access_log_format:
            line = _format_access_log(
                self.spec.access_log_format, self._log_context(exchange, outcome, latency_ms)
            )
            self.service._access_log(self, exchange.started, line)
        return payload

    def gateway_error_bytes(self, error: GatewayError) -> bytes:
        request_id = str(uuid.uuid4())
        outcome = self._customized(_gateway_error(error), request_id)
        headers = [
            *outcome.headers,
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error.error_type),
        ]
        return _serialise(outcome.status, headers, outcome.body, keep_alive=False, head=False)

    def _dispatch(self, exchange: _Exchange) -> _Outcome | None:
        request = exchange.request
        if request.too_large:
            return _gateway_error(TOO_LARGE)
        raw_path, _, query = request.target.partition("?")
        if raw_path.startswith(("http://", "https://")):  # absolute-form target
            raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        raw_path = "/" + raw_path.lstrip("/")  # API Gateway reads //stage/x as /stage/x
        if raw_path != self.stage_prefix and not raw_path.startswith(self.stage_prefix + "/"):
            return _gateway_error(FORBIDDEN_STAGE)
        if self.bucket is not None and not self.bucket.take():
            return _gateway_error(THROTTLED)
        # The resource path: leading slashes after the stage collapse, the rest stays raw.
        path = "/" + raw_path[len(self.stage_prefix) :].lstrip("/")
        segments = [unquote(s) for s in path.split("/") if s]
        found = self.router.match(segments)
        if found is None:
            return _gateway_error(MISSING_TOKEN)
        resource_path, path_params = found
        methods = self.router.methods[resource_path]
        method = methods.get(request.method.upper()) or methods.get("ANY")
        if method is None:
            return _gateway_error(MISSING_TOKEN, resource_path)
        api_key = request.header("x-api-key")
        if method.api_key_required and (api_key is None or api_key not in self.api_keys):
            return _gateway_error(INVALID_API_KEY, resource_path)
        used_key = api_key if method.api_key_required else None
        if method.integration_type == "MOCK":
            outcome: _Outcome | None = _mock_response(method, request, path_params, query)
        else:
            event = self._event(exchange, raw_path, path, query, resource_path, used_key)
            outcome = self._invoke(exchange, method, event, resource_path, used_key)
        if outcome is not None:
            outcome.resource_path = resource_path
            outcome.api_key = used_key
        return outcome

    def _event(
        self,
        exchange: _Exchange,
        stage_path: str,
        path: str,
        query: str,
        resource_path: str,
        api_key: str | None,
    ) -> dict[str, Any]:
        """The REST API (v1) Lambda proxy integration event (``stage_path``: the request's
        path with the stage, ``path``: the resource path; both as sent, percent-encoded).

        Key for key what AWS's recorded events hold (tests/parity/test_event_shapes.py).
        """
        request, source_ip, started = exchange.request, exchange.source_ip, exchange.started
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            key = name.lower()
            if key in _NOT_FORWARDED:
                continue  # hop-by-hop and framing headers never reach the integration
            if key == "authorization":
                name = "Authorization"  # the one header whose name API Gateway re-cases
            headers[name] = value  # REST v1: the last value of a repeated header
            multi_headers.setdefault(name, []).append(value)
        # What API Gateway adds in front of the integration.
        forwarded = request.header("X-Forwarded-For")
        added = {
            "X-Forwarded-For": f"{forwarded}, {source_ip}" if forwarded else source_ip,
            "X-Forwarded-Port": str(self.server.server_address[1]) if self.server else "80",
            "X-Forwarded-Proto": "http",
            "X-Amzn-Trace-Id": _trace_id(started),
        }
        lowered = {name.lower(): name for name in headers}
        for name, value in added.items():
            existing = lowered.get(name.lower(), name)
            headers[existing] = value
            multi_headers[existing] = [value]
        query_params: dict[str, str] | None = None
        multi_query: dict[str, list[str]] | None = None
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if pairs:
                query_params, multi_query = {}, {}
                for key, value in pairs:
                    query_params[key] = value
                    multi_query.setdefault(key, []).append(value)
        body: str | None = None
        is_base64 = False
        if request.body:
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                body = base64.b64encode(request.body).decode("ascii")
                is_base64 = True
        host = request.header("Host") or "127.0.0.1"
        return {
            "resource": resource_path,
            "path": path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query_params,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": _path_parameters(resource_path, path) or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": self.resource_ids[resource_path],
                "resourcePath": resource_path,
                "httpMethod": request.method,
                "extendedRequestId": exchange.extended_id,
                "requestTime": _request_time(started),
                "path": stage_path,
                "accountId": ACCOUNT_ID,
                "protocol": request.version,
                "stage": self.stage,
                "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
                "requestTimeEpoch": int(started * 1000),
                "requestId": exchange.request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": request.header("User-Agent"),
                    "user": None,
                    **({"apiKey": api_key, "apiKeyId": _api_key_id(api_key)} if api_key else {}),
                },
                "domainName": host,
                "deploymentId": self.deployment_id,
                "apiId": self.spec.api_id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _invoke(
        self,
        exchange: _Exchange,
        method: ApiMethod,
        event: dict[str, Any],
        resource_path: str,
        api_key: str | None,
    ) -> _Outcome | None:
        """Invoke the function in this thread; None if the integration timed out.

        The invocation runs on the connection's own thread (no hand-off to a pool: that
        cost more than everything else a request does). The watchdog answers 504 at the
        integration timeout and closes the connection; the function keeps running, as in
        AWS, and its late result is dropped.
        """
        if not method.function_name:
            return _gateway_error(CONFIGURATION_ERROR)
        payload = json.dumps(event, separators=(",", ":")).encode("utf-8")
        started = time.perf_counter()
        ticket: _Ticket | None = None

        def expire() -> None:
            if ticket is None or not ticket.claim():
                return  # the response is already on its way
            outcome = _gateway_error(INTEGRATION_TIMEOUT)
            outcome.integration_error = "Execution failed due to a timeout error"
            outcome.resource_path = resource_path
            outcome.api_key = api_key
            exchange.request.keep_alive = False
            with contextlib.suppress(OSError):
                exchange.sock.sendall(self._finish(exchange, outcome))
                # The connection's thread is still inside the invocation: stop the
                # client from sending more on this connection.
                exchange.sock.shutdown(socket.SHUT_RD)

        watchdog = self.service.watchdog
        ticket = watchdog.arm(time.monotonic() + method.integration_timeout_ms / 1000, expire)
        try:
            result = self.service.invoke(method.function_name, payload)
        except Exception as error:  # the Lambda service failed to invoke at all
            if not watchdog.settle(ticket):
                return None
            logger.warning("invoking %s failed: %r", method.function_name, error)
            outcome = _gateway_error(CONFIGURATION_ERROR)
            outcome.integration_error = repr(error)
            return outcome
        if not watchdog.settle(ticket):
            return None
        latency = int((time.perf_counter() - started) * 1000)
        if result.status_code == 429:
            outcome = _gateway_error(LAMBDA_REJECTED)
            outcome.integration_error = "Lambda throttled (TooManyRequestsException)"
        elif result.status_code != 200:
            outcome = _gateway_error(LAMBDA_REJECTED)
            outcome.integration_error = f"Lambda returned {result.status_code}"
        elif result.function_error:
            outcome = _gateway_error(LAMBDA_FAILED)
            outcome.integration_error = f"function error: {result.function_error}"
        else:
            mapped = _proxy_response(result.payload)
            if mapped is None:
                outcome = _gateway_error(LAMBDA_FAILED)
                outcome.integration_error = "Malformed Lambda proxy response"
            else:
                outcome = _Outcome(*mapped)
        outcome.integration_status = result.status_code
        outcome.integration_latency_ms = latency
        return outcome

    # ---- access log context

    def _log_context(
        self, exchange: _Exchange, outcome: _Outcome, latency_ms: int
    ) -> dict[str, Any]:
        request, source_ip, started = exchange.request, exchange.source_ip, exchange.started
        request_id, extended_id = exchange.request_id, exchange.extended_id
        error = outcome.error
        host = request.header("Host") or "127.0.0.1"
        raw_path = request.target.partition("?")[0]
        integration_latency = outcome.integration_latency_ms
        return {
            "accountId": ACCOUNT_ID,
            "apiId": self.spec.api_id,
            "deploymentId": self.deployment_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "error.message": error.message if error else None,
            "error.messageString": json.dumps(error.message) if error else None,
            "error.responseType": error.response_type if error else None,
            "extendedRequestId": extended_id,
            "httpMethod": request.method,
            "identity.sourceIp": source_ip,
            "identity.userAgent": request.header("User-Agent"),
            "identity.apiKey": outcome.api_key,
            "identity.apiKeyId": _api_key_id(outcome.api_key) if outcome.api_key else None,
            "integration.error": outcome.integration_error,
            "integration.integrationStatus": outcome.integration_status,
            "integration.latency": integration_latency,
            "integration.status": outcome.integration_status,
            "integrationErrorMessage": outcome.integration_error,
            "integrationLatency": integration_latency,
            "integrationStatus": outcome.integration_status,
            "path": raw_path,
            "protocol": request.version,
            "requestId": request_id,
            "requestTime": _request_time(started),
            "requestTimeEpoch": int(started * 1000),
            "resourceId": self.resource_ids.get(outcome.resource_path or ""),
            "resourcePath": outcome.resource_path,
            "responseLatency": latency_ms,
            "responseLength": len(outcome.body),
            "stage": self.stage,
            "status": outcome.status,
            "xrayTraceId": _trace_id(started),
        }


def _gateway_error(error: GatewayError, resource_path: str | None = None) -> _Outcome:
    body = json.dumps({"message": error.message}, separators=(",", ":")).encode()
    return _Outcome(
        error.status,
        [("Content-Type", "application/json")],
        body,
        resource_path=resource_path,
        error=error,
    )


def _proxy_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Map a Lambda proxy response to (status, headers, body); None when malformed.

    REST APIs accept only the five documented keys (anything else is "Malformed Lambda
    proxy response"), a numeric statusCode, a string (or null) body and string-valued
    headers; isBase64Encoded bodies are decoded.
    """
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(document, dict) or not set(document) <= _PROXY_RESPONSE_KEYS:
        return None
    status = document.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return None
    single = document.get("headers") or {}
    multi = document.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return None
    merged: dict[str, list[str]] = {}
    for name, value in single.items():
        text = _header_text(value)
        if text is None:
            return None
        merged[name] = [text]
    for name, values in multi.items():
        if not isinstance(values, list):
            return None
        texts = [_header_text(v) for v in values]
        if any(t is None for t in texts):
            return None
        merged[name] = [t for t in texts if t is not None]  # multiValueHeaders win
    body = document.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str):
        raw = body.encode("utf-8")
    else:
        return None
    encoded = document.get("isBase64Encoded", False)
    if encoded not in (True, False, None, "true", "false"):
        return None
    if encoded in (True, "true") and raw:
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None
    headers: list[tuple[str, str]] = []
    for name, values in merged.items():
        out_name = f"x-amzn-Remapped-{name}" if name.lower() in _REMAPPED_HEADERS else name
        headers.extend((out_name, value) for value in values)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))  # REST APIs' default
    return status, headers, raw


def _header_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


# ------------------------------------------------------------------------- MOCK

_STATUS_IN_TEMPLATE = re.compile(r"""["']?statusCode["']?\s*:\s*["']?(\d{3})""")
_ORIGIN_TEST = re.compile(r'\$origin\s*==\s*"([^"]*)"')
_ORIGIN_OVERRIDE = re.compile(
    r"#set\(\s*\$context\.responseOverride\.header\.([A-Za-z0-9-]+)\s*=\s*\$origin\s*\)"
)


def _mock_response(
    method: ApiMethod, request: Request, path_params: Mapping[str, str], query: str
) -> _Outcome:
    """Answer a MOCK integration from its templates and integration responses."""
    templates = method.request_templates
    content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip()
    template = templates.get(content_type) or templates.get("application/json")
    if template is None and templates:
        template = next(iter(templates.values()))
    if template is None:
        status_code = "200"
    else:
        match = _STATUS_IN_TEMPLATE.search(template)
        if match is None:
            return _gateway_error(CONFIGURATION_ERROR)
        status_code = match.group(1)
    chosen = _select_integration_response(method.integration_responses, status_code)
    if chosen is None:
        return _gateway_error(CONFIGURATION_ERROR)
    query_params = dict(parse_qsl(query, keep_blank_values=True))
    headers: dict[str, str] = {}
    for target, source in chosen.response_parameters.items():
        prefix = "method.response.header."
        if not target.startswith(prefix):
            continue
        value = _parameter_value(source, request, path_params, query_params)
        if value is not None:
            headers[target[len(prefix) :]] = value
    body_template = chosen.response_templates.get("application/json")
    if body_template is None and chosen.response_templates:
        body_template = next(iter(chosen.response_templates.values()))
    body = b""
    if body_template:
        _apply_origin_template(body_template, request, headers)
        # Only plain-text templates become a body; VTL beyond CDK's CORS idiom is not run.
        if "$" not in body_template and "#" not in body_template:
            body = body_template.encode("utf-8")
    out_headers = list(headers.items())
    if not any(name.lower() == "content-type" for name in headers):
        out_headers.append(("Content-Type", "application/json"))
    return _Outcome(int(chosen.status_code), out_headers, body)


def _select_integration_response(
    responses: Iterable[IntegrationResponse], status_code: str
) -> IntegrationResponse | None:
    default = None
    for response in responses:
        if not response.selection_pattern:
            default = default or response
        elif re.fullmatch(response.selection_pattern, status_code):
            return response
    return default


def _parameter_value(
    source: str,
    request: Request,
    path_params: Mapping[str, str],
    query_params: Mapping[str, str],
) -> str | None:
    if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
        return source[1:-1]  # a static value is quoted: "'*'"
    if source.startswith("method.request.header."):
        return request.header(source[len("method.request.header.") :])
    if source.startswith("method.request.querystring."):
        return query_params.get(source[len("method.request.querystring.") :])
    if source.startswith("method.request.path."):
        return path_params.get(source[len("method.request.path.") :])
    return None  # integration.response.* has nothing to offer for MOCK


def _apply_origin_template(template: str, request: Request, headers: dict[str, str]) -> None:
    """CDK's multi-origin CORS template: echo the Origin when it is one of the allowed."""
    override = _ORIGIN_OVERRIDE.search(template)
    if override is None:
        return
    origin = request.header("Origin")
    allowed = set(_ORIGIN_TEST.findall(template)) - {""}
    if origin and origin in allowed:
        headers[override.group(1)] = origin


# ------------------------------------------------------------------- formatting

_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]*[A-Za-z0-9_])")


def _format_access_log(template: str, context: Mapping[str, Any]) -> str:
    """Resolve ``$context.*`` variables; unknown or empty ones log as ``-`` (as AWS does)."""

    def replace(match: re.Match[str]) -> str:
        value = context.get(match.group(1))
        return "-" if value is None or value == "" else str(value)

    return _CONTEXT_VARIABLE.sub(replace, template)


# Request headers API Gateway does not pass to a proxy integration (absent from every
# AWS-recorded event): hop-by-hop headers and the body's framing.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def _path_parameters(resource_path: str, path: str) -> dict[str, str]:
    """The path parameters of ``path`` (as sent, percent-encoding kept) for the resource
    that matched: ``{name}`` takes one segment, ``{name+}`` the rest of the path without
    its trailing slash (inner ``//`` kept), as AWS's recorded events show."""
    params: dict[str, str] = {}
    remaining = path.lstrip("/")
    for segment in (s for s in resource_path.split("/") if s):
        if segment.endswith("+}"):
            params[segment[1:-2]] = remaining.rstrip("/")
            break
        value, _, remaining = remaining.partition("/")
        if segment.startswith("{"):
            params[segment[1:-1]] = value
    return params


def _request_time(epoch: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


def _trace_id(epoch: float) -> str:
    return f"Root=1-{int(epoch):08x}-{os.urandom(12).hex()}"


def _api_key_id(api_key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_OID, api_key).hex[:10]


def _log_group_name(arn: str | None) -> str | None:
    """``arn:aws:logs:r:a:log-group:NAME[:*]`` -> ``NAME``; a bare name passes through."""
    if not arn:
        return None
    if ":log-group:" not in arn:
        return arn
    name = arn.split(":log-group:", 1)[1]
    return name[:-2] if name.endswith(":*") else name


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------- background flushing


@dataclass
class _MetricWindow:
    count: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency: list[float] = field(default_factory=list)
    integration_latency: list[float] = field(default_factory=list)


class _Flusher:
    """Ships access-log lines (through the shared :class:`~localcloud.telemetry.LogShipper`)
    and API metrics, never on the request path."""

    def __init__(
        self,
        logs_client_factory: Callable[[], Any] | None,
        cloudwatch_client_factory: Callable[[], Any] | None,
        interval_s: float,
    ) -> None:
        self._logs = (
            None
            if logs_client_factory is None
            else LogShipper(
                lambda _service: logs_client_factory(), flush_interval=interval_s, name="apigw-logs"
            )
        )
        self._cloudwatch_factory = cloudwatch_client_factory
        self._cloudwatch: Any = None
        self._interval_s = interval_s
        self._metrics: dict[tuple[str, str], _MetricWindow] = {}
        self._metrics_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apigw-flusher", daemon=True)
        self.last_error: str | None = None
        self._thread.start()

    def log(self, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        if self._logs is not None:
            self._logs.put(group, stream, message, timestamp_ms)

    def metric(self, api_name: str, stage: str, outcome: _Outcome, latency_ms: int) -> None:
        if self._cloudwatch_factory is None:
            return
        with self._metrics_lock:
            window = self._metrics.setdefault((api_name, stage), _MetricWindow())
            window.count += 1
            window.errors_4xx += 400 <= outcome.status < 500
            window.errors_5xx += outcome.status >= 500
            window.latency.append(float(latency_ms))
            if outcome.integration_latency_ms is not None:
                window.integration_latency.append(float(outcome.integration_latency_ms))

    def _run(self) -> None:
        # The access logs ship on the log shipper's own thread; this one does the metrics.
        while not self._stop.wait(self._interval_s):
            self._publish_metrics()

    def flush(self) -> None:
        """Ship the access-log lines and metrics recorded so far, now."""
        if self._logs is not None:
            self._logs.flush()
        self._publish_metrics()

    def _publish_metrics(self) -> None:
        try:
            self._flush_metrics()
            self.last_error = None
        except Exception as error:  # keep flushing after a failed round
            self.last_error = repr(error)
            logger.debug("API Gateway flush failed: %r", error)

    def _flush_metrics(self) -> None:
        with self._metrics_lock:
            windows, self._metrics = self._metrics, {}
        if not windows:
            return
        if self._cloudwatch is None and self._cloudwatch_factory is not None:
            self._cloudwatch = self._cloudwatch_factory()
        data: list[dict[str, Any]] = []
        for (api_name, stage), window in windows.items():
            dimensions = [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage}]
            n = float(window.count)
            for name, errors in (("4XXError", window.errors_4xx), ("5XXError", window.errors_5xx)):
                data.append(
                    _statistic(name, dimensions, "Count", n, float(errors), errors > 0, errors < n)
                )
            data.append(
                {
                    "MetricName": "Count",
                    "Dimensions": dimensions,
                    "Unit": "Count",
                    "StatisticValues": {"SampleCount": n, "Sum": n, "Minimum": 1, "Maximum": 1},
                }
            )
            for name, values in (
                ("Latency", window.latency),
                ("IntegrationLatency", window.integration_latency),
            ):
                if values:
                    data.append(
                        {
                            "MetricName": name,
                            "Dimensions": dimensions,
                            "Unit": "Milliseconds",
                            "StatisticValues": {
                                "SampleCount": float(len(values)),
                                "Sum": sum(values),
                                "Minimum": min(values),
                                "Maximum": max(values),
                            },
                        }
                    )
        put_metric_data(self._cloudwatch, "AWS/ApiGateway", data)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._publish_metrics()  # whatever arrived after the last round
        if self._logs is not None:
            self._logs.close(timeout)  # ships what is queued


def _statistic(
    name: str,
    dimensions: list[dict[str, str]],
    unit: str,
    samples: float,
    total: float,
    any_one: bool,
    any_zero: bool,
) -> dict[str, Any]:
    # 4XXError/5XXError are 0/1 per request: Sum counts errors, Average is the error rate.
    return {
        "MetricName": name,
        "Dimensions": dimensions,
        "Unit": unit,
        "StatisticValues": {
            "SampleCount": samples,
            "Sum": total,
            "Minimum": 0.0 if any_zero else 1.0,
            "Maximum": 1.0 if any_one else 0.0,
        },
    }


# --------------------------------------------------------------------- watchdog


class _Ticket:
    """Who answers a request: the invocation or the timeout, whichever claims first."""

    __slots__ = ("_lock", "callback")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self.callback: Callable[[], None] | None = callback

    def claim(self) -> bool:
        return self._lock.acquire(blocking=False)


class _Watchdog:
    """One thread that answers requests whose integration outlives its timeout.

    Arming costs a heap push. A request that finishes in time settles its ticket, which
    drops the callback (and the request it holds) at once; settled entries are purged
    from the heap in bulk once they are the majority, so memory stays bounded under load.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Ticket]] = []
        self._settled = 0
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="apigw-watchdog", daemon=True)
        self._thread.start()

    def arm(self, deadline: float, callback: Callable[[], None]) -> _Ticket:
        ticket = _Ticket(callback)
        with self._condition:
            sequence = next(self._counter)
            heapq.heappush(self._heap, (deadline, sequence, ticket))
            if self._heap[0][1] == sequence:  # a new earliest deadline: re-arm the wait
                self._condition.notify()
        return ticket

    def settle(self, ticket: _Ticket) -> bool:
        """Claim the answer for the invocation; False if the timeout already answered."""
        if not ticket.claim():
            return False
        ticket.callback = None
        with self._condition:
            self._settled += 1
            if self._settled > 1024 and self._settled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].callback is not None]
                heapq.heapify(self._heap)
                self._settled = 0
        return True

    @property
    def pending(self) -> int:
        """Entries still in the heap (settled ones included until purged)."""
        with self._condition:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, ticket = heapq.heappop(self._heap)
                callback = ticket.callback
                if callback is None:
                    self._settled = max(0, self._settled - 1)
                    continue
            try:
                callback()
            except Exception as error:  # one failed answer must not stop the watchdog
                logger.warning("integration timeout handler failed: %r", error)

    def close(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()
        self._thread.join(5)


# --------------------------------------------------------------------- service


class ApiGatewayService(ClosesOnExit):
    """Serve REST APIs from their specs on loopback, each on its own port.

    ``invoke(function_name, payload) -> InvokeResult`` is the Lambda service's Invoke.
    Access logs and ``AWS/ApiGateway`` metrics go to ``endpoint_url`` (or the clients the
    factories return); with neither, they are off. ``port`` is used by the first API;
    later ones take a free port each (their URLs say which).
    """

    def __init__(
        self,
        invoke: Invoke,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        logs_client_factory: Callable[[], Any] | None = None,
        cloudwatch_client_factory: Callable[[], Any] | None = None,
        publish_metrics: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        flush_interval_s: float = 0.5,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the local API Gateway binds loopback only, not {host!r}")
        self.invoke = invoke
        self._host = host
        self._port = port
        self._region = region
        if logs_client_factory is None and endpoint_url is not None:
            logs_client_factory = lambda: local_client("logs", endpoint_url, region)  # noqa: E731
        if cloudwatch_client_factory is None and endpoint_url is not None:
            cloudwatch_client_factory = lambda: local_client(  # noqa: E731
                "cloudwatch", endpoint_url, region
            )
        self._flusher = _Flusher(
            logs_client_factory,
            cloudwatch_client_factory if publish_metrics else None,
            flush_interval_s,
        )
        self.watchdog = _Watchdog()
        self._apis: dict[str, _RestApi] = {}
        self._stats = ApiGatewayStats()
        self._stats_lock = threading.Lock()
        self._closed = False

    def add_rest_api(self, spec: RestApiSpec) -> str:
        """Serve ``spec``; return its invoke URL ``http://127.0.0.1:PORT/<stage>/``."""
        if self._closed:
            raise RuntimeError("the API Gateway service is closed")
        if spec.api_id in self._apis:
            raise ValueError(f"REST API {spec.api_id!r} is already served")
        api = _RestApi(spec, self)
        port = self._port if not self._apis else 0
        api.server = _Server((self._host, port), api)
        api.thread = threading.Thread(
            target=api.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"apigw-{spec.api_id}",
            daemon=True,
        )
        api.thread.start()
        self._apis[spec.api_id] = api
        return self.url(spec.api_id)

    def url(self, api_id: str) -> str:
        """The invoke URL of a served API."""
        api = self._apis[api_id]
        assert api.server is not None
        port = api.server.server_address[1]
        return f"http://{self._host}:{port}/{api.spec.stage_name}/"

    @property
    def ports(self) -> dict[str, int]:
        """``{api_id: port}`` of every served API."""
        return {
            api_id: api.server.server_address[1]
            for api_id, api in self._apis.items()
            if api.server is not None
        }

    def stats(self) -> ApiGatewayStats:
        """A snapshot of the request counters."""
        with self._stats_lock:
            return ApiGatewayStats(**self._stats.as_dict())

    def flush(self) -> None:
        """Ship pending access-log lines and metrics now (normally a background job)."""
        self._flusher.flush()

    def _record(self, api: _RestApi, outcome: _Outcome, latency_ms: int) -> None:
        status = outcome.status
        with self._stats_lock:
            stats = self._stats
            stats.requests += 1
            if 200 <= status < 300:
                stats.status_2xx += 1
            elif 400 <= status < 500:
                stats.status_4xx += 1
            elif status >= 500:
                stats.status_5xx += 1
            if outcome.error is THROTTLED:
                stats.throttled += 1
            if outcome.integration_error is not None:
                stats.integration_errors += 1
            if outcome.error is INTEGRATION_TIMEOUT:
                stats.integration_timeouts += 1
            if outcome.integration_status == 429:
                stats.lambda_throttles += 1
        self._flusher.metric(api.spec.name, api.spec.stage_name, outcome, latency_ms)

    def _access_log(self, api: _RestApi, started: float, line: str) -> None:
        if api.log_group is not None:
            self._flusher.log(api.log_group, api.log_stream, int(started * 1000), line)

    def close(self) -> None:
        """Stop every server, drop open connections, flush logs and metrics."""
        if self._closed:
            return
        self._closed = True
        for api in self._apis.values():
            if api.server is None:
                continue
            api.server.shutdown()
            api.server.server_close()
            api.server.close_connections()
            if api.thread is not None:
                api.thread.join(5)
        self.watchdog.close()
        self._flusher.close()
