"""A target: a deployed Task API stack, described only by its outputs file.

Both targets, the local stack and an ephemeral AWS stack, end in the JSON that
``cdk deploy --outputs-file`` writes. Everything the harness does to a stack starts
from a :class:`Target` built from that file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config

from cdk import contract

TargetName = Literal["local", "aws"]


class TargetError(RuntimeError):
    """The target cannot be used: a missing or broken outputs file, a missing output."""


class StackNotDeployedError(RuntimeError):
    """The stack under test could not be synthesized, deployed or started: nothing a
    scenario does against it says anything about the product's promises.

    The QA report marks a scenario that failed on it (cause ``stack not deployed``), so
    ``harness mutate`` reports an error, not a kill. ``reason`` is the original error.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the stack under test was not deployed: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class DeployedSettings:
    """The timings that bound every wait, read from the running stack itself."""

    visibility_timeout_s: int
    max_receive_count: int
    processor_timeout_s: int
    batch_size: int
    # The processor's attempts per task (its ATTEMPT_BUDGET): the spec's "3 attempts".
    attempt_budget: int

    def redelivery_budget_s(self, deliveries: int) -> float:
        """An upper bound for ``deliveries`` receives of one message to happen.

        Each failed receive costs at most one visibility timeout before the message is
        visible again, plus the processor's own timeout on the attempt itself.
        """
        per_delivery = self.visibility_timeout_s + self.processor_timeout_s
        return deliveries * per_delivery + 15.0


def read_outputs(path: Path) -> dict[str, str]:
    """The outputs of every stack in a ``cdk deploy --outputs-file`` JSON, merged into one
    map; a :class:`TargetError` naming the file when it is missing or not of that shape."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(f"outputs file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise TargetError(f"outputs file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise TargetError(
            f"outputs file {path} must map stack names to objects of outputs "
            "(the shape `cdk deploy --outputs-file` writes)"
        )
    try:
        return contract.flatten(raw)
    except ValueError as exc:
        raise TargetError(f"outputs file {path}: {exc}") from None


@dataclass(frozen=True)
class Target:
    """A running stack: its outputs and boto3 clients that reach it."""

    name: TargetName
    outputs: dict[str, str]
    outputs_file: Path | None = None
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @classmethod
    def from_outputs_file(
        cls, path: Path, name: TargetName, *, required: Iterable[str] | None = None
    ) -> Target:
        """Read a ``cdk deploy --outputs-file`` JSON; a clear error if it is missing or broken.

        ``required`` names the outputs the caller cannot run without; by default a whole
        Task API stack's (and, for the local target, its endpoint and region). A load
        scenario passes only what it uses, so a partial file (an SQS endpoint alone) works.
        """
        flat = read_outputs(path)
        if required is None:
            wanted = list(contract.REQUIRED_OUTPUTS)
            if name == "local":
                wanted += contract.LOCAL_OUTPUTS
        else:
            wanted = list(required)
        missing = [key for key in wanted if not flat.get(key)]
        if missing:
            raise TargetError(f"outputs file {path} lacks required outputs: {', '.join(missing)}")
        return cls(name=name, outputs=flat, outputs_file=path)

    def output(self, key: str) -> str:
        """One output value; a clear error naming the key when the stack does not emit it."""
        try:
            return self.outputs[key]
        except KeyError:
            raise TargetError(f"the stack does not emit the output {key!r}") from None

    @property
    def endpoint_url(self) -> str | None:
        """Where boto3 clients point: the local cloud, or None for real AWS."""
        return self.outputs.get(contract.AWS_ENDPOINT_URL)

    @property
    def region(self) -> str | None:
        """The stack's region when the outputs name it (the local stack does)."""
        return self.outputs.get(contract.REGION)

    @property
    def profile(self) -> str:
        """The CDK profile the stack was synthesized with (``production`` or ``ephemeral``)."""
        return self.outputs.get(contract.PROFILE, "production")

    @property
    def fault_injection(self) -> bool:
        """Whether the stack honours the test-only fault-injection header."""
        return self.profile == "ephemeral"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client``: the local endpoint (any credentials do
        there, so a newcomer configures none) and the region when the outputs name them;
        nothing for AWS, where boto3's default chain applies."""
        kwargs: dict[str, Any] = {}
        if self.endpoint_url:
            kwargs.update(
                endpoint_url=self.endpoint_url,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - local cloud only
            )
        if self.region:
            kwargs["region_name"] = self.region
        return kwargs

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` at this target, created once and shared."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.new_client(
                    service, Config(retries={"max_attempts": 5, "mode": "standard"})
                )
            return self._clients[service]

    def new_client(self, service: str, config: Config | None = None) -> Any:
        """A fresh boto3 client for ``service`` at this target, with its own ``config``
        (a load scenario's client without retries, with a larger connection pool)."""
        kwargs = self.client_kwargs()
        if config is not None:
            kwargs["config"] = config
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]

    def resource(self, service: str) -> Any:
        """A boto3 resource for ``service`` at this target (DynamoDB items as plain values)."""
        return boto3.resource(service, **self.client_kwargs())  # type: ignore[call-overload]

    @cached_property
    def settings(self) -> DeployedSettings:
        """The running stack's timings: queue visibility, redrive count, processor timeout,
        batch size and attempt budget."""
        sqs = self.client("sqs")
        attributes = sqs.get_queue_attributes(
            QueueUrl=self.output(contract.TASK_QUEUE_URL),
            AttributeNames=["VisibilityTimeout", "RedrivePolicy"],
        )["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
        function = self.client("lambda").get_function_configuration(
            FunctionName=self.output(contract.PROCESSOR_FUNCTION_NAME)
        )
        mappings = self.client("lambda").list_event_source_mappings(
            FunctionName=self.output(contract.PROCESSOR_FUNCTION_NAME)
        )["EventSourceMappings"]
        return DeployedSettings(
            visibility_timeout_s=int(attributes["VisibilityTimeout"]),
            max_receive_count=int(redrive.get("maxReceiveCount", 0)),
            processor_timeout_s=int(function["Timeout"]),
            batch_size=int(mappings[0]["BatchSize"]) if mappings else 0,
            attempt_budget=int(
                function.get("Environment", {}).get("Variables", {}).get("ATTEMPT_BUDGET", 0)
            ),
        )
