"""boto3 clients with bounded timeouts, so a slow dependency fails fast instead of
holding the API until API Gateway's 29 s integration timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_sqs.client import SQSClient

CLIENT_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
)


def dynamodb_client() -> DynamoDBClient:
    """A DynamoDB client for the function's region (and ``AWS_ENDPOINT_URL`` if set)."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


def sqs_client() -> SQSClient:
    """An SQS client for the function's region (and ``AWS_ENDPOINT_URL`` if set)."""
    return boto3.client("sqs", config=CLIENT_CONFIG)
