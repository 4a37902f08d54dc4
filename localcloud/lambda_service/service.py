"""The local Lambda service: functions from the template, run like Lambda runs them.

Fidelity choices (each like AWS unless said otherwise):

- Every execution environment is a real process, ``python -P -m awslambdaric <handler>``
  (the official runtime interface client), started in the function's code directory with the
  function's resolved environment plus what Lambda itself sets. A new process is a cold
  start; idle processes are kept and reused (warm); the pool grows up to the concurrency
  limit.
- The runtime client waits for the next event in its main thread. For ``AWS_Lambda_python3.12``
  and later, awslambdaric starts a thread per ``/next`` so that Python signal handlers run
  while it is idle; locally nothing but SIGKILL is sent to an idle runtime, so ``_site/``
  turns that off (about half the runtime's CPU per warm invoke, docs/benchmarks.md). The
  function sees the same environment and runs in the main thread either way.
- Reserved concurrency: at most N invocations at once; beyond that a synchronous invoke is
  throttled at once (429 ``TooManyRequestsException``). Reserved concurrency 0 throttles all.
  Functions without reserved concurrency share nothing but are capped at
  ``unreserved_concurrency_limit`` (the local stand-in for the account limit).
- Timeout: the worker is killed; the caller gets ``Sandbox.Timedout`` and
  ``Task timed out after N.00 seconds``. A process that exits mid-invoke gives
  ``Runtime.ExitError``; a handler that cannot be imported gives the runtime's init error
  (``Runtime.ImportModuleError``, ...).
- Memory size: ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` is set and the REPORT line gives the
  worker's peak RSS as "Max Memory Used"; memory is NOT enforced. ``RLIMIT_AS`` would cap
  virtual address space, which for CPython (thread stacks, mmapped extension modules,
  allocator arenas) is several times the RSS Lambda's cgroup limit measures, so it would
  kill healthy functions while saying nothing true about Lambda.
- Payload limits: 6 MB request (``RequestEntityTooLargeException``) and 6 MB response
  (``Function.ResponseSizeTooLarge``); log events cut at CloudWatch's 256 KB.
- Logs: worker output and START/END/REPORT lines go to the function's log group, one stream
  per execution environment; metrics (AWS/Lambda Invocations, Errors, Duration, Throttles,
  ConcurrentExecutions) go to CloudWatch, stamped with the second of the invocation (or
  throttle) as Lambda stamps them. Both from background threads, batched.
- Active tracing (``TracingConfig: Active``, given an X-Ray daemon): the X-Ray SDK is on in
  the worker, each invocation continues its caller's trace (or starts one) and keeps its
  sampling decision (or X-Ray's default rule decides); a sampled invocation records
  Lambda's ``AWS::Lambda`` and ``AWS::Lambda::Function`` segments, the latter through the
  function's daemon, with its role (:mod:`localcloud.xray`).

Third-party packages come from the local virtualenv, the function's own code from its asset
directory. An asset bundled for Lambda (Python 3.12, Linux) may carry binary wheels (e.g.
``pydantic_core`` for cp312) that this machine's Python cannot load. So the worker runs with
``-P`` (the working directory is not put first on ``sys.path``) and a ``sitecustomize``
(``_site/``) appends the code directory AFTER site-packages: first-party packages such as
``handlers``, which are not installed in the venv, resolve from the asset; a package the venv
also has resolves from the venv.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.clients import client_factory
from localcloud.closing import ClosesOnExit
from localcloud.iam_policy import AccessDeniedError
from localcloud.identity import AccessLog, Identities, Principal
from localcloud.lambda_service.telemetry import EMF_PREFIX, MetricsPublisher, log_stream_name
from localcloud.lambda_service.worker import (
    Invocation,
    Outcome,
    Worker,
    WorkerStoppedError,
    new_trace_id,
)
from localcloud.specs import FunctionSpec, InvokeResult
from localcloud.telemetry import LogShipper
from localcloud.xray import Sampler, TraceHeader, XRayDaemon, new_root, new_segment_id

_LOG = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invoke request and response: 6 MB
_RESPONSE_LIMIT_REPORTED = 6_291_556  # the figure Lambda's error message quotes
# Lambda cuts the init phase at 10 s (and then retries init inside the invoke, against the
# function timeout). Locally the default is looser: on a busy 2-core CI machine importing
# Powertools + pydantic + boto3 was measured at up to ~6 s, and a spurious init timeout would
# be a false failure. Pass ``init_timeout_s=10`` for Lambda's figure.
INIT_TIMEOUT_S = 30.0
SITE_DIR = Path(__file__).resolve().parent / "_site"
_ACCOUNT_ID = "123456789012"


class LambdaServiceClosedError(RuntimeError):
    """Raised by ``invoke`` after ``close()``."""


@dataclass(frozen=True)
class FunctionStats:
    """Counters for one function (since it was added)."""

    function_name: str
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    timeouts: int
    crashes: int
    init_errors: int
    warm_workers: int
    busy_workers: int
    max_concurrency: int
    concurrency_limit: int


class _Function:
    """A function's spec, its pool of workers and its counters."""

    def __init__(self, spec: FunctionSpec, limit: int, base_env: dict[str, str]) -> None:
        self.spec = spec
        self.limit = limit
        self.base_env = base_env
        self.log_group = spec.log_group_name or f"/aws/lambda/{spec.function_name}"
        self.lock = threading.Lock()
        self.idle: list[Worker] = []
        self.workers: set[Worker] = set()
        self.in_flight = 0
        self.invocations = 0
        self.errors = 0
        self.throttles = 0
        self.cold_starts = 0
        self.timeouts = 0
        self.crashes = 0
        self.init_errors = 0
        self.max_concurrency = 0
        self.next_worker = 0
        # Bumped by every code or configuration update; a worker started on an older one
        # finishes its invocation and is retired instead of going back to ``idle``.
        self.generation = 0
        self.generation_of: dict[Worker, int] = {}
        self.updates = 0
        # Active tracing with a daemon to send to: X-Ray's default rule samples what comes
        # without an upstream decision.
        self.sampler = Sampler()

    @property
    def daemon_address(self) -> str | None:
        """The function's X-Ray daemon (``AWS_XRAY_DAEMON_ADDRESS``) when it is traced."""
        return self.base_env.get("AWS_XRAY_DAEMON_ADDRESS")


def lambda_environment(
    spec: FunctionSpec,
    *,
    endpoint_url: str,
    region: str,
    log_group: str,
    xray_daemon_address: str | None = None,
) -> dict[str, str]:
    """The worker's environment: the function's variables, then what Lambda sets on top.

    ``AWS_LAMBDA_RUNTIME_API`` and ``AWS_LAMBDA_LOG_STREAM_NAME`` are per worker and added
    when the worker starts. With ``xray_daemon_address``, a function whose tracing mode is
    ``Active`` runs with the X-Ray SDK on, sending to that daemon, as on AWS.
    """
    env: dict[str, str] = {
        # Not inherited from this process (Lambda does not inherit ours either); only what a
        # Python runtime needs to start.
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }
    env.update(spec.environment)
    python_path = [str(SITE_DIR)]
    if spec.environment.get("PYTHONPATH"):
        python_path.append(spec.environment["PYTHONPATH"])
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "_HANDLER": spec.handler,
            # Dummy credentials (Lambda injects the role's; nothing here may find real ones).
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            # boto3 inside handlers reaches the local cloud, not AWS.
            "AWS_ENDPOINT_URL": endpoint_url,
            # Tracing off unless the function is traced (below): with
            # AWS_LAMBDA_FUNCTION_NAME set, Powertools' Tracer believes it runs in Lambda
            # and the X-Ray SDK would send segments to a daemon that is not there.
            "AWS_XRAY_SDK_ENABLED": "false",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            # The function's own code comes after the venv's packages (see module docstring).
            "PYTHONPATH": os.pathsep.join(python_path),
            # Keep the asset directory untouched (no __pycache__ written into cdk.out).
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if xray_daemon_address is not None and spec.tracing_mode == "Active":
        # What Lambda sets for active tracing (localcloud.xray): the SDK sends each segment
        # to the function's own daemon; outside an invocation it logs and goes on.
        del env["AWS_XRAY_SDK_ENABLED"], env["POWERTOOLS_TRACE_DISABLED"]
        host, _, port = xray_daemon_address.rpartition(":")
        env.update(
            {
                "AWS_XRAY_DAEMON_ADDRESS": xray_daemon_address,
                "_AWS_XRAY_DAEMON_ADDRESS": host,
                "_AWS_XRAY_DAEMON_PORT": port,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            }
        )
    return env


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


def _error_type_of(body: bytes, header: str | None) -> str:
    if header:
        return header
    try:
        parsed = json.loads(body)
    except ValueError:
        return "Unhandled"
    if isinstance(parsed, dict) and isinstance(parsed.get("errorType"), str):
        return str(parsed["errorType"])
    return "Unhandled"


class LambdaService(ClosesOnExit):
    """Runs Lambda functions locally as AWS would; thread-safe, many concurrent callers.

    ``endpoint_url`` is the local AWS endpoint (handlers get it as ``AWS_ENDPOINT_URL``;
    logs and metrics are shipped there). Use as a context manager or call ``close()``.
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        unreserved_concurrency_limit: int = 16,
        python: str = sys.executable,
        publish_logs: bool = True,
        publish_metrics: bool = True,
        log_flush_interval: float = 0.2,
        metrics_interval: float = 1.0,
        init_timeout_s: float = INIT_TIMEOUT_S,
        logs_client: Any = None,
        cloudwatch_client: Any = None,
        identities: Identities | None = None,
        access: AccessLog | None = None,
        xray: XRayDaemon | None = None,
    ) -> None:
        """``logs_client`` ships the functions' logs and ``cloudwatch_client`` their metrics
        instead of boto3 clients at the endpoint (the local cloud passes its in-process
        clients, :mod:`localcloud.inprocess`). With ``identities`` each function's
        workers get credentials of their own (the endpoint then knows the caller), and
        ``access`` records what the log shipping does with each function's role. With
        ``xray``, functions with active tracing are traced: their SDK and the service send
        segments to that daemon (:mod:`localcloud.xray`)."""
        self.endpoint_url = endpoint_url
        self.region = region
        self._identities = identities
        self._access = access
        self._xray = xray
        self._unreserved_limit = unreserved_concurrency_limit
        self._python = python
        self._init_timeout_s = init_timeout_s
        self._lock = threading.Lock()
        self._functions: dict[str, _Function] = {}
        self._closed = False
        make_client = client_factory(endpoint_url, region)

        def make_logs_client(service: str) -> Any:
            return logs_client if logs_client is not None else make_client(service)

        def make_metrics_client(service: str) -> Any:
            return cloudwatch_client if cloudwatch_client is not None else make_client(service)

        self._logs = (
            LogShipper(make_logs_client, flush_interval=log_flush_interval, name="lambda-logs")
            if publish_logs
            else None
        )
        self._metrics = (
            MetricsPublisher(make_metrics_client, interval=metrics_interval)
            if publish_metrics
            else None
        )
        # Last line of defence against orphans if the owner forgets close() (e.g. Ctrl-C).
        self_ref = weakref.ref(self)

        def close_at_exit() -> None:
            service = self_ref()
            if service is not None:
                service.close()

        self._atexit = close_at_exit
        atexit.register(close_at_exit)

    # -- configuration ---------------------------------------------------------------

    def add_function(self, spec: FunctionSpec) -> None:
        """Register a function; its workers start on first invoke (cold start)."""
        spec, limit, env = self._prepare(spec)
        with self._lock:
            if self._closed:
                raise LambdaServiceClosedError("LambdaService is closed")
            if spec.function_name in self._functions:
                raise ValueError(f"function {spec.function_name} already exists")
            self._functions[spec.function_name] = _Function(spec, limit, env)

    def update_function(self, spec: FunctionSpec) -> int:
        """Replace a function's code and configuration, as ``UpdateFunctionCode`` does.

        The next invocations cold-start on the new code; invocations in flight finish on
        their worker, which is then retired instead of reused. Idle workers of the old code
        are stopped at once. Returns how many workers were running the old code.
        """
        spec, limit, env = self._prepare(spec)
        fn = self._functions.get(spec.function_name)
        if fn is None:
            raise KeyError(f"function {spec.function_name} does not exist")
        with fn.lock:
            if self._closed:
                raise LambdaServiceClosedError("LambdaService is closed")
            fn.spec, fn.limit, fn.base_env = spec, limit, env
            fn.log_group = env["AWS_LAMBDA_LOG_GROUP_NAME"]
            fn.generation += 1
            fn.updates += 1
            idle, fn.idle = fn.idle, []
            old = len(fn.workers)
        for worker in idle:
            worker.kill()
        return old

    def _prepare(self, spec: FunctionSpec) -> tuple[FunctionSpec, int, dict[str, str]]:
        if not spec.code_dir.is_dir():
            raise FileNotFoundError(
                f"code directory of {spec.function_name} missing: {spec.code_dir}"
            )
        # Absolute: the worker's cwd is the code directory and LAMBDA_TASK_ROOT must name it.
        spec = dataclasses.replace(spec, code_dir=spec.code_dir.resolve())
        limit = (
            spec.reserved_concurrency
            if spec.reserved_concurrency is not None
            else self._unreserved_limit
        )
        log_group = spec.log_group_name or f"/aws/lambda/{spec.function_name}"
        daemon = None
        if self._xray is not None and spec.tracing_mode == "Active":
            daemon = self._xray.address_for(self.principal_of(spec))
        env = lambda_environment(
            spec,
            endpoint_url=self.endpoint_url,
            region=self.region,
            log_group=log_group,
            xray_daemon_address=daemon,
        )
        if self._identities is not None:
            # Lambda hands each function its execution role's credentials.
            env.update(self._identities.credentials_for(self.principal_of(spec)))
        return spec, limit, env

    @staticmethod
    def principal_of(spec: FunctionSpec) -> Principal:
        """The function acting with its execution role."""
        return Principal(spec.function_name, spec.role_arn or f"role-of-{spec.function_name}")

    def function_spec(self, function_name: str) -> FunctionSpec:
        """The spec of a registered function (``KeyError`` if there is none)."""
        return self._functions[function_name].spec

    def function_names(self) -> list[str]:
        """Names of the registered functions."""
        return list(self._functions)

    # -- invoke ------------------------------------------------------------------------

    def invoke(
        self,
        function_name: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        trace_header: str | None = None,
    ) -> InvokeResult:
        """A synchronous (RequestResponse) invoke; blocks until the function returns.

        ``trace_header`` is the caller's ``X-Amzn-Trace-Id``: a traced function continues
        its trace and keeps its sampling decision, as Lambda does."""
        fn = self._functions.get(function_name)
        if fn is None:
            arn = f"arn:aws:lambda:{self.region}:{_ACCOUNT_ID}:function:{function_name}"
            message = f"Function not found: {arn}"
            return InvokeResult(
                status_code=404,
                payload=_error_payload("ResourceNotFoundException", message),
                error_type="ResourceNotFoundException",
            )
        if len(payload) > MAX_PAYLOAD_BYTES:
            message = (
                f"{len(payload)} byte payload is too large for the RequestResponse invocation "
                f"type (limit {MAX_PAYLOAD_BYTES} bytes)"
            )
            return InvokeResult(
                status_code=413,
                payload=_error_payload("RequestEntityTooLargeException", message),
                error_type="RequestEntityTooLargeException",
            )
        with fn.lock:
            if self._closed:
                raise LambdaServiceClosedError("LambdaService is closed")
            if fn.in_flight >= fn.limit:
                fn.throttles += 1
                throttled = True
            else:
                throttled = False
                fn.in_flight += 1
                concurrency = fn.in_flight
                fn.max_concurrency = max(fn.max_concurrency, concurrency)
        if throttled:
            if self._metrics is not None:
                self._metrics.record_throttle(function_name)
            return InvokeResult(
                status_code=429,
                payload=_error_payload("TooManyRequestsException", "Rate Exceeded."),
                error_type="TooManyRequestsException",
                extra={
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"
                    if fn.spec.reserved_concurrency is not None
                    else "ConcurrentInvocationLimitExceeded"
                },
            )
        invoked_at = time.time()  # the metrics' timestamp, as Lambda stamps them
        trace = self._trace(fn, trace_header)
        try:
            result = self._invoke_admitted(
                fn, payload, client_context, cognito_identity, trace.header
            )
        finally:
            with fn.lock:
                fn.in_flight -= 1
        if trace.lambda_segment_id is not None:
            self._send_segments(fn, trace, result, invoked_at)
        if self._metrics is not None:
            self._metrics.record_invocation(
                function_name,
                result.duration_ms,
                error=result.function_error is not None,
                concurrency=concurrency,
                invoked_at=invoked_at,
            )
        return result

    def _trace(self, fn: _Function, upstream: str | None) -> _Trace:
        """The invocation's ``_X_AMZN_TRACE_ID``: the caller's trace continued, or a new one;
        sampled as the caller decided, or by the function's sampler (active tracing)."""
        if fn.daemon_address is None:
            # Not traced (PassThrough, or no daemon): the SDK is off in the worker; the
            # header only names the trace (Powertools' logs carry its root).
            parsed = TraceHeader.parse(upstream) if upstream else None
            if parsed is None:
                return _Trace(new_trace_id())
            return _Trace(str(TraceHeader(parsed.root, parsed.parent or new_segment_id(), False)))
        parsed = TraceHeader.parse(upstream) if upstream else None
        root = parsed.root if parsed is not None else new_root()
        decided = parsed.sampled if parsed is not None else None
        sampled = fn.sampler.sample() if decided is None else decided
        if not sampled:
            return _Trace(str(TraceHeader(root, new_segment_id(), False)))
        # Lambda's own segment (AWS::Lambda) and the function's (AWS::Lambda::Function),
        # the parent of everything the SDK records in the handler.
        lambda_id, function_id = new_segment_id(), new_segment_id()
        return _Trace(
            str(TraceHeader(root, function_id, True)),
            root=root,
            upstream_parent=parsed.parent if parsed is not None else None,
            lambda_segment_id=lambda_id,
            function_segment_id=function_id,
        )

    def _send_segments(
        self, fn: _Function, trace: _Trace, result: InvokeResult, invoked_at: float
    ) -> None:
        """Record a sampled invocation as Lambda does: its ``AWS::Lambda`` segment with the
        service's rights, its ``AWS::Lambda::Function`` segment through the function's own
        daemon (so with its role: refused, it is lost with the SDK's subsegments)."""
        daemon = self._xray
        if daemon is None:
            return
        spec, end = fn.spec, time.time()
        started = end - result.duration_ms / 1000.0
        service: dict[str, Any] = {
            "name": spec.function_name,
            "id": trace.lambda_segment_id,
            "trace_id": trace.root,
            "start_time": invoked_at,
            "end_time": end,
            "origin": "AWS::Lambda",
            "resource_arn": spec.arn,
            "aws": {"request_id": result.extra.get("RequestId")},
            "http": {"response": {"status": result.status_code}},
        }
        if trace.upstream_parent:
            service["parent_id"] = trace.upstream_parent
        subsegments: list[dict[str, Any]] = []
        init_ms = result.extra.get("InitDurationMs")
        if result.cold_start and isinstance(init_ms, float):
            subsegments.append(
                {
                    "name": "Initialization",
                    "id": new_segment_id(),
                    "start_time": started - init_ms / 1000.0,
                    "end_time": started,
                }
            )
        subsegments.append(
            {"name": "Invocation", "id": new_segment_id(), "start_time": started, "end_time": end}
        )
        function: dict[str, Any] = {
            "name": spec.function_name,
            "id": trace.function_segment_id,
            "trace_id": trace.root,
            "parent_id": trace.lambda_segment_id,
            "start_time": subsegments[0]["start_time"],
            "end_time": end,
            "origin": "AWS::Lambda::Function",
            "resource_arn": spec.arn,
            "subsegments": subsegments,
        }
        if result.function_error is not None:
            function["fault"] = True
        daemon.submit(None, service)
        daemon.submit(self.principal_of(spec), function)

    def _take_idle(self, fn: _Function) -> tuple[Worker | None, FunctionSpec]:
        """A warm worker (or None) and the spec the invocation runs under, taken together
        so that a code update cannot slip in between."""
        with fn.lock:
            while fn.idle:
                worker = fn.idle.pop()  # LIFO: the most recently used is the warmest
                if worker.alive:
                    return worker, fn.spec
            return None, fn.spec

    def _invoke_admitted(
        self,
        fn: _Function,
        payload: bytes,
        client_context: str | None,
        cognito_identity: str | None,
        trace_id: str,
    ) -> InvokeResult:
        # A warm worker that died while idle (killed from outside) never saw the event:
        # run it again on another worker, like Lambda replaces a lost environment.
        for _attempt in range(3):
            worker, spec = self._take_idle(fn)
            invocation = Invocation(
                payload,
                timeout_s=spec.timeout_s,
                function_arn=spec.arn,
                client_context=client_context,
                cognito_identity=cognito_identity,
                trace_id=trace_id,
            )
            cold = worker is None
            if worker is None:
                try:
                    worker, spec = self._start_worker(fn, invocation)
                except LambdaServiceClosedError:
                    # Admitted before close(): answer like a failed invoke, do not raise.
                    return InvokeResult(
                        status_code=500,
                        payload=_error_payload(
                            "ServiceException", "The Lambda service is shutting down."
                        ),
                        error_type="ServiceException",
                    )
            else:
                worker.dispatch(invocation)
            result = self._await(fn, spec, worker, invocation, cold)
            if result is not None:
                return result
        raise RuntimeError(f"{fn.spec.function_name}: workers kept dying before taking the event")

    def _start_worker(self, fn: _Function, invocation: Invocation) -> tuple[Worker, FunctionSpec]:
        """A new worker on the function's current code, and the spec it runs."""
        with fn.lock:
            fn.next_worker += 1
            worker_id = f"{fn.spec.function_name}-{fn.next_worker}"
            fn.cold_starts += 1
            spec, env, log_group, generation = (
                fn.spec,
                dict(fn.base_env),
                fn.log_group,
                fn.generation,
            )
        stream = log_stream_name(suffix=uuid.uuid4().hex)
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = stream

        access, principal = self._access, self.principal_of(spec)
        shipping = self._logs is not None
        if access is not None and shipping:
            # Lambda ships the function's logs with its role (what logs:* statements allow);
            # refused, the function runs on and its logs are lost, as on AWS.
            try:
                access.check(
                    principal, "logs:CreateLogStream", access.log_stream_arn(log_group, stream)
                )
            except AccessDeniedError as error:
                _LOG.warning("logs of %s not shipped: %s", spec.function_name, error)
                shipping = False

        def sink(stream_name: str, message: str) -> None:
            if self._logs is not None:
                if not shipping:
                    return  # lost, with the EMF metrics it carried (extracted from the log)
                if access is not None:
                    try:
                        resource = access.log_stream_arn(log_group, stream_name)
                        access.check(principal, "logs:PutLogEvents", resource)
                    except AccessDeniedError:
                        return
                self._logs.put(log_group, stream_name, message)
            if self._metrics is not None and message.startswith(EMF_PREFIX):
                # CloudWatch Logs extracts EMF metrics from a Lambda log group.
                self._metrics.record_log_line(message)

        worker = Worker(
            worker_id=worker_id,
            command=[self._python, "-P", "-m", "awslambdaric", spec.handler],
            cwd=spec.code_dir,
            env=env,
            stream_name=stream,
            body_limit=MAX_PAYLOAD_BYTES,
            log_sink=sink,
            on_exit=lambda w: self._on_worker_exit(fn, w),
        )
        with fn.lock:
            if self._closed:
                worker.server.close()
                raise LambdaServiceClosedError("LambdaService is closed")
            fn.workers.add(worker)
            fn.generation_of[worker] = generation
        runtime = spec.runtime.replace("python", "python:")
        worker.log(f"INIT_START Runtime Version: {runtime}.local\tRuntime Version ARN: local\n")
        try:
            worker.start(invocation)
        except (OSError, WorkerStoppedError) as exc:
            with fn.lock:
                fn.workers.discard(worker)
                fn.generation_of.pop(worker, None)
            worker.server.close()
            if isinstance(exc, WorkerStoppedError):
                raise LambdaServiceClosedError("LambdaService is closed") from exc
            raise
        return worker, spec

    def _on_worker_exit(self, fn: _Function, worker: Worker) -> None:
        with fn.lock:
            fn.workers.discard(worker)
            fn.generation_of.pop(worker, None)
            if worker in fn.idle:
                fn.idle.remove(worker)

    def _await(
        self, fn: _Function, spec: FunctionSpec, worker: Worker, invocation: Invocation, cold: bool
    ) -> InvokeResult | None:
        """Wait for ``invocation`` on ``worker``; None means: never started, try again."""
        init_deadline = time.monotonic() + self._init_timeout_s
        while True:
            picked = invocation.picked_up_at
            deadline = init_deadline if picked is None else picked + spec.timeout_s
            now = time.monotonic()
            if now >= deadline:
                kind = "init" if picked is None else ""
                if invocation.complete(Outcome("timeout", detail=kind)):
                    worker.kill()
                break
            # Before the pickup, wake at least every ``timeout_s`` to re-arm the deadline
            # from the pickup time (the pickup itself does not wake us: hot path).
            wait = deadline - now if picked is not None else min(deadline - now, spec.timeout_s)
            if invocation.wait_done(wait):
                break
        outcome = invocation.outcome
        assert outcome is not None
        end = time.monotonic()
        if invocation.picked_up_at is None and outcome.kind == "exit" and not cold:
            worker.release()
            return None  # a warm worker died before taking the event: retry elsewhere
        duration_ms = (end - invocation.picked_up_at) * 1000 if invocation.picked_up_at else 0.0
        if outcome.kind == "timeout":
            duration_ms = spec.timeout_s * 1000.0
        result = self._result(fn, spec, worker, invocation, outcome, duration_ms, cold)
        worker.release()
        reusable = outcome.kind in ("response", "error", "too_large") and worker.alive
        with fn.lock:
            # A worker of code replaced meanwhile is retired once its invocation is over.
            reusable = reusable and fn.generation_of.get(worker) == fn.generation
            if reusable and not self._closed:
                fn.idle.append(worker)
        if not reusable:
            worker.kill()
        return result

    def _result(
        self,
        fn: _Function,
        spec: FunctionSpec,
        worker: Worker,
        invocation: Invocation,
        outcome: Outcome,
        duration_ms: float,
        cold: bool,
    ) -> InvokeResult:
        rid = invocation.request_id
        timeout_text = f"{spec.timeout_s:.2f}"
        payload: bytes
        error_type: str | None = None
        status_line = ""
        platform_lines: list[str] = []
        if outcome.kind == "response":
            payload = outcome.body
        elif outcome.kind == "error":
            payload = outcome.body
            error_type = _error_type_of(outcome.body, outcome.error_type)
        elif outcome.kind == "too_large":
            error_type = "Function.ResponseSizeTooLarge"
            payload = _error_payload(
                error_type,
                f"Response payload size ({outcome.detail} bytes) exceeded maximum allowed "
                f"payload size ({_RESPONSE_LIMIT_REPORTED} bytes).",
            )
        elif outcome.kind == "init_error":
            payload = outcome.body
            error_type = _error_type_of(outcome.body, outcome.error_type)
            status_line = f"Status: error\tError Type: {error_type}"
        elif outcome.kind == "timeout":
            error_type = "Sandbox.Timedout"
            if outcome.detail == "init":
                limit = f"{self._init_timeout_s:.2f}"
                message = f"{_now_iso()} {rid} Init phase timed out after {limit} seconds"
            else:
                message = f"{_now_iso()} {rid} Task timed out after {timeout_text} seconds"
            payload = _error_payload(error_type, message)
            platform_lines.append(message + "\n")
            status_line = "Status: timeout"
        else:  # exit
            error_type = "Runtime.ExitError"
            message = f"RequestId: {rid} Error: Runtime exited with error: {outcome.detail}"
            payload = _error_payload(error_type, message)
            platform_lines.append(f"{message}\n{error_type}\n")
            status_line = f"Status: error\tError Type: {error_type}"
        with fn.lock:
            fn.invocations += 1
            if error_type is not None:
                fn.errors += 1
            if outcome.kind == "timeout":
                fn.timeouts += 1
            elif outcome.kind == "exit":
                fn.crashes += 1
            elif outcome.kind == "init_error":
                fn.init_errors += 1
        max_memory = worker.sample_peak_rss()
        init_ms = worker.init_duration_ms if cold else None
        report = (
            f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
            f"Memory Size: {spec.memory_mb} MB\tMax Memory Used: {max_memory} MB\t"
        )
        if init_ms is not None:
            report += f"Init Duration: {init_ms:.2f} ms\t"
        report += status_line + "\n"

        def finish() -> None:
            for line in platform_lines:
                worker.log(line, invocation)
            worker.log(f"END RequestId: {rid}\n", invocation)
            worker.log(report, invocation)

        worker.drain_output(finish)
        return InvokeResult(
            status_code=200,
            payload=payload,
            function_error="Unhandled" if error_type is not None else None,
            error_type=error_type,
            cold_start=cold,
            duration_ms=duration_ms,
            log_tail=invocation.log_tail(),
            extra={
                "RequestId": rid,
                "InitDurationMs": init_ms,
                "MaxMemoryUsedMB": max_memory,
                "WorkerId": worker.worker_id,
                "WorkerPid": worker.process.pid if worker.process else None,
            },
        )

    # -- observation and shutdown ------------------------------------------------------

    def stats(self) -> dict[str, FunctionStats]:
        """Per-function counters and the current state of each pool."""
        out: dict[str, FunctionStats] = {}
        for name, fn in list(self._functions.items()):
            with fn.lock:
                idle = sum(1 for w in fn.idle if w.alive)
                out[name] = FunctionStats(
                    function_name=name,
                    invocations=fn.invocations,
                    errors=fn.errors,
                    throttles=fn.throttles,
                    cold_starts=fn.cold_starts,
                    timeouts=fn.timeouts,
                    crashes=fn.crashes,
                    init_errors=fn.init_errors,
                    warm_workers=idle,
                    busy_workers=fn.in_flight,
                    max_concurrency=fn.max_concurrency,
                    concurrency_limit=fn.limit,
                )
        return out

    def worker_pids(self, function_name: str | None = None) -> list[int]:
        """PIDs of the live worker processes (of one function, or all)."""
        pids: list[int] = []
        for name, fn in list(self._functions.items()):
            if function_name is not None and name != function_name:
                continue
            with fn.lock:
                workers = list(fn.workers)
            pids.extend(w.process.pid for w in workers if w.process is not None and w.alive)
        return pids

    def flush_telemetry(self, timeout: float = 10.0) -> None:
        """Ship the logs and metrics collected so far (tests and ``local down`` use it)."""
        if self._logs is not None:
            self._logs.flush(timeout)
        if self._metrics is not None:
            self._metrics.flush()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker process and wait for them; ship remaining telemetry. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self._atexit)
        workers: list[Worker] = []
        for fn in self._functions.values():
            with fn.lock:
                workers.extend(fn.workers)
                fn.idle.clear()
        for worker in workers:
            worker.kill()
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.stop(max(deadline - time.monotonic(), 0.1))
        if self._logs is not None:
            self._logs.close(max(deadline - time.monotonic(), 1.0))
        if self._metrics is not None:
            self._metrics.close(max(deadline - time.monotonic(), 1.0))


@dataclass(frozen=True)
class _Trace:
    """An invocation's trace header and, when sampled, the ids of Lambda's segments."""

    header: str
    root: str = ""
    upstream_parent: str | None = None
    lambda_segment_id: str | None = None
    function_segment_id: str | None = None


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
