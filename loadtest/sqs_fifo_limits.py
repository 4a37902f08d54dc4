"""sqs_fifo_limits: boto3 users hitting SQS FIFO queues directly to show its quotas.

A FIFO queue without high-throughput mode allows 300 transactions per second per API
action; a batch of up to 10 messages is one transaction (so up to 3,000 messages/s).
Within one message group only one batch is in flight at a time, which caps how fast a
single group drains however many consumers poll it.

User classes (each on its own queue, so their quotas do not mix; ``harness load``
creates the queues from the task queue's attributes and deletes them afterwards):

- ``SendOneGroup`` / ``SendManyGroups``: ``SendMessage``, one group vs ``LOAD_SQS_GROUPS``;
- ``BatchOneGroup`` / ``BatchManyGroups``: ``SendMessageBatch`` of 10;
- ``DrainOneGroup`` / ``DrainManyGroups``: ``ReceiveMessage`` (10) + ``DeleteMessageBatch``
  on the batch queues, one group vs many.

Each call is a locust request; its "content size" is the number of messages sent or
received, so locust's totals give messages/s. Throttled calls are recorded as failures
named ``<name> [throttled]``; botocore retries are off so throttles are seen, not hidden.
Without ``LOAD_SQS_QUEUES`` every sender uses the task queue itself (the drain users are
left out then: they would compete with the stack's processor).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from typing import ClassVar

from botocore.exceptions import ClientError
from locust import User, task

from harness.load.causes import SQS_THROTTLE, sqs_cause
from harness.load.locust_stats import THROTTLED_SUFFIX
from harness.load.settings import ENV_SQS_GROUPS, ENV_SQS_QUEUES, Scenario, env_float
from loadtest.common import ConfiguredShape, target_for, user_wait_time

SCENARIO: Scenario = "sqs_fifo_limits"
TARGET = target_for(SCENARIO)
QUEUES: dict[str, str] = json.loads(os.environ.get(ENV_SQS_QUEUES) or "{}")
MANY_GROUPS = max(2, int(env_float(ENV_SQS_GROUPS, 50)))
BATCH = 10
# One client per process, made at import: building a botocore client takes CPU-bound
# fractions of a second, which inside a running worker would stall its gevent loop (and
# its heartbeats to the master). botocore clients are safe to share between users.
SQS = TARGET.sqs(retries=False) if TARGET else None


class Shape(ConfiguredShape):
    scenario = SCENARIO


class SqsUser(User):
    """Base: one boto3 client without retries, one queue, one request per iteration."""

    abstract = True
    wait_time = user_wait_time(SCENARIO)
    role: ClassVar[str] = ""
    label: ClassVar[str] = ""

    def on_start(self) -> None:
        if TARGET is None or SQS is None:
            raise RuntimeError("sqs_fifo_limits needs LOAD_OUTPUTS (a stack outputs file)")
        self.sqs = SQS
        self.queue_url = QUEUES.get(self.role) or TARGET.task_queue_url or ""
        self.counter = 0

    def group(self) -> str:
        if "many" in self.role:
            self.counter += 1
            return f"load-{self.counter % MANY_GROUPS}"
        return "load-0"

    def measure(self, name: str, call: Callable[[], int]) -> int:
        """Run one SQS call as a locust request; returns the messages it moved (0 on error)."""
        start = time.perf_counter()
        fire = self.environment.events.request.fire
        try:
            moved = call()
        except ClientError as error:
            elapsed_ms = (time.perf_counter() - start) * 1000
            cause = sqs_cause(str(error.response.get("Error", {}).get("Code", "")))
            fire(
                request_type="SQS",
                name=name + (THROTTLED_SUFFIX if cause == SQS_THROTTLE else ""),
                response_time=elapsed_ms,
                response_length=0,
                exception=error,
                context={"cause": cause},
            )
            return 0
        fire(
            request_type="SQS",
            name=name,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=moved,
            exception=None,
            context={},
        )
        return moved


def _body() -> str:
    return json.dumps({"task_id": str(uuid.uuid4()), "title": "sqs limits", "priority": "low"})


class _Sender(SqsUser):
    abstract = True

    @task
    def send(self) -> None:
        def call() -> int:
            self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=_body(),
                MessageGroupId=self.group(),
                MessageDeduplicationId=uuid.uuid4().hex,
            )
            return 1

        self.measure(f"SendMessage {self.label}", call)


class _BatchSender(SqsUser):
    abstract = True

    @task
    def send_batch(self) -> None:
        def call() -> int:
            reply = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": _body(),
                        "MessageGroupId": self.group(),
                        "MessageDeduplicationId": uuid.uuid4().hex,
                    }
                    for i in range(BATCH)
                ],
            )
            failed = reply.get("Failed", [])
            if failed:
                codes = sorted({f.get("Code", "?") for f in failed})
                raise ClientError(
                    {
                        "Error": {
                            "Code": codes[0],
                            "Message": f"{len(failed)} entries failed: {codes}",
                        }
                    },
                    "SendMessageBatch",
                )
            return len(reply.get("Successful", []))

        self.measure(f"SendMessageBatch {self.label}", call)


class _Drainer(SqsUser):
    abstract = True

    @task
    def drain(self) -> None:
        received: list[dict[str, str]] = []

        def receive() -> int:
            reply = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=0
            )
            received.extend(
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(reply.get("Messages", []))
            )
            return len(received)

        self.measure(f"ReceiveMessage {self.label}", receive)
        if received:

            def delete() -> int:
                reply = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=received)  # type: ignore[arg-type]
                return len(reply.get("Successful", []))

            self.measure(f"DeleteMessageBatch {self.label}", delete)


class SendOneGroup(_Sender):
    role, label = "send-one", "one-group"


class SendManyGroups(_Sender):
    role, label = "send-many", "many-groups"


class BatchOneGroup(_BatchSender):
    role, label = "batch-one", "one-group"


class BatchManyGroups(_BatchSender):
    role, label = "batch-many", "many-groups"


class DrainOneGroup(_Drainer):
    # Drains what BatchOneGroup sends; left out when there are no scratch queues.
    abstract = not QUEUES
    role, label = "batch-one", "one-group"


class DrainManyGroups(_Drainer):
    abstract = not QUEUES
    role, label = "batch-many", "many-groups"
