"""Updating a deployed assembly from a newer one (``localcloud.cfn.update``).

A Lambda function's code and configuration are applied in place, resolved against what
is deployed (the same table, the same role); every other difference is a blocker that
names the stack, the resource and what changed, and nothing is applied.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.cfn import DeployedAssembly, deploy_assembly
from localcloud.cfn.errors import UpdateError
from localcloud.cfn.testing import REGION, RecordingServices, local_endpoint, write_assembly
from localcloud.cfn.update import apply_update, plan_update
from localcloud.specs import FunctionSpec

HANDLER_DIR = Path(__file__).resolve().parent / "cfn_templates" / "sample_handler"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with local_endpoint() as url:
        yield url


def _code(asset: str) -> dict[str, Any]:
    return {
        "S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"},
        "S3Key": f"{asset}.zip",
    }


def _template(name: str) -> dict[str, Any]:
    return {
        "Resources": {
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": f"{name}-tasks",
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "BillingMode": "PAY_PER_REQUEST",
                },
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}},
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ]
                    }
                },
            },
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": f"{name}-fn",
                    "Handler": "cfn_sample_handler.handler",
                    "Runtime": "python3.12",
                    "Code": _code("aaaa"),
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Timeout": 3,
                    "Environment": {"Variables": {"TABLE": {"Ref": "Table"}, "MODE": "one"}},
                },
                "Metadata": {"aws:cdk:path": f"{name}/Function/Resource"},
            },
        },
        "Outputs": {"TableName": {"Value": {"Ref": "Table"}}},
    }


@pytest.fixture
def deployed(endpoint: str, tmp_path: Path) -> Iterator[tuple[DeployedAssembly, str, Path]]:
    name = f"u{uuid.uuid4().hex[:8]}"
    assets = {"aaaa": HANDLER_DIR, "bbbb": HANDLER_DIR}
    write_assembly(tmp_path / "v1", {name: _template(name)}, assets=assets)
    with deploy_assembly(
        tmp_path / "v1", endpoint_url=endpoint, region=REGION, services=RecordingServices()
    ) as result:
        yield result, name, tmp_path


def _new_version(
    tmp_path: Path, name: str, edit: Callable[[dict[str, Any]], None], **stacks: Any
) -> Path:
    template = copy.deepcopy(_template(name))
    edit(template)
    return write_assembly(
        tmp_path / f"v-{uuid.uuid4().hex[:6]}",
        {name: template, **stacks},
        assets={"aaaa": HANDLER_DIR, "bbbb": HANDLER_DIR},
    )


def _function(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["Function"]["Properties"]
    return properties


def test_code_and_configuration_of_a_function_are_applied_in_place(
    deployed: tuple[DeployedAssembly, str, Path],
) -> None:
    assembly, name, tmp_path = deployed

    def edit(template: dict[str, Any]) -> None:
        function = _function(template)
        function["Code"] = _code("bbbb")
        function["Timeout"] = 9
        function["Environment"]["Variables"]["MODE"] = "two"
        template["Resources"]["Function"]["Metadata"] = {"aws:cdk:path": "moved"}

    plan = plan_update(assembly, _new_version(tmp_path, name, edit))
    assert plan.blockers == ()
    assert [(c.logical_id, c.properties) for c in plan.changes] == [
        ("Function", ("Code", "Environment", "Timeout"))
    ]
    updated: list[FunctionSpec] = []
    apply_update(assembly, plan, updated.append)

    (spec,) = updated
    assert spec.function_name == f"{name}-fn"
    assert spec.timeout_s == 9
    assert spec.environment == {"TABLE": f"{name}-tasks", "MODE": "two"}
    assert spec.role_arn == assembly.resource(name, "Role").attributes["Arn"]
    assert spec.code_dir == HANDLER_DIR
    assert assembly.functions == [spec]
    assert assembly.assembly is plan.assembly
    # Compared with the new assembly from now on: nothing left to apply.
    again = plan_update(assembly, plan.assembly.directory)
    assert (again.changes, again.blockers) == ((), ())


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(template: dict[str, Any]) -> None:
        node = template
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _add_queue(template: dict[str, Any]) -> None:
    template["Resources"]["Other"] = {"Type": "AWS::SQS::Queue", "Properties": {}}


def _remove_queue(template: dict[str, Any]) -> None:
    del template["Resources"]["Queue"]


@pytest.mark.parametrize(
    ("edit", "blocker"),
    [
        pytest.param(
            _set(("Resources", "Queue", "Properties", "VisibilityTimeout"), 60),
            "/Queue (AWS::SQS::Queue): VisibilityTimeout changed",
            id="a queue property",
        ),
        pytest.param(
            _set(("Resources", "Function", "Properties", "FunctionName"), "renamed"),
            "/Function (AWS::Lambda::Function): FunctionName changed",
            id="a function's name (a replacement)",
        ),
        pytest.param(
            _set(("Resources", "Function", "Properties", "Role"), "arn:aws:iam::1:role/x"),
            "/Function (AWS::Lambda::Function): Role changed",
            id="a function's role",
        ),
        pytest.param(_add_queue, "/Other (AWS::SQS::Queue) added", id="a resource added"),
        pytest.param(_remove_queue, "/Queue (AWS::SQS::Queue) removed", id="a resource removed"),
        pytest.param(
            _set(("Outputs", "Extra"), {"Value": "x"}),
            ": the template's Outputs changed",
            id="an output",
        ),
        pytest.param(
            _set(("Resources", "Queue", "Condition"), "Never"),
            "/Queue (AWS::SQS::Queue): Condition changed",
            id="a resource's condition",
        ),
    ],
)
def test_a_change_the_engine_cannot_apply_in_place_blocks_the_whole_update(
    deployed: tuple[DeployedAssembly, str, Path],
    edit: Callable[[dict[str, Any]], None],
    blocker: str,
) -> None:
    assembly, name, tmp_path = deployed

    def edit_with_code(template: dict[str, Any]) -> None:
        _function(template)["Code"] = _code("bbbb")  # applicable, but not alone
        edit(template)

    plan = plan_update(assembly, _new_version(tmp_path, name, edit_with_code))

    assert len(plan.blockers) == 1, plan.blockers
    assert plan.blockers[0].startswith(name)
    assert blocker in plan.blockers[0]
    updated: list[FunctionSpec] = []
    with pytest.raises(UpdateError, match="needs a restart"):
        apply_update(assembly, plan, updated.append)
    assert updated == []
    assert plan_update(assembly, assembly.assembly.directory).changes == ()


def test_a_stack_added_is_a_blocker(deployed: tuple[DeployedAssembly, str, Path]) -> None:
    assembly, name, tmp_path = deployed
    extra = {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {}}}}
    plan = plan_update(
        assembly, _new_version(tmp_path, name, lambda template: None, **{f"{name}x": extra})
    )
    assert plan.blockers == (f"stack {name}x added",)


def test_what_runs_nothing_differently_is_no_change(
    deployed: tuple[DeployedAssembly, str, Path],
) -> None:
    assembly, name, tmp_path = deployed

    def edit(template: dict[str, Any]) -> None:
        template["Resources"]["Function"]["Metadata"] = {"aws:asset:path": "asset.bbbb"}
        template["Resources"]["Queue"]["DependsOn"] = ["Table"]
        template["Resources"]["Queue"]["DeletionPolicy"] = "Retain"
        template["Description"] = "another description"

    plan = plan_update(assembly, _new_version(tmp_path, name, edit))
    assert (plan.changes, plan.blockers) == ((), ())


def _with_stack_tags(directory: Path, tags: dict[str, str]) -> Path:
    manifest_file = directory / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack":
            artifact["properties"]["tags"].update(tags)
    manifest_file.write_text(json.dumps(manifest))
    return directory


def test_the_expiry_tag_computed_at_synthesis_is_no_change_but_other_tags_are(
    deployed: tuple[DeployedAssembly, str, Path],
) -> None:
    assembly, name, tmp_path = deployed
    later = _with_stack_tags(
        _new_version(tmp_path, name, lambda template: None), {"expires-at": "2099-01-01T00:00Z"}
    )
    assert plan_update(assembly, later).blockers == ()
    retagged = _with_stack_tags(
        _new_version(tmp_path, name, lambda template: None), {"owner": "someone"}
    )
    assert plan_update(assembly, retagged).blockers == (f"{name}: stack tags changed (owner)",)
