"""Fixtures for the CI-stack tests: moto (in-process or a server), the stand-in ``cdk``.

Nothing here reaches AWS: every boto3 client goes to moto (``mock_aws`` or a
``ThreadedMotoServer`` on 127.0.0.1 reached through ``AWS_ENDPOINT_URL``), and the CDK CLI
is ``fake_cdk/fake_cdk.py``. moto cannot produce some CloudFormation outcomes
(``*_FAILED`` resource events, ``DELETE_FAILED``, a slow delete); :class:`CfnFaults` adds
them inside moto's CloudFormation backend, so the harness still reads them through the real
API, as it would from AWS.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Event, Stack, cloudformation_backends
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
REGION = "us-east-1"
FAKE_CDK = Path(__file__).parent / "fake_cdk" / "fake_cdk.py"
PROJECT_ROOT = Path(__file__).resolve().parents[3]

# Variables of the machine running the tests that would change what the harness does.
_SCRUBBED_PREFIXES = ("GITHUB_", "HARNESS_", "FAKE_CDK_", "AWS_")


def scrubbed_environ() -> dict[str, str]:
    """``os.environ`` without CI, harness, fake-cdk and AWS variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region; no CI context, no profile, no guard lists."""
    for key in list(os.environ):
        if key.startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port) shared by the tests that need one."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class Cli:
    """Environment for running the harness (in-process or as a subprocess) against moto."""

    endpoint: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)

    def calls(self) -> list[dict[str, Any]]:
        """What the stand-in cdk recorded: one entry per invocation or signal."""
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def commands(self) -> list[str]:
        """The cdk sub-commands run so far (``deploy``, ``destroy``)."""
        return [c["argv"][0] for c in self.calls() if "argv" in c]

    def cfn(self) -> Any:
        """A CloudFormation client on the moto server."""
        return boto3.client("cloudformation", region_name=REGION, endpoint_url=self.endpoint)

    def logs(self) -> Any:
        """A CloudWatch Logs client on the moto server."""
        return boto3.client("logs", region_name=REGION, endpoint_url=self.endpoint)

    def stack_names(self) -> set[str]:
        """Names of the live stacks on the moto server."""
        return {s["StackName"] for s in self.cfn().describe_stacks()["Stacks"]}


@pytest.fixture
def cli(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A clean moto server, our environment pointed at it, and the stand-in cdk."""
    # The URL is our own moto server on 127.0.0.1.
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    log_file = tmp_path / "fake-cdk.jsonl"
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "HARNESS_CDK": f"{sys.executable} {FAKE_CDK}",
        "FAKE_CDK_LOG": str(log_file),
        "FAKE_CDK_HANG_FILE": str(tmp_path / "fake-cdk.hanging"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Cli(
        endpoint=moto_endpoint, log_file=log_file, env={**scrubbed_environ(), **_aws_vars(), **env}
    )


def _aws_vars() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


def cfn_backend() -> CloudFormationBackend:
    """moto's CloudFormation state for the default account and region."""
    return cloudformation_backends[ACCOUNT][REGION]


def moto_stack(name: str) -> Stack:
    """moto's model of the live stack ``name``."""
    return next(s for s in cfn_backend().stacks.values() if s.name == name)


def add_event(
    stack: Stack, logical_id: str, resource_type: str, status: str, reason: str | None
) -> None:
    """Append a CloudFormation event to a moto stack, as the CloudFormation engine would."""
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=stack.stack_id if logical_id == stack.name else "",
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


class CfnFaults:
    """CloudFormation outcomes moto cannot produce, injected into its backend (server-side).

    - :meth:`fail_create`: a resource fails on create; the stack rolls back to
      ``ROLLBACK_COMPLETE`` with a ``CREATE_FAILED`` event naming the resource and reason.
    - :meth:`fail_delete`: a resource cannot be deleted; the stack stops in
      ``DELETE_FAILED`` with a ``DELETE_FAILED`` event.
    - :meth:`slow_delete`: deletion takes ``polls`` DescribeStacks calls to finish.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self._create: dict[str, tuple[str, str, str]] = {}
        self._delete: dict[str, tuple[str, str, str]] = {}
        self._slow: dict[str, int] = {}
        self._busy: dict[str, int] = {}
        original_create = CloudFormationBackend.create_stack
        original_delete = CloudFormationBackend.delete_stack
        original_describe = CloudFormationBackend.describe_stacks
        faults = self

        def create_stack(
            backend: CloudFormationBackend, name: str, *args: Any, **kwargs: Any
        ) -> Stack:
            stack = original_create(backend, name, *args, **kwargs)
            if name in faults._create:
                logical_id, resource_type, reason = faults._create[name]
                add_event(stack, logical_id, resource_type, "CREATE_IN_PROGRESS", None)
                add_event(stack, logical_id, resource_type, "CREATE_FAILED", reason)
                add_event(
                    stack,
                    name,
                    "AWS::CloudFormation::Stack",
                    "ROLLBACK_IN_PROGRESS",
                    "resource failed",
                )
                add_event(stack, name, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None)
                stack.status = "ROLLBACK_COMPLETE"
            return stack

        def delete_stack(backend: CloudFormationBackend, name_or_id: str) -> None:
            stack = next(
                (s for s in backend.stacks.values() if name_or_id in (s.name, s.stack_id)), None
            )
            if stack is not None and stack.name in faults._delete:
                logical_id, resource_type, reason = faults._delete[stack.name]
                add_event(
                    stack,
                    stack.name,
                    "AWS::CloudFormation::Stack",
                    "DELETE_IN_PROGRESS",
                    "User Initiated",
                )
                add_event(stack, logical_id, resource_type, "DELETE_FAILED", reason)
                add_event(
                    stack,
                    stack.name,
                    "AWS::CloudFormation::Stack",
                    "DELETE_FAILED",
                    "resources failed to delete",
                )
                stack.status = "DELETE_FAILED"
                return
            if stack is not None and stack.name in faults._slow:
                stack.status = "DELETE_IN_PROGRESS"
                return
            if stack is not None and stack.status in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"):
                # What CloudFormation answers for a stack in the middle of an update.
                raise ValidationError(
                    name_or_id,
                    f"Stack:{stack.stack_id} is in {stack.status} state and can not be deleted",
                )
            original_delete(backend, name_or_id)

        def describe_stacks(backend: CloudFormationBackend, name_or_id: str) -> list[Stack]:
            for stack in list(backend.stacks.values()):
                if stack.name in faults._busy and name_or_id in (stack.name, stack.stack_id):
                    faults._busy[stack.name] -= 1
                    if faults._busy[stack.name] <= 0:
                        del faults._busy[stack.name]
                        stack.status = "UPDATE_COMPLETE"
            for stack in list(backend.stacks.values()):
                if stack.status == "DELETE_IN_PROGRESS" and stack.name in faults._slow:
                    faults._slow[stack.name] -= 1
                    if faults._slow[stack.name] <= 0:
                        del faults._slow[stack.name]
                        original_delete(backend, stack.stack_id)
            return original_describe(backend, name_or_id)

        monkeypatch.setattr(CloudFormationBackend, "create_stack", create_stack)
        monkeypatch.setattr(CloudFormationBackend, "delete_stack", delete_stack)
        monkeypatch.setattr(CloudFormationBackend, "describe_stacks", describe_stacks)

    def fail_create(
        self, stack_name: str, logical_id: str, resource_type: str, reason: str
    ) -> None:
        """Creating ``stack_name`` fails on ``logical_id`` with ``reason``."""
        self._create[stack_name] = (logical_id, resource_type, reason)

    def fail_delete(
        self, stack_name: str, logical_id: str, resource_type: str, reason: str
    ) -> None:
        """Deleting ``stack_name`` stops in DELETE_FAILED because of ``logical_id``."""
        self._delete[stack_name] = (logical_id, resource_type, reason)

    def slow_delete(self, stack_name: str, polls: int) -> None:
        """Deleting ``stack_name`` stays DELETE_IN_PROGRESS for ``polls`` DescribeStacks calls."""
        self._slow[stack_name] = polls

    def busy(self, stack_name: str, polls: int) -> None:
        """``stack_name`` is UPDATE_IN_PROGRESS (no DeleteStack) for ``polls`` describes of it."""
        moto_stack(stack_name).status = "UPDATE_IN_PROGRESS"
        self._busy[stack_name] = polls

    def finish_delete(self, stack_name: str) -> None:
        """Let a slow delete of ``stack_name`` complete on the next DescribeStacks."""
        if stack_name in self._slow:
            self._slow[stack_name] = 0


@pytest.fixture
def cfn_faults(monkeypatch: pytest.MonkeyPatch) -> CfnFaults:
    """Inject CloudFormation failures moto cannot produce (see :class:`CfnFaults`)."""
    return CfnFaults(monkeypatch)
