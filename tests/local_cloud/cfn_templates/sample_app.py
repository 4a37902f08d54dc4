"""A 3-stack CDK app built from the constructs the Task API uses, for the engine tests.

Usage: ``python sample_app.py OUTDIR PREFIX``. Queue stack: FIFO queue + FIFO DLQ with a
redrive policy, two DynamoDB tables (one with TTL), the processor function with its own
log group, inline-policy role and SQS event source. Api stack: the API function and a
REST API with CORS preflight, stage throttling, access logs, an API key and usage plan.
Monitoring stack: three alarms and a dashboard. The stacks are environment-agnostic and
refer to each other through exports, as the real app's do.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

HANDLER_DIR = Path(__file__).resolve().parent / "sample_handler"
DESTROY = cdk.RemovalPolicy.DESTROY


def _log_group(scope: Construct, construct_id: str, name: str | None = None) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=logs.RetentionDays.ONE_WEEK,
        removal_policy=DESTROY,
    )


class QueueStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            fifo=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=DESTROY,
        )
        self.queue = sqs.Queue(
            self,
            "TaskQueue",
            fifo=True,
            content_based_deduplication=True,
            visibility_timeout=cdk.Duration.seconds(30),
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=3
            ),
            removal_policy=DESTROY,
        )
        self.tasks = dynamodb.Table(
            self,
            "TasksTable",
            table_name=f"{prefix}-tasks",
            partition_key=dynamodb.Attribute(name="task_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=DESTROY,
        )
        self.idempotency = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiration",
            removal_policy=DESTROY,
        )
        function_name = f"{prefix}-processor"
        log_group = _log_group(self, "ProcessorLogs", f"/aws/lambda/{function_name}")
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            ]
        )
        role = iam.Role(
            self,
            "ProcessorRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            inline_policies={"Permissions": policy},
        )
        self.processor = lambda_.Function(
            self,
            "Processor",
            function_name=function_name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="cfn_sample_handler.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            role=role.without_policy_updates(),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=cdk.Duration.seconds(20),
            memory_size=512,
            reserved_concurrent_executions=10,
            environment={
                "TASKS_TABLE_NAME": self.tasks.table_name,
                "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue.queue_url,
            },
        )
        policy.add_statements(
            iam.PolicyStatement(
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                resources=[self.queue.queue_arn],
            ),
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[self.tasks.table_arn],
            ),
        )
        self.processor.add_event_source(
            event_sources.SqsEventSource(
                self.queue, batch_size=10, report_batch_item_failures=True, max_concurrency=5
            )
        )
        cdk.CfnOutput(self, "TaskQueueUrl", value=self.queue.queue_url)
        cdk.CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
        cdk.CfnOutput(self, "TasksTableName", value=self.tasks.table_name)
        cdk.CfnOutput(self, "ProcessorFunctionName", value=self.processor.function_name)


class ApiStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, queues: QueueStack
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = lambda_.Function(
            self,
            "ApiFunction",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="cfn_sample_handler.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            log_group=_log_group(self, "ApiLogs"),
            timeout=cdk.Duration.seconds(10),
            environment={
                "TASK_QUEUE_URL": queues.queue.queue_url,
                "IDEMPOTENCY_TABLE_NAME": queues.idempotency.table_name,
                "FAULT_INJECTION_ENABLED": "true",
            },
        )
        queues.queue.grant_send_messages(self.function)
        access_logs = _log_group(self, "AccessLogs", f"/aws/apigateway/{prefix}-access")
        api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{prefix}-tasks",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name="v1",
                throttling_rate_limit=50,
                throttling_burst_limit=20,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=apigw.Cors.ALL_ORIGINS,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=[*apigw.Cors.DEFAULT_HEADERS, "Idempotency-Key"],
                max_age=cdk.Duration.hours(1),
            ),
        )
        api.node.try_remove_child("Endpoint")
        execution_logs = _log_group(
            self,
            "ExecutionLogs",
            cdk.Fn.join("", ["API-Gateway-Execution-Logs_", api.rest_api_id, "/v1"]),
        )
        api.deployment_stage.node.add_dependency(execution_logs)
        integration = apigw.LambdaIntegration(self.function, proxy=True, allow_test_invoke=False)
        tasks = api.root.add_resource("tasks")
        tasks.add_method("POST", integration)
        tasks.add_resource("{task_id}").add_method("GET", integration)
        key = api.add_api_key("ApiKey", api_key_name=f"{prefix}-key", value="sample-key-0123456789")
        plan = api.add_usage_plan("UsagePlan", name=f"{prefix}-plan")
        plan.add_api_key(key)
        plan.add_api_stage(stage=api.deployment_stage)
        self.api = api
        cdk.CfnOutput(self, "ApiUrl", value=api.url)
        cdk.CfnOutput(self, "ApiFunctionName", value=self.function.function_name)


class MonitoringStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, queues: QueueStack, api: ApiStack
    ) -> None:
        super().__init__(scope, construct_id)
        five_minutes = cdk.Duration.minutes(5)
        api_errors = cloudwatch.Alarm(
            self,
            "ApiErrors",
            metric=api.function.metric_errors(period=five_minutes, statistic="Sum"),
            threshold=5,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        processor_errors = cloudwatch.Alarm(
            self,
            "ProcessorErrors",
            metric=queues.processor.metric_errors(period=five_minutes, statistic="Sum"),
            threshold=10,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        dlq_messages = cloudwatch.Alarm(
            self,
            "DlqMessages",
            metric=queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(alarms=[api_errors, processor_errors, dlq_messages]),
            cloudwatch.GraphWidget(left=[queues.processor.metric_invocations()]),
            cloudwatch.GraphWidget(
                left=[queues.queue.metric_approximate_number_of_messages_visible()]
            ),
        )


def main(outdir: str, prefix: str) -> None:
    # analytics_reporting adds AWS::CDK::Metadata with a region condition (Fn::Or of
    # Fn::Equals on AWS::Region), as `cdk synth` does: conditions get exercised too.
    app = cdk.App(outdir=outdir, analytics_reporting=True)
    queues = QueueStack(app, f"{prefix}-Queue", prefix=prefix)
    api = ApiStack(app, f"{prefix}-Api", prefix=prefix, queues=queues)
    MonitoringStack(app, f"{prefix}-Monitoring", queues=queues, api=api)
    cdk.Tags.of(app).add("ephemeral", "true")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
