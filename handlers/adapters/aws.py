"""boto3 clients with bounded timeouts, so a slow dependency fails fast instead of
holding a function until its own timeout.

The API's clients make no retries and give each call at most 0.5 s to connect and 1 s
between bytes: a request makes at most six AWS calls on its longest path (idempotency
record, store, reopen, send, confirm or cancel, idempotency result), so its whole SDK
budget (9 s) fits inside the function's 12 s timeout and the function always lives to give
the answer its state machine chose (``tests/unit/handlers/handler_tests/
test_api_time_budget.py`` computes this from the clients' own configuration). A retry
belongs to the client, told so by 503 + ``Retry-After``. The processor's clients keep the
SDK's standard retries: its attempt is retried by the queue anyway, and a slow call that
outlives the invocation is an interrupted attempt, which the attempt budget counts.

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

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_sqs.client import SQSClient

TRACED_LIBRARIES: Final = ("botocore",)
"""What the X-Ray tracer patches: the functions call out only through botocore (boto3's
clients). Powertools' default patches every library the X-Ray SDK knows, importing each
one found (requests, sqlite3, ...) at every cold start for calls these functions never make."""

PROCESSOR_CLIENT_CONFIG: Final = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    parameter_validation=False,
)
API_CLIENT_CONFIG: Final = Config(
    connect_timeout=0.5,
    read_timeout=1.0,
    retries={"mode": "standard", "total_max_attempts": 1},
    parameter_validation=False,
)


def dynamodb_client(config: Config = PROCESSOR_CLIENT_CONFIG) -> DynamoDBClient:
    """A DynamoDB client for the function's region (and ``AWS_ENDPOINT_URL`` if set)."""
    return boto3.client("dynamodb", config=config)


def sqs_client(config: Config = PROCESSOR_CLIENT_CONFIG) -> SQSClient:
    """An SQS client for the function's region (and ``AWS_ENDPOINT_URL`` if set)."""
    return boto3.client("sqs", config=config)
