"""The local stack: the synthesized CDK stacks running on this machine, on 127.0.0.1 only.

``LocalStack`` is what ``harness local up`` and the features' session fixture use. It
synthesizes the ``ephemeral`` profile (or takes a ready cloud assembly), starts the local
cloud (one AWS endpoint: our SQS engine + moto; the Lambda runtime; the SQS event source
mappings; the API Gateway front; metrics and alarms), deploys the templates onto it, and
writes the outputs file. Leaving the context stops every thread and process it started,
in reverse order, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

from cdk import contract
from harness.local.lambda_api import LambdaControlPlane
from harness.local.metrics import local_client
from harness.local.specs import (
    AlarmSpec,
    EventSourceMappingSpec,
    FunctionSpec,
    InvokeResult,
    RestApiSpec,
)

LOCAL_STACK_PREFIX = "local"
STATUS_PATH = "/_local/status"


class LocalStackError(RuntimeError):
    """The local stack could not start; the message says which step failed and why."""


class _Services:
    """The :class:`~harness.local.specs.LocalServices` the CloudFormation engine calls."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack

    def add_function(self, spec: FunctionSpec) -> None:
        self._stack.lambdas.add_function(spec)
        self._stack.control_plane.add_function(spec)

    def add_event_source_mapping(self, spec: EventSourceMappingSpec) -> None:
        self._stack.control_plane.add_event_source_mapping(spec)
        self._stack.mappings.add(spec)

    def add_rest_api(self, spec: RestApiSpec) -> str:
        return str(self._stack.gateway.add_rest_api(spec))

    def add_alarm(self, spec: AlarmSpec) -> None:
        self._stack.alarms.add_alarm(spec)


class LocalStack:
    """Start the whole stack locally; a context manager that yields itself.

    ``outputs`` and ``outputs_file`` are ready once entered. ``assembly_dir`` skips
    synthesis (a cloud assembly synthesized before); ``context`` adds CDK context.
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
    ) -> None:
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="task-api-local-"))
        self.assembly_dir = assembly_dir
        self.outputs_file = outputs_file or self.work_dir / "cdk-outputs.json"
        self.context = {"stack_prefix": LOCAL_STACK_PREFIX, **(context or {})}
        self.throttling = throttling
        self.port = port
        self.progress = on_progress or (lambda message: None)
        self.outputs: dict[str, dict[str, str]] = {}
        self.timings: dict[str, float] = {}
        self._closers: list[tuple[str, Callable[[], Any]]] = []
        self._deployed: Any = None
        self._started = False
        self._lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
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
            raise LocalStackError("this local stack is already started")
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
            self.assembly_dir = self._timed("synth", self._synthesize)
        warm.join()
        started = time.monotonic()
        self._start_cloud()
        deployed = self._timed("deploy", self._deploy)
        self.outputs = {
            stack: {
                **values,
                contract.AWS_ENDPOINT_URL: self.endpoint.url,
                contract.REGION: self.endpoint.region,
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
            raise LocalStackError(
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

    def _synthesize(self) -> Path:
        from cdk.synth import synthesize

        outdir = self.work_dir / "cdk.out"
        self.progress(f"synthesizing the ephemeral profile into {outdir} ...")
        return Path(synthesize("ephemeral", outdir, self.context))

    def _start_cloud(self) -> None:
        from harness.local.alarms import AlarmService
        from harness.local.apigw import ApiGatewayService
        from harness.local.endpoint import AwsEndpoint
        from harness.local.esm import EventSourceMappingService
        from harness.local.inprocess import InProcessCloudWatchClient, InProcessLogsClient
        from harness.local.lambda_service import LambdaService
        from harness.local.metrics import QueueDepth, QueueMetricsPublisher
        from harness.local.sqs.protocol import InProcessSqsClient

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

        # Every function gets credentials of its own; what each role was used for is in
        # self.endpoint.access (harness.local.identity).
        self.lambdas = LambdaService(
            url,
            region,
            logs_client=logs,
            cloudwatch_client=cloudwatch,
            identities=self.endpoint.identities,
            access=self.endpoint.access,
        )
        self._on_stop("Lambda service", self.lambdas.close)
        self.control_plane = LambdaControlPlane(self.lambdas.invoke)
        self.endpoint.mount(LambdaControlPlane.handles, self.control_plane)
        self.endpoint.mount(lambda path: path == STATUS_PATH, self._status_app)

        self.mappings = EventSourceMappingService(
            self.lambdas,
            url,
            region,
            sqs_client=InProcessSqsClient(self.endpoint.sqs),
            access=self.endpoint.access,
        )
        self._on_stop("event source mappings", self.mappings.close)
        self.control_plane.on_mapping_enabled = self.mappings.update

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
        engine = self.endpoint.sqs

        def depths() -> dict[str, QueueDepth]:
            # Straight from the engine's counters: no HTTP round trip per sample.
            return {
                url: QueueDepth(d.visible, d.not_visible, d.delayed, d.age_of_oldest_s)
                for url, d in engine.queue_depths().items()
            }

        self.queue_metrics = QueueMetricsPublisher(
            url, region, depths, cloudwatch_client=cloudwatch
        )
        self._on_stop("queue metrics", self.queue_metrics.close)
        self.progress(f"local cloud listening on {url} (region {region})")

    def _invoke(self, function_name: str, payload: bytes) -> InvokeResult:
        return self.lambdas.invoke(function_name, payload)

    def _deploy(self) -> Any:
        from harness.local.cfn import deploy_assembly

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

    def _destroy_deployed(self) -> None:
        deployed, self._deployed = self._deployed, None
        if deployed is not None:
            for problem in deployed.destroy():
                self.progress(f"warning: {problem}")

    # --- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Queue depths, per-function counters and alarm states, for ``harness local status``."""
        queues = {
            url.rsplit("/", 1)[-1]: {
                "visible": depth.visible,
                "in_flight": depth.not_visible,
                "delayed": depth.delayed,
                "age_of_oldest_s": round(depth.age_of_oldest_s, 1),
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


def _warm_up() -> None:
    """The first start's one-time work (imports, moto backends, boto3 models) ahead of it.

    Runs in a thread while synthesis runs in its subprocess; see :mod:`harness.local.warm`.
    """
    from harness.local.sqs.engine import DEFAULT_REGION
    from harness.local.warm import warm_up

    # Only an optimization: whatever fails here fails again in the start itself, which
    # reports it where it happens, so a failure here must not end the thread noisily.
    with contextlib.suppress(Exception):
        warm_up(DEFAULT_REGION)
