"""Metric-math alarms and EMF metrics in the local cloud, as CloudWatch evaluates them.

The processor-errors alarm is ``FILL(errors, 0) + FILL(failures, 0)`` over the processor's
Lambda ``Errors`` and its EMF metric ``ProcessingFailures``: these tests hold the local
evaluator to CloudWatch's rules for that expression (time series aligned by period, a
missing datapoint giving no value unless FILLed) and the Lambda service to CloudWatch
Logs' extraction of EMF lines.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localcloud import metric_math
from localcloud.alarms import ALARM, OK, AlarmService
from localcloud.inprocess import InProcessCloudWatchClient
from localcloud.lambda_service.telemetry import MetricsPublisher, parse_emf
from localcloud.specs import AlarmSpec, MetricDimension, MetricQuery

REGION = "us-east-1"

# --- the expression language -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("FILL(a, 0) + FILL(b, 0)", [3.0, 2.0, 5.0, 0.0]),
        ("a + b", [3.0, None, None, None]),  # no value where either side has none
        ("a * 2 - 1", [1.0, 3.0, None, None]),
        ("-a + 10", [9.0, 8.0, None, None]),
        ("(FILL(a, 1) + 1) / FILL(b, 0)", [1.0, None, 0.4, None]),  # x / 0: no value
        ("2 + 3 * 4", [14.0, 14.0, 14.0, 14.0]),
    ],
)
def test_expressions_follow_cloudwatch_arithmetic(
    expression: str, expected: list[float | None]
) -> None:
    series = {"a": [1.0, 2.0, None, None], "b": [2.0, None, 5.0, None]}
    assert metric_math.evaluate(expression, series, 4) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("SUM(METRICS())", "function SUM is not supported"),
        ("FILL(a, b)", "FILL with something other than a number"),
        ("a +", "expected more"),
        ("a $ b", "unexpected"),
    ],
)
def test_what_is_not_implemented_is_an_error_naming_it(expression: str, message: str) -> None:
    with pytest.raises(metric_math.UnsupportedExpressionError, match=message):
        metric_math.parse(expression)


# --- a metric-math alarm evaluated ---------------------------------------------------------


@pytest.fixture
def cloudwatch() -> InProcessCloudWatchClient:
    return InProcessCloudWatchClient(REGION)


@pytest.fixture
def alarms(moto_url: str, cloudwatch: InProcessCloudWatchClient) -> Iterator[AlarmService]:
    with AlarmService(moto_url, REGION, start=False, cloudwatch_client=cloudwatch) as service:
        yield service


def processor_alarm(function: str, service: str, expression: str) -> AlarmSpec:
    """The processor-errors alarm's shape: Errors + ProcessingFailures > 10 in 5 minutes."""

    def stat(query_id: str, namespace: str, name: str, dims: dict[str, str]) -> MetricQuery:
        return MetricQuery(
            id=query_id,
            namespace=namespace,
            metric_name=name,
            dimensions=tuple(MetricDimension(k, v) for k, v in dims.items()),
            statistic="Sum",
            period_s=300,
        )

    return AlarmSpec(
        alarm_name=f"processor-errors-{function}",
        namespace="",
        metric_name="",
        dimensions=(),
        statistic="",
        period_s=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        threshold=10.0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        metrics=(
            MetricQuery(id="total", expression=expression, return_data=True),
            stat("errors", "AWS/Lambda", "Errors", {"FunctionName": function}),
            stat("failures", "TaskApi", "ProcessingFailures", {"service": service}),
        ),
    )


def put(cloudwatch: Any, namespace: str, name: str, dims: dict[str, str], value: float) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Value": value,
            }
        ],
    )


def test_errors_and_failed_records_add_up_and_fire_above_ten(
    alarms: AlarmService, cloudwatch: Any
) -> None:
    function, service = f"proc-{uuid.uuid4().hex[:8]}", f"svc-{uuid.uuid4().hex[:8]}"
    spec = processor_alarm(function, service, "FILL(errors, 0) + FILL(failures, 0)")
    alarms.add_alarm(spec)
    (stored,) = cloudwatch.describe_alarms(AlarmNames=[spec.alarm_name])["MetricAlarms"]
    assert [q["Id"] for q in stored["Metrics"]] == ["total", "errors", "failures"]

    # Failed records alone (the processor reported them; Lambda saw no error): 10 is OK.
    for _ in range(10):
        put(cloudwatch, "TaskApi", "ProcessingFailures", {"service": service}, 1.0)
    assert alarms.evaluate_now()[spec.alarm_name] == OK
    # One crash: Lambda's Errors. 11 in five minutes: ALARM.
    put(cloudwatch, "AWS/Lambda", "Errors", {"FunctionName": function}, 1.0)
    assert alarms.evaluate_now()[spec.alarm_name] == ALARM
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[spec.alarm_name])["MetricAlarms"]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint [11.0 (")
    # Five minutes later both are out of the window: OK again.
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert alarms.evaluate_now(later)[spec.alarm_name] == OK


def test_without_fill_a_missing_metric_hides_the_other(
    alarms: AlarmService, cloudwatch: Any
) -> None:
    # Why the stack's expression FILLs: "errors + failures" has no value in a period where
    # the processor had failed records but no Lambda errors, and missing data is not
    # breaching, so a storm of failed records would never raise the alarm.
    function, service = f"proc-{uuid.uuid4().hex[:8]}", f"svc-{uuid.uuid4().hex[:8]}"
    spec = processor_alarm(function, service, "errors + failures")
    alarms.add_alarm(spec)
    for _ in range(20):
        put(cloudwatch, "TaskApi", "ProcessingFailures", {"service": service}, 1.0)
    assert alarms.evaluate_now()[spec.alarm_name] == OK


def test_an_alarm_whose_expression_cannot_be_evaluated_is_refused(alarms: AlarmService) -> None:
    spec = processor_alarm("f", "s", "ANOMALY_DETECTION_BAND(errors)")
    with pytest.raises(metric_math.UnsupportedExpressionError, match="ANOMALY_DETECTION_BAND"):
        alarms.add_alarm(spec)


# --- EMF: metrics a function logs -----------------------------------------------------------

POWERTOOLS_LINE = json.dumps(
    {
        "_aws": {
            "Timestamp": 1796567601440,
            "CloudWatchMetrics": [
                {
                    "Namespace": "TaskApi",
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "ProcessingFailures", "Unit": "Count"},
                        {"Name": "TasksFailed", "Unit": "Count"},
                    ],
                }
            ],
        },
        "service": "task-processor",
        "ProcessingFailures": [1.0, 1.0],
        "TasksFailed": 1.0,
    }
)


def test_an_emf_line_becomes_the_metrics_cloudwatch_logs_extracts() -> None:
    data = parse_emf(POWERTOOLS_LINE)
    stamp = datetime.fromtimestamp(1796567601.44, UTC)
    dims = [{"Name": "service", "Value": "task-processor"}]
    assert data == [
        ("TaskApi", {"MetricName": n, "Dimensions": dims, "Timestamp": stamp, "Value": 1.0,
                     "Unit": "Count"})
        for n in ("ProcessingFailures", "ProcessingFailures", "TasksFailed")
    ]  # fmt: skip


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: 1 Version: $LATEST",
        '{"_aws": "not an object"}',
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N"}]}}',
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Metrics": '
        '[{"Name": "absent"}]}]}}',
        '{"_aws" broken json',
    ],
)
def test_a_line_that_is_not_valid_emf_is_only_a_log_line(line: str) -> None:
    assert parse_emf(line) == []


def test_the_lambda_service_publishes_logged_metrics_in_their_namespace() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, list[dict[str, Any]]]] = []

        def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
            self.calls.append((Namespace, MetricData))

    recorder = Recorder()
    publisher = MetricsPublisher(lambda service: recorder, interval=3600)
    try:
        publisher.record_log_line("plain text")
        publisher.record_log_line(POWERTOOLS_LINE)
        publisher.flush()
    finally:
        publisher.close()
    ((namespace, data),) = recorder.calls
    assert namespace == "TaskApi"
    assert [d["MetricName"] for d in data] == ["ProcessingFailures"] * 2 + ["TasksFailed"]
