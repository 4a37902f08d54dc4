"""Assemblies the engine must reject before creating anything (no network needed).

Every deployment here points at an endpoint where nothing listens: had the engine
created anything before finding the problem, the error would be a connection failure
instead of the one asserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcloud.cfn import (
    AssemblyError,
    CfnError,
    CloudAssembly,
    TemplateError,
    UnsupportedResourceError,
    deploy_assembly,
)
from localcloud.cfn.graph import CycleError, topological_order
from localcloud.cfn.testing import (
    REGION,
    UNREACHABLE_ENDPOINT,
    RecordingServices,
    template,
    write_assembly,
)

QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}}


def deploy(assembly: Path) -> RecordingServices:
    services = RecordingServices()
    deploy_assembly(assembly, endpoint_url=UNREACHABLE_ENDPOINT, region=REGION, services=services)
    return services


def rejected(assembly: Path, error: type[CfnError] = TemplateError) -> CfnError:
    services = RecordingServices()
    with pytest.raises(error) as caught:
        deploy_assembly(
            assembly, endpoint_url=UNREACHABLE_ENDPOINT, region=REGION, services=services
        )
    assert services.calls == [], "nothing may reach the local services"
    return caught.value


def function(code: dict[str, Any], runtime: str = "python3.12") -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Handler": "index.handler", "Runtime": runtime, "Code": code, "Role": "r"},
    }


# -- ordering -------------------------------------------------------------------------


def test_topological_order_puts_dependencies_first_and_keeps_template_order() -> None:
    nodes = ["Api", "Fn", "Queue", "Table", "Role"]
    depends = {"Api": {"Fn"}, "Fn": {"Queue", "Role", "Table"}, "Queue": set(), "Role": {"Outside"}}
    order = topological_order(nodes, depends)
    assert order == ["Queue", "Table", "Role", "Fn", "Api"]


def test_topological_order_names_the_cycle() -> None:
    with pytest.raises(CycleError) as caught:
        topological_order(["A", "B", "C", "D"], {"A": {"B"}, "B": {"C"}, "C": {"A"}, "D": set()})
    assert caught.value.cycle == ["A", "B", "C", "A"]


def test_stacks_are_ordered_by_their_manifest_dependencies(tmp_path: Path) -> None:
    stacks = {name: template({"Q": QUEUE}) for name in ("Monitoring", "Api", "Queue")}
    write_assembly(
        tmp_path, stacks, dependencies={"Monitoring": ["Api", "Queue"], "Api": ["Queue"]}
    )
    assembly = CloudAssembly.load(tmp_path)
    assert [stack.stack_name for stack in assembly.stacks] == ["Queue", "Api", "Monitoring"]
    assert assembly.stacks[0].tags == {"suite": "cfn-tests"}


def test_stack_dependency_cycle_is_an_error(tmp_path: Path) -> None:
    stacks = {name: template({"Q": QUEUE}) for name in ("A", "B")}
    write_assembly(tmp_path, stacks, dependencies={"A": ["B"], "B": ["A"]})
    error = rejected(tmp_path, AssemblyError)
    assert "cycle" in str(error)


def test_resource_cycle_is_an_error_naming_it(tmp_path: Path) -> None:
    resources = {
        "First": {**QUEUE, "DependsOn": "Second"},
        "Second": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Third"}}},
        "Third": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "First"}}},
    }
    write_assembly(tmp_path, {"Loop": template(resources)})
    error = rejected(tmp_path)
    assert "stack Loop" in str(error)
    assert "First -> Second -> Third -> First" in str(error)


# -- unsupported things ---------------------------------------------------------------


def test_unsupported_types_are_named_before_anything_is_created(tmp_path: Path) -> None:
    # The first stack is fine: it must not be deployed either (the endpoint is unreachable,
    # so creating its queue would fail with a connection error instead).
    write_assembly(
        tmp_path,
        {
            "Good": template({"Queue": QUEUE}),
            "Bad": template(
                {
                    "Topic": {"Type": "AWS::SNS::Topic"},
                    "Bucket": {"Type": "AWS::S3::Bucket"},
                    "Queue": QUEUE,
                }
            ),
        },
        dependencies={"Bad": ["Good"]},
    )
    error = rejected(tmp_path, UnsupportedResourceError)
    assert "Bad/Topic (AWS::SNS::Topic)" in str(error)
    assert "Bad/Bucket (AWS::S3::Bucket)" in str(error)
    assert "Good" not in str(error).replace("Good/", "")


def test_custom_resources_are_unsupported(tmp_path: Path) -> None:
    resources = {"Retention": {"Type": "Custom::LogRetention", "Properties": {}}}
    write_assembly(tmp_path, {"S": template(resources)})
    assert "S/Retention (Custom::LogRetention)" in str(rejected(tmp_path, UnsupportedResourceError))


def test_transforms_are_unsupported(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"S": template({"Q": QUEUE}, Transform="AWS::Serverless-2016-10-31")})
    assert "transforms" in str(rejected(tmp_path))


def test_nodejs_functions_are_unsupported(tmp_path: Path) -> None:
    write_assembly(
        tmp_path, {"S": template({"Fn": function({"ZipFile": "x"}, runtime="nodejs20.x")})}
    )
    error = rejected(tmp_path)
    assert "resource Fn" in str(error)
    assert "runtime 'nodejs20.x' is not supported" in str(error)


def test_http_integrations_are_unsupported(tmp_path: Path) -> None:
    method = {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": "GET",
            "ResourceId": "root",
            "RestApiId": "api",
            "Integration": {"Type": "HTTP_PROXY", "Uri": "https://example.com"},
        },
    }
    write_assembly(tmp_path, {"S": template({"Get": method})})
    error = rejected(tmp_path)
    assert "resource Get" in str(error)
    assert "integration type 'HTTP_PROXY' is not supported" in str(error)


@pytest.mark.parametrize("authorization", ["COGNITO_USER_POOLS", "CUSTOM"])
def test_authorizers_are_refused_not_served_open(tmp_path: Path, authorization: str) -> None:
    method = {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": "GET",
            "ResourceId": "root",
            "RestApiId": "api",
            "AuthorizationType": authorization,
            "Integration": {"Type": "MOCK"},
        },
    }
    write_assembly(tmp_path, {"S": template({"Get": method})})
    error = rejected(tmp_path)
    assert "resource Get" in str(error)
    assert f"authorization type {authorization!r} is not supported" in str(error)
    assert "NONE, AWS_IAM" in str(error)


def _math_alarm(expression: str) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "Metrics": [
                {"Id": "e1", "Expression": expression, "ReturnData": True},
                {
                    "Id": "m1",
                    "MetricStat": {
                        "Metric": {"Namespace": "N", "MetricName": "M"},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                },
            ],
        },
    }


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("ANOMALY_DETECTION_BAND(m1)", "function ANOMALY_DETECTION_BAND is not supported"),
        ("m1 + m2", "refers to unknown ids ['m2']"),
        ("m1 +", "expected more"),
    ],
)
def test_metric_math_the_local_evaluator_cannot_do_is_refused_by_name(
    tmp_path: Path, expression: str, message: str
) -> None:
    write_assembly(tmp_path, {"S": template({"Alarm": _math_alarm(expression)})})
    error = str(rejected(tmp_path))
    assert "resource Alarm" in error
    assert message in error


# -- broken templates ---------------------------------------------------------------


def test_bad_json_names_the_stack(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"Fine": template({"Q": QUEUE}), "Broken": '{"Resources": {'})
    error = rejected(tmp_path)
    assert "stack Broken" in str(error)
    assert "not valid JSON" in str(error)


def test_missing_manifest(tmp_path: Path) -> None:
    error = rejected(tmp_path, AssemblyError)
    assert "manifest.json" in str(error)


def test_missing_template_file(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"S": template({"Q": QUEUE})})
    (tmp_path / "S.template.json").unlink()
    error = rejected(tmp_path)
    assert "stack S" in str(error)
    assert "cannot read template" in str(error)


def test_ref_to_missing_resource(tmp_path: Path) -> None:
    resources = {
        "Queue": QUEUE,
        "Policy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": "Queue"}, {"Ref": "Gone"}], "PolicyDocument": {}},
        },
    }
    write_assembly(tmp_path, {"S": template(resources)})
    error = rejected(tmp_path)
    assert isinstance(error, TemplateError)
    assert (error.stack, error.logical_id, error.path) == ("S", "Policy", "Properties.Queues[1]")
    assert "Ref to unknown resource or parameter 'Gone'" in str(error)


def test_get_att_of_an_attribute_the_type_does_not_have(tmp_path: Path) -> None:
    resources = {
        "Queue": QUEUE,
        "Other": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::GetAtt": ["Queue", "StreamArn"]}},
        },
    }
    write_assembly(tmp_path, {"S": template(resources)})
    error = str(rejected(tmp_path))
    assert "resource Other" in error
    assert "AWS::SQS::Queue has no attribute 'StreamArn'" in error
    assert "supported: Arn, QueueName, QueueUrl" in error


def test_unknown_intrinsic(tmp_path: Path) -> None:
    resources = {
        "Q": {"Type": "AWS::SQS::Queue", "Properties": {"DelaySeconds": {"Fn::Length": [1]}}}
    }
    write_assembly(tmp_path, {"S": template(resources)})
    error = str(rejected(tmp_path))
    assert "stack S, resource Q" in error
    assert "'Fn::Length'" in error


def test_unknown_depends_on_and_condition(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"S": template({"Q": {**QUEUE, "DependsOn": ["Ghost"]}})})
    assert "DependsOn names unknown resource 'Ghost'" in str(rejected(tmp_path))
    write_assembly(tmp_path, {"S": template({"Q": {**QUEUE, "Condition": "Ghost"}})})
    assert "unknown condition 'Ghost'" in str(rejected(tmp_path))
    outputs = {"Url": {"Value": {"Ref": "Q"}, "Condition": "Ghost"}}
    write_assembly(tmp_path, {"S": template({"Q": QUEUE}, Outputs=outputs)})
    assert "resource Outputs.Url, at Condition: unknown condition 'Ghost'" in str(
        rejected(tmp_path)
    )


def test_conditions_may_not_refer_to_resources(tmp_path: Path) -> None:
    conditions = {"C": {"Fn::Equals": [{"Ref": "Q"}, "x"]}}
    write_assembly(tmp_path, {"S": template({"Q": QUEUE}, Conditions=conditions)})
    assert "conditions cannot refer to resource 'Q'" in str(rejected(tmp_path))


def test_parameter_without_value(tmp_path: Path) -> None:
    write_assembly(
        tmp_path, {"S": template({"Q": QUEUE}, Parameters={"Stage": {"Type": "String"}})}
    )
    error = str(rejected(tmp_path))
    assert "stack S" in error
    assert "parameter 'Stage' has no value" in error


def test_parameter_outside_allowed_values(tmp_path: Path) -> None:
    parameters = {"Stage": {"Type": "String", "Default": "v9", "AllowedValues": ["v1", "v2"]}}
    write_assembly(tmp_path, {"S": template({"Q": QUEUE}, Parameters=parameters)})
    assert "'v9' is not one of" in str(rejected(tmp_path))


def test_import_of_a_name_nobody_exports(tmp_path: Path) -> None:
    producer = template(
        {"Q": QUEUE},
        Outputs={"Url": {"Value": {"Ref": "Q"}, "Export": {"Name": "Producer:Url"}}},
    )
    consumer = template(
        {
            "Q": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::ImportValue": "Producer:Arn"}},
            }
        }
    )
    write_assembly(
        tmp_path,
        {"Producer": producer, "Consumer": consumer},
        dependencies={"Consumer": ["Producer"]},
    )
    error = str(rejected(tmp_path))
    assert "stack Consumer, resource Q" in error
    assert "Fn::ImportValue 'Producer:Arn': no stack deployed before this one exports" in error


def test_import_from_a_stack_deployed_later(tmp_path: Path) -> None:
    # The exporting stack exists, but nothing makes it deploy first.
    first = template(
        {
            "Q": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": {"Fn::ImportValue": "L:Url"}},
            }
        }
    )
    later = template(
        {"Q": QUEUE}, Outputs={"Url": {"Value": {"Ref": "Q"}, "Export": {"Name": "L:Url"}}}
    )
    write_assembly(tmp_path, {"First": first, "Later": later})
    assert "stack First" in str(rejected(tmp_path))


def test_output_with_a_broken_reference(tmp_path: Path) -> None:
    outputs = {"Url": {"Value": {"Fn::GetAtt": ["Nope", "Arn"]}}}
    write_assembly(tmp_path, {"S": template({"Q": QUEUE}, Outputs=outputs)})
    error = str(rejected(tmp_path))
    assert "resource Outputs.Url" in error
    assert "unknown resource 'Nope'" in error


def test_code_asset_not_in_the_assembly(tmp_path: Path) -> None:
    code = {
        "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
        "S3Key": "abc.zip",
    }
    write_assembly(tmp_path, {"S": template({"Fn": function(code)})})
    error = str(rejected(tmp_path))
    assert "stack S, resource Fn" in error
    assert (
        "s3://cdk-hnb659fds-assets-123456789012-us-east-1/abc.zip is not in the cloud assembly"
        in error
    )


def test_code_asset_directory_missing(tmp_path: Path) -> None:
    code = {
        "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
        "S3Key": "abc.zip",
    }
    write_assembly(
        tmp_path / "out", {"S": template({"Fn": function(code)})}, assets={"abc": tmp_path / "gone"}
    )
    error = str(rejected(tmp_path / "out"))
    assert "resource Fn" in error
    assert f"should be at {tmp_path / 'gone'}, which does not exist" in error


def test_stack_bound_to_another_region(tmp_path: Path) -> None:
    write_assembly(
        tmp_path, {"S": template({"Q": QUEUE})}, environment="aws://123456789012/eu-west-1"
    )
    assert "bound to region eu-west-1; the local cloud runs us-east-1" in str(rejected(tmp_path))


def test_nested_assemblies_are_unsupported(tmp_path: Path) -> None:
    write_assembly(tmp_path, {"S": template({"Q": QUEUE})})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["artifacts"]["assembly-Stage"] = {
        "type": "cdk:cloud-assembly",
        "properties": {"directoryName": "assembly-Stage"},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert "nested cloud assemblies" in str(rejected(tmp_path, AssemblyError))


def test_an_environment_variable_that_is_not_a_string(tmp_path: Path) -> None:
    fn = function({"ZipFile": "def handler(event, context): pass"})
    fn["Properties"]["Environment"] = {"Variables": {"LIST": {"Fn::Split": [",", "a,b"]}}}
    write_assembly(tmp_path, {"S": template({"Fn": fn})})
    error = rejected(tmp_path)
    assert (getattr(error, "stack", None), getattr(error, "logical_id", None)) == ("S", "Fn")
    assert "environment variable LIST needs a string" in str(error)
