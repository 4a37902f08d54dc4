"""One REST API: a request through routing, throttling, API keys, the integration, the response."""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from localcloud.apigw.formatting import (
    _NOT_FORWARDED,
    _api_key_id,
    _format_access_log,
    _log_group_name,
    _path_parameters,
    _request_time,
    _trace_header,
)
from localcloud.apigw.iam_auth import Caller, Denial, IamAuthorizer, SignedRequest
from localcloud.apigw.mock import _mock_response
from localcloud.apigw.responses import (
    _PROXY_RESPONSE_KEYS,
    _REMAPPED_HEADERS,
    ACCOUNT_ID,
    CONFIGURATION_ERROR,
    FORBIDDEN_STAGE,
    INTEGRATION_TIMEOUT,
    INVALID_API_KEY,
    LAMBDA_FAILED,
    LAMBDA_REJECTED,
    MISSING_TOKEN,
    THROTTLED,
    TOO_LARGE,
    GatewayError,
    _gateway_error,
    _Outcome,
)
from localcloud.apigw.routing import _resource_id, _Router
from localcloud.apigw.server import _serialise
from localcloud.apigw.throttling import _TokenBucket
from localcloud.apigw.watchdog import _Ticket
from localcloud.http11 import HttpServer, Request
from localcloud.specs import ApiMethod, RestApiSpec

if TYPE_CHECKING:
    from localcloud.apigw.service import ApiGatewayService

logger = logging.getLogger(__name__)


@dataclass
class _Exchange:
    """One request in flight and the identifiers API Gateway gives it."""

    request: Request
    source_ip: str
    sock: socket.socket
    started: float
    request_id: str
    extended_id: str
    trace_header: str = ""  # the X-Amzn-Trace-Id the integration gets


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
        self.iam = IamAuthorizer(
            service.credentials,
            region=service.region,
            account_id=ACCOUNT_ID,
            api_id=spec.api_id,
            stage=spec.stage_name,
        )
        self.server: HttpServer | None = None

    # ---- request handling

    def handle(self, request: Request, source_ip: str, sock: socket.socket) -> bytes | None:
        """The response bytes for ``request``; None if the watchdog has already answered."""
        started = time.time()
        exchange = _Exchange(
            request,
            source_ip,
            sock,
            started,
            str(uuid.uuid4()),
            base64.b64encode(os.urandom(11)).decode("ascii"),
            _trace_header(request.header("X-Amzn-Trace-Id"), started),
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
        caller: Caller | None = None
        if method.authorization_type == "AWS_IAM":  # authentication comes before API keys
            verdict = self.iam.check(
                SignedRequest(request.method, request.target, request.headers, request.body),
                "/" + "/".join(segments),
            )
            if isinstance(verdict, Denial):
                return _gateway_error(verdict.error, resource_path)
            caller = verdict
        api_key = request.header("x-api-key")
        if method.api_key_required and (api_key is None or api_key not in self.api_keys):
            return _gateway_error(INVALID_API_KEY, resource_path)
        used_key = api_key if method.api_key_required else None
        if method.integration_type == "MOCK":
            outcome: _Outcome | None = _mock_response(method, request, path_params, query)
        else:
            event = self._event(exchange, raw_path, path, query, resource_path, used_key, caller)
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
        caller: Caller | None = None,
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
            "X-Amzn-Trace-Id": exchange.trace_header,
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
                    "accountId": caller.account_id if caller else None,
                    "cognitoIdentityId": None,
                    "caller": caller.principal_id if caller else None,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": caller.access_key_id if caller else None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": caller.arn if caller else None,
                    "userAgent": request.header("User-Agent"),
                    "user": caller.principal_id if caller else None,
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
            result = self.service.invoke(
                method.function_name, payload, trace_header=exchange.trace_header
            )
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
            "xrayTraceId": exchange.trace_header.split(";", 1)[0],
        }


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
