"""boto3 clients with bounded timeouts, so a slow dependency fails fast instead of
holding the API until API Gateway's 29 s integration timeout.

Client-side parameter validation is off, as botocore documents for performance: the
requests are built only by the typed adapters next to this module (checked by mypy
against the boto3 stubs and exercised by the tests against moto and the local cloud),
and DynamoDB and SQS validate every request themselves. It was 15 % of the processor's
CPU per message (a 13-value conditional ``UpdateItem``) and ~10 % of the API's per task,
and Lambda bills by duration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from handlers.domain.processing import FailureCode

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_sqs.client import SQSClient

CLIENT_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    parameter_validation=False,
)


def dynamodb_client() -> DynamoDBClient:
    """A DynamoDB client for the function's region (and ``AWS_ENDPOINT_URL`` if set)."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


def sqs_client() -> SQSClient:
    """An SQS client for the function's region (and ``AWS_ENDPOINT_URL`` if set)."""
    return boto3.client("sqs", config=CLIENT_CONFIG)


_THROTTLING: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
    }
)
_ACCESS_DENIED: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "KMSAccessDeniedException",
    }
)


def classify_aws_error(exc: BaseException) -> str:
    """A short failure code for an exception: what GET may show instead of its text (an
    AWS error message can carry ARNs and account ids)."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLING:
            return FailureCode.THROTTLED.value
        if code in _ACCESS_DENIED:
            return FailureCode.ACCESS_DENIED.value
        if status >= 500 or code in ("InternalServerError", "ServiceUnavailable"):
            return FailureCode.DEPENDENCY_UNAVAILABLE.value
        return FailureCode.DEPENDENCY_ERROR.value
    if isinstance(exc, BotoCoreError):  # timeouts, connection errors
        return FailureCode.DEPENDENCY_UNAVAILABLE.value
    return FailureCode.INTERNAL_ERROR.value
