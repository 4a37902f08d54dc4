"""The features' queue and event-source drivers against the local cloud.

The task-queue depth must count what is in flight. (The dead-letter view and replay are
``harness.dlq``'s, tested in ``test_dlq_commands.py``.)
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cdk import contract
from harness.drivers import ProcessorEventSource, TaskQueue
from harness.target import Target
from localcloud.endpoint import AwsEndpoint
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.control_plane import LambdaControlPlane
from localcloud.lambda_service.esm import EventSourceMappingService
from localcloud.lambda_service.testing import function_spec
from localcloud.specs import EventSourceMappingSpec, InvokeResult
from localcloud.sqs.protocol import InProcessSqsClient


@pytest.fixture
def queues(aws_endpoint: AwsEndpoint) -> tuple[Target, Any]:
    """A target whose task queue and DLQ are fresh FIFO queues on the local endpoint."""
    target = Target(
        name="local",
        outputs={
            contract.AWS_ENDPOINT_URL: aws_endpoint.url,
            contract.REGION: aws_endpoint.region,
        },
    )
    sqs = target.client("sqs")
    name = f"drivers-{uuid.uuid4().hex[:8]}"
    for key, suffix in ((contract.TASK_QUEUE_URL, ""), (contract.DEAD_LETTER_QUEUE_URL, "-dlq")):
        target.outputs[key] = sqs.create_queue(
            QueueName=f"{name}{suffix}.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
    return target, sqs


def _put(sqs: Any, url: str, body: str, reason: str | None = None) -> None:
    extra: dict[str, Any] = {}
    if reason:
        extra["MessageAttributes"] = {
            "PoisonReason": {"DataType": "String", "StringValue": reason},
            "SourceReceiveCount": {"DataType": "Number", "StringValue": "3"},
        }
    sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageGroupId=contract.MESSAGE_GROUP_ID,
        MessageDeduplicationId=uuid.uuid4().hex,
        **extra,
    )


def test_task_queue_depth_counts_waiting_and_in_flight(queues: tuple[Target, Any]) -> None:
    target, sqs = queues
    queue = TaskQueue(target)
    for index in range(3):
        _put(sqs, queue.url, f"task {index}")
    received = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1)["Messages"]

    assert queue.depth() == {"visible": 2, "in_flight": 1, "delayed": 0}
    with pytest.raises(TimeoutError, match="still holds messages"):
        queue.wait_until_empty(timeout=0.3)

    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=received[0]["ReceiptHandle"])
    for _ in range(2):
        (message,) = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=1)["Messages"]
        sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
    queue.wait_until_empty(timeout=5)


def test_pausing_the_event_source_waits_for_each_state() -> None:
    """The driver waits through Disabling/Enabling and through a change still landing."""
    function = function_spec(Path("/tmp"), "handlers.processor.handler", timeout_s=3)
    arn = "arn:aws:sqs:us-east-1:123456789012:tasks.fifo"
    with AwsEndpoint() as endpoint:
        queue = endpoint.sqs.create_queue(
            "tasks.fifo", {"FifoQueue": "true", "VisibilityTimeout": "30"}
        )
        # A real mapping service on an empty queue: its pollers never invoke the function.
        lambdas = LambdaService(
            endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
        )
        mappings = EventSourceMappingService(
            lambdas,
            endpoint.url,
            endpoint.region,
            sqs_client=InProcessSqsClient(endpoint.sqs),
            transition_s=0.2,
        )
        try:
            lambdas.add_function(function)
            mapping = EventSourceMappingSpec(
                str(uuid.uuid4()), function.function_name, arn, queue.url
            )
            mappings.add(mapping)
            plane = LambdaControlPlane(lambda name, payload: InvokeResult(200, b"null"), mappings)
            plane.add_function(function)
            endpoint.mount(LambdaControlPlane.handles, plane)
            target = Target(
                name="local",
                outputs={
                    contract.AWS_ENDPOINT_URL: endpoint.url,
                    contract.REGION: endpoint.region,
                    contract.PROCESSOR_FUNCTION_NAME: function.function_name,
                    contract.TASK_QUEUE_ARN: arn,
                },
            )
            source = ProcessorEventSource(target)
            # Another change still landing refuses the driver's first try: it waits.
            assert mappings.update(mapping.uuid, batch_size=5).state == "Updating"
            source.set_enabled(False)
            assert source.state() == "Disabled"
            assert mappings.get(mapping.uuid).spec.batch_size == 5

            # Enabling lasts at least the transition (0.2 s): the driver waits for it.
            source.set_enabled(True)
            assert source.state() == "Enabled"
            assert mappings.get(mapping.uuid).spec.enabled
        finally:
            mappings.close()
            lambdas.close()
