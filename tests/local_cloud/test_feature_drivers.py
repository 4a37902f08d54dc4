"""The features' queue and event-source drivers against the local cloud.

The dead-letter view must see every message of a one-group FIFO queue, however many, and
leave the queue as it found it; the task-queue depth must count what is in flight.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from cdk import contract
from harness.drivers import DeadLetters, ProcessorEventSource, TaskQueue
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


def _fill(target: Target, sqs: Any, count: int) -> list[str]:
    """``count`` dead letters in one group: tasks, with a malformed one every seventh."""
    bodies = []
    for index in range(count):
        if index % 7 == 3:
            body = f"{{not json {index}"
            _put(sqs, target.output(contract.DEAD_LETTER_QUEUE_URL), body, "malformed_json")
        else:
            body = json.dumps({"task_id": str(uuid.uuid4()), "n": index})
            _put(sqs, target.output(contract.DEAD_LETTER_QUEUE_URL), body, "attempts_exhausted")
        bodies.append(body)
    return bodies


def test_the_dead_letter_view_sees_every_message_and_keeps_them_in_order(
    queues: tuple[Target, Any],
) -> None:
    target, sqs = queues
    bodies = _fill(target, sqs, 25)
    dead_letters = DeadLetters(target)

    first = dead_letters.messages()
    second = dead_letters.messages()

    assert [letter.body for letter in first] == bodies, "not every message, or out of order"
    assert [letter.body for letter in second] == bodies, "the view changed the queue"
    assert first[3].task_id is None
    assert first[3].attributes == {"PoisonReason": "malformed_json", "SourceReceiveCount": "3"}
    assert first[4].attributes["PoisonReason"] == "attempts_exhausted"
    assert first[4].task_id == json.loads(bodies[4])["task_id"]
    depth = sqs.get_queue_attributes(
        QueueUrl=dead_letters.url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert depth == "25", "the view left messages in flight or duplicated"


def test_sending_back_the_seventeenth_task_moves_only_it(queues: tuple[Target, Any]) -> None:
    target, sqs = queues
    bodies = _fill(target, sqs, 20)
    task_id = json.loads(bodies[16])["task_id"]
    dead_letters = DeadLetters(target)

    dead_letters.send_back(task_id)

    assert [letter.body for letter in dead_letters.messages()] == bodies[:16] + bodies[17:]
    replayed = sqs.receive_message(
        QueueUrl=target.output(contract.TASK_QUEUE_URL), MaxNumberOfMessages=10
    )["Messages"]
    assert [m["Body"] for m in replayed] == [bodies[16]]
    with pytest.raises(AssertionError, match="not in the dead-letter queue"):
        dead_letters.send_back(task_id)


def test_drain_empties_the_dead_letter_queue(queues: tuple[Target, Any]) -> None:
    target, sqs = queues
    _fill(target, sqs, 12)
    dead_letters = DeadLetters(target)

    assert dead_letters.drain() == 12
    assert dead_letters.messages() == []


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
