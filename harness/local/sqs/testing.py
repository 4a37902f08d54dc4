"""Helpers for tests that drive SQS over the wire (ours or moto's) with boto3."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
# Tests see every error as it happens: no client-side retries (a throttle must surface).
NO_RETRIES = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    read_timeout=60,
    max_pool_connections=64,
)


def client(service: str, endpoint_url: str, config: Config = NO_RETRIES) -> Any:
    """A boto3 client for a local endpoint (any credentials will do)."""
    session: Any = boto3.session.Session()
    return session.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - local endpoint only
        config=config,
    )


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    """Run a boto3 call that must fail and return its ``Error`` dict (Code, Message, ...)."""
    try:
        call()
    except ClientError as error:
        return dict(error.response["Error"])
    raise AssertionError("the call succeeded; an error was expected")


@dataclass
class SqsBackend:
    """One SQS implementation under test and a boto3 client for it."""

    kind: str  # "engine" or "moto"
    url: str
    sqs: Any

    def queue(self, *, fifo: bool = True, name: str | None = None, **attributes: Any) -> str:
        """Create a uniquely named queue and return its URL."""
        base = name or f"q-{uuid.uuid4().hex[:12]}"
        attrs = {key: str(value) for key, value in attributes.items()}
        if fifo:
            base += ".fifo"
            attrs.setdefault("FifoQueue", "true")
            attrs.setdefault("ContentBasedDeduplication", "true")
        return str(self.sqs.create_queue(QueueName=base, Attributes=attrs)["QueueUrl"])

    def arn(self, queue_url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])
