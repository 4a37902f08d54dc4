"""CloudWatch alarms and the dashboard over the API, the processor and the queues."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk.config import StackConfig


class TaskAlarms(Construct):
    """The spec's three alarms; missing data (no traffic) never counts as breaching."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api_function: lambda_.IFunction,
        processor_function: lambda_.IFunction,
        dead_letter_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = config.stack_prefix
        period = Duration.seconds(config.alarm_period_s)
        self.api_errors = self._alarm(
            "ApiErrors",
            name=f"{prefix}-api-errors",
            description=f"API Lambda errors > {config.api_errors_threshold} "
            f"in {config.alarm_period_s} s",
            metric=api_function.metric_errors(period=period, statistic="Sum"),
            threshold=config.api_errors_threshold,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        self.processor_errors = self._alarm(
            "ProcessorErrors",
            name=f"{prefix}-processor-errors",
            description=f"Processor Lambda errors > {config.processor_errors_threshold} "
            f"in {config.alarm_period_s} s",
            metric=processor_function.metric_errors(period=period, statistic="Sum"),
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
        metric: cloudwatch.Metric,
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
                title="API Lambda throttles",
                left=[api_function.metric_throttles(period=minute, statistic="Sum")],
                width=6,
            ),
        )
        self.dashboard.add_widgets(
            *_function_widgets("Processor Lambda", processor_function, minute),
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
