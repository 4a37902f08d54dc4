"""The DynamoDB tables: task state and the API's idempotency records."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from cdk.components.common import acknowledge, stateful_removal_policy
from cdk.config import StackConfig


class TaskTables(Construct):
    """On-demand, KMS-encrypted tables; point-in-time recovery on in production."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        # A task never confirmed queued (PENDING, CANCELLED) carries purge_at until it is;
        # TTL removes it once no message can name it any more.
        self.tasks = self._table(
            "TasksTable", f"{config.stack_prefix}-tasks", "task_id", config, ttl="purge_at"
        )
        # Powertools idempotency records expire through DynamoDB TTL on "expiration".
        self.idempotency = self._table(
            "IdempotencyTable", f"{config.stack_prefix}-idempotency", "id", config, ttl="expiration"
        )

    def _table(
        self, construct_id: str, name: str, key: str, config: StackConfig, *, ttl: str | None
    ) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            construct_id,
            table_name=name,
            partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery
            ),
            time_to_live_attribute=ttl,
            removal_policy=stateful_removal_policy(config),
        )
        if not config.point_in_time_recovery:
            acknowledge(
                table,
                "AwsSolutions-DDB3",
                "Ephemeral test stack, deleted within hours with all its data; production "
                "enables point-in-time recovery.",
            )
        return table
