"""Deploying hand-written templates onto the local endpoint: ordering, conditions, parameters,
the providers' boto3 side, rollback on failure, and teardown."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localcloud.cfn import DeployedAssembly, DeployError, TemplateError, deploy_assembly
from localcloud.cfn.testing import (
    REGION,
    RecordingServices,
    client,
    local_endpoint,
    template,
    write_assembly,
)

HANDLER_DIR = Path(__file__).resolve().parent / "cfn_templates" / "sample_handler"

ASSET = "0123abcd"
CODE = {
    "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
    "S3Key": f"{ASSET}.zip",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_endpoint() as url:
        yield url


@pytest.fixture
def name() -> str:
    """A unique stack name, so tests sharing the endpoint never see each other's resources."""
    return f"t{uuid.uuid4().hex[:8]}"


def deploy(
    assembly: Path, endpoint: str, services: RecordingServices | None = None
) -> tuple[DeployedAssembly, list[str]]:
    lines: list[str] = []
    deployed = deploy_assembly(
        assembly,
        endpoint_url=endpoint,
        region=REGION,
        services=services or RecordingServices(),
        on_progress=lines.append,
    )
    return deployed, lines


def queue_names(endpoint: str, prefix: str) -> list[str]:
    urls = client(endpoint, "sqs").list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return [url.rsplit("/", 1)[-1] for url in urls]


def created_order(lines: list[str]) -> list[str]:
    return [line.rsplit(" | ", 1)[-1] for line in lines if "| CREATE_COMPLETE |" in line]


def test_resources_are_created_after_what_they_refer_to(
    tmp_path: Path, endpoint: str, name: str
) -> None:
    resources = {
        "Alarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [
                    {"Name": "QueueName", "Value": {"Fn::GetAtt": ["Dlq", "QueueName"]}}
                ],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            },
        },
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "FifoQueue": True,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]},
                    "maxReceiveCount": 3,
                },
            },
            "DependsOn": "Logs",
        },
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 1}},
        "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
    }
    write_assembly(tmp_path, {name: template(resources)})
    deployed, lines = deploy(tmp_path, endpoint)
    with deployed:
        order = created_order(lines)
        assert order.index("Dlq") < order.index("Alarm")
        assert order.index("Dlq") < order.index("Queue")
        assert order.index("Logs") < order.index("Queue")
        # The line format follows `cdk deploy`: stack | n/total | status | type | resource.
        assert f"{name} | 1/4 | CREATE_COMPLETE | AWS::SQS::Queue | Dlq" in lines
    assert queue_names(endpoint, name) == []


def test_conditions_parameters_and_outputs(tmp_path: Path, endpoint: str, name: str) -> None:
    parameters = {
        "Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
        "Sizes": {"Type": "CommaDelimitedList", "Default": "1,2,3"},
        "BootstrapVersion": {
            "Type": "AWS::SSM::Parameter::Value<String>",
            "Default": "/cdk-bootstrap/hnb659fds/version",
        },
    }
    conditions = {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
    }
    resources = {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Fn::Sub": "${AWS::StackName}-${Stage}"},
                "DelaySeconds": {"Fn::If": ["IsProd", 5, {"Ref": "AWS::NoValue"}]},
                "VisibilityTimeout": {"Fn::Select": [2, {"Ref": "Sizes"}]},
            },
        },
        "ProdOnly": {"Type": "AWS::SQS::Queue", "Condition": "IsProd"},
    }
    outputs = {
        "QueueName": {"Value": {"Fn::GetAtt": ["Queue", "QueueName"]}},
        "Bootstrap": {"Value": {"Ref": "BootstrapVersion"}},
        "Sizes": {"Value": {"Ref": "Sizes"}},
        "ProdUrl": {"Value": {"Ref": "ProdOnly"}, "Condition": "IsProd"},
        "DevFlag": {"Value": {"Fn::If": ["IsDev", "yes", "no"]}, "Condition": "IsDev"},
    }
    stack = template(resources, Parameters=parameters, Conditions=conditions, Outputs=outputs)
    # A value given in the manifest (cdk deploy --parameters) overrides the default.
    write_assembly(tmp_path, {name: stack}, parameters={name: {"Sizes": "7,8,9"}})
    deployed, lines = deploy(tmp_path, endpoint)
    with deployed:
        assert deployed.outputs == {
            name: {
                "QueueName": f"{name}-dev",
                "Bootstrap": "30",
                "Sizes": "7,8,9",
                "DevFlag": "yes",
            }
        }
        assert any(
            "SKIPPED (condition false) | AWS::SQS::Queue | ProdOnly" in line for line in lines
        )
        assert set(deployed.physical_resources[name]) == {"Queue"}
        attributes = client(endpoint, "sqs").get_queue_attributes(
            QueueUrl=deployed.physical_resources[name]["Queue"], AttributeNames=["All"]
        )["Attributes"]
        assert attributes["DelaySeconds"] == "0"  # the NoValue branch: property left out
        assert attributes["VisibilityTimeout"] == "9"


def test_iam_queue_policy_and_logs_through_boto3(tmp_path: Path, endpoint: str, name: str) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}],
    }
    resources = {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"Tags": [{"Key": "team", "Value": "a"}]},
        },
        "QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": document},
        },
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [{"PolicyName": "Inline", "PolicyDocument": document}],
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole"
                    }
                ],
            },
        },
        "Managed": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"PolicyDocument": document, "Roles": [{"Ref": "Role"}]},
        },
        "Extra": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "Extra",
                "PolicyDocument": document,
                "Roles": [{"Ref": "Role"}],
            },
        },
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": f"/test/{name}", "RetentionInDays": 14},
        },
    }
    outputs = {
        "RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}},
        "Policy": {"Value": {"Ref": "Managed"}},
    }
    write_assembly(tmp_path, {name: template(resources, Outputs=outputs)})
    deployed, _ = deploy(tmp_path, endpoint)
    sqs, iam, logs = client(endpoint, "sqs"), client(endpoint, "iam"), client(endpoint, "logs")
    with deployed:
        url = deployed.physical_resources[name]["Queue"]
        policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
        assert json.loads(policy["Policy"]) == document
        # Stack tags (manifest) and the resource's own tags both land on the queue.
        assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "suite": "cfn-tests"}
        role_name = deployed.physical_resources[name]["Role"]
        assert role_name.startswith(f"{name}-Role-")
        role = iam.get_role(RoleName=role_name)["Role"]
        assert deployed.outputs[name]["RoleArn"] == role["Arn"]
        assert set(iam.list_role_policies(RoleName=role_name)["PolicyNames"]) == {"Inline", "Extra"}
        attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
        assert [policy["PolicyArn"] for policy in attached] == [deployed.outputs[name]["Policy"]]
        # moto does not load AWS managed policies: the attachment is recorded, not made.
        role_resource = deployed.resource(name, "Role")
        assert role_resource.cleanup["NotAttached"] == [
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        ]
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/test/{name}")["logGroups"]
        assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
            (f"/test/{name}", 14)
        ]
    assert deployed.destroy() == [], "a second destroy does nothing"
    with pytest.raises(ClientError):
        iam.get_role(RoleName=role_name)
    assert logs.describe_log_groups(logGroupNamePrefix=f"/test/{name}")["logGroups"] == []
    assert queue_names(endpoint, name) == []


def test_a_failure_mid_deployment_rolls_back_everything(
    tmp_path: Path, endpoint: str, name: str
) -> None:
    first = template(
        {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": "index.handler", "Runtime": "python3.12", "Code": CODE},
            },
        },
        Outputs={"Url": {"Value": {"Ref": "Queue"}, "Export": {"Name": f"{name}:Url"}}},
    )
    second = template(
        {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": f"/t/{name}"}},
            # The key attribute is not defined: DynamoDB (moto) rejects the table.
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "DependsOn": "Logs",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "other", "KeyType": "HASH"}],
                },
            },
        }
    )
    write_assembly(
        tmp_path,
        {name: first, f"{name}-b": second},
        dependencies={f"{name}-b": [name]},
        assets={ASSET: HANDLER_DIR},
    )
    services = RecordingServices()
    lines: list[str] = []
    with pytest.raises(DeployError) as caught:
        deploy_assembly(
            tmp_path,
            endpoint_url=endpoint,
            region=REGION,
            services=services,
            on_progress=lines.append,
        )
    error = caught.value
    assert (error.stack, error.logical_id, error.resource_type) == (
        f"{name}-b",
        "Table",
        "AWS::DynamoDB::Table",
    )
    assert "ValidationException" in str(error)
    # Nothing stays: not the queue of the first stack, not the log group of the second,
    # and the local services never heard of the function.
    assert queue_names(endpoint, name) == []
    assert (
        client(endpoint, "logs").describe_log_groups(logGroupNamePrefix=f"/t/{name}")["logGroups"]
        == []
    )
    assert services.calls == []
    assert "ROLLBACK_COMPLETE" in lines[-1]


def test_ref_to_a_resource_whose_condition_is_false_rolls_back(
    tmp_path: Path, endpoint: str, name: str
) -> None:
    resources = {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Never": {"Type": "AWS::SQS::Queue", "Condition": "Off"},
        "Uses": {
            "Type": "AWS::SQS::Queue",
            "DependsOn": "Queue",
            "Properties": {"QueueName": {"Fn::GetAtt": ["Never", "QueueName"]}},
        },
    }
    conditions = {"Off": {"Fn::Equals": ["a", "b"]}}
    write_assembly(tmp_path, {name: template(resources, Conditions=conditions)})
    with pytest.raises(TemplateError) as caught:
        deploy(tmp_path, endpoint)
    assert (caught.value.stack, caught.value.logical_id) == (name, "Uses")
    assert "'Never' is not created: its condition is false" in str(caught.value)
    assert queue_names(endpoint, name) == []


def test_a_service_refusing_a_spec_rolls_back(tmp_path: Path, endpoint: str, name: str) -> None:
    resources = {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Handler": "index.handler", "Runtime": "python3.12", "Code": CODE},
        },
        "Mapping": {
            "Type": "AWS::Lambda::EventSourceMapping",
            "Properties": {
                "FunctionName": {"Ref": "Fn"},
                "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
            },
        },
    }
    write_assembly(tmp_path, {name: template(resources)}, assets={ASSET: HANDLER_DIR})
    services = RecordingServices(fail_on="add_event_source_mapping")
    with pytest.raises(DeployError) as caught:
        deploy(tmp_path, endpoint, services)
    assert (caught.value.stack, caught.value.logical_id) == (name, "Mapping")
    assert "add_event_source_mapping refused by the test" in str(caught.value)
    assert queue_names(endpoint, name) == []


def test_an_export_name_used_twice_is_an_error(tmp_path: Path, endpoint: str, name: str) -> None:
    outputs = {"Url": {"Value": {"Ref": "Queue"}, "Export": {"Name": f"{name}:Shared"}}}
    stacks = {
        name: template({"Queue": {"Type": "AWS::SQS::Queue"}}, Outputs=outputs),
        f"{name}-2": template({"Queue": {"Type": "AWS::SQS::Queue"}}, Outputs=outputs),
    }
    write_assembly(tmp_path, stacks, dependencies={f"{name}-2": [name]})
    with pytest.raises(TemplateError, match="is already exported by another stack"):
        deploy(tmp_path, endpoint)
    assert queue_names(endpoint, name) == []


def test_inline_and_zipped_code(tmp_path: Path, endpoint: str, name: str) -> None:
    import zipfile

    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def handler(event, context):\n    return 1\n")
    resources = {
        "Inline": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "index.handler",
                "Runtime": "python3.12",
                "Code": {"ZipFile": "def handler(event, context):\n    return 2\n"},
            },
        },
        "Zipped": {
            "Type": "AWS::Lambda::Function",
            "Properties": {"Handler": "app.handler", "Runtime": "python3.12", "Code": CODE},
        },
    }
    write_assembly(tmp_path / "out", {name: template(resources)}, assets={ASSET: archive})
    services = RecordingServices()
    deployed, _ = deploy(tmp_path / "out", endpoint, services)
    specs = {spec.logical_id: spec for spec in services.specs("add_function")}
    assert (specs["Inline"].code_dir / "index.py").read_text().endswith("return 2\n")
    assert (specs["Zipped"].code_dir / "app.py").read_text().endswith("return 1\n")
    assert specs["Inline"].function_name.startswith(f"{name}-Inline-")
    assert len(specs["Inline"].function_name) <= 64
    assert specs["Inline"].log_group_name == f"/aws/lambda/{specs['Inline'].function_name}"
    assert (specs["Inline"].timeout_s, specs["Inline"].memory_mb) == (3, 128)
    deployed.destroy()
    # The unpacked code goes away with the deployment.
    assert not specs["Inline"].code_dir.exists()
    assert not specs["Zipped"].code_dir.exists()


def test_destroy_after_the_endpoint_stopped(tmp_path: Path, name: str) -> None:
    write_assembly(
        tmp_path,
        {name: template({f"Queue{i}": {"Type": "AWS::SQS::Queue"} for i in range(3)})},
    )
    with local_endpoint() as url:
        deployed, _ = deploy(tmp_path, url)
    started = time.monotonic()
    lines: list[Any] = []
    deployed._on_progress = lines.append
    problems = deployed.destroy()
    assert time.monotonic() - started < 10
    assert len(problems) == 1
    assert "endpoint unreachable" in problems[0]
    assert any("DELETE_SKIPPED" in line for line in lines)
