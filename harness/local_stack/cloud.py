"""The local stack: the synthesized CDK stacks running on this machine, on 127.0.0.1 only.

``LocalDeployment`` is what ``harness local up`` and the features' session fixture use. It
takes the ``ephemeral`` profile's cloud assembly from the synthesis cache (synthesizing
it when the tree changed, :mod:`harness.synth_cache`) or a ready one, starts the local
cloud (one AWS endpoint: our SQS engine + moto; the Lambda runtime; the SQS event source
mappings; the API Gateway front; metrics and alarms), deploys the templates onto it, and
writes the outputs file. Leaving the context stops every thread and process it started,
in reverse order, whatever happened. While it runs, :meth:`LocalDeployment.swap_handler_code`
and :meth:`LocalDeployment.redeploy` bring a changed tree in (``harness local up --watch``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from cdk import contract
from cdk.synth import PROJECT_ROOT
from harness.synth_cache import LINE_PREFIXES, Lease, SynthCache
from localcloud import (
    AlarmSpec,
    EventSourceMappingSpec,
    FunctionSpec,
    InvokeResult,
    LambdaControlPlane,
    RestApiSpec,
    local_client,
)

LOCAL_STACK_PREFIX = "local"
LOCAL_PROFILE = "ephemeral"
STATUS_PATH = "/_local/status"
HANDLERS_PACKAGE = "handlers"
# The IAM users (name prefixes) whose keys API clients sign with (ApiAccessKeyId, ...).
API_INVOKER_USER = "local-api-invoker"
API_NO_INVOKE_USER = "local-api-no-invoke"


class LocalDeploymentError(RuntimeError):
    """The local stack could not start; the message says which step failed and why."""


class _Services:
    """The :class:`~localcloud.specs.LocalServices` the CloudFormation engine calls."""

    def __init__(self, stack: LocalDeployment) -> None:
        self._stack = stack

    def add_function(self, spec: FunctionSpec) -> None:
        self._stack.lambdas.add_function(spec)
        self._stack.control_plane.add_function(spec)

    def add_event_source_mapping(self, spec: EventSourceMappingSpec) -> None:
        self._stack.mappings.add(spec)

    def add_rest_api(self, spec: RestApiSpec) -> str:
        return str(self._stack.gateway.add_rest_api(spec))

    def add_alarm(self, spec: AlarmSpec) -> None:
        self._stack.alarms.add_alarm(spec)


@dataclass(frozen=True)
class Reload:
    """What :meth:`LocalDeployment.swap_handler_code` or :meth:`LocalDeployment.redeploy` did."""

    updated: tuple[str, ...] = ()
    """Functions now running new code or configuration (``name (what changed)``)."""
    needs_restart: tuple[str, ...] = ()
    """Changes the running stack cannot take; nothing was applied."""
    synthesized: bool = False
    """True when the new cloud assembly had to be synthesized (not taken from the cache)."""


class LocalDeployment:
    """Start the whole stack locally; a context manager that yields itself.

    ``outputs`` and ``outputs_file`` are ready once entered. ``assembly_dir`` skips
    synthesis (a cloud assembly synthesized before); ``context`` adds CDK context.
    Otherwise the assembly of the tree at ``project_root`` (this repository by default)
    comes from the synthesis cache under ``cache_dir`` (``<project_root>/build/
    cdk-assemblies``), or is synthesized into the work directory with ``use_cache=False``.
    """

    def __init__(
        self,
        *,
        work_dir: Path | None = None,
        assembly_dir: Path | None = None,
        outputs_file: Path | None = None,
        context: Mapping[str, str] | None = None,
        throttling: bool = True,
        port: int = 0,
        on_progress: Callable[[str], None] | None = None,
        project_root: Path | None = None,
        use_cache: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="task-api-local-"))
        self.assembly_dir = assembly_dir
        self.outputs_file = outputs_file or self.work_dir / "cdk-outputs.json"
        self.context = {"stack_prefix": LOCAL_STACK_PREFIX, **(context or {})}
        self.throttling = throttling
        self.port = port
        self.progress = on_progress or (lambda message: None)
        self.project_root = Path(project_root or PROJECT_ROOT).resolve()
        self.use_cache = use_cache
        self.cache = SynthCache(self.project_root, cache_dir)
        self.outputs: dict[str, dict[str, str]] = {}
        self.timings: dict[str, float] = {}
        self._closers: list[tuple[str, Callable[[], Any]]] = []
        self._deployed: Any = None
        self._started = False
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> LocalDeployment:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Synthesize (unless given an assembly), start the local cloud, deploy, write outputs."""
        if self._started:
            raise LocalDeploymentError("this local stack is already started")
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # Synthesis is a subprocess (Node on the other core): do the first start's one-time
        # work meanwhile (imports, moto's backends, boto3's models), off the start-up path.
        # Given an assembly, there is nothing to overlap: the start would pay it anyway.
        warm = threading.Thread(target=_warm_up, name="local-stack-warm-up", daemon=True)
        warm.start()
        if self.assembly_dir is None:
            began = time.monotonic()
            lease = self._lease()
            self.timings["cache_lookup" if lease.reused else "synth"] = time.monotonic() - began
            self.assembly_dir = lease.path
        warm.join()
        started = time.monotonic()
        self._start_cloud()
        deployed = self._timed("deploy", self._deploy)
        api_credentials = self._timed(
            "api_credentials", lambda: self._api_credentials(contract.flatten(deployed.outputs))
        )
        self.outputs = {
            stack: {
                **values,
                contract.AWS_ENDPOINT_URL: self.endpoint.url,
                contract.REGION: self.endpoint.region,
                **(api_credentials if contract.API_URL in values else {}),
            }
            for stack, values in deployed.outputs.items()
        }
        self.outputs_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.outputs_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.outputs, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.outputs_file)  # atomic: a poller never sees half a file
        self.timings["start_after_synth"] = time.monotonic() - started

    def stop(self) -> None:
        """Stop everything started so far, newest first; safe to call more than once."""
        with self._lock:
            closers, self._closers = self._closers, []
        errors = []
        for name, close in reversed(closers):
            try:
                close()
            except Exception as exc:  # keep stopping the rest; report at the end
                errors.append(f"{name}: {exc}")
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        if errors:
            raise LocalDeploymentError(
                "some parts of the local stack did not stop cleanly: " + "; ".join(errors)
            )

    def _on_stop(self, name: str, close: Callable[[], Any]) -> None:
        with self._lock:
            self._closers.append((name, close))

    def _timed(self, name: str, step: Callable[[], Any]) -> Any:
        began = time.monotonic()
        result = step()
        self.timings[name] = time.monotonic() - began
        return result

    # --- steps ------------------------------------------------------------------------

    def _lease(self, *, announce: bool = True) -> Lease:
        """The assembly of the tree as it is now (cached or synthesized), held until stop."""
        lease = self.cache.lease(
            LOCAL_PROFILE,
            self.context,
            private_dir=self.work_dir / f"cdk.out-{len(self._closers)}",
            use_cache=self.use_cache,
            on_progress=self.progress if announce else None,
        )
        # Released after everything else has stopped (closers run newest first): no
        # worker runs from the entry once the cache may prune it.
        self._on_stop("cloud assembly", lease.release)
        if announce:
            self.progress(lease.describe(self.project_root))
        return lease

    def _start_cloud(self) -> None:
        from localcloud import (
            AlarmService,
            ApiGatewayService,
            AwsEndpoint,
            EventSourceMappingService,
            InProcessCloudWatchClient,
            InProcessLogsClient,
            InProcessSqsClient,
            LambdaService,
            QueueMetricsPublisher,
        )
        from localcloud.xray import XRayDaemon, moto_segment_sink

        self.endpoint = AwsEndpoint(port=self.port, throttling=self.throttling)
        self.endpoint.start()
        self._on_stop("AWS endpoint", self.endpoint.stop)
        # Deleted after every service below has stopped (closers run newest first) and
        # before the endpoint goes: a service still running could recreate what was
        # deleted (a log shipper flushing creates its log group), and moto's state
        # outlives the endpoint within this process.
        self._on_stop("deployed resources", self._destroy_deployed)
        url, region = self.endpoint.url, self.endpoint.region
        # The services' own CloudWatch and Logs calls go to moto in this process: through
        # boto3 and the endpoint they cost ~10 % of the stack's CPU under load.
        logs, cloudwatch = InProcessLogsClient(region), InProcessCloudWatchClient(region)

        # Functions with active tracing send their segments to this daemon, which uploads
        # them to the endpoint's X-Ray with each function's role (localcloud.xray). Stopped
        # after the Lambda service (closers run newest first): no worker sends to it then.
        self.xray = XRayDaemon(
            moto_segment_sink(region, self.endpoint.access.account_id),
            access=self.endpoint.access,
        )
        self._on_stop("X-Ray daemon", self.xray.close)
        # Every function gets credentials of its own; what each role was used for is in
        # self.endpoint.access (localcloud.identity).
        self.lambdas = LambdaService(
            url,
            region,
            logs_client=logs,
            cloudwatch_client=cloudwatch,
            identities=self.endpoint.identities,
            access=self.endpoint.access,
            xray=self.xray,
        )
        self._on_stop("Lambda service", self.lambdas.close)
        self.mappings = EventSourceMappingService(
            self.lambdas,
            url,
            region,
            sqs_client=InProcessSqsClient(self.endpoint.sqs),
            access=self.endpoint.access,
        )
        self._on_stop("event source mappings", self.mappings.close)
        # The Lambda API reads and updates the mappings through their one owner.
        self.control_plane = LambdaControlPlane(self.lambdas.invoke, self.mappings)
        self.endpoint.mount(LambdaControlPlane.handles, self.control_plane)
        self.endpoint.mount(lambda path: path == STATUS_PATH, self._status_app)

        self.gateway = ApiGatewayService(
            self._invoke,
            endpoint_url=url,
            region=region,
            logs_client_factory=lambda: logs,
            cloudwatch_client_factory=lambda: cloudwatch,
        )
        self._on_stop("API Gateway", self.gateway.close)

        self.alarms = AlarmService(url, region, cloudwatch_client=cloudwatch)
        self._on_stop("alarms", self.alarms.close)
        # Straight from the engine's counters: no HTTP round trip per sample.
        self.queue_metrics = QueueMetricsPublisher(
            url, region, self.endpoint.sqs.queue_depths, cloudwatch_client=cloudwatch
        )
        self._on_stop("queue metrics", self.queue_metrics.close)
        self.progress(f"local cloud listening on {url} (region {region})")

    # --- reloading a changed tree -------------------------------------------------------

    def _update_function(self, spec: FunctionSpec) -> None:
        self.lambdas.update_function(spec)
        self.control_plane.add_function(self.lambdas.function_spec(spec.function_name))

    def swap_handler_code(self) -> Reload:
        """Bundle ``handlers/`` as it is now and give it to every function running that
        package: invocations in flight finish on the old code, the next ones cold-start on
        the new. A function whose ``handlers`` package already has these bytes is left
        alone (its warm workers stay)."""
        from cdk.bundling import build_lambda_asset

        handlers = self.project_root / HANDLERS_PACKAGE
        with self._reload_lock:
            asset = build_lambda_asset(
                handlers_dir=handlers,
                requirements=handlers / "requirements.txt",
                cache_dir=self.cache.directory.parent / "lambda-assets",
            )
            new_code = _package_digest(asset.path)
            updated = []
            for name in self.lambdas.function_names():
                spec = self.lambdas.function_spec(name)
                runs_package = (
                    spec.handler.split(".", 1)[0] == HANDLERS_PACKAGE
                    and (spec.code_dir / HANDLERS_PACKAGE).is_dir()
                )
                if not runs_package or _package_digest(spec.code_dir) == new_code:
                    continue
                self._update_function(replace(spec, code_dir=asset.path))
                updated.append(f"{name} (code)")
        return Reload(updated=tuple(updated))

    def redeploy(self) -> Reload:
        """Synthesize the tree as it is now (through the cache) and apply what changed, if
        the running stack can take it in place (Lambda code and configuration); otherwise
        apply nothing and say which changes need a restart."""
        from localcloud import apply_update, plan_update

        with self._reload_lock:
            lease = self._lease(announce=False)  # the reload's own line says what happened
            synthesized = not lease.reused
            plan = plan_update(self._deployed, lease.path)
            if plan.blockers:
                return Reload(needs_restart=plan.blockers, synthesized=synthesized)
            same_code: dict[str, bool] = {}

            def update(spec: FunctionSpec) -> None:
                current = self.lambdas.function_spec(spec.function_name)
                same = _code_digest(spec.code_dir) == _code_digest(current.code_dir)
                if same and replace(spec, code_dir=current.code_dir) == current:
                    return  # a new code key for the code it already runs: keep its workers
                same_code[spec.function_name] = same
                self._update_function(spec)

            apply_update(self._deployed, plan, update)
            self.assembly_dir = lease.path
        updated = []
        for change in plan.changes:
            name = self._deployed.resource(change.stack_name, change.logical_id).physical_id
            if name in same_code:
                shown = [p for p in change.properties if not (p == "Code" and same_code[name])]
                updated.append(f"{name} ({', '.join(shown)})")
        return Reload(updated=tuple(updated), synthesized=synthesized)

    def _invoke(
        self, function_name: str, payload: bytes, *, trace_header: str | None = None
    ) -> InvokeResult:
        return self.lambdas.invoke(function_name, payload, trace_header=trace_header)

    def _deploy(self) -> Any:
        from localcloud import deploy_assembly

        assert self.assembly_dir is not None
        deployed = deploy_assembly(
            self.assembly_dir,
            endpoint_url=self.endpoint.url,
            region=self.endpoint.region,
            services=_Services(self),
            on_progress=self.progress,
        )
        self._deployed = deployed
        return deployed

    def _api_credentials(self, outputs: Mapping[str, str]) -> dict[str, str]:
        """Two IAM users of the local cloud for API clients, as output values: the invoker
        (allowed ``execute-api:Invoke`` on this API) and one whose valid key may not invoke
        it. The API's methods use IAM authorization; on AWS the CI's own credentials sign."""
        api_id = outputs.get(contract.API_ID)
        if not api_id:
            return {}
        iam = local_client("iam", self.endpoint.url, self.endpoint.region)
        account = local_client(
            "sts", self.endpoint.url, self.endpoint.region
        ).get_caller_identity()["Account"]
        api_arn = f"arn:aws:execute-api:{self.endpoint.region}:{account}:{api_id}/*"
        # Named per API: moto's IAM is one per process, shared by every stack in it.
        invoker_user, no_invoke_user = (
            f"{API_INVOKER_USER}-{api_id}",
            f"{API_NO_INVOKE_USER}-{api_id}",
        )
        policies = {
            invoker_user: {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": api_arn},
            # A real policy, only not this right: the key is valid, the invocation refused.
            no_invoke_user: {
                "Effect": "Allow",
                "Action": "execute-api:ManageConnections",
                "Resource": api_arn,
            },
        }
        keys: dict[str, dict[str, str]] = {}
        for user, statement in policies.items():
            iam.create_user(UserName=user)
            iam.put_user_policy(
                UserName=user,
                PolicyName="api-access",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            )
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        self._on_stop("API client users", lambda: _delete_users(iam, keys))
        invoker, no_invoke = keys[invoker_user], keys[no_invoke_user]
        return {
            contract.API_ACCESS_KEY_ID: invoker["AccessKeyId"],
            contract.API_SECRET_ACCESS_KEY: invoker["SecretAccessKey"],
            contract.API_NO_INVOKE_ACCESS_KEY_ID: no_invoke["AccessKeyId"],
            contract.API_NO_INVOKE_SECRET_ACCESS_KEY: no_invoke["SecretAccessKey"],
        }

    def _destroy_deployed(self) -> None:
        deployed, self._deployed = self._deployed, None
        if deployed is not None:
            for problem in deployed.destroy():
                self.progress(f"warning: {problem}")

    # --- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Queue depths, per-function counters, alarm states and the calls IAM refused, for
        ``harness local status``."""
        queues = {
            url.rsplit("/", 1)[-1]: {
                "visible": depth.visible,
                "in_flight": depth.not_visible,
                "delayed": depth.delayed,
                "age_of_oldest_s": round(depth.age_of_oldest_s or 0.0, 1),
            }
            for url, depth in self.endpoint.sqs.queue_depths().items()
        }
        cloudwatch = local_client("cloudwatch", self.endpoint.url, self.endpoint.region)
        alarms = {
            alarm["AlarmName"]: alarm["StateValue"]
            for alarm in cloudwatch.describe_alarms()["MetricAlarms"]
        }
        return {
            "endpoint": self.endpoint.url,
            "pid": os.getpid(),
            "queues": queues,
            "functions": {
                name: {**asdict(s), "worker_pids": self.lambdas.worker_pids(name)}
                for name, s in self.lambdas.stats().items()
            },
            "event_source_mappings": {uuid: asdict(s) for uuid, s in self.mappings.stats().items()},
            "api": asdict(self.gateway.stats()),
            "alarms": alarms,
            # Calls the functions' roles were refused (IAM enforced: docs/local-cloud/iam.md).
            "iam_refused": [asdict(call) for call in self.endpoint.access.denied()],
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def _status_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = json.dumps(self.status(), default=str).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


def assembly_lines(pytest_config: Any) -> Callable[[str], None]:
    """An ``on_progress`` for a test session's stack: the lines saying how its cloud
    assembly was obtained (reused from the cache, or synthesized and why), on pytest's
    terminal, which shows them even while it captures output."""
    reporter = pytest_config.pluginmanager.get_plugin("terminalreporter")
    capture = pytest_config.pluginmanager.get_plugin("capturemanager")

    def show(line: str) -> None:
        if reporter is None or not line.startswith(LINE_PREFIXES):
            return
        # Output is captured at the file descriptor while fixtures run: lift it, as
        # pytest's own live logging does, or the line lands in the captured output.
        paused = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with paused:
            reporter.write_line(line)

    return show


def _package_digest(code_dir: Path) -> str:
    """SHA-256 of the handlers package's files in a code directory (bytecode left out)."""
    digest = hashlib.sha256()
    package = code_dir / HANDLERS_PACKAGE
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _code_digest(code_dir: Path) -> str:
    """The handlers package's bytes and every other file's path and size: what tells two
    bundles apart (dependencies differ by version, hence by file names and sizes)."""
    digest = hashlib.sha256(_package_digest(code_dir).encode())
    for path in sorted(code_dir.rglob("*")):
        if path.is_file() and HANDLERS_PACKAGE not in path.relative_to(code_dir).parts[:1]:
            digest.update(
                f"{path.relative_to(code_dir).as_posix()}\0{path.stat().st_size}\n".encode()
            )
    return digest.hexdigest()


def _delete_users(iam: Any, keys: Mapping[str, Mapping[str, str]]) -> None:
    """Remove the API client users (moto's IAM outlives the stack within the process)."""
    for user, key in keys.items():
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        iam.delete_user_policy(UserName=user, PolicyName="api-access")
        iam.delete_user(UserName=user)


def _warm_up() -> None:
    """The first start's one-time work (imports, moto backends, boto3 models) ahead of it.

    Runs in a thread while synthesis runs in its subprocess; see :mod:`localcloud.warm`.
    """
    from localcloud import DEFAULT_REGION, warm_up

    # Only an optimization: whatever fails here fails again in the start itself, which
    # reports it where it happens, so a failure here must not end the thread noisily.
    with contextlib.suppress(Exception):
        warm_up(DEFAULT_REGION)
