"""The synthesized templates hold every value of the spec, per profile.

Expected values are written out here on purpose (not read from ``cdk.config``): a change
to a spec value must change a test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk import contract
from tests.infra.support import PREFIXES, Synthesized

DAY = 24 * 60 * 60

EXPECTED: dict[str, dict[str, Any]] = {
    "production": {
        "visibility_timeout": 300,
        "retention": 4 * DAY,
        "dlq_retention": 14 * DAY,
        "attempt_budget": 3,
        "max_receive_count": 31,
        "processor_timeout": 60,
        "processor_memory": 512,
        "reserved_concurrency": 10,
        "batch_size": 10,
        "api_timeout": 12,
        "pending_window": 30,
        "api_memory": 256,
        "log_retention_days": 7,
        "pitr": True,
        "stage": "prod",
        "rate_limit": 100,
        "burst_limit": 200,
        "error_alarm_period": 300,
        "dlq_alarm_period": 60,
        "removal": "Retain",
    },
    "ephemeral": {
        "visibility_timeout": 4,
        "retention": 4 * DAY,
        "dlq_retention": 14 * DAY,
        "attempt_budget": 3,
        "max_receive_count": 31,
        "processor_timeout": 3,
        "processor_memory": 512,
        "reserved_concurrency": 10,
        "batch_size": 10,
        "api_timeout": 12,
        "pending_window": 20,
        "api_memory": 256,
        "log_retention_days": 1,
        "pitr": False,
        "stage": "prod",
        "rate_limit": 100,
        "burst_limit": 200,
        "error_alarm_period": 300,
        "dlq_alarm_period": 60,
        "removal": "Delete",
    },
}

# Every resource type the templates may contain: the local cloud must support each one.
RESOURCE_TYPES = {
    "Queue": {
        "AWS::SQS::Queue",
        "AWS::SQS::QueuePolicy",
        "AWS::DynamoDB::Table",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
    },
    "Api": {
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::GatewayResponse",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Stage",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
    },
    "Monitoring": {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"},
}

OUTPUT_OWNERS = {
    "Queue": {
        contract.TASK_QUEUE_URL,
        contract.TASK_QUEUE_ARN,
        contract.DEAD_LETTER_QUEUE_URL,
        contract.TASKS_TABLE_NAME,
        contract.IDEMPOTENCY_TABLE_NAME,
        contract.PROCESSOR_FUNCTION_NAME,
        contract.PROFILE,
    },
    "Api": {contract.API_URL, contract.API_ID, contract.API_FUNCTION_NAME},
    "Monitoring": {
        contract.API_ERRORS_ALARM_NAME,
        contract.PROCESSOR_ERRORS_ALARM_NAME,
        contract.DLQ_ALARM_NAME,
        contract.DASHBOARD_NAME,
    },
}


def _ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def _arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _queues(synth: Synthesized) -> tuple[str, str]:
    """Logical ids of (task queue, dead-letter queue)."""
    queues = synth.resources("Queue", "AWS::SQS::Queue")
    task = [lid for lid, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    dlq = [lid for lid in queues if lid not in task]
    assert len(task) == 1, sorted(queues)
    assert len(dlq) == 1, sorted(queues)
    return task[0], dlq[0]


def _table(synth: Synthesized, key: str) -> str:
    tables = synth.resources("Queue", "AWS::DynamoDB::Table")
    found = [
        lid
        for lid, t in tables.items()
        if t["Properties"]["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    ]
    assert len(found) == 1, f"tables keyed on {key}: {found}"
    return found[0]


def _function(synth: Synthesized, suffix: str) -> tuple[str, dict[str, Any]]:
    return synth.only(suffix, "AWS::Lambda::Function")


# --- stacks and resource types -------------------------------------------------------------


def test_stack_names_follow_the_prefix(synth: Synthesized) -> None:
    prefix = PREFIXES[synth.profile]
    assert synth.stack_names == {
        "Queue": f"{prefix}-Queue",
        "Api": f"{prefix}-Api",
        "Monitoring": f"{prefix}-Monitoring",
    }
    artifacts = synth.manifest["artifacts"]
    for name in synth.stack_names.values():
        assert artifacts[name]["type"] == "aws:cloudformation:stack"
        assert artifacts[name]["properties"].get("stackName", name) == name
    # Deploy order comes from the cross-stack references.
    assert f"{prefix}-Queue" in artifacts[f"{prefix}-Api"]["dependencies"]
    monitoring_deps = artifacts[f"{prefix}-Monitoring"]["dependencies"]
    assert {f"{prefix}-Queue", f"{prefix}-Api"} <= set(monitoring_deps)


def test_resource_types_are_exactly_the_supported_set(synth: Synthesized) -> None:
    for suffix, template in synth.all_templates():
        types = {resource["Type"] for resource in template["Resources"].values()}
        assert types == RESOURCE_TYPES[suffix], f"{suffix}: {sorted(types)}"
        assert not any(t.startswith("Custom::") for t in types)
        assert "AWS::CloudFormation::CustomResource" not in types
        # No bootstrap-version parameter or rule, no CDK metadata resource or condition.
        assert "Parameters" not in template
        assert "Rules" not in template
        assert "Conditions" not in template


# --- queues --------------------------------------------------------------------------------


def test_task_queue_is_fifo_with_spec_timings_and_redrive(synth: Synthesized) -> None:
    expected = EXPECTED[synth.profile]
    task, dlq = _queues(synth)
    queues = synth.resources("Queue", "AWS::SQS::Queue")
    prefix = PREFIXES[synth.profile]
    assert {k: v for k, v in queues[task]["Properties"].items() if k != "Tags"} == {
        "QueueName": f"{prefix}-tasks.fifo",
        "FifoQueue": True,
        "ContentBasedDeduplication": True,
        "VisibilityTimeout": expected["visibility_timeout"],
        "MessageRetentionPeriod": expected["retention"],
        "RedrivePolicy": {
            "deadLetterTargetArn": _arn(dlq),
            "maxReceiveCount": expected["max_receive_count"],
        },
        "SqsManagedSseEnabled": True,
    }
    assert {k: v for k, v in queues[dlq]["Properties"].items() if k != "Tags"} == {
        "QueueName": f"{prefix}-tasks-dlq.fifo",
        "FifoQueue": True,
        "ContentBasedDeduplication": True,
        "MessageRetentionPeriod": expected["dlq_retention"],
        "SqsManagedSseEnabled": True,
    }


def test_queues_deny_requests_without_tls(synth: Synthesized) -> None:
    task, dlq = _queues(synth)
    policies = synth.resources("Queue", "AWS::SQS::QueuePolicy")
    covered = set()
    for policy in policies.values():
        (queue_ref,) = policy["Properties"]["Queues"]
        covered.add(queue_ref["Ref"])
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Action"] == "sqs:*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert statement["Principal"] == {"AWS": "*"}
    assert covered == {task, dlq}


# --- tables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name", "ttl"),
    # Tasks never confirmed queued carry purge_at (docs/decisions/task-lifecycle.md).
    [("task_id", "tasks", "purge_at"), ("id", "idempotency", "expiration")],
)
def test_tables(synth: Synthesized, key: str, name: str, ttl: str | None) -> None:
    logical_id = _table(synth, key)
    table = synth.resources("Queue", "AWS::DynamoDB::Table")[logical_id]
    props = {k: v for k, v in table["Properties"].items() if k != "Tags"}
    expected: dict[str, Any] = {
        "TableName": f"{PREFIXES[synth.profile]}-{name}",
        "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
        "SSESpecification": {"SSEEnabled": True},
        "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": EXPECTED[synth.profile]["pitr"]
        },
    }
    if ttl:
        expected["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    assert props == expected


# --- functions -----------------------------------------------------------------------------


def test_processor_function(synth: Synthesized) -> None:
    expected = EXPECTED[synth.profile]
    _logical_id, function = _function(synth, "Queue")
    Template.from_json(synth.template("Queue")).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": f"{PREFIXES[synth.profile]}-processor",
            "Handler": "handlers.processor.handler",
            "Runtime": "python3.12",
            "Architectures": ["x86_64"],
            "MemorySize": expected["processor_memory"],
            "Timeout": expected["processor_timeout"],
            "ReservedConcurrentExecutions": expected["reserved_concurrency"],
            "TracingConfig": {"Mode": "Active"},
        },
    )
    _, dlq = _queues(synth)
    environment = {
        "TASKS_TABLE_NAME": _ref(_table(synth, "task_id")),
        "DEAD_LETTER_QUEUE_URL": _ref(dlq),
        "ATTEMPT_BUDGET": str(expected["attempt_budget"]),
        "POWERTOOLS_SERVICE_NAME": "task-processor",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskApi",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if synth.profile == "ephemeral":
        environment[contract.FAULT_INJECTION_ENV] = "true"
    assert function["Properties"]["Environment"] == {"Variables": environment}
    # The visibility timeout must cover a whole invocation, or AWS rejects the event source.
    assert expected["visibility_timeout"] >= function["Properties"]["Timeout"]


def test_api_function(synth: Synthesized) -> None:
    expected = EXPECTED[synth.profile]
    _, function = _function(synth, "Api")
    props = function["Properties"]
    assert props["FunctionName"] == f"{PREFIXES[synth.profile]}-api"
    assert props["Handler"] == "handlers.api.handler"
    assert props["Runtime"] == "python3.12"
    assert props["MemorySize"] == expected["api_memory"]
    assert props["Timeout"] == expected["api_timeout"]
    assert "ReservedConcurrentExecutions" not in props
    assert props["TracingConfig"] == {"Mode": "Active"}
    variables = props["Environment"]["Variables"]
    task, _ = _queues(synth)
    assert synth.export_value(variables.pop("TASKS_TABLE_NAME")) == _ref(_table(synth, "task_id"))
    assert synth.export_value(variables.pop("IDEMPOTENCY_TABLE_NAME")) == _ref(_table(synth, "id"))
    assert synth.export_value(variables.pop("TASK_QUEUE_URL")) == _ref(task)
    rest = {
        "PENDING_WINDOW_SECONDS": str(expected["pending_window"]),
        "POWERTOOLS_SERVICE_NAME": "task-api",
        "POWERTOOLS_METRICS_NAMESPACE": "TaskApi",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if synth.profile == "ephemeral":
        rest[contract.FAULT_INJECTION_ENV] = "true"
    assert variables == rest


def test_functions_share_one_code_asset(synth: Synthesized) -> None:
    codes = [_function(synth, suffix)[1]["Properties"]["Code"] for suffix in ("Queue", "Api")]
    assert codes[0] == codes[1]
    assert codes[0]["S3Key"].endswith(".zip")


@pytest.mark.parametrize(("suffix", "name"), [("Queue", "processor"), ("Api", "api")])
def test_each_function_logs_to_its_own_declared_log_group(
    synth: Synthesized, suffix: str, name: str
) -> None:
    _, function = _function(synth, suffix)
    log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    log_group = synth.templates[suffix]["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert (
        log_group["Properties"]["LogGroupName"] == f"/aws/lambda/{PREFIXES[synth.profile]}-{name}"
    )
    assert (
        log_group["Properties"]["RetentionInDays"] == EXPECTED[synth.profile]["log_retention_days"]
    )
    assert log_group["DeletionPolicy"] == EXPECTED[synth.profile]["removal"]


def test_every_log_group_has_retention(synth: Synthesized) -> None:
    days = EXPECTED[synth.profile]["log_retention_days"]
    count = 0
    for _, template in synth.all_templates():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::Logs::LogGroup":
                count += 1
                assert resource["Properties"]["RetentionInDays"] == days
    assert count == 4  # two functions, API access logs, API execution logs


def test_event_source_mapping(synth: Synthesized) -> None:
    task, _ = _queues(synth)
    function_id, _ = _function(synth, "Queue")
    _, mapping = synth.only("Queue", "AWS::Lambda::EventSourceMapping")
    assert {k: v for k, v in mapping["Properties"].items() if k != "Tags"} == {
        "BatchSize": EXPECTED[synth.profile]["batch_size"],
        "EventSourceArn": _arn(task),
        "FunctionName": _ref(function_id),
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }


# --- IAM -----------------------------------------------------------------------------------


def _role_statements(synth: Synthesized, suffix: str) -> list[dict[str, Any]]:
    _, function = _function(synth, suffix)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = synth.templates[suffix]["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role, "function roles get no managed policies"
    (policy,) = role["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def _logs_and_xray(synth: Synthesized, suffix: str) -> list[dict[str, Any]]:
    _, function = _function(synth, suffix)
    log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    return [
        {
            "Sid": "WriteOwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": _arn(log_group),
        },
        {
            "Sid": "XRayTracing",
            "Effect": "Allow",
            "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
            "Resource": "*",
        },
    ]


def test_processor_role_is_least_privilege(synth: Synthesized) -> None:
    task, dlq = _queues(synth)
    assert _role_statements(synth, "Queue") == [
        *_logs_and_xray(synth, "Queue"),
        {
            "Sid": "ConsumeTaskQueue",
            "Effect": "Allow",
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
            "Resource": _arn(task),
        },
        {
            "Sid": "SendToDeadLetterQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": _arn(dlq),
        },
        {
            "Sid": "WriteTasksTable",
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": _arn(_table(synth, "task_id")),
        },
    ]


def test_api_role_is_least_privilege(synth: Synthesized) -> None:
    statements = _role_statements(synth, "Api")
    # Cross-stack resources arrive as imports: resolve them to the exporting resource.
    for statement in statements:
        if isinstance(statement["Resource"], dict) and "Fn::ImportValue" in statement["Resource"]:
            statement["Resource"] = synth.export_value(statement["Resource"])
    task, _ = _queues(synth)
    assert statements == [
        *_logs_and_xray(synth, "Api"),
        {
            "Sid": "SendToTaskQueue",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": _arn(task),
        },
        {
            "Sid": "TasksTable",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": _arn(_table(synth, "task_id")),
        },
        {
            "Sid": "IdempotencyTable",
            "Effect": "Allow",
            "Action": ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "Resource": _arn(_table(synth, "id")),
        },
    ]


def test_no_other_iam_policies_exist(synth: Synthesized) -> None:
    for _, template in synth.all_templates():
        types = {r["Type"] for r in template["Resources"].values()}
        assert not types & {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User"}
    # The only role besides the two function roles is API Gateway's CloudWatch Logs role.
    (role_id, role) = next(
        (lid, r)
        for lid, r in synth.resources("Api", "AWS::IAM::Role").items()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "apigateway.amazonaws.com"}
    )
    _, account = synth.only("Api", "AWS::ApiGateway::Account")
    assert account["Properties"]["CloudWatchRoleArn"] == _arn(role_id)
    assert role["Properties"]["ManagedPolicyArns"] == [
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
                ],
            ]
        }
    ]


# --- API -----------------------------------------------------------------------------------


def _resource_paths(synth: Synthesized) -> dict[str, str]:
    """Logical id -> path for the RestApi root and every AWS::ApiGateway::Resource."""
    resources = synth.resources("Api", "AWS::ApiGateway::Resource")
    api_id, _ = synth.only("Api", "AWS::ApiGateway::RestApi")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            parent_path = (
                ""
                if parent == {"Fn::GetAtt": [api_id, "RootResourceId"]}
                else path_of(parent["Ref"])
            )
            paths[logical_id] = f"{parent_path}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def test_the_gateways_own_errors_carry_cors_headers(synth: Synthesized) -> None:
    # 403 unknown route, 429 throttled, 502/504 integration errors, 413...: every 4xx/5xx
    # response type inherits DEFAULT_4XX/DEFAULT_5XX, so a browser sees the real status.
    (api_id,) = synth.resources("Api", "AWS::ApiGateway::RestApi")
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.resources("Api", "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for properties in responses.values():
        assert properties["RestApiId"] == {"Ref": api_id}
        headers = properties["ResponseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"
        allowed = headers["gatewayresponse.header.Access-Control-Allow-Headers"]
        assert "Idempotency-Key" in allowed.strip("'").split(",")
        assert headers["gatewayresponse.header.Access-Control-Allow-Methods"] == (
            "'GET,POST,OPTIONS'"
        )
        assert "StatusCode" not in properties  # each error keeps its own status


def test_api_routes_are_lambda_proxies_with_cors_preflight(synth: Synthesized) -> None:
    api_id, api = synth.only("Api", "AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    paths = _resource_paths(synth)
    function_id, _ = _function(synth, "Api")
    routes: dict[tuple[str, str], str] = {}
    for method in synth.resources("Api", "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        path = (
            "/"
            if resource == {"Fn::GetAtt": [api_id, "RootResourceId"]}
            else paths[resource["Ref"]]
        )
        routes[(props["HttpMethod"], path)] = props["Integration"]["Type"]
        # Every task method is IAM-authorized; only the CORS preflight is open.
        expected_auth = "NONE" if props["HttpMethod"] == "OPTIONS" else "AWS_IAM"
        assert props["AuthorizationType"] == expected_auth, (props["HttpMethod"], path)
        if props["Integration"]["Type"] == "AWS_PROXY":
            assert props["Integration"]["IntegrationHttpMethod"] == "POST"
            assert function_id in json.dumps(props["Integration"]["Uri"])
        else:
            headers = props["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
            assert headers["method.response.header.Access-Control-Allow-Origin"] == "'*'"
            assert (
                headers["method.response.header.Access-Control-Allow-Methods"]
                == "'GET,POST,OPTIONS'"
            )
            assert (
                "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]
            )
    assert routes == {
        ("POST", "/tasks"): "AWS_PROXY",
        ("GET", "/tasks/{task_id}"): "AWS_PROXY",
        ("OPTIONS", "/"): "MOCK",
        ("OPTIONS", "/tasks"): "MOCK",
        ("OPTIONS", "/tasks/{task_id}"): "MOCK",
    }
    # API Gateway may invoke the function for exactly these two routes.
    source_arns = [
        json.dumps(p["Properties"]["SourceArn"])
        for p in synth.resources("Api", "AWS::Lambda::Permission").values()
    ]
    assert len(source_arns) == 2
    assert any('"/POST/tasks"' in arn for arn in source_arns)
    assert any('"/GET/tasks/*"' in arn for arn in source_arns)


def test_stage_throttling_tracing_and_access_logs(synth: Synthesized) -> None:
    expected = EXPECTED[synth.profile]
    _, stage = synth.only("Api", "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == expected["stage"]
    assert props["TracingEnabled"] is True
    assert props["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": expected["rate_limit"],
            "ThrottlingBurstLimit": expected["burst_limit"],
            "LoggingLevel": "ERROR",
            "DataTraceEnabled": False,
        }
    ]
    # The destination is the log group's ARN without the trailing ":*" API Gateway rejects.
    arn_parts = props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    assert arn_parts[-2] == ":log-group:"
    access_logs = arn_parts[-1]["Ref"]
    log_group = synth.templates["Api"]["Resources"][access_logs]
    assert (
        log_group["Properties"]["LogGroupName"]
        == f"/aws/apigateway/{PREFIXES[synth.profile]}-access"
    )
    record = json.loads(props["AccessLogSetting"]["Format"])
    assert record["requestId"] == "$context.requestId"
    assert record["status"] == "$context.status"
    assert record["resourcePath"] == "$context.resourcePath"


def test_execution_log_group_is_declared_before_the_stage(synth: Synthesized) -> None:
    api_id, _ = synth.only("Api", "AWS::ApiGateway::RestApi")
    _stage_id, stage = synth.only("Api", "AWS::ApiGateway::Stage")
    groups = {
        lid: g
        for lid, g in synth.resources("Api", "AWS::Logs::LogGroup").items()
        if isinstance(g["Properties"]["LogGroupName"], dict)
    }
    ((group_id, group),) = groups.items()
    assert group["Properties"]["LogGroupName"] == {
        "Fn::Join": [
            "",
            [
                "API-Gateway-Execution-Logs_",
                {"Ref": api_id},
                f"/{EXPECTED[synth.profile]['stage']}",
            ],
        ]
    }
    assert group_id in stage["DependsOn"]


# --- monitoring ----------------------------------------------------------------------------


def _alarm(synth: Synthesized, name_suffix: str) -> dict[str, Any]:
    name = f"{PREFIXES[synth.profile]}-{name_suffix}"
    found: list[dict[str, Any]] = [
        a["Properties"]
        for a in synth.resources("Monitoring", "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == name
    ]
    assert len(found) == 1, f"alarm {name}"
    return found[0]


def _alarm_basics(alarm: dict[str, Any], threshold: int, comparison: str) -> None:
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == comparison
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_api_alarm_counts_every_request_answered_with_a_5xx(synth: Synthesized) -> None:
    # API Gateway's 5XXError of the stage: the function's own 500/503 answers, its
    # crashes and timeouts (502/504) and the gateway's own 5xx (alarm-metrics.md).
    alarm = _alarm(synth, "api-errors")
    _alarm_basics(alarm, 5, "GreaterThanThreshold")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/ApiGateway",
        "5XXError",
        "Sum",
    )
    assert alarm["Period"] == EXPECTED[synth.profile]["error_alarm_period"]
    (api,) = synth.resources("Api", "AWS::ApiGateway::RestApi").values()
    (stage,) = synth.resources("Api", "AWS::ApiGateway::Stage").values()
    assert alarm["Dimensions"] == [
        {"Name": "ApiName", "Value": api["Properties"]["Name"]},
        {"Name": "Stage", "Value": stage["Properties"]["StageName"]},
    ]


def test_the_processor_alarm_counts_failed_invocations_and_failed_records(
    synth: Synthesized,
) -> None:
    alarm = _alarm(synth, "processor-errors")
    _alarm_basics(alarm, 10, "GreaterThanThreshold")
    assert "MetricName" not in alarm
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    total = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert len(total) == 1
    assert total[0]["Expression"] == "FILL(errors, 0) + FILL(failures, 0)"
    period = EXPECTED[synth.profile]["error_alarm_period"]
    errors = queries["errors"]["MetricStat"]
    assert (errors["Metric"]["Namespace"], errors["Metric"]["MetricName"]) == (
        "AWS/Lambda",
        "Errors",
    )
    (dimension,) = errors["Metric"]["Dimensions"]
    function_id, _ = _function(synth, "Queue")
    assert dimension["Name"] == "FunctionName"
    assert synth.export_value(dimension["Value"]) == _ref(function_id)
    failures = queries["failures"]["MetricStat"]
    assert failures["Metric"] == {
        "Namespace": "TaskApi",
        "MetricName": "ProcessingFailures",
        "Dimensions": [{"Name": "service", "Value": "task-processor"}],
    }
    for stat in (errors, failures):
        assert (stat["Stat"], stat["Period"]) == ("Sum", period)
    assert queries["errors"]["ReturnData"] is False
    assert queries["failures"]["ReturnData"] is False


def test_the_dlq_alarm_watches_the_dead_letter_queue_depth(synth: Synthesized) -> None:
    alarm = _alarm(synth, "dlq-messages")
    _alarm_basics(alarm, 1, "GreaterThanOrEqualToThreshold")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    assert alarm["Period"] == EXPECTED[synth.profile]["dlq_alarm_period"]
    (dimension,) = alarm["Dimensions"]
    _, dlq = _queues(synth)
    assert dimension["Name"] == "QueueName"
    assert synth.export_value(dimension["Value"]) == {"Fn::GetAtt": [dlq, "QueueName"]}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def test_dashboard_shows_the_key_metrics(synth: Synthesized) -> None:
    _, dashboard = synth.only("Monitoring", "AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == f"{PREFIXES[synth.profile]}-dashboard"
    body = "".join(_strings(dashboard["Properties"]["DashboardBody"]))
    for metric in (
        '"Invocations"',
        '"Errors"',
        '"Duration"',
        '"Throttles"',
        '"ConcurrentExecutions"',
        '"ApproximateNumberOfMessagesVisible"',
        '"ApproximateNumberOfMessagesDelayed"',
        '"ApproximateAgeOfOldestMessage"',
        '"5XXError"',
        '"ProcessingFailures"',
    ):
        assert metric in body, metric
    for title in (
        "API Lambda errors",
        "API 5xx answers",
        "Processor Lambda errors",
        "Processor errors and failed records",
        "Dead-letter queue",
        "Alarms",
    ):
        assert title in body, title


# --- outputs -------------------------------------------------------------------------------


def _contract_outputs(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template.get("Outputs", {}).items() if "Export" not in v}


def test_outputs_contract(synth: Synthesized) -> None:
    seen: list[str] = []
    for suffix, template in synth.all_templates():
        keys = set(_contract_outputs(template))
        assert keys == OUTPUT_OWNERS[suffix], suffix
        seen.extend(keys)
    assert sorted(seen) == sorted(contract.STACK_OUTPUTS), "every contract key, exactly once"
    assert not set(seen) & set(contract.LOCAL_OUTPUTS)
    assert _contract_outputs(synth.template("Queue"))[contract.PROFILE]["Value"] == synth.profile


def test_outputs_point_at_the_right_resources(synth: Synthesized) -> None:
    task, dlq = _queues(synth)
    queue = _contract_outputs(synth.template("Queue"))
    assert queue[contract.TASK_QUEUE_URL]["Value"] == _ref(task)
    assert queue[contract.TASK_QUEUE_ARN]["Value"] == _arn(task)
    assert queue[contract.DEAD_LETTER_QUEUE_URL]["Value"] == _ref(dlq)
    assert queue[contract.TASKS_TABLE_NAME]["Value"] == _ref(_table(synth, "task_id"))
    assert queue[contract.IDEMPOTENCY_TABLE_NAME]["Value"] == _ref(_table(synth, "id"))
    assert queue[contract.PROCESSOR_FUNCTION_NAME]["Value"] == _ref(_function(synth, "Queue")[0])
    api = _contract_outputs(synth.template("Api"))
    api_id, _ = synth.only("Api", "AWS::ApiGateway::RestApi")
    stage_id, _ = synth.only("Api", "AWS::ApiGateway::Stage")
    assert api[contract.API_ID]["Value"] == _ref(api_id)
    assert api[contract.API_FUNCTION_NAME]["Value"] == _ref(_function(synth, "Api")[0])
    url = api[contract.API_URL]["Value"]["Fn::Join"][1]
    assert url[0] == "https://"
    assert url[1] == _ref(api_id)
    assert url[-2:] == [_ref(stage_id), "/"]
    monitoring = _contract_outputs(synth.template("Monitoring"))
    for key, alarm in (
        (contract.API_ERRORS_ALARM_NAME, "api-errors"),
        (contract.PROCESSOR_ERRORS_ALARM_NAME, "processor-errors"),
        (contract.DLQ_ALARM_NAME, "dlq-messages"),
    ):
        alarm_id = monitoring[key]["Value"]["Ref"]
        resource = synth.templates["Monitoring"]["Resources"][alarm_id]
        assert resource["Properties"]["AlarmName"] == f"{PREFIXES[synth.profile]}-{alarm}"


# --- profiles: fault injection, lifecycle, tags --------------------------------------------


def test_production_has_no_fault_injection_anywhere(production: Synthesized) -> None:
    for suffix, template in production.all_templates():
        text = json.dumps(template)
        assert contract.FAULT_INJECTION_ENV not in text, suffix
        assert contract.FAULT_INJECTION_HEADER not in text, suffix


def test_ephemeral_enables_fault_injection_on_both_functions(ephemeral: Synthesized) -> None:
    for suffix in ("Queue", "Api"):
        _, function = _function(ephemeral, suffix)
        assert (
            function["Properties"]["Environment"]["Variables"][contract.FAULT_INJECTION_ENV]
            == "true"
        )


def test_ephemeral_deletes_every_resource(ephemeral: Synthesized) -> None:
    for suffix, template in ephemeral.all_templates():
        for logical_id, resource in template["Resources"].items():
            assert resource.get("DeletionPolicy") == "Delete", f"{suffix}/{logical_id}"
            assert resource.get("UpdateReplacePolicy") == "Delete", f"{suffix}/{logical_id}"


def test_production_retains_state(production: Synthesized) -> None:
    stateful = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup"}
    found = 0
    for _, template in production.all_templates():
        for resource in template["Resources"].values():
            if resource["Type"] in stateful:
                found += 1
                assert resource["DeletionPolicy"] == "Retain", resource["Type"]
    assert found == 8  # 2 tables, 2 queues, 4 log groups


def test_ephemeral_tags_stacks_and_resources(ephemeral: Synthesized) -> None:
    expected = {
        "ephemeral": "true",
        "expires-at": "2030-01-31T18:00:00Z",
        "owner": "ci-bot",
        "profile": "ephemeral",
        "project": "task-api",
    }
    for name in ephemeral.stack_names.values():
        assert ephemeral.manifest["artifacts"][name]["properties"]["tags"] == expected


def test_production_is_not_tagged_ephemeral(production: Synthesized) -> None:
    for name in production.stack_names.values():
        tags = production.manifest["artifacts"][name]["properties"]["tags"]
        assert tags == {"profile": "production", "project": "task-api"}


def test_assets_are_file_assets_for_the_standard_bootstrap(synth: Synthesized) -> None:
    for name in synth.stack_names.values():
        artifact = synth.manifest["artifacts"][name]
        assert artifact["properties"].get("requiresBootstrapStackVersion", 6) >= 6
    queue_assets = json.loads(
        (synth.outdir / f"{synth.stack_names['Queue']}.assets.json").read_text()
    )
    # The template itself is a file asset too; the Lambda code is the one zip asset.
    (asset,) = [a for a in queue_assets["files"].values() if a["source"].get("packaging") == "zip"]
    staged = synth.outdir / asset["source"]["path"]
    assert (staged / "handlers").is_dir()
    assert not (staged / "boto3").exists()
