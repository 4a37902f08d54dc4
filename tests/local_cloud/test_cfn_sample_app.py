"""End to end: a real CDK-synthesized 3-stack assembly (``cfn_templates/sample_app.py``)
deployed onto the local endpoint with recording services; the specs handed over and what
boto3 sees afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdk.node import env_with_node
from localcloud.cfn import DeployedAssembly, deploy_assembly
from localcloud.cfn.testing import (
    REGION,
    RecordingServices,
    client,
    local_endpoint,
    synth_app_script,
)
from localcloud.specs import AlarmSpec, ApiMethod, FunctionSpec, MetricDimension

SAMPLE_APP = Path(__file__).resolve().parent / "cfn_templates" / "sample_app.py"

PREFIX = "smpl"
QUEUE_STACK, API_STACK, MONITORING_STACK = (f"{PREFIX}-{s}" for s in ("Queue", "Api", "Monitoring"))
LOCAL_API_URL = "http://127.0.0.1:4567/v1/"  # what RecordingServices.add_rest_api returns


@dataclass
class Deployment:
    deployed: DeployedAssembly
    services: RecordingServices
    lines: list[str]
    endpoint: str
    assembly: Path

    def output(self, stack: str, key: str) -> str:
        return self.deployed.outputs[stack][key]

    def function(self, logical_prefix: str) -> FunctionSpec:
        (spec,) = [
            spec
            for spec in self.services.specs("add_function")
            if spec.logical_id.startswith(logical_prefix)
        ]
        return spec  # type: ignore[no-any-return]

    def physical(self, stack: str, logical_prefix: str) -> str:
        (physical,) = [
            value
            for logical_id, value in self.deployed.physical_resources[stack].items()
            if logical_id.startswith(logical_prefix)
        ]
        return physical


@pytest.fixture(scope="session")
def sample_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_app_script(
        SAMPLE_APP, tmp_path_factory.mktemp("sample-cdk-out"), PREFIX, env=env_with_node()
    )


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_endpoint() as url:
        yield url


@pytest.fixture(scope="module")
def deployment(sample_assembly: Path, endpoint: str) -> Iterator[Deployment]:
    services = RecordingServices()
    lines: list[str] = []
    deployed = deploy_assembly(
        sample_assembly,
        endpoint_url=endpoint,
        region=REGION,
        services=services,
        on_progress=lines.append,
    )
    print(f"sample assembly deployed in {deployed.deploy_seconds:.3f}s")
    with deployed:
        yield Deployment(deployed, services, lines, endpoint, sample_assembly)


def test_every_resource_type_of_the_assembly_is_deployed(deployment: Deployment) -> None:
    templates = [
        json.loads((deployment.assembly / f"{stack}.template.json").read_text())
        for stack in (QUEUE_STACK, API_STACK, MONITORING_STACK)
    ]
    in_templates = {res["Type"] for tpl in templates for res in tpl["Resources"].values()}
    assert deployment.deployed.resource_types == in_templates
    assert {
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::ApiGateway::Stage",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::CDK::Metadata",  # created: its region condition holds for us-east-1
    } <= in_templates
    assert f"{QUEUE_STACK} | 1/9 | CREATE_COMPLETE | AWS::SQS::Queue | DeadLetterQueue9F481546" in (
        deployment.lines
    )


def test_outputs_have_the_cdk_outputs_file_shape_and_the_local_api_url(
    deployment: Deployment,
) -> None:
    outputs = deployment.deployed.outputs
    assert list(outputs) == [QUEUE_STACK, API_STACK, MONITORING_STACK]
    assert all(isinstance(v, str) for values in outputs.values() for v in values.values())
    # CDK renders https://<api>.execute-api.us-east-1.amazonaws.com/v1/; locally it is the
    # URL the local API Gateway serves.
    assert deployment.output(API_STACK, "ApiUrl") == LOCAL_API_URL
    urls = client(deployment.endpoint, "sqs").list_queues(QueueNamePrefix=QUEUE_STACK)["QueueUrls"]
    assert set(urls) == {
        deployment.output(QUEUE_STACK, "TaskQueueUrl"),
        deployment.output(QUEUE_STACK, "DeadLetterQueueUrl"),
    }
    assert deployment.output(QUEUE_STACK, "TasksTableName") == f"{PREFIX}-tasks"


def test_queues_have_the_template_attributes_and_redrive_policy(deployment: Deployment) -> None:
    sqs = client(deployment.endpoint, "sqs")
    task_url = deployment.output(QUEUE_STACK, "TaskQueueUrl")
    dlq_url = deployment.output(QUEUE_STACK, "DeadLetterQueueUrl")
    task = sqs.get_queue_attributes(QueueUrl=task_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    assert task_url.endswith(".fifo")
    assert task_url.rsplit("/", 1)[-1].startswith(f"{QUEUE_STACK}-TaskQueue")
    assert (task["FifoQueue"], task["ContentBasedDeduplication"]) == ("true", "true")
    assert (task["VisibilityTimeout"], task["MessageRetentionPeriod"]) == ("30", "345600")
    assert (dlq["FifoQueue"], dlq["MessageRetentionPeriod"]) == ("true", "1209600")
    redrive = json.loads(task["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 3}
    assert sqs.list_queue_tags(QueueUrl=task_url)["Tags"] == {"ephemeral": "true"}


def test_tables_with_ttl_point_in_time_recovery_and_encryption(deployment: Deployment) -> None:
    dynamodb = client(deployment.endpoint, "dynamodb")
    tasks = dynamodb.describe_table(TableName=f"{PREFIX}-tasks")["Table"]
    assert tasks["KeySchema"] == [{"AttributeName": "task_id", "KeyType": "HASH"}]
    assert tasks["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert tasks["SSEDescription"]["Status"] == "ENABLED"
    backups = dynamodb.describe_continuous_backups(TableName=f"{PREFIX}-tasks")
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    idempotency = deployment.physical(QUEUE_STACK, "IdempotencyTable")
    assert idempotency.startswith(f"{QUEUE_STACK}-IdempotencyTable")
    ttl = dynamodb.describe_time_to_live(TableName=idempotency)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiration")


def test_function_specs_carry_the_resolved_environment(deployment: Deployment) -> None:
    processor = deployment.function("Processor")
    api = deployment.function("ApiFunction")
    assert processor.function_name == f"{PREFIX}-processor"
    assert (processor.handler, processor.runtime) == ("cfn_sample_handler.handler", "python3.12")
    assert (processor.timeout_s, processor.memory_mb, processor.reserved_concurrency) == (
        20,
        512,
        10,
    )
    assert processor.environment == {
        "TASKS_TABLE_NAME": f"{PREFIX}-tasks",
        "DEAD_LETTER_QUEUE_URL": deployment.output(QUEUE_STACK, "DeadLetterQueueUrl"),
    }
    assert processor.log_group_name == f"/aws/lambda/{PREFIX}-processor"
    # The code is the staged asset directory inside the assembly.
    assert processor.code_dir.parent == deployment.assembly.resolve()
    assert (processor.code_dir / "cfn_sample_handler.py").is_file()
    iam = client(deployment.endpoint, "iam")
    role_name = deployment.physical(QUEUE_STACK, "ProcessorRole")
    assert processor.role_arn == iam.get_role(RoleName=role_name)["Role"]["Arn"]
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["Permissions"]

    # Generated name, values imported from the queue stack, its own unnamed log group.
    assert api.function_name.startswith(f"{API_STACK}-ApiFunction")
    assert len(api.function_name) <= 64
    assert api.function_name == deployment.output(API_STACK, "ApiFunctionName")
    assert api.environment == {
        "TASK_QUEUE_URL": deployment.output(QUEUE_STACK, "TaskQueueUrl"),
        "IDEMPOTENCY_TABLE_NAME": deployment.physical(QUEUE_STACK, "IdempotencyTable"),
        "FAULT_INJECTION_ENABLED": "true",
    }
    assert api.log_group_name == deployment.physical(API_STACK, "ApiLogs")
    assert (api.timeout_s, api.memory_mb, api.reserved_concurrency) == (10, 128, None)
    assert api.arn == f"arn:aws:lambda:{REGION}:123456789012:function:{api.function_name}"


def test_event_source_mapping_spec(deployment: Deployment) -> None:
    (mapping,) = deployment.services.specs("add_event_source_mapping")
    task_url = deployment.output(QUEUE_STACK, "TaskQueueUrl")
    assert mapping.function_name == f"{PREFIX}-processor"
    assert mapping.queue_url == task_url
    assert mapping.event_source_arn == (
        f"arn:aws:sqs:{REGION}:123456789012:{task_url.rsplit('/', 1)[-1]}"
    )
    assert (mapping.batch_size, mapping.maximum_batching_window_s) == (10, 0)
    assert mapping.function_response_types == ("ReportBatchItemFailures",)
    assert (mapping.enabled, mapping.maximum_concurrency) == (True, 5)
    # A function is handed over before the mapping that invokes it.
    hooks = [hook for hook, _ in deployment.services.calls]
    assert hooks.index("add_event_source_mapping") > hooks.index("add_function")


def _route(methods: tuple[ApiMethod, ...], path: str, verb: str) -> ApiMethod:
    (method,) = [m for m in methods if (m.resource_path, m.http_method) == (path, verb)]
    return method


def test_rest_api_spec_routes_cors_throttling_and_access_logs(deployment: Deployment) -> None:
    (spec,) = deployment.services.specs("add_rest_api")
    api_function = deployment.function("ApiFunction").function_name
    assert (spec.name, spec.stage_name) == (f"{PREFIX}-tasks", "v1")
    routes = {(m.resource_path, m.http_method, m.integration_type) for m in spec.methods}
    assert routes == {
        ("/", "OPTIONS", "MOCK"),
        ("/tasks", "OPTIONS", "MOCK"),
        ("/tasks", "POST", "AWS_PROXY"),
        ("/tasks/{task_id}", "OPTIONS", "MOCK"),
        ("/tasks/{task_id}", "GET", "AWS_PROXY"),
    }
    assert _route(spec.methods, "/tasks", "POST").function_name == api_function
    assert _route(spec.methods, "/tasks/{task_id}", "GET").function_name == api_function
    preflight = _route(spec.methods, "/tasks", "OPTIONS")
    (response,) = preflight.integration_responses
    headers = response.response_parameters
    assert response.status_code == "204"
    assert headers["method.response.header.Access-Control-Allow-Origin"] == "'*'"
    assert headers["method.response.header.Access-Control-Allow-Methods"] == "'GET,POST,OPTIONS'"
    assert "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]
    assert headers["method.response.header.Access-Control-Max-Age"] == "'3600'"
    assert preflight.request_templates == {"application/json": "{ statusCode: 200 }"}
    assert (spec.throttling_rate_limit, spec.throttling_burst_limit) == (50.0, 20)
    groups = client(deployment.endpoint, "logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/apigateway/{PREFIX}-access"
    )["logGroups"]
    assert spec.access_log_group_arn == groups[0]["arn"]
    assert spec.access_log_format is not None
    assert "$context.requestId" in spec.access_log_format
    assert spec.api_keys == ("sample-key-0123456789",)
    assert spec.api_id == deployment.physical(API_STACK, "RestApi0")
    assert deployment.deployed.api_urls == {(spec.api_id, "v1"): LOCAL_API_URL}


def test_log_groups_including_one_named_after_the_api_id(deployment: Deployment) -> None:
    logs = client(deployment.endpoint, "logs")
    api_id = deployment.physical(API_STACK, "RestApi0")
    for name in (
        f"/aws/lambda/{PREFIX}-processor",
        f"/aws/apigateway/{PREFIX}-access",
        f"API-Gateway-Execution-Logs_{api_id}/v1",
        deployment.function("ApiFunction").log_group_name,
    ):
        (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        assert (group["logGroupName"], group["retentionInDays"]) == (name, 7)


def test_alarm_specs_and_alarms_visible_through_boto3(deployment: Deployment) -> None:
    alarms: dict[str, AlarmSpec] = {
        spec.alarm_name.split("-")[2]: spec for spec in deployment.services.specs("add_alarm")
    }
    dlq_name = deployment.output(QUEUE_STACK, "DeadLetterQueueUrl").rsplit("/", 1)[-1]
    api_function = deployment.function("ApiFunction").function_name
    dlq = alarms["DlqMessages085B9AE2"]
    assert (dlq.namespace, dlq.metric_name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq.dimensions == (MetricDimension("QueueName", dlq_name),)
    assert (dlq.statistic, dlq.period_s, dlq.threshold) == ("Maximum", 60, 1.0)
    assert dlq.comparison_operator == "GreaterThanOrEqualToThreshold"
    assert (dlq.evaluation_periods, dlq.datapoints_to_alarm) == (1, 1)
    assert dlq.treat_missing_data == "notBreaching"
    api = alarms["ApiErrors8A265993"]
    assert (api.namespace, api.metric_name) == ("AWS/Lambda", "Errors")
    assert api.dimensions == (MetricDimension("FunctionName", api_function),)
    assert (api.statistic, api.period_s, api.threshold) == ("Sum", 300, 5.0)
    assert api.comparison_operator == "GreaterThanThreshold"
    processor = alarms["ProcessorErrors33A205AA"]
    assert processor.dimensions == (MetricDimension("FunctionName", f"{PREFIX}-processor"),)
    assert processor.threshold == 10.0

    cloudwatch = client(deployment.endpoint, "cloudwatch")
    stored = cloudwatch.describe_alarms(AlarmNames=[spec.alarm_name for spec in alarms.values()])
    by_name: dict[str, Any] = {alarm["AlarmName"]: alarm for alarm in stored["MetricAlarms"]}
    assert set(by_name) == {spec.alarm_name for spec in alarms.values()}
    stored_dlq = by_name[dlq.alarm_name]
    assert (stored_dlq["Threshold"], stored_dlq["ComparisonOperator"]) == (
        1.0,
        "GreaterThanOrEqualToThreshold",
    )
    assert stored_dlq["Dimensions"] == [{"Name": "QueueName", "Value": dlq_name}]


def test_dashboard_body_is_resolved(deployment: Deployment) -> None:
    name = deployment.physical(MONITORING_STACK, "Dashboard")
    assert name.startswith("Dashboard")
    body = json.loads(
        client(deployment.endpoint, "cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"]
    )
    text = json.dumps(body)
    assert f"{PREFIX}-processor" in text
    assert f'"region": "{REGION}"' in text
    assert "Fn::" not in text
    assert '"Ref"' not in text


def test_destroy_deletes_what_the_deployment_created(sample_assembly: Path) -> None:
    # moto's state is per process and per region, and the module's deployment holds the
    # same explicit names: this deployment goes to another region (and its own endpoint,
    # whose SQS engine serves that region).
    region = "us-west-2"
    with local_endpoint(region) as endpoint:
        deployed = deploy_assembly(
            sample_assembly, endpoint_url=endpoint, region=region, services=RecordingServices()
        )
        roles = [
            res.physical_id
            for stack in deployed.stacks
            for res in stack.resources.values()
            if res.resource_type == "AWS::IAM::Role"
        ]
        assert len(roles) == 3
        assert deployed.destroy() == []
        assert client(endpoint, "sqs", region).list_queues().get("QueueUrls", []) == []
        assert client(endpoint, "dynamodb", region).list_tables()["TableNames"] == []
        cloudwatch = client(endpoint, "cloudwatch", region)
        assert cloudwatch.describe_alarms()["MetricAlarms"] == []
        assert cloudwatch.list_dashboards()["DashboardEntries"] == []
        assert client(endpoint, "logs", region).describe_log_groups()["logGroups"] == []
        # IAM is global. API Gateway's CloudWatch role is DeletionPolicy Retain in CDK,
        # but the local cloud is thrown away whole: every role goes.
        remaining = {role["RoleName"] for role in client(endpoint, "iam").list_roles()["Roles"]}
        assert remaining.isdisjoint(roles)
