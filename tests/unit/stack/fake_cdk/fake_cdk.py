"""A stand-in for the CDK CLI (``cdk deploy`` / ``cdk destroy``) backed by a moto server.

Point the harness at it with ``HARNESS_CDK="python .../fake_cdk.py"`` and at moto with
``AWS_ENDPOINT_URL``. Like the real CLI it creates/deletes the ``<prefix>-Queue|Api|Monitoring``
stacks through CloudFormation (tagged as the CDK app tags ephemeral stacks), writes the
``--outputs-file``, prints progress, and exits non-zero when a stack ends in a failed
status. Behaviour switches (environment):

- ``FAKE_CDK_LOG``: append ``{"argv": [...], "pid": n}`` (and signals received) as JSON lines;
- ``FAKE_CDK_FAIL=deploy,destroy``: fail those commands before touching CloudFormation
  (as a synth error does);
- ``FAKE_CDK_HANG=deploy,destroy``: after creating the stacks (deploy) or before deleting
  (destroy), write our pid to ``FAKE_CDK_HANG_FILE`` and wait until signalled (at most
  ``HANG_LIMIT_S``), then exit 128 + the signal.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Final

from cdk import contract

SUFFIXES: Final = ("Queue", "Api", "Monitoring")
HANG_LIMIT_S: Final = 120.0
_NS: Final = "{http://cloudformation.amazonaws.com/doc/2010-05-15/}"


class CfnError(Exception):
    """An error response from CloudFormation (``code`` as AWS names it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Cfn:
    """CloudFormation's query API over plain HTTP to the moto server.

    Not boto3: importing boto3 takes seconds on a loaded machine and the stand-in runs many
    times per test session. moto routes by the credential scope and checks no signature.
    """

    def __init__(self) -> None:
        self.endpoint = os.environ["AWS_ENDPOINT_URL"]
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

    def call(self, action: str, params: dict[str, str]) -> ET.Element:
        """POST one action; the parsed XML response, or ``CfnError``."""
        body = urllib.parse.urlencode(
            {"Action": action, "Version": "2010-05-15", **params}
        ).encode()
        request = urllib.request.Request(self.endpoint, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        request.add_header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/"
            f"{self.region}/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        )
        # The endpoint is the tests' moto server on 127.0.0.1: trusted URL, trusted XML.
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return ET.fromstring(response.read())  # noqa: S314
        except urllib.error.HTTPError as error:
            root = ET.fromstring(error.read())  # noqa: S314
            code = root.findtext(f".//{_NS}Code") or root.findtext(".//Code") or str(error.code)
            message = root.findtext(f".//{_NS}Message") or root.findtext(".//Message") or ""
            raise CfnError(code, message) from None

    def create_stack(self, name: str, template: str, tags: dict[str, str]) -> None:
        """CreateStack with tags."""
        params = {"StackName": name, "TemplateBody": template}
        for i, (key, value) in enumerate(tags.items(), start=1):
            params[f"Tags.member.{i}.Key"] = key
            params[f"Tags.member.{i}.Value"] = value
        self.call("CreateStack", params)

    def describe(self, name: str) -> tuple[str, dict[str, str]] | None:
        """(status, outputs) of a live stack, or ``None`` if it does not exist."""
        try:
            root = self.call("DescribeStacks", {"StackName": name})
        except CfnError as error:
            if error.code == "ValidationError":
                return None
            raise
        stack = root.find(f".//{_NS}Stacks/{_NS}member")
        assert stack is not None
        outputs = {
            member.findtext(f"{_NS}OutputKey", ""): member.findtext(f"{_NS}OutputValue", "")
            for member in stack.findall(f"{_NS}Outputs/{_NS}member")
        }
        status = stack.findtext(f"{_NS}StackStatus", "")
        return (status, outputs) if status != "DELETE_COMPLETE" else None

    def delete_stack(self, name: str) -> None:
        """DeleteStack."""
        self.call("DeleteStack", {"StackName": name})


def log(entry: dict[str, Any]) -> None:
    """Append one JSON line to ``FAKE_CDK_LOG`` (if set)."""
    path = os.environ.get("FAKE_CDK_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def parse(argv: list[str]) -> tuple[str, dict[str, str], dict[str, str], set[str]]:
    """(command, ``-c`` context, options with a value, flags)."""
    command = argv[0] if argv else ""
    context: dict[str, str] = {}
    options: dict[str, str] = {}
    flags: set[str] = set()
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("-c", "--context"):
            key, _, value = argv[i + 1].partition("=")
            context[key] = value
            i += 2
        elif arg in ("--outputs-file", "--require-approval", "--progress"):
            options[arg] = argv[i + 1]
            i += 2
        else:
            flags.add(arg)
            i += 1
    return command, context, options, flags


def hang(command: str) -> int:
    """Wait for SIGINT/SIGTERM like a long CloudFormation operation; exit 128 + signal."""
    received = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        got.append(signum)
        log({"signal": signal.Signals(signum).name, "command": command, "pid": os.getpid()})
        received.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    Path(os.environ["FAKE_CDK_HANG_FILE"]).write_text(str(os.getpid()), encoding="utf-8")
    print(f"fake cdk: {command} in progress (hanging until signalled)", flush=True)
    if not received.wait(HANG_LIMIT_S):
        print("fake cdk: nobody signalled me; giving up", file=sys.stderr)
        return 99
    print(f"fake cdk: {command} interrupted by {signal.Signals(got[0]).name}", flush=True)
    return 128 + got[0]


def template(prefix: str, suffix: str) -> str:
    """A small template per stack: one log group and that stack's share of the outputs."""
    queues = "https://sqs.us-east-1.amazonaws.com/123456789012"
    by_stack: dict[str, dict[str, str]] = {
        "Queue": {
            contract.TASK_QUEUE_URL: f"{queues}/{prefix}-tasks.fifo",
            contract.DEAD_LETTER_QUEUE_URL: f"{queues}/{prefix}-dlq.fifo",
            contract.TASKS_TABLE_NAME: f"{prefix}-tasks",
        },
        "Api": {
            contract.API_URL: "https://abc123.execute-api.us-east-1.amazonaws.com/prod/",
            contract.API_FUNCTION_NAME: f"{prefix}-Api-Function",
        },
        "Monitoring": {contract.DASHBOARD_NAME: f"{prefix}-dashboard"},
    }
    outputs = by_stack[suffix]
    return json.dumps(
        {
            "Resources": {
                "Logs": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {"LogGroupName": f"/aws/lambda/{prefix}-{suffix}-managed"},
                }
            },
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


def deploy(context: dict[str, str], options: dict[str, str]) -> int:
    """Create (or keep) the three stacks, tagged; write the outputs file."""
    prefix = context["stack_prefix"]
    if context.get("profile") != "ephemeral":
        print("fake cdk: expected -c profile=ephemeral", file=sys.stderr)
        return 2
    ttl = timedelta(hours=float(context.get("ttl_hours", "4")))
    default_expiry = (datetime.now(UTC) + ttl).strftime("%Y-%m-%dT%H:%M:%SZ")
    expires_at = context.get("expires_at") or default_expiry
    tags = {"project": "task-api", "profile": "ephemeral", "ephemeral": "true"}
    tags["expires-at"] = expires_at
    if "owner" in context:
        tags["owner"] = context["owner"]
    cfn = Cfn()
    written: dict[str, dict[str, str]] = {}
    code = 0
    for suffix in SUFFIXES:
        name = f"{prefix}-{suffix}"
        try:
            cfn.create_stack(name, template(prefix, suffix), tags)
        except CfnError as error:
            if error.code != "AlreadyExistsException":
                raise
            print(f"{name}: no changes", flush=True)
        status, outputs = cfn.describe(name) or ("MISSING", {})
        print(f"{name} | {status}", flush=True)
        if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            print(f"❌  {name} failed: {status}", file=sys.stderr)
            code = 1
            break
        written[name] = outputs
    if "--outputs-file" in options:
        Path(options["--outputs-file"]).write_text(json.dumps(written, indent=2), encoding="utf-8")
    if code == 0 and "deploy" in _listed("FAKE_CDK_HANG"):
        return hang("deploy")
    return code


def destroy(context: dict[str, str], flags: set[str]) -> int:
    """Delete the three stacks in dependency order; fail on DELETE_FAILED."""
    if "--force" not in flags:
        print("fake cdk: destroy without --force would prompt", file=sys.stderr)
        return 2
    prefix = context["stack_prefix"]
    cfn = Cfn()
    for suffix in ("Monitoring", "Api", "Queue"):
        name = f"{prefix}-{suffix}"
        if cfn.describe(name) is None:
            continue
        try:
            cfn.delete_stack(name)
        except CfnError as error:
            print(f"❌  {name}: destroy failed: {error}", file=sys.stderr)
            return 1
        status = (cfn.describe(name) or ("DELETE_COMPLETE", {}))[0]
        print(f"{name}: {status}", flush=True)
        if status == "DELETE_FAILED":
            print(f"❌  {name}: destroy failed", file=sys.stderr)
            return 1
    return 0


def _listed(variable: str) -> set[str]:
    return {item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()}


def main(argv: list[str]) -> int:
    """Dispatch like the CDK CLI."""
    log({"argv": argv, "pid": os.getpid()})
    command, context, options, flags = parse(argv)
    if command in _listed("FAKE_CDK_FAIL"):
        print(f"fake cdk: {command} failing as told (like a synth error)", file=sys.stderr)
        return 1
    if command == "deploy":
        return deploy(context, options)
    if command == "destroy":
        if "destroy" in _listed("FAKE_CDK_HANG"):
            return hang("destroy")
        return destroy(context, flags)
    print(f"fake cdk: unsupported command {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
