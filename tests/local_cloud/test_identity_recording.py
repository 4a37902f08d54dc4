"""The endpoint knows which function called: per-function credentials, and every call made
with them recorded as (role, IAM action, resource ARN), what IAM enforcement evaluates
(tests/local_cloud/test_iam_enforcement.py)."""

from __future__ import annotations

from typing import Any

from localcloud.clients import local_client
from localcloud.endpoint import AwsEndpoint
from localcloud.identity import Call, Principal
from localcloud.lambda_service.testing import function_role

ROLE_NAME = "recording-api-role"
ROLE = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"


def _client(endpoint: AwsEndpoint, service: str, credentials: dict[str, str]) -> Any:
    return local_client(
        service, endpoint.url, endpoint.region, config=None, credentials=credentials
    )


def test_calls_signed_with_a_functions_key_are_recorded_with_its_role(
    aws_endpoint: AwsEndpoint,
) -> None:
    anonymous = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }
    setup_sqs = _client(aws_endpoint, "sqs", anonymous)
    setup_dynamodb = _client(aws_endpoint, "dynamodb", anonymous)
    queue = setup_sqs.create_queue(QueueName="recorded-queue")["QueueUrl"]
    setup_dynamodb.create_table(
        TableName="recorded-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    iam = _client(aws_endpoint, "iam", anonymous)
    function_role(
        iam,
        ROLE_NAME,
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"},
        {"Effect": "Allow", "Action": "dynamodb:*Item", "Resource": "*"},
    )
    principal = Principal("api-fn", ROLE)
    credentials = aws_endpoint.identities.credentials_for(principal)
    assert credentials["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert credentials == aws_endpoint.identities.credentials_for(principal), "not stable"
    sqs = _client(aws_endpoint, "sqs", credentials)
    dynamodb = _client(aws_endpoint, "dynamodb", credentials)

    sqs.send_message(QueueUrl=queue, MessageBody="x")
    sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "y"}])
    dynamodb.put_item(TableName="recorded-table", Item={"id": {"S": "1"}})
    dynamodb.get_item(TableName="recorded-table", Key={"id": {"S": "1"}})

    region, account = aws_endpoint.region, aws_endpoint.access.account_id
    assert aws_endpoint.access.calls(ROLE) == [
        Call(ROLE, "dynamodb:GetItem", f"arn:aws:dynamodb:{region}:{account}:table/recorded-table"),
        Call(ROLE, "dynamodb:PutItem", f"arn:aws:dynamodb:{region}:{account}:table/recorded-table"),
        # A batch is authorized as its single-message action.
        Call(ROLE, "sqs:SendMessage", f"arn:aws:sqs:{region}:{account}:recorded-queue"),
    ]
    # Calls with other credentials (the harness's, a test's) are nobody's.
    assert {c.role_arn for c in aws_endpoint.access.calls() if "recorded-" in c.resource} == {ROLE}
