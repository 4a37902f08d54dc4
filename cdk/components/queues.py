"""The task FIFO queue and its FIFO dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.components.common import stateful_removal_policy
from cdk.config import StackConfig


class TaskQueues(Construct):
    """FIFO task queue with content-based deduplication, redriving to a FIFO DLQ.

    Both queues use SQS-managed server-side encryption (no KMS key to grant) and deny
    any request not made over TLS.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        removal = stateful_removal_policy(config)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=f"{config.stack_prefix}-tasks-dlq.fifo",
            fifo=True,
            content_based_deduplication=True,
            retention_period=Duration.seconds(config.dlq_retention_s),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal,
        )
        self.queue = sqs.Queue(
            self,
            "TaskQueue",
            queue_name=f"{config.stack_prefix}-tasks.fifo",
            fifo=True,
            content_based_deduplication=True,
            visibility_timeout=Duration.seconds(config.visibility_timeout_s),
            retention_period=Duration.seconds(config.queue_retention_s),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=config.max_receive_count
            ),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal,
        )
