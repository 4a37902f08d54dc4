"""IAM enforced on the functions' calls: a role that lacks an action gets AWS's
AccessDenied in the protocol's shape; anyone else's credentials are never checked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from harness.waiting import wait_until
from localcloud.clients import local_client
from localcloud.endpoint import AwsEndpoint
from localcloud.iam_policy import PolicySet, UnsupportedPolicyError
from localcloud.identity import Call, Principal
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.esm import EventSourceMappingService, InvalidParameterValueError
from localcloud.lambda_service.testing import function_role
from localcloud.specs import EventSourceMappingSpec, FunctionSpec, InvokeResult
from localcloud.sqs.protocol import InProcessSqsClient
from localcloud.sqs.testing import query_client

HARNESS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def _client(endpoint: AwsEndpoint, service: str, credentials: dict[str, str]) -> Any:
    return local_client(
        service, endpoint.url, endpoint.region, config=None, credentials=credentials
    )


class Rig:
    """A table, a queue and a function whose role allows only what a test writes."""

    def __init__(self, endpoint: AwsEndpoint) -> None:
        self.endpoint = endpoint
        suffix = uuid.uuid4().hex[:8]
        self.iam = _client(endpoint, "iam", HARNESS)
        self.harness_dynamodb = _client(endpoint, "dynamodb", HARNESS)
        self.harness_sqs = _client(endpoint, "sqs", HARNESS)
        self.table = f"enforced-{suffix}"
        self.harness_dynamodb.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.queue = self.harness_sqs.create_queue(QueueName=f"enforced-{suffix}")["QueueUrl"]
        account, region = endpoint.access.account_id, endpoint.region
        self.table_arn = f"arn:aws:dynamodb:{region}:{account}:table/{self.table}"
        self.queue_arn = f"arn:aws:sqs:{region}:{account}:enforced-{suffix}"
        self.role_name = f"fn-role-{suffix}"
        self.role_arn = function_role(self.iam, self.role_name)
        self.function = f"fn-{suffix}"
        credentials = endpoint.identities.credentials_for(Principal(self.function, self.role_arn))
        self.dynamodb = _client(endpoint, "dynamodb", credentials)
        self.sqs = _client(endpoint, "sqs", credentials)

    def allow(self, *statements: dict[str, Any], name: str = "Permissions") -> None:
        self.iam.put_role_policy(
            RoleName=self.role_name,
            PolicyName=name,
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )

    def caller(self) -> str:
        account = self.endpoint.access.account_id
        return f"arn:aws:sts::{account}:assumed-role/{self.role_name}/{self.function}"


@pytest.fixture
def rig(aws_endpoint: AwsEndpoint) -> Rig:
    return Rig(aws_endpoint)


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response: Any = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_a_role_without_the_action_gets_dynamodbs_access_denied(rig: Rig) -> None:
    rig.allow({"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": rig.table_arn})
    rig.dynamodb.get_item(TableName=rig.table, Key={"id": {"S": "1"}})  # allowed
    before = rig.endpoint.access.refusal_count

    with pytest.raises(ClientError) as excinfo:
        rig.dynamodb.put_item(TableName=rig.table, Item={"id": {"S": "1"}})

    assert _error(excinfo) == (
        400,
        "AccessDeniedException",
        f"User: {rig.caller()} is not authorized to perform: dynamodb:PutItem on resource: "
        f"{rig.table_arn} because no identity-based policy allows the dynamodb:PutItem action",
    )
    assert "Item" not in rig.harness_dynamodb.get_item(TableName=rig.table, Key={"id": {"S": "1"}})
    # What a failed scenario's report lists (features/conftest.py).
    assert rig.endpoint.access.refusals_since(before) == [
        Call(rig.role_arn, "dynamodb:PutItem", rig.table_arn)
    ]


def test_sqs_answers_access_denied_with_its_query_code_and_the_action_in_lower_case(
    rig: Rig,
) -> None:
    rig.allow({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": rig.queue_arn})

    with pytest.raises(ClientError) as excinfo:
        rig.sqs.send_message_batch(QueueUrl=rig.queue, Entries=[{"Id": "1", "MessageBody": "x"}])

    # Recorded on AWS: 403, x-amzn-query-error AccessDenied;Sender (the code botocore
    # reports), the batch authorized as its single-message action, named in lower case.
    assert _error(excinfo) == (
        403,
        "AccessDenied",
        f"User: {rig.caller()} is not authorized to perform: sqs:sendmessage on resource: "
        f"{rig.queue_arn} because no identity-based policy allows the sqs:sendmessage action",
    )
    depth = rig.harness_sqs.get_queue_attributes(
        QueueUrl=rig.queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "0", "a refused send must not enqueue"


def test_the_harness_identity_is_never_checked(rig: Rig) -> None:
    # The function's role allows nothing at all; the harness's own keys are not a role's.
    rig.harness_dynamodb.put_item(TableName=rig.table, Item={"id": {"S": "h"}})
    rig.harness_sqs.send_message(QueueUrl=rig.queue, MessageBody="from the harness")
    assert rig.endpoint.access.calls(rig.role_arn) == []
    with pytest.raises(ClientError) as excinfo:
        rig.dynamodb.get_item(TableName=rig.table, Key={"id": {"S": "h"}})
    assert _error(excinfo)[1] == "AccessDeniedException"


def test_an_explicit_deny_wins_and_is_named(rig: Rig) -> None:
    rig.allow({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})
    rig.allow(
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": rig.table_arn},
        name="NoDeletes",
    )
    rig.dynamodb.put_item(TableName=rig.table, Item={"id": {"S": "1"}})

    with pytest.raises(ClientError) as excinfo:
        rig.dynamodb.delete_item(TableName=rig.table, Key={"id": {"S": "1"}})

    assert _error(excinfo)[2].endswith(
        f"dynamodb:DeleteItem on resource: {rig.table_arn} "
        "with an explicit deny in an identity-based policy"
    )


def test_a_changed_policy_applies_to_the_next_call(rig: Rig) -> None:
    rig.allow({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": rig.queue_arn})
    rig.sqs.send_message(QueueUrl=rig.queue, MessageBody="1")
    rig.allow({"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": rig.queue_arn})
    with pytest.raises(ClientError):
        rig.sqs.send_message(QueueUrl=rig.queue, MessageBody="2")


def test_attached_managed_policies_count(rig: Rig) -> None:
    policy_arn = rig.iam.create_policy(
        PolicyName=f"managed-{rig.function}",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": rig.table_arn}
                ],
            }
        ),
    )["Policy"]["Arn"]
    with pytest.raises(ClientError):
        rig.dynamodb.put_item(TableName=rig.table, Item={"id": {"S": "m"}})
    rig.iam.attach_role_policy(RoleName=rig.role_name, PolicyArn=policy_arn)
    rig.dynamodb.put_item(TableName=rig.table, Item={"id": {"S": "m"}})


def test_the_sqs_query_protocol_is_refused_in_its_own_shape(rig: Rig) -> None:
    credentials = rig.endpoint.identities.credentials_for(Principal(rig.function, rig.role_arn))
    sqs = query_client(rig.endpoint.url, credentials=credentials)

    with pytest.raises(ClientError) as excinfo:
        sqs.send_message(QueueUrl=rig.queue, MessageBody="x")

    status, code, message = _error(excinfo)
    assert (status, code) == (403, "AccessDenied")
    assert message.endswith("because no identity-based policy allows the sqs:sendmessage action")
    response: Any = excinfo.value.response
    assert response["Error"]["Type"] == "Sender"


# --- what Lambda does with the role: the event source mapping ------------------------------


class _OneFunction:
    """The calls an event source mapping makes of the Lambda service, for one function."""

    principal_of = staticmethod(LambdaService.principal_of)

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.invocations = 0

    def function_spec(self, name: str) -> FunctionSpec:
        if name != self.spec.function_name:
            raise KeyError(name)
        return self.spec

    def invoke(self, name: str, payload: bytes) -> InvokeResult:
        self.invocations += 1
        return InvokeResult(status_code=200, payload=b"null")


def _consume(rig: Rig, *actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": [f"sqs:{a}" for a in actions], "Resource": rig.queue_arn}


def test_a_mapping_is_refused_unless_its_role_may_consume_the_queue(
    rig: Rig, tmp_path: Path
) -> None:
    function = _OneFunction(
        FunctionSpec(
            logical_id="Fn",
            stack_name="s",
            function_name=rig.function,
            arn=f"arn:aws:lambda:{rig.endpoint.region}:123456789012:function:{rig.function}",
            handler="h.handler",
            runtime="python3.12",
            code_dir=tmp_path,
            role_arn=rig.role_arn,
        )
    )
    mappings = EventSourceMappingService(
        cast("Any", function),
        rig.endpoint.url,
        rig.endpoint.region,
        sqs_client=InProcessSqsClient(rig.endpoint.sqs),
        access=rig.endpoint.access,
        unbounded_pollers=1,
        error_backoff_s=0.05,
    )
    spec = EventSourceMappingSpec(
        uuid=str(uuid.uuid4()),
        function_name=rig.function,
        event_source_arn=rig.queue_arn,
        queue_url=rig.queue,
    )
    try:
        rig.allow(_consume(rig, "ReceiveMessage", "GetQueueAttributes"))
        with pytest.raises(InvalidParameterValueError) as refused:
            mappings.add(spec)
        # AWS's CreateEventSourceMapping answer (InvalidParameterValueException).
        assert str(refused.value) == (
            "The provided execution role does not have permissions to call DeleteMessage on SQS"
        )

        rig.allow(_consume(rig, "ReceiveMessage", "DeleteMessage", "GetQueueAttributes"))
        mappings.add(spec)
        # The role then loses ReceiveMessage: once its poller has been refused, every
        # receive is; it counts them, goes on polling, and the message stays queued.
        rig.allow(_consume(rig, "DeleteMessage", "GetQueueAttributes"))
        wait_until(
            lambda: mappings.stats()[spec.uuid].receive_errors >= 1,
            timeout=10,
            description="the mapping's first refused receive",
        )
        rig.harness_sqs.send_message(QueueUrl=rig.queue, MessageBody="waits")
        refused_before = mappings.stats()[spec.uuid].receive_errors
        errors = wait_until(
            lambda: (s := mappings.stats()[spec.uuid]).receive_errors >= refused_before + 3 and s,
            timeout=10,
            description="three more refused receives counted by the mapping",
        )
        assert "is not authorized to perform: sqs:ReceiveMessage" in (errors.last_error or "")
        assert function.invocations == 0
        assert rig.harness_sqs.receive_message(QueueUrl=rig.queue).get("Messages"), "lost"
        assert rig.endpoint.access.denied(rig.role_arn)[0].action == "sqs:ReceiveMessage"
    finally:
        mappings.close()


# --- the evaluator ------------------------------------------------------------------------


def _policy(*statements: dict[str, Any]) -> PolicySet:
    return PolicySet([{"Version": "2012-10-17", "Statement": list(statements)}])


def test_actions_match_without_case_and_resources_exactly() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "DynamoDB:getitem",
            "Resource": "arn:aws:dynamodb:r:1:table/a.b",
        }
    )
    assert policy.decide("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/a.b").allowed
    # "." is not a wildcard (moto's matcher alone would take it as one); case counts in ARNs.
    assert not policy.decide("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/aXb").allowed
    assert not policy.decide("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/A.b").allowed


def test_wildcards_star_and_question_mark() -> None:
    policy = _policy({"Effect": "Allow", "Action": "sqs:Send*", "Resource": "arn:aws:sqs:r:1:q?"})
    assert policy.decide("sqs:SendMessage", "arn:aws:sqs:r:1:q1").allowed
    assert not policy.decide("sqs:SendMessage", "arn:aws:sqs:r:1:q12").allowed
    assert not policy.decide("sqs:ReceiveMessage", "arn:aws:sqs:r:1:q1").allowed


@pytest.mark.parametrize(
    "extra",
    [
        {"Condition": {"StringEquals": {"aws:PrincipalTag/team": "x"}}},
        {"NotResource": "arn:aws:sqs:r:1:other"},
        {"Resource": None},
    ],
)
def test_what_moto_cannot_evaluate_faithfully_is_refused_by_name(extra: dict[str, Any]) -> None:
    statement = {"Sid": "Tricky", "Effect": "Allow", "Action": "sqs:*", "Resource": "*", **extra}
    if "NotResource" in extra or extra.get("Resource", "") is None:
        del statement["Resource"]
    with pytest.raises(UnsupportedPolicyError, match="Tricky"):
        _policy(statement)


def test_other_services_are_checked_by_their_iam_names(rig: Rig) -> None:
    credentials = rig.endpoint.identities.credentials_for(Principal(rig.function, rig.role_arn))
    # Allowed whatever the policies say, as on AWS.
    sts = _client(rig.endpoint, "sts", credentials)
    assert sts.get_caller_identity()["Account"]
    # CloudWatch signs as "monitoring"; IAM calls it "cloudwatch".
    cloudwatch = _client(rig.endpoint, "cloudwatch", credentials)
    datum = [{"MetricName": "Probe", "Value": 1.0}]
    with pytest.raises(ClientError) as excinfo:
        cloudwatch.put_metric_data(Namespace="IamProbe", MetricData=datum)
    assert "cloudwatch:PutMetricData on resource: *" in _error(excinfo)[2]
    rig.allow({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"})
    cloudwatch.put_metric_data(Namespace="IamProbe", MetricData=datum)
