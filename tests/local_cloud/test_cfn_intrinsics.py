"""The intrinsic functions of the local CloudFormation engine, one by one (no network)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from localcloud.cfn import NO_VALUE, Resolver, TemplateError, rewrite_api_urls
from localcloud.cfn.intrinsics import Reference, scan


class FakeResources:
    """Deployed resources: ``Ref`` values and ``GetAtt`` attributes by logical id."""

    def __init__(
        self, refs: Mapping[str, str], attributes: Mapping[str, Mapping[str, Any]]
    ) -> None:
        self.refs = refs
        self.attributes = attributes

    def ref(self, logical_id: str) -> Any:
        return self.refs[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if attribute not in self.attributes.get(logical_id, {}):
            raise TemplateError(f"{logical_id} has no attribute {attribute!r}")
        return self.attributes[logical_id][attribute]


QUEUE_URL = "http://127.0.0.1:5000/123456789012/stack-Queue-ABC.fifo"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:stack-Queue-ABC.fifo"


def make_resolver(
    *,
    parameters: Mapping[str, Any] | None = None,
    conditions: Mapping[str, Any] | None = None,
    mappings: Mapping[str, Any] | None = None,
    exports: Mapping[str, str] | None = None,
) -> Resolver:
    resources = FakeResources(
        refs={"Queue": QUEUE_URL, "Table": "tasks-table"},
        attributes={
            "Queue": {"Arn": QUEUE_ARN, "QueueName": "stack-Queue-ABC.fifo"},
            "Table": {"Arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/tasks-table"},
        },
    )
    return Resolver(
        stack_name="my-stack",
        region="eu-west-1",
        account_id="123456789012",
        parameters=parameters or {"Stage": "v1", "Size": "10"},
        conditions=conditions or {},
        mappings=mappings or {},
        resources=resources,
        imports=dict(exports or {}).get,
        resource_ids={"Queue", "Table", "NotYet"},
        stack_id="arn:aws:cloudformation:eu-west-1:123456789012:stack/my-stack/1234",
    )


def test_ref_resolves_parameters_resources_and_pseudo_parameters() -> None:
    resolver = make_resolver()
    assert resolver.resolve({"Ref": "Stage"}) == "v1"
    assert resolver.resolve({"Ref": "Queue"}) == QUEUE_URL
    assert resolver.resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "123456789012"
    assert resolver.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert resolver.resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert resolver.resolve({"Ref": "AWS::StackName"}) == "my-stack"
    assert resolver.resolve({"Ref": "AWS::StackId"}).startswith("arn:aws:cloudformation:eu-west-1")
    assert resolver.resolve({"Ref": "AWS::NotificationARNs"}) == []


def test_no_value_removes_the_property_or_list_element() -> None:
    resolver = make_resolver()
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE
    assert resolver.resolve({"A": {"Ref": "AWS::NoValue"}, "B": 1}) == {"B": 1}
    assert resolver.resolve(["x", {"Ref": "AWS::NoValue"}, "y"]) == ["x", "y"]


def test_ref_to_something_unknown_names_stack_resource_and_path() -> None:
    with pytest.raises(TemplateError) as caught:
        make_resolver().resolve(
            {"Env": {"QUEUE": {"Ref": "Missing"}}}, logical_id="Fn", path="Properties"
        )
    error = caught.value
    assert (error.stack, error.logical_id) == ("my-stack", "Fn")
    assert error.path == "Properties.Env.QUEUE.Ref"
    assert "Ref to unknown resource or parameter 'Missing'" in str(error)
    assert str(error).startswith("stack my-stack, resource Fn")


def test_get_att_in_both_forms() -> None:
    resolver = make_resolver()
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == QUEUE_ARN
    assert resolver.resolve({"Fn::GetAtt": "Queue.QueueName"}) == "stack-Queue-ABC.fifo"
    # The attribute name may itself come from an intrinsic.
    resolver_with_attr = make_resolver(parameters={"Attr": "Arn"})
    assert resolver_with_attr.resolve({"Fn::GetAtt": ["Queue", {"Ref": "Attr"}]}) == QUEUE_ARN


def test_get_att_errors() -> None:
    resolver = make_resolver()
    with pytest.raises(TemplateError, match="no attribute 'StreamArn'"):
        resolver.resolve({"Fn::GetAtt": ["Table", "StreamArn"]})
    with pytest.raises(TemplateError, match="Fn::GetAtt of unknown resource 'Nope'"):
        resolver.resolve({"Fn::GetAtt": ["Nope", "Arn"]})
    with pytest.raises(TemplateError, match="Fn::GetAtt takes"):
        resolver.resolve({"Fn::GetAtt": "NoDot"})


def test_join() -> None:
    resolver = make_resolver()
    value = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":s3:::", {"Ref": "Table"}, "/", 7, "/", True],
        ]
    }
    assert resolver.resolve(value) == "arn:aws:s3:::tasks-table/7/true"
    assert resolver.resolve({"Fn::Join": [",", {"Fn::Split": ["|", "a|b"]}]}) == "a,b"
    with pytest.raises(TemplateError, match="Fn::Join needs a string"):
        resolver.resolve({"Fn::Join": ["", [["nested"]]]})


def test_sub_string_form() -> None:
    resolver = make_resolver()
    value = {"Fn::Sub": "${AWS::StackName}-${Stage}:${Table}:${Queue.Arn}:${!Literal}"}
    assert resolver.resolve(value) == f"my-stack-v1:tasks-table:{QUEUE_ARN}:${{Literal}}"


def test_sub_list_form_with_variables() -> None:
    resolver = make_resolver()
    value = {
        "Fn::Sub": [
            "cdk-${Qualifier}-assets-${AWS::AccountId}-${AWS::Region}/${Key}",
            {"Qualifier": "hnb659fds", "Key": {"Fn::Join": ["", [{"Ref": "Stage"}, ".zip"]]}},
        ]
    }
    assert resolver.resolve(value) == "cdk-hnb659fds-assets-123456789012-eu-west-1/v1.zip"


def test_sub_of_unknown_variable_fails() -> None:
    with pytest.raises(TemplateError, match="Ref to unknown resource or parameter 'Nope'"):
        make_resolver().resolve({"Fn::Sub": "x-${Nope}"})


def test_select_and_split() -> None:
    resolver = make_resolver()
    assert resolver.resolve({"Fn::Select": [1, ["a", "b", "c"]]}) == "b"
    assert resolver.resolve({"Fn::Select": ["0", {"Fn::Split": [":", QUEUE_ARN]}]}) == "arn"
    # The queue name from its ARN, as CDK renders QueueName for an imported queue.
    name = {"Fn::Select": [5, {"Fn::Split": [":", {"Fn::GetAtt": ["Queue", "Arn"]}]}]}
    assert resolver.resolve(name) == "stack-Queue-ABC.fifo"
    with pytest.raises(TemplateError, match="index 3 is out of range for 2 values"):
        resolver.resolve({"Fn::Select": [3, ["a", "b"]]})
    with pytest.raises(TemplateError, match="is not a number"):
        resolver.resolve({"Fn::Select": ["first", ["a"]]})


def test_get_azs_and_base64() -> None:
    resolver = make_resolver()
    assert resolver.resolve({"Fn::GetAZs": ""}) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert resolver.resolve({"Fn::Select": [0, {"Fn::GetAZs": {"Ref": "AWS::Region"}}]}) == (
        "eu-west-1a"
    )
    encoded = resolver.resolve({"Fn::Base64": {"Fn::Sub": "stage=${Stage}"}})
    assert base64.b64decode(encoded) == b"stage=v1"


def test_find_in_map() -> None:
    resolver = make_resolver(mappings={"Sizes": {"eu-west-1": {"Memory": 512}}})
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Memory"]}) == 512
    with pytest.raises(TemplateError, match="no 'us-east-1'"):
        resolver.resolve({"Fn::FindInMap": ["Sizes", "us-east-1", "Memory"]})


def test_conditions_if_equals_not_and_or() -> None:
    conditions = {
        "IsV1": {"Fn::Equals": [{"Ref": "Stage"}, "v1"]},
        "IsBig": {"Fn::Equals": [{"Ref": "Size"}, 10]},  # "10" equals 10: strings are compared
        "NotV1": {"Fn::Not": [{"Condition": "IsV1"}]},
        "Both": {"Fn::And": [{"Condition": "IsV1"}, {"Condition": "IsBig"}]},
        "Either": {"Fn::Or": [{"Condition": "NotV1"}, {"Fn::Equals": ["a", "a"]}]},
        "Neither": {"Fn::Or": [{"Condition": "NotV1"}, {"Fn::Equals": ["a", "b"]}]},
        "Alias": {"Condition": "Both"},
    }
    resolver = make_resolver(conditions=conditions)
    expected = {
        "IsV1": True,
        "IsBig": True,
        "NotV1": False,
        "Both": True,
        "Either": True,
        "Neither": False,
        "Alias": True,
    }
    assert {name: resolver.condition(name) for name in conditions} == expected
    assert resolver.resolve({"Fn::If": ["IsV1", "yes", "no"]}) == "yes"
    assert resolver.resolve({"Fn::If": ["NotV1", "yes", {"Ref": "Table"}]}) == "tasks-table"
    assert resolver.resolve({"X": {"Fn::If": ["NotV1", 1, {"Ref": "AWS::NoValue"}]}}) == {}


def test_only_the_chosen_if_branch_is_resolved() -> None:
    resolver = make_resolver(conditions={"Off": {"Fn::Equals": ["a", "b"]}})
    # The true branch refers to a resource that is not created: never looked at.
    assert resolver.resolve({"Fn::If": ["Off", {"Ref": "NotYet"}, "fallback"]}) == "fallback"


def test_condition_errors() -> None:
    resolver = make_resolver(
        conditions={
            "A": {"Fn::Not": [{"Condition": "B"}]},
            "B": {"Fn::Not": [{"Condition": "A"}]},
            "NotBoolean": {"Ref": "Stage"},
        }
    )
    with pytest.raises(TemplateError, match="conditions refer to each other: A -> B -> A"):
        resolver.condition("A")
    with pytest.raises(TemplateError, match="does not evaluate to true or false"):
        resolver.condition("NotBoolean")
    with pytest.raises(TemplateError, match="unknown condition 'Missing'"):
        resolver.resolve({"Fn::If": ["Missing", 1, 2]})


def test_import_value() -> None:
    resolver = make_resolver(exports={"other:QueueUrl": QUEUE_URL})
    assert resolver.resolve({"Fn::ImportValue": "other:QueueUrl"}) == QUEUE_URL
    assert resolver.resolve({"Fn::ImportValue": {"Fn::Sub": "other:QueueUrl"}}) == QUEUE_URL
    with pytest.raises(TemplateError, match="no stack deployed before this one exports"):
        resolver.resolve({"Fn::ImportValue": "other:Missing"})


@pytest.mark.parametrize("function", ["Fn::Length", "Fn::Cidr", "Fn::ToJsonString", "Fn::Nope"])
def test_unknown_intrinsic_is_an_error(function: str) -> None:
    with pytest.raises(
        TemplateError, match=f"unknown or unsupported intrinsic function '{function}'"
    ):
        make_resolver().resolve({"Key": {function: ["a"]}}, logical_id="Res", path="Properties")
    with pytest.raises(TemplateError, match=f"'{function}'"):
        list(scan({"Key": {function: ["a"]}}))


def test_a_dict_with_other_keys_is_not_an_intrinsic() -> None:
    # Only single-key objects are function calls; a property named "Ref" among others is data.
    value = {"Ref": "x", "Other": 1}
    assert make_resolver().resolve(value) == value


def test_scan_finds_every_kind_of_reference() -> None:
    value = {
        "A": {"Ref": "Queue"},
        "B": {"Fn::GetAtt": "Table.Arn"},
        "C": {
            "Fn::Sub": ["${Queue.QueueName}-${Var}-${AWS::Region}-${!Skip}", {"Var": {"Ref": "P"}}]
        },
        "D": {"Fn::If": ["Cond", {"Ref": "Left"}, {"Ref": "Right"}]},
        "E": {"Fn::ImportValue": "exported-name"},
        "F": {"Fn::FindInMap": ["Map", "k1", "k2"]},
        "G": {"Fn::And": [{"Condition": "C1"}, {"Fn::Equals": [{"Ref": "P2"}, "x"]}]},
    }
    found = {(ref.kind, ref.target, ref.attribute) for ref in scan(value)}
    assert found == {
        ("Ref", "Queue", None),
        ("GetAtt", "Table", "Arn"),
        ("GetAtt", "Queue", "QueueName"),
        ("Ref", "AWS::Region", None),
        ("Ref", "P", None),
        ("Condition", "Cond", None),
        ("Ref", "Left", None),
        ("Ref", "Right", None),
        ("ImportValue", "exported-name", None),
        ("FindInMap", "Map", None),
        ("Condition", "C1", None),
        ("Ref", "P2", None),
    }
    paths = {ref.path for ref in scan({"Env": {"X": {"Ref": "Queue"}}}, "Properties")}
    assert paths == {"Properties.Env.X"}
    assert Reference("Ref", "Queue", path="Properties.Env.X") in set(
        scan({"Env": {"X": {"Ref": "Queue"}}}, "Properties")
    )


def test_api_urls_in_outputs_become_the_local_ones() -> None:
    local = {("abc123defg", "v1"): "http://127.0.0.1:4567/v1/"}
    aws_url = "https://abc123defg.execute-api.us-east-1.amazonaws.com/v1/"
    assert rewrite_api_urls(aws_url, local) == "http://127.0.0.1:4567/v1/"
    assert rewrite_api_urls(aws_url + "tasks", local) == "http://127.0.0.1:4567/v1/tasks"
    # Another API, another stage, or any other URL: left as the template renders it.
    other_api = "https://zzz999zzzz.execute-api.us-east-1.amazonaws.com/v1/"
    other_stage = "https://abc123defg.execute-api.us-east-1.amazonaws.com/prod/"
    for untouched in (other_api, other_stage, "https://example.com/v1/"):
        assert rewrite_api_urls(untouched, local) == untouched
