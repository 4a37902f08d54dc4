"""The Lambda API the local cloud serves through ``AwsEndpointUrl``, read with boto3."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.waiting import wait_until
from localcloud.endpoint import AwsEndpoint
from localcloud.lambda_service.control_plane import LambdaControlPlane
from localcloud.specs import EventSourceMappingSpec, FunctionSpec, InvokeResult

FUNCTION = FunctionSpec(
    logical_id="Fn",
    stack_name="s",
    function_name="demo-processor",
    arn="arn:aws:lambda:us-east-1:123456789012:function:demo-processor",
    handler="handlers.processor.handler",
    runtime="python3.12",
    code_dir=Path("/tmp"),
    timeout_s=3,
    memory_mb=512,
    reserved_concurrency=10,
    environment={"A": "1"},
    role_arn="arn:aws:iam::123456789012:role/r",
    log_group_name="/aws/lambda/demo-processor",
)
MAPPING_UUID = "4f7d2b1e-3c5a-4e8b-9a6d-1f2e3d4c5b6a"
MAPPING = EventSourceMappingSpec(
    uuid=MAPPING_UUID,
    function_name="demo-processor",
    event_source_arn="arn:aws:sqs:us-east-1:123456789012:q.fifo",
    queue_url="http://q",
    batch_size=10,
    function_response_types=("ReportBatchItemFailures",),
)


@pytest.fixture
def lam() -> Iterator[tuple[Any, list[EventSourceMappingSpec]]]:
    def invoke(name: str, payload: bytes) -> InvokeResult:
        if json.loads(payload).get("fail"):
            return InvokeResult(
                200,
                b'{"errorMessage": "boom"}',
                function_error="Unhandled",
                log_tail="START\nboom\nEND",
            )
        return InvokeResult(200, json.dumps({"echo": json.loads(payload)}).encode())

    updates: list[EventSourceMappingSpec] = []
    plane = LambdaControlPlane(invoke, on_mapping_enabled=updates.append)
    plane.add_function(FUNCTION)
    plane.add_event_source_mapping(MAPPING)
    with AwsEndpoint() as endpoint:
        endpoint.mount(LambdaControlPlane.handles, plane)
        client = boto3.client(
            "lambda",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield client, updates


def test_configuration_and_concurrency_come_from_the_spec(lam: Any) -> None:
    client, _ = lam
    config = client.get_function_configuration(FunctionName=FUNCTION.arn)
    assert (config["Runtime"], config["Timeout"], config["MemorySize"]) == ("python3.12", 3, 512)
    assert config["Environment"]["Variables"] == {"A": "1"}
    concurrency = client.get_function_concurrency(FunctionName="demo-processor")
    assert concurrency["ReservedConcurrentExecutions"] == 10
    assert [f["FunctionName"] for f in client.list_functions()["Functions"]] == ["demo-processor"]


def test_unknown_function_is_resource_not_found(lam: Any) -> None:
    client, _ = lam
    with pytest.raises(ClientError) as error:
        client.get_function_configuration(FunctionName="nope")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def _state(client: Any) -> str:
    return str(client.get_event_source_mapping(UUID=MAPPING_UUID)["State"])


def _wait_state(client: Any, state: str) -> None:
    wait_until(
        lambda: _state(client) == state, timeout=5, interval=0.02, description=f"state {state}"
    )


def test_event_source_mappings_list_and_disable(lam: Any) -> None:
    client, updates = lam
    (mapping,) = client.list_event_source_mappings(FunctionName="demo-processor")[
        "EventSourceMappings"
    ]
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["State"] == "Enabled"
    answer = client.update_event_source_mapping(UUID=MAPPING_UUID, Enabled=False)
    # As on AWS: 202 with the transitional state; the change lands later.
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["State"] == "Disabling"
    assert updates[-1].enabled is False
    _wait_state(client, "Disabled")


def test_a_mapping_in_transition_refuses_another_update(lam: Any) -> None:
    client, _ = lam
    assert client.update_event_source_mapping(UUID=MAPPING_UUID, Enabled=False)["State"] == (
        "Disabling"
    )
    with pytest.raises(ClientError) as error:
        client.update_event_source_mapping(UUID=MAPPING_UUID, Enabled=True)
    assert error.value.response["Error"]["Code"] == "ResourceInUseException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    _wait_state(client, "Disabled")

    assert client.update_event_source_mapping(UUID=MAPPING_UUID, Enabled=True)["State"] == (
        "Enabling"
    )
    _wait_state(client, "Enabled")
    assert client.update_event_source_mapping(UUID=MAPPING_UUID, BatchSize=5)["State"] == (
        "Updating"
    )
    _wait_state(client, "Enabled")
    assert client.get_event_source_mapping(UUID=MAPPING_UUID)["BatchSize"] == 5


def test_the_final_state_waits_for_the_change_to_take_effect() -> None:
    applied = threading.Event()
    plane = LambdaControlPlane(
        lambda name, payload: InvokeResult(200, b"null"),
        on_mapping_enabled=lambda spec: applied,
        transition_s=0.0,
    )
    plane.add_function(FUNCTION)
    plane.add_event_source_mapping(MAPPING)
    with AwsEndpoint() as endpoint:
        endpoint.mount(LambdaControlPlane.handles, plane)
        client = boto3.client(
            "lambda",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.update_event_source_mapping(UUID=MAPPING_UUID, Enabled=False)
        # Still a poller of the old settings running: the mapping stays Disabling.
        time.sleep(0.3)  # nothing to poll for: the state must NOT change meanwhile
        assert _state(client) == "Disabling"
        applied.set()
        _wait_state(client, "Disabled")


def test_invoke_reports_function_errors_and_log_tail(lam: Any) -> None:
    client, _ = lam
    ok = client.invoke(FunctionName="demo-processor", Payload=b'{"x": 1}')
    assert json.loads(ok["Payload"].read()) == {"echo": {"x": 1}}
    failed = client.invoke(FunctionName="demo-processor", Payload=b'{"fail": true}', LogType="Tail")
    assert failed["FunctionError"] == "Unhandled"
    assert base64.b64decode(failed["LogResult"]).decode() == "START\nboom\nEND"
