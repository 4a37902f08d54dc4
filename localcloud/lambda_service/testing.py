"""Helpers for tests and benchmarks of the local Lambda service and event source mappings."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from localcloud.specs import FunctionSpec

REGION = "us-east-1"
LAMBDA_TRUST_POLICY: Final = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
"""What lets Lambda assume a function's execution role."""


def function_role(iam: Any, name: str, *statements: Mapping[str, Any]) -> str:
    """Create an execution role named ``name`` with IAM client ``iam``: Lambda may assume
    it, and ``statements`` are its one inline policy ("Permissions"; none: no rights at
    all). Returns its ARN."""
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="Permissions",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )
    return str(role["Role"]["Arn"])


def function_spec(
    code_dir: Path,
    handler: str,
    *,
    name: str | None = None,
    prefix: str = "probe",
    region: str = REGION,
    **kwargs: Any,
) -> FunctionSpec:
    """A Python 3.12 function of ``code_dir``, named ``name`` or ``<prefix>-<8 hex>``;
    ``kwargs`` are the other :class:`FunctionSpec` fields (timeout, environment, ...)."""
    name = name or f"{prefix}-{uuid.uuid4().hex[:8]}"
    return FunctionSpec(
        logical_id=prefix.title().replace("-", ""),
        stack_name="test",
        function_name=name,
        arn=f"arn:aws:lambda:{region}:123456789012:function:{name}",
        handler=handler,
        runtime="python3.12",
        code_dir=code_dir,
        **kwargs,
    )


@dataclass(frozen=True)
class Endpoint:
    """Where boto3 clients point, and what serves it (for messages)."""

    url: str
    region: str
    kind: str  # "AwsEndpoint" (our SQS engine + moto) or "moto"


@contextlib.contextmanager
def local_endpoint(region: str = REGION) -> Iterator[Endpoint]:
    """The local AWS endpoint on 127.0.0.1, stopped on exit.

    Prefers ``localcloud.endpoint.AwsEndpoint`` (AWS-faithful SQS FIFO, e.g. its group
    lock) and falls back to plain moto in server mode when that module is not there.
    """
    try:
        module: Any = importlib.import_module("localcloud.endpoint")
    except ImportError:
        module = None
    if module is not None and hasattr(module, "AwsEndpoint"):
        endpoint = module.AwsEndpoint(port=0, throttling=False)
        endpoint.start()
        try:
            yield Endpoint(str(endpoint.url), str(endpoint.region), "AwsEndpoint")
        finally:
            endpoint.stop()
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield Endpoint(f"http://{host}:{port}", region, "moto")
    finally:
        server.stop()


def boto_client(endpoint: Endpoint, service: str) -> Any:
    """A boto3 client for ``endpoint`` with dummy credentials."""
    from localcloud.clients import client_factory

    return client_factory(endpoint.url, endpoint.region)(service)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def child_pids() -> set[int]:
    """PIDs of every live (not zombie) descendant of this process, read from ``/proc``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat_fields(int(entry))
        if stat is not None and stat[0] != "Z":
            parents[int(entry)] = int(stat[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: state, ppid, ...; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
