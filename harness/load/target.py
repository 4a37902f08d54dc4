"""What a load run talks to: a view of the harness's :class:`harness.target.Target`.

The stack is described only by the outputs JSON ``{StackName: {OutputKey: value}}`` (see
``cdk/contract.py``), read by :func:`harness.target.read_outputs` like every other target.
Each scenario needs only some of the keys; :func:`load_target` checks the ones it needs so
a partial outputs file (a stand-in server in the tests, an SQS endpoint alone) works for
the scenarios it can serve. This view adds what the load runner and locustfiles read:
optional outputs as attributes and the clients a load run uses.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cdk import contract
from harness.api_auth import ApiSigner, CredentialsUnavailable
from harness.target import Target as StackTarget
from harness.target import TargetError, TargetName, read_outputs

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

    stack: StackTarget

    @property
    def outputs(self) -> dict[str, str]:
        """Every output of the stack, flattened."""
        return self.stack.outputs

    def _optional(self, key: str) -> str | None:
        return self.stack.outputs.get(key) or None

    @property
    def api_url(self) -> str | None:
        """The API's base URL without its trailing slash."""
        return (self.stack.outputs.get(contract.API_URL) or "").rstrip("/") or None

    def api_signer(self) -> ApiSigner | None:
        """The signer of the run's API requests (the API uses IAM authorization): the
        stack's API credentials, or boto3's on AWS; None, with a warning, when there are
        none (a stand-in API without credentials): its requests then go unsigned."""
        if not self.api_url:
            return None
        try:
            return ApiSigner.for_target(self.stack)
        except CredentialsUnavailable as exc:
            print(f"[load] API requests go unsigned: {exc}", file=sys.stderr)
            return None

    @property
    def task_queue_url(self) -> str | None:
        return self._optional(contract.TASK_QUEUE_URL)

    @property
    def dead_letter_queue_url(self) -> str | None:
        return self._optional(contract.DEAD_LETTER_QUEUE_URL)

    @property
    def tasks_table_name(self) -> str | None:
        return self._optional(contract.TASKS_TABLE_NAME)

    @property
    def endpoint_url(self) -> str | None:
        """Set for the local stack; AWS uses boto3's default chain."""
        return self._optional(contract.AWS_ENDPOINT_URL)

    @property
    def region(self) -> str | None:
        return self._optional(contract.REGION)

    @property
    def api_function_name(self) -> str | None:
        return self._optional(contract.API_FUNCTION_NAME)

    @property
    def processor_function_name(self) -> str | None:
        return self._optional(contract.PROCESSOR_FUNCTION_NAME)

    def boto3_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client``: the local endpoint and region when given."""
        return self.stack.client_kwargs()

    def sqs(self, *, retries: bool = True) -> SQSClient:
        """An SQS client; ``retries=False`` makes throttling visible instead of retried."""
        from botocore.config import Config

        config = Config(
            # ``total_max_attempts`` counts the first call. Client-config ``max_attempts``
            # counts retries only: 1 there meant one retry after a back-off of up to 1 s,
            # which hid throttles and stalled the sqs_fifo_limits users below their rate.
            retries={"total_max_attempts": 4 if retries else 1, "mode": "standard"},
            max_pool_connections=100,  # one client is shared by all users of a process
        )
        return cast("SQSClient", self.stack.new_client("sqs", config))

    def cloudwatch(self) -> CloudWatchClient:
        """A CloudWatch client (the metrics a report reads after the run)."""
        return cast("CloudWatchClient", self.stack.new_client("cloudwatch"))

    def dynamodb(self) -> DynamoDBServiceResource:
        """A DynamoDB resource (items come back as plain Python values)."""
        return cast("DynamoDBServiceResource", self.stack.resource("dynamodb"))


def load_target(path: Path, scenario: str | None = None) -> Target:
    """Read an outputs file; with ``scenario``, fail clearly if an output it needs is missing.

    Errors are ``ValueError`` (``FileNotFoundError`` for a missing file), which the load
    command reports as bad input.
    """
    if not path.exists():
        raise FileNotFoundError(f"stack outputs file not found: {path}")
    try:
        outputs = read_outputs(path)
    except TargetError as error:
        raise ValueError(str(error)) from None
    needed = NEEDED_OUTPUTS.get(scenario, ()) if scenario is not None else ()
    missing = [key for key in needed if not outputs.get(key)]
    if missing:
        raise ValueError(f"{path}: scenario {scenario} needs stack output(s) {', '.join(missing)}")
    name: TargetName = "local" if outputs.get(contract.AWS_ENDPOINT_URL) else "aws"
    return Target(StackTarget(name=name, outputs=outputs, outputs_file=path))
