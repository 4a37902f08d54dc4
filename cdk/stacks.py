"""The three stacks. They compose constructs, write the IAM grants and emit the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk import contract
from cdk.components.function import TaskFunction
from cdk.components.monitoring import (
    API_SERVICE,
    METRICS_NAMESPACE,
    PROCESSOR_SERVICE,
    TaskAlarms,
    TaskDashboard,
)
from cdk.components.queues import TaskQueues
from cdk.components.rest_api import TaskRestApi
from cdk.components.tables import TaskTables
from cdk.config import StackConfig

API_HANDLER = "handlers.api.handler"
PROCESSOR_HANDLER = "handlers.processor.handler"


def powertools_environment(config: StackConfig, service: str) -> dict[str, str]:
    """Powertools settings plus the fault-injection switch, which only ephemeral stacks get."""
    environment = {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    if config.fault_injection:
        environment[contract.FAULT_INJECTION_ENV] = "true"
    return environment


def _output(stack: Stack, key: str, value: str, description: str) -> CfnOutput:
    output = CfnOutput(stack, key, value=value, description=description)
    output.override_logical_id(key)  # the key the outputs file shows, whatever the scope
    return output


class QueueStack(Stack):
    """Task FIFO queue, FIFO DLQ, the processor Lambda with its SQS event source, the tables."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        code: lambda_.Code,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        queues = TaskQueues(self, "Queues", config=config)
        tables = TaskTables(self, "Tables", config=config)
        self.task_queue: sqs.IQueue = queues.queue
        self.dead_letter_queue: sqs.IQueue = queues.dead_letter_queue
        self.tasks_table: dynamodb.ITable = tables.tasks
        self.idempotency_table: dynamodb.ITable = tables.idempotency

        processor = TaskFunction(
            self,
            "Processor",
            config=config,
            function_name=f"{config.stack_prefix}-processor",
            handler=PROCESSOR_HANDLER,
            code=code,
            description="Processes tasks from the FIFO queue in order",
            timeout_s=config.processor_timeout_s,
            memory_mb=config.processor_memory_mb,
            reserved_concurrency=config.processor_reserved_concurrency,
            environment={
                "TASKS_TABLE_NAME": tables.tasks.table_name,
                "DEAD_LETTER_QUEUE_URL": queues.dead_letter_queue.queue_url,
                "ATTEMPT_BUDGET": str(config.attempt_budget),
                **powertools_environment(config, PROCESSOR_SERVICE),
            },
        )
        processor.allow(
            # What the event source mapping does with the role (receive, delete, read the
            # queue's attributes); the function itself never calls the task queue.
            iam.PolicyStatement(
                sid="ConsumeTaskQueue",
                actions=["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                resources=[queues.queue.queue_arn],
            ),
            iam.PolicyStatement(
                sid="SendToDeadLetterQueue",
                actions=["sqs:SendMessage"],
                resources=[queues.dead_letter_queue.queue_arn],
            ),
            # Every processor write is a conditional UpdateItem; it never reads or creates a
            # task (tests/hardening/test_least_privilege.py records what it calls).
            iam.PolicyStatement(
                sid="WriteTasksTable",
                actions=["dynamodb:UpdateItem"],
                resources=[tables.tasks.table_arn],
            ),
        )
        processor.function.add_event_source(
            event_sources.SqsEventSource(
                queues.queue, batch_size=config.batch_size, report_batch_item_failures=True
            )
        )
        self.processor_function: lambda_.IFunction = processor.function

        _output(self, contract.TASK_QUEUE_URL, queues.queue.queue_url, "Task FIFO queue URL")
        _output(self, contract.TASK_QUEUE_ARN, queues.queue.queue_arn, "Task FIFO queue ARN")
        _output(
            self,
            contract.DEAD_LETTER_QUEUE_URL,
            queues.dead_letter_queue.queue_url,
            "Dead-letter FIFO queue URL",
        )
        _output(self, contract.TASKS_TABLE_NAME, tables.tasks.table_name, "Tasks table name")
        _output(
            self,
            contract.IDEMPOTENCY_TABLE_NAME,
            tables.idempotency.table_name,
            "Idempotency table name",
        )
        _output(
            self,
            contract.PROCESSOR_FUNCTION_NAME,
            processor.function.function_name,
            "Processor Lambda function name",
        )
        _output(self, contract.PROFILE, config.profile, "Deployment profile of this stack set")


class ApiStack(Stack):
    """REST API (POST /tasks, GET /tasks/{task_id}) and the API Lambda."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        code: lambda_.Code,
        task_queue: sqs.IQueue,
        tasks_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        api_function = TaskFunction(
            self,
            "ApiHandler",
            config=config,
            function_name=f"{config.stack_prefix}-api",
            handler=API_HANDLER,
            code=code,
            description="Validates task requests and enqueues them",
            timeout_s=config.api_timeout_s,
            memory_mb=config.api_memory_mb,
            environment={
                "TASKS_TABLE_NAME": tasks_table.table_name,
                "IDEMPOTENCY_TABLE_NAME": idempotency_table.table_name,
                "TASK_QUEUE_URL": task_queue.queue_url,
                "PENDING_WINDOW_SECONDS": str(config.pending_window_s),
                **powertools_environment(config, API_SERVICE),
            },
        )
        api_function.allow(
            iam.PolicyStatement(
                sid="SendToTaskQueue",
                actions=["sqs:SendMessage"],
                resources=[task_queue.queue_arn],
            ),
            iam.PolicyStatement(
                sid="TasksTable",
                # Store PENDING, confirm or cancel (UpdateItem), look up.
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[tasks_table.table_arn],
            ),
            iam.PolicyStatement(
                sid="IdempotencyTable",
                # Powertools: a conditional PutItem (the old record comes back with a
                # failed condition, so no GetItem), UpdateItem on success, DeleteItem on
                # failure.
                actions=["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[idempotency_table.table_arn],
            ),
        )
        self.api_function: lambda_.IFunction = api_function.function
        rest_api = TaskRestApi(self, "Api", config=config, handler=api_function.function)
        self.api_name: str = rest_api.api.rest_api_name

        _output(self, contract.API_URL, rest_api.url, "Invoke URL of the API stage")
        _output(self, contract.API_ID, rest_api.api.rest_api_id, "REST API id")
        _output(
            self,
            contract.API_FUNCTION_NAME,
            api_function.function.function_name,
            "API Lambda function name",
        )


class MonitoringStack(Stack):
    """The dashboard and the three alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api_name: str,
        api_function: lambda_.IFunction,
        processor_function: lambda_.IFunction,
        task_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        alarms = TaskAlarms(
            self,
            "Alarms",
            config=config,
            api_name=api_name,
            processor_function=processor_function,
            dead_letter_queue=dead_letter_queue,
        )
        dashboard = TaskDashboard(
            self,
            "Dashboard",
            config=config,
            api_name=api_name,
            api_function=api_function,
            processor_function=processor_function,
            task_queue=task_queue,
            dead_letter_queue=dead_letter_queue,
            alarms=alarms,
        )
        _output(
            self, contract.API_ERRORS_ALARM_NAME, alarms.api_errors.alarm_name, "API errors alarm"
        )
        _output(
            self,
            contract.PROCESSOR_ERRORS_ALARM_NAME,
            alarms.processor_errors.alarm_name,
            "Processor errors alarm",
        )
        _output(self, contract.DLQ_ALARM_NAME, alarms.dlq_messages.alarm_name, "DLQ messages alarm")
        _output(
            self,
            contract.DASHBOARD_NAME,
            dashboard.dashboard.dashboard_name,
            "CloudWatch dashboard name",
        )
