"""Test helpers for the CloudFormation engine: hand-written assemblies, a recording
``LocalServices``, a warmed-up local endpoint, and synthesizing a CDK app script."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.clients import local_client
from localcloud.specs import AlarmSpec, EventSourceMappingSpec, FunctionSpec, RestApiSpec

REGION = "us-east-1"
ACCOUNT = "123456789012"
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens there
RECORDED_API_URL = "http://127.0.0.1:4567/{stage}/"  # what RecordingServices.add_rest_api returns


@dataclass
class RecordingServices:
    """A ``LocalServices`` that records what the engine hands it.

    ``fail_on`` names a hook ("add_event_source_mapping", ...) that raises instead.
    """

    fail_on: str | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _record(self, hook: str, spec: Any) -> None:
        if hook == self.fail_on:
            raise RuntimeError(f"{hook} refused by the test")
        self.calls.append((hook, spec))

    def add_function(self, spec: FunctionSpec) -> None:
        self._record("add_function", spec)

    def add_event_source_mapping(self, spec: EventSourceMappingSpec) -> None:
        self._record("add_event_source_mapping", spec)

    def add_rest_api(self, spec: RestApiSpec) -> str:
        self._record("add_rest_api", spec)
        return RECORDED_API_URL.format(stage=spec.stage_name)

    def add_alarm(self, spec: AlarmSpec) -> None:
        self._record("add_alarm", spec)

    def specs(self, hook: str) -> list[Any]:
        """The specs handed to one hook, in order."""
        return [spec for name, spec in self.calls if name == hook]


def write_assembly(
    directory: Path,
    stacks: Mapping[str, Mapping[str, Any] | str],
    *,
    dependencies: Mapping[str, Sequence[str]] | None = None,
    assets: Mapping[str, Path] | None = None,
    environment: str = "aws://unknown-account/unknown-region",
    parameters: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write a cloud assembly like ``cdk synth`` does, from hand-written templates.

    ``stacks`` maps stack names to templates (a ``str`` is written verbatim, e.g. broken
    JSON); ``assets`` maps asset hashes to directories or zip files, which templates
    reach as ``s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/<hash>.zip``.
    Every stack carries the stack tag ``suite=cfn-tests``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    artifacts: dict[str, Any] = {}
    asset_files: dict[str, Any] = {
        asset_hash: {
            "source": {"path": str(path), "packaging": "zip"},
            "destinations": {
                "current_account-current_region": {
                    "bucketName": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}",
                    "objectKey": f"{asset_hash}.zip",
                }
            },
        }
        for asset_hash, path in (assets or {}).items()
    }
    for name, body in stacks.items():
        template_file = f"{name}.template.json"
        text = body if isinstance(body, str) else json.dumps(body, indent=1)
        (directory / template_file).write_text(text, encoding="utf-8")
        (directory / f"{name}.assets.json").write_text(
            json.dumps({"version": "55.0.0", "files": asset_files, "dockerImages": {}}),
            encoding="utf-8",
        )
        artifacts[f"{name}.assets"] = {
            "type": "cdk:asset-manifest",
            "properties": {"file": f"{name}.assets.json"},
        }
        stack_parameters = dict((parameters or {}).get(name, {}))
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": environment,
            "properties": {
                "templateFile": template_file,
                "tags": {"suite": "cfn-tests"},
                **({"parameters": stack_parameters} if stack_parameters else {}),
            },
            "dependencies": [*(dependencies or {}).get(name, ()), f"{name}.assets"],
            "displayName": name,
        }
    manifest = {"version": "55.0.0", "artifacts": artifacts}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return directory


def template(resources: Mapping[str, Any], **sections: Any) -> dict[str, Any]:
    """A template with ``resources`` and other sections (``Outputs=...``, ``Conditions=...``)."""
    return {"Resources": dict(resources), **sections}


def client(url: str, service: str, region: str = REGION) -> Any:
    """A boto3 client for a local endpoint (botocore's default retries and timeouts)."""
    return local_client(service, url, region, config=None)


def warm_up(url: str, region: str = REGION) -> None:
    """One cheap request per service the engine uses, so every moto backend is loaded.

    moto imports a service's backend on its first request (IAM alone takes ~0.5 s): a
    deploy timing should not include that.
    """
    for service, operation in (
        ("sqs", "list_queues"),
        ("dynamodb", "list_tables"),
        ("iam", "list_roles"),
        ("logs", "describe_log_groups"),
        ("cloudwatch", "describe_alarms"),
    ):
        getattr(client(url, service, region), operation)()


@contextmanager
def local_endpoint(region: str = REGION) -> Iterator[str]:
    """The local cloud's AWS endpoint (SQS engine + moto) on 127.0.0.1, warmed up; yields its URL.

    moto's state is per process and per region: endpoints started in one process share
    DynamoDB, IAM, Logs and CloudWatch (not SQS: each endpoint has its own SQS engine).
    """
    from localcloud.endpoint import AwsEndpoint

    with AwsEndpoint(region=region) as endpoint:
        warm_up(endpoint.url, region)
        yield endpoint.url


def synth_app_script(
    script: Path, outdir: Path, *args: str, env: Mapping[str, str] | None = None
) -> Path:
    """Run ``python SCRIPT OUTDIR ARGS...`` (a CDK app) in a subprocess; returns ``outdir``.

    ``env`` is the subprocess's environment (default: this process's); CDK needs Node on
    its ``PATH``.
    """
    result = subprocess.run(
        [sys.executable, str(script), str(outdir), *args],
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script.name} failed to synthesize:\n{result.stderr[-4000:]}")
    return outdir
