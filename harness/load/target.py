"""What a load run talks to: the stack outputs file read into one object, and boto3 clients.

A target is described only by the outputs JSON ``{StackName: {OutputKey: value}}`` (see
``cdk/contract.py``). Each scenario needs only some of the keys; :func:`load_target`
checks the ones it needs so a partial outputs file (a stand-in server in the tests, an
SQS endpoint alone) works for the scenarios it can serve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdk import contract

if TYPE_CHECKING:
    from types_boto3_cloudwatch.client import CloudWatchClient
    from types_boto3_dynamodb.service_resource import DynamoDBServiceResource
    from types_boto3_sqs.client import SQSClient

# What each scenario cannot run without.
NEEDED_OUTPUTS: dict[str, tuple[str, ...]] = {
    "api_ingest": (contract.API_URL,),
    "end_to_end": (contract.API_URL,),
    "sqs_fifo_limits": (contract.TASK_QUEUE_URL,),
}


@dataclass(frozen=True)
class Target:
    """The stack outputs a load run uses (``None`` where the outputs file has no such key)."""

    outputs: dict[str, str]
    api_url: str | None
    task_queue_url: str | None
    dead_letter_queue_url: str | None
    tasks_table_name: str | None
    endpoint_url: str | None  # set for the local stack; AWS uses boto3's default chain
    region: str | None
    api_function_name: str | None = None
    processor_function_name: str | None = None

    def boto3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client``: the local endpoint and region when given."""
        kwargs: dict[str, Any] = {}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
            # The local endpoint accepts any credentials; do not make a newcomer configure some.
            kwargs.setdefault("aws_access_key_id", "testing")
            kwargs.setdefault("aws_secret_access_key", "testing")
        if self.region:
            kwargs["region_name"] = self.region
        return kwargs

    def sqs(self, *, retries: bool = True) -> SQSClient:
        """An SQS client; ``retries=False`` makes throttling visible instead of retried."""
        import boto3
        from botocore.config import Config

        config = Config(
            # ``total_max_attempts`` counts the first call. Client-config ``max_attempts``
            # counts retries only: 1 there meant one retry after a back-off of up to 1 s,
            # which hid throttles and stalled the sqs_fifo_limits users below their rate.
            retries={"total_max_attempts": 4 if retries else 1, "mode": "standard"},
            max_pool_connections=100,  # one client is shared by all users of a process
        )
        return boto3.client("sqs", config=config, **self.boto3_kwargs())

    def cloudwatch(self) -> CloudWatchClient:
        """A CloudWatch client (the metrics a report reads after the run)."""
        import boto3

        return boto3.client("cloudwatch", **self.boto3_kwargs())

    def dynamodb(self) -> DynamoDBServiceResource:
        """A DynamoDB resource (items come back as plain Python values)."""
        import boto3

        return boto3.resource("dynamodb", **self.boto3_kwargs())


def read_outputs(path: Path) -> dict[str, str]:
    """The flattened outputs of an outputs file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"stack outputs file not found: {path}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(f"{path}: expected {{StackName: {{OutputKey: value}}}}")
    return contract.flatten(raw)


def load_target(path: Path, scenario: str | None = None) -> Target:
    """Read an outputs file; with ``scenario``, fail clearly if an output it needs is missing."""
    outputs = read_outputs(path)
    if scenario is not None:
        missing = [key for key in NEEDED_OUTPUTS.get(scenario, ()) if not outputs.get(key)]
        if missing:
            raise ValueError(
                f"{path}: scenario {scenario} needs stack output(s) {', '.join(missing)}"
            )
    return Target(
        outputs=outputs,
        api_url=(outputs.get(contract.API_URL) or "").rstrip("/") or None,
        task_queue_url=outputs.get(contract.TASK_QUEUE_URL) or None,
        dead_letter_queue_url=outputs.get(contract.DEAD_LETTER_QUEUE_URL) or None,
        tasks_table_name=outputs.get(contract.TASKS_TABLE_NAME) or None,
        endpoint_url=outputs.get(contract.AWS_ENDPOINT_URL) or None,
        region=outputs.get(contract.REGION) or None,
        api_function_name=outputs.get(contract.API_FUNCTION_NAME) or None,
        processor_function_name=outputs.get(contract.PROCESSOR_FUNCTION_NAME) or None,
    )
