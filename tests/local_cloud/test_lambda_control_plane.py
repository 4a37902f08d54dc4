"""The Lambda API the local cloud serves through ``AwsEndpointUrl``, read with boto3.

The mappings are a real :class:`EventSourceMappingService` on a real queue: its pollers
long-poll an empty queue, except where a test puts a message in to hold one in an invoke.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.waiting import wait_until
from localcloud.endpoint import AwsEndpoint
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.control_plane import LambdaControlPlane
from localcloud.lambda_service.esm import EventSourceMappingService
from localcloud.specs import EventSourceMappingSpec, FunctionSpec, InvokeResult
from localcloud.sqs.protocol import InProcessSqsClient

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


class _HeldFunctions(LambdaService):
    """The real service whose invokes (the pollers') wait until ``release`` is set."""

    def __init__(self, endpoint: AwsEndpoint) -> None:
        super().__init__(endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False)
        self.release = threading.Event()
        self.invoked = threading.Event()
        self.add_function(FUNCTION)

    def invoke(
        self,
        function_name: str,
        payload: bytes,
        *,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        trace_header: str | None = None,
    ) -> InvokeResult:
        self.invoked.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the invoke")
        return InvokeResult(200, b"null")


@contextmanager
def _plane(
    invoke: Any = None, transition_s: float = 0.5
) -> Iterator[tuple[Any, _HeldFunctions, AwsEndpoint]]:
    """A control plane on a real mapping service, with a boto3 Lambda client for it."""
    with AwsEndpoint() as endpoint:
        # Long enough a visibility timeout for the function's 3 s timeout.
        endpoint.sqs.create_queue("q.fifo", {"FifoQueue": "true", "VisibilityTimeout": "30"})
        functions = _HeldFunctions(endpoint)
        mappings = EventSourceMappingService(
            functions,
            endpoint.url,
            endpoint.region,
            sqs_client=InProcessSqsClient(endpoint.sqs),
            transition_s=transition_s,
        )
        try:
            queue_url = endpoint.sqs.get_queue_url("q.fifo")
            mappings.add(replace(MAPPING, queue_url=queue_url))
            plane = LambdaControlPlane(invoke or functions.invoke, mappings)
            plane.add_function(FUNCTION)
            endpoint.mount(LambdaControlPlane.handles, plane)
            client = boto3.client(
                "lambda",
                endpoint_url=endpoint.url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            yield client, functions, endpoint
        finally:
            functions.release.set()
            mappings.close()
            functions.close()


@pytest.fixture
def lam() -> Iterator[tuple[Any, _HeldFunctions]]:
    def invoke(name: str, payload: bytes) -> InvokeResult:
        if json.loads(payload).get("fail"):
            return InvokeResult(
                200,
                b'{"errorMessage": "boom"}',
                function_error="Unhandled",
                log_tail="START\nboom\nEND",
            )
        return InvokeResult(200, json.dumps({"echo": json.loads(payload)}).encode())

    with _plane(invoke) as (client, functions, _):
        yield client, functions


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
    client, _ = lam
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
    _wait_state(client, "Disabled")
    assert client.get_event_source_mapping(UUID=MAPPING_UUID)["State"] == "Disabled"


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
    with _plane(transition_s=0.0) as (client, functions, endpoint):
        endpoint.sqs.send_message(
            endpoint.sqs.get_queue_url("q.fifo"), "{}", group_id="g", deduplication_id="d"
        )
        if not functions.invoked.wait(timeout=10):
            raise TimeoutError("no poller received the message within 10 s")
        client.update_event_source_mapping(UUID=MAPPING_UUID, Enabled=False)
        # A poller of the old settings is still inside its invoke: the mapping stays
        # Disabling. Nothing to poll for: the state must NOT change meanwhile.
        time.sleep(0.3)
        assert _state(client) == "Disabling"
        functions.release.set()
        _wait_state(client, "Disabled")


def test_invoke_reports_function_errors_and_log_tail(lam: Any) -> None:
    client, _ = lam
    ok = client.invoke(FunctionName="demo-processor", Payload=b'{"x": 1}')
    assert json.loads(ok["Payload"].read()) == {"echo": {"x": 1}}
    failed = client.invoke(FunctionName="demo-processor", Payload=b'{"fail": true}', LogType="Tail")
    assert failed["FunctionError"] == "Unhandled"
    assert base64.b64decode(failed["LogResult"]).decode() == "START\nboom\nEND"
