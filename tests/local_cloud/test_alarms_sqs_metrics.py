"""AWS/SQS queue metrics published to CloudWatch, and the DLQ alarm they drive."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.alarms import ALARM, OK, AlarmService
from localcloud.clients import local_client
from localcloud.inprocess import InProcessCloudWatchClient
from localcloud.metrics import QueueMetricsPublisher
from localcloud.sqs import QueueDepth

from .conftest import dlq_alarm

REGION = "us-east-1"
METRICS = (
    "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateAgeOfOldestMessage",
)


@pytest.fixture(params=["boto3", "in-process"])
def service_client(moto_url: str, request: pytest.FixtureRequest) -> Any:
    """What the publisher and the evaluator talk to CloudWatch through: boto3 at the moto
    server, or moto's backend in this process (the local stack's way). Tests read back
    with boto3 either way."""
    if request.param == "in-process":
        return InProcessCloudWatchClient(REGION)
    return local_client("cloudwatch", moto_url, REGION)


def latest(cloudwatch: Any, queue_name: str, metric: str) -> float | None:
    """The newest datapoint of an AWS/SQS metric for a queue, None when there is none."""
    now = datetime.now(UTC)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                    },
                    "Period": 1,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(seconds=2),
        ScanBy="TimestampDescending",
    )["MetricDataResults"][0]
    return float(result["Values"][0]) if result["Values"] else None


def test_publishes_depths_from_get_queue_attributes(
    moto_url: str, moto_sqs: Any, moto_cloudwatch: Any, service_client: Any
) -> None:
    name = f"work-{uuid.uuid4().hex[:8]}"
    url = moto_sqs.create_queue(QueueName=name)["QueueUrl"]
    for body in ("a", "b", "c"):
        moto_sqs.send_message(QueueUrl=url, MessageBody=body)
    moto_sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    moto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    ages = {url: 12.5}
    with QueueMetricsPublisher(
        moto_url,
        REGION,
        [url],
        age_of_oldest=ages.get,
        start=False,
        cloudwatch_client=service_client,
    ) as publisher:
        assert publisher.publish_once() == 4
    assert [latest(moto_cloudwatch, name, metric) for metric in METRICS] == [2.0, 1.0, 1.0, 12.5]


def test_publishes_depths_from_a_callable_in_the_background(
    moto_url: str, moto_cloudwatch: Any, service_client: Any
) -> None:
    url = f"http://127.0.0.1:1/123456789012/engine-{uuid.uuid4().hex[:8]}.fifo"
    name = url.rsplit("/", 1)[1]
    depth = {url: QueueDepth(visible=7, not_visible=3, delayed=0, age_of_oldest_s=None)}
    with QueueMetricsPublisher(
        moto_url, REGION, lambda: depth, interval_s=0.1, cloudwatch_client=service_client
    ) as publisher:
        wait_until(
            lambda: latest(moto_cloudwatch, name, "ApproximateNumberOfMessagesVisible") == 7.0,
            timeout=10,
            description=f"visible=7 published for {name}",
        )
        assert publisher.last_error is None
    assert latest(moto_cloudwatch, name, "ApproximateNumberOfMessagesNotVisible") == 3.0
    # No age known: the metric is not invented.
    assert latest(moto_cloudwatch, name, "ApproximateAgeOfOldestMessage") is None


def test_add_queue_is_for_url_publishers_only(moto_url: str) -> None:
    with (
        QueueMetricsPublisher(moto_url, REGION, dict, start=False) as publisher,
        pytest.raises(ValueError, match="callable"),
    ):
        publisher.add_queue("http://x/123456789012/q")


def test_a_message_in_the_dlq_fires_the_dlq_alarm(
    moto_url: str, moto_sqs: Any, moto_cloudwatch: Any, service_client: Any
) -> None:
    name = f"tasks-dlq-{uuid.uuid4().hex[:8]}.fifo"
    url = moto_sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    spec = dlq_alarm(name)
    with (
        QueueMetricsPublisher(
            moto_url, REGION, [url], interval_s=0.1, cloudwatch_client=service_client
        ),
        AlarmService(
            moto_url, REGION, evaluation_interval_s=0.1, cloudwatch_client=service_client
        ) as alarms,
    ):
        alarms.add_alarm(spec)

        def state() -> str:
            (alarm,) = moto_cloudwatch.describe_alarms(AlarmNames=[spec.alarm_name])["MetricAlarms"]
            return str(alarm["StateValue"])

        wait_until(
            lambda: latest(moto_cloudwatch, name, "ApproximateNumberOfMessagesVisible") == 0.0,
            timeout=10,
            description="an empty DLQ published",
        )
        assert alarms.evaluate_now()[spec.alarm_name] == OK
        moto_sqs.send_message(
            QueueUrl=url,
            MessageBody='{"task_id": "poison"}',
            MessageGroupId="task-processing",
            MessageDeduplicationId="poison",
        )
        wait_until(lambda: state() == ALARM, timeout=10, description=f"{spec.alarm_name} in ALARM")
