"""Reading a function's work out of an X-Ray trace, whichever way the store returns it."""

from __future__ import annotations

from typing import Any

from harness.drivers import sampled_trace_header, traced_function
from localcloud.xray import TraceHeader

TRACE = "1-5f000000-0123456789abcdef01234567"


def _call(name: str, operation: str, parent: str | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "name": name,
        "id": f"{name}-{operation}",
        "namespace": "aws",
        "aws": {"operation": operation},
    }
    if parent:
        entity.update(type="subsegment", parent_id=parent, trace_id=TRACE)
    return entity


def _function(name: str, subsegments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "id": f"fn-{name}",
        "trace_id": TRACE,
        "origin": "AWS::Lambda::Function",
        "subsegments": subsegments or [],
    }


def test_nested_subsegments_as_aws_returns_them() -> None:
    handler = {"name": "## handler", "id": "h", "subsegments": [_call("DynamoDB", "PutItem")]}
    documents = [
        {"name": "api", "id": "svc", "origin": "AWS::Lambda", "trace_id": TRACE},
        _function("api", [handler, _call("SQS", "SendMessage")]),
    ]
    traced = traced_function(documents, "api")
    assert traced.segment is not None
    assert traced.segment["id"] == "fn-api"
    assert traced.calls == ("DynamoDB PutItem", "SQS SendMessage")


def test_subsegments_sent_apart_hang_under_their_parent_id() -> None:
    documents = [
        _function("processor"),
        {"name": "## handler", "id": "h", "type": "subsegment", "parent_id": "fn-processor"},
        _call("DynamoDB", "UpdateItem", parent="h"),
        _call("SQS", "SendMessage", parent="elsewhere"),  # not under the function
    ]
    assert traced_function(documents, "processor").calls == ("DynamoDB UpdateItem",)


def test_a_trace_without_the_functions_segment_has_nothing_of_it() -> None:
    documents = [
        {"name": "api", "id": "svc", "origin": "AWS::Lambda", "trace_id": TRACE},
        _call("DynamoDB", "PutItem", parent="fn-api"),  # its segment was not uploaded
        _function("other"),
    ]
    traced = traced_function(documents, "api")
    assert traced.segment is None
    assert traced.calls == ()


def test_a_parent_cycle_does_not_hang() -> None:
    documents = [
        _function("api"),
        {"name": "a", "id": "a", "parent_id": "b"},
        {"name": "b", "id": "b", "parent_id": "a", "namespace": "aws"},
    ]
    assert traced_function(documents, "api").calls == ()


def test_a_client_started_trace_is_sampled_and_well_formed() -> None:
    trace_id, header = sampled_trace_header()
    assert TraceHeader.parse(header) == TraceHeader(trace_id, None, True)
