"""The Lambda control plane of the local cloud (the REST-JSON API boto3's ``lambda`` speaks).

The functions themselves run in :mod:`localcloud.lambda_service`; this serves what a
user or a feature reads about them through ``AwsEndpointUrl``: function configuration,
reserved concurrency, event source mappings, plus ``Invoke`` and enabling or disabling a
mapping. Everything comes from the resolved specs, i.e. from the template.

The event source mappings (settings, states, the asynchronous Enabling/Disabling) are read
from and updated through their one owner, the
:class:`~localcloud.lambda_service.esm.EventSourceMappingService`; a 202 answers
``UpdateEventSourceMapping``, as on AWS.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from localcloud.lambda_service.esm import (
    EventSourceMapping,
    EventSourceMappingError,
    EventSourceMappingService,
    ResourceNotFoundError,
)
from localcloud.specs import FunctionSpec, InvokeResult

Invoke = Callable[[str, bytes], InvokeResult]
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"^/2015-03-31/functions/?$"), "list_functions"),
    ("GET", re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/?$"), "get_function"),
    (
        "GET",
        re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/configuration/?$"),
        "get_function_configuration",
    ),
    (
        "GET",
        re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)/concurrency/?$"),
        "get_function_concurrency",
    ),
    ("POST", re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$"), "invoke"),
    ("GET", re.compile(r"^/2015-03-31/event-source-mappings/?$"), "list_event_source_mappings"),
    (
        "GET",
        re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)/?$"),
        "get_event_source_mapping",
    ),
    (
        "PUT",
        re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)/?$"),
        "update_event_source_mapping",
    ),
]
PATH_PREFIXES = (
    "/2015-03-31/functions",
    "/2019-09-30/functions",
    "/2015-03-31/event-source-mappings",
)


class LambdaApiError(Exception):
    """An error the Lambda API answers with (``x-amzn-ErrorType`` + JSON body)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class LambdaControlPlane:
    """Registry of the local cloud's functions, served as the Lambda API with the
    event source mappings of ``mappings``."""

    invoke_function: Invoke
    mappings: EventSourceMappingService
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_function(self, spec: FunctionSpec) -> None:
        with self._lock:
            self.functions[spec.function_name] = spec

    # --- WSGI -------------------------------------------------------------------------

    @staticmethod
    def handles(path: str) -> bool:
        """Whether a request path belongs to the Lambda API."""
        return path.startswith(PATH_PREFIXES)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers: list[tuple[str, str]] = [("Content-Type", "application/json")]
        try:
            for route_method, pattern, handler_name in _ROUTES:
                match = pattern.match(path)
                if match and route_method == method:
                    params = {k: unquote(v) for k, v in match.groupdict().items()}
                    status, payload, extra = getattr(self, handler_name)(
                        params, query, body, environ
                    )
                    headers += extra
                    break
            else:
                raise LambdaApiError(
                    404, "UnknownOperationException", f"Unknown operation {method} {path}"
                )
        except EventSourceMappingError as error:
            status, payload = (
                404 if isinstance(error, ResourceNotFoundError) else 400,
                json.dumps({"Type": "User", "Message": str(error)}).encode(),
            )
            headers.append(("x-amzn-ErrorType", error.code))
        except LambdaApiError as error:
            status, payload = (
                error.status,
                json.dumps({"Type": "User", "Message": error.message}).encode(),
            )
            headers.append(("x-amzn-ErrorType", error.error_type))
        start_response(
            f"{status} {_REASONS.get(status, 'OK')}",
            [*headers, ("Content-Length", str(len(payload)))],
        )
        return [payload]

    # --- operations -------------------------------------------------------------------

    def _function(self, name: str) -> FunctionSpec:
        # FunctionName may be a name, an ARN, or an ARN with a version/alias qualifier.
        key = name.split(":")[6] if name.startswith("arn:") else name
        with self._lock:
            spec = self.functions.get(key)
        if spec is None:
            raise LambdaApiError(404, "ResourceNotFoundException", f"Function not found: {name}")
        return spec

    def list_functions(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        with self._lock:
            specs = list(self.functions.values())
        return 200, _json({"Functions": [_configuration(s) for s in specs]}), []

    def get_function(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        spec = self._function(params["name"])
        result: dict[str, Any] = {
            "Configuration": _configuration(spec),
            "Code": {"RepositoryType": "S3", "Location": spec.code_dir.as_uri()},
        }
        if spec.reserved_concurrency is not None:
            result["Concurrency"] = {"ReservedConcurrentExecutions": spec.reserved_concurrency}
        return 200, _json(result), []

    def get_function_configuration(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        return 200, _json(_configuration(self._function(params["name"]))), []

    def get_function_concurrency(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        spec = self._function(params["name"])
        result = (
            {}
            if spec.reserved_concurrency is None
            else {"ReservedConcurrentExecutions": spec.reserved_concurrency}
        )
        return 200, _json(result), []

    def invoke(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        spec = self._function(params["name"])
        invocation_type = environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse")
        if invocation_type == "DryRun":
            return 204, b"", []
        if invocation_type == "Event":
            # Asynchronous invoke: accepted now, run in the background like Lambda's queue.
            threading.Thread(
                target=self.invoke_function,
                args=(spec.function_name, body),
                daemon=True,
                name=f"async-invoke-{spec.function_name}",
            ).start()
            return 202, b"", []
        result = self.invoke_function(spec.function_name, body)
        if result.status_code == 429:
            raise LambdaApiError(429, "TooManyRequestsException", "Rate Exceeded.")
        headers = [("X-Amz-Executed-Version", "$LATEST")]
        if result.function_error:
            headers.append(("X-Amz-Function-Error", result.function_error))
        if environ.get("HTTP_X_AMZ_LOG_TYPE") == "Tail":
            tail = result.log_tail.encode()[-4096:]
            headers.append(("X-Amz-Log-Result", base64.b64encode(tail).decode()))
        return 200, result.payload, headers

    def list_event_source_mappings(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        function = query.get("FunctionName")
        mappings = self.mappings.find(
            function_name=self._function(function).function_name if function else None,
            event_source_arn=query.get("EventSourceArn"),
        )
        return 200, _json({"EventSourceMappings": [self._mapping(m) for m in mappings]}), []

    def get_event_source_mapping(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        return 200, _json(self._mapping(self.mappings.get(params["uuid"]))), []

    def update_event_source_mapping(
        self, params: dict[str, str], query: dict[str, str], body: bytes, environ: dict[str, Any]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        self.mappings.get(params["uuid"])  # an unknown UUID is not found before bad JSON
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise LambdaApiError(
                400, "InvalidParameterValueException", "body is not JSON"
            ) from None
        updated = self.mappings.update(
            params["uuid"],
            enabled=bool(request["Enabled"]) if "Enabled" in request else None,
            batch_size=int(request["BatchSize"]) if "BatchSize" in request else None,
        )
        return 202, _json(self._mapping(updated)), []

    def _mapping(self, mapping: EventSourceMapping) -> dict[str, Any]:
        spec = mapping.spec
        with self._lock:
            function = self.functions.get(spec.function_name)
        result: dict[str, Any] = {
            "UUID": spec.uuid,
            "BatchSize": spec.batch_size,
            "MaximumBatchingWindowInSeconds": spec.maximum_batching_window_s,
            "EventSourceArn": spec.event_source_arn,
            "FunctionArn": function.arn if function else spec.function_name,
            "State": mapping.state,
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": list(spec.function_response_types),
        }
        if spec.maximum_concurrency is not None:
            result["ScalingConfig"] = {"MaximumConcurrency": spec.maximum_concurrency}
        return result


def _configuration(spec: FunctionSpec) -> dict[str, Any]:
    return {
        "FunctionName": spec.function_name,
        "FunctionArn": spec.arn,
        "Runtime": spec.runtime,
        "Role": spec.role_arn,
        "Handler": spec.handler,
        "Timeout": spec.timeout_s,
        "MemorySize": spec.memory_mb,
        "Version": "$LATEST",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": ["x86_64"],
        "Environment": {"Variables": dict(spec.environment)},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": spec.log_group_name},
        "TracingConfig": {"Mode": spec.tracing_mode},
    }


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


_REASONS = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
}
