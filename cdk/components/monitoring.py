"""CloudWatch alarms and the dashboard over the API, the processor and the queues.

The alarms see the failures they exist for (``docs/decisions/alarm-metrics.md``):

- API errors: every request the API answered with a 5xx, from API Gateway's ``5XXError``
  of the stage. It counts the function's own 500/503 answers, its crashes and timeouts
  (API Gateway answers 502/504 for those) and the gateway's own 5xx, each once.
- Processor errors: ``Errors`` of the processor (invocations that crashed, timed out or
  failed to start) plus ``ProcessingFailures`` (records that failed in its code: retried
  attempts and last attempts), by metric math. The processor never raises for failed
  records (it reports them), so no failure is counted twice.
- DLQ: messages visible in the dead-letter queue.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.config import StackConfig

# Where the processor's own metrics go (powertools: POWERTOOLS_METRICS_NAMESPACE and the
# service dimension from POWERTOOLS_SERVICE_NAME, both set by cdk/stacks.py).
METRICS_NAMESPACE = "TaskApi"
PROCESSOR_SERVICE = "task-processor"
API_SERVICE = "task-api"


def api_server_errors(config: StackConfig, api_name: str, period: Duration) -> cloudwatch.Metric:
    """Requests the API's stage answered with a 5xx (API Gateway counts 0 or 1 per request)."""
    return cloudwatch.Metric(
        namespace="AWS/ApiGateway",
        metric_name="5XXError",
        dimensions_map={"ApiName": api_name, "Stage": config.stage_name},
        statistic="Sum",
        period=period,
    )


def processor_failures(
    processor_function: lambda_.IFunction, period: Duration
) -> cloudwatch.MathExpression:
    """Failed invocations plus failed records of the processor, each failure once."""
    return cloudwatch.MathExpression(
        expression="FILL(errors, 0) + FILL(failures, 0)",
        using_metrics={
            "errors": processor_function.metric_errors(period=period, statistic="Sum"),
            "failures": cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name="ProcessingFailures",
                dimensions_map={"service": PROCESSOR_SERVICE},
                statistic="Sum",
                period=period,
            ),
        },
        period=period,
        label="Processor errors and failed records",
    )


class TaskAlarms(Construct):
    """The spec's three alarms; missing data (no traffic) never counts as breaching."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api_name: str,
        processor_function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = config.stack_prefix
        period = Duration.seconds(config.alarm_period_s)
        self.api_errors = self._alarm(
            "ApiErrors",
            name=f"{prefix}-api-errors",
            description=f"API errors (requests answered 5xx) > {config.api_errors_threshold} "
            f"in {config.alarm_period_s} s",
            metric=api_server_errors(config, api_name, period),
            threshold=config.api_errors_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        self.processor_errors = self._alarm(
            "ProcessorErrors",
            name=f"{prefix}-processor-errors",
            description=f"Processor errors (failed invocations + failed records) > "
            f"{config.processor_errors_threshold} in {config.alarm_period_s} s",
            metric=processor_failures(processor_function, period),
            threshold=config.processor_errors_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        self.dlq_messages = self._alarm(
            "DlqMessages",
            name=f"{prefix}-dlq-messages",
            description=f"Dead-letter queue holds >= {config.dlq_messages_threshold} message(s)",
            metric=dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.seconds(config.dlq_alarm_period_s), statistic="Maximum"
            ),
            threshold=config.dlq_messages_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )

    @property
    def all(self) -> tuple[cloudwatch.Alarm, ...]:
        """The alarms in dashboard order."""
        return (self.api_errors, self.processor_errors, self.dlq_messages)

    def _alarm(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


class TaskDashboard(Construct):
    """One dashboard: API Lambda, processor Lambda, task queue and DLQ, plus alarm states."""

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
        alarms: TaskAlarms,
    ) -> None:
        super().__init__(scope, construct_id)
        minute = Duration.minutes(1)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.stack_prefix}-dashboard",
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms.all), width=24)
        )
        self.dashboard.add_widgets(
            *_function_widgets("API Lambda", api_function, minute),
            cloudwatch.GraphWidget(
                title="API 5xx answers and Lambda throttles",
                left=[
                    api_server_errors(config, api_name, minute).with_(label="API 5xx answers"),
                    api_function.metric_throttles(period=minute, statistic="Sum"),
                ],
                width=6,
            ),
        )
        self.dashboard.add_widgets(
            *_function_widgets("Processor Lambda", processor_function, minute),
            cloudwatch.GraphWidget(
                title="Processor errors and failed records",
                left=[processor_failures(processor_function, minute)],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title="Processor concurrent executions",
                left=[
                    processor_function.metric(
                        "ConcurrentExecutions", period=minute, statistic="Maximum"
                    )
                ],
                width=6,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Task queue: visible and delayed messages",
                left=[
                    task_queue.metric_approximate_number_of_messages_visible(
                        period=minute, statistic="Maximum"
                    ),
                    task_queue.metric_approximate_number_of_messages_delayed(
                        period=minute, statistic="Maximum"
                    ),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Task queue: age of oldest message (s)",
                left=[
                    task_queue.metric_approximate_age_of_oldest_message(
                        period=minute, statistic="Maximum"
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue: messages available",
                left=[
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=minute, statistic="Maximum"
                    )
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=config.dlq_messages_threshold, label="alarm"
                    )
                ],
                width=8,
            ),
        )


def _function_widgets(
    title: str, function: lambda_.IFunction, period: Duration
) -> list[cloudwatch.IWidget]:
    return [
        cloudwatch.GraphWidget(
            title=f"{title} invocations",
            left=[function.metric_invocations(period=period, statistic="Sum")],
            width=6,
        ),
        cloudwatch.GraphWidget(
            title=f"{title} errors",
            left=[function.metric_errors(period=period, statistic="Sum")],
            width=6,
        ),
        cloudwatch.GraphWidget(
            title=f"{title} duration (ms)",
            left=[
                function.metric_duration(period=period, statistic="Average"),
                function.metric_duration(period=period, statistic="p99"),
            ],
            width=6,
        ),
    ]
