"""The one telemetry shipper every local service uses: CloudWatch's batch limits, and the
one rule for a log group deleted behind its back (created again, the batch put again)."""

from __future__ import annotations

import time
import urllib.request
import uuid
from typing import Any

from localcloud.apigw import ApiGatewayService
from localcloud.clients import local_client
from localcloud.endpoint import AwsEndpoint
from localcloud.specs import ApiMethod, InvokeResult, RestApiSpec
from localcloud.telemetry import (
    LOG_EVENT_OVERHEAD,
    MAX_LOG_BATCH_BYTES,
    MAX_LOG_BATCH_EVENTS,
    MAX_METRIC_DATA,
    LogShipper,
    put_metric_data,
)

REGION = "us-east-1"


class RecordingLogs:
    """A logs client that records each PutLogEvents call (and accepts everything)."""

    class exceptions:
        class ResourceAlreadyExistsException(Exception):
            pass

        class ResourceNotFoundException(Exception):
            pass

    def __init__(self) -> None:
        self.puts: list[list[dict[str, Any]]] = []

    def create_log_group(self, **_: Any) -> None:
        pass

    def create_log_stream(self, **_: Any) -> None:
        pass

    def put_log_events(self, *, logEvents: list[dict[str, Any]], **_: Any) -> None:
        self.puts.append(logEvents)


def _messages(logs: Any, group: str) -> list[str]:
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def test_batches_stay_within_cloudwatch_logs_limits() -> None:
    client = RecordingLogs()
    shipper = LogShipper(lambda _: client, flush_interval=3600)
    try:
        for n in range(MAX_LOG_BATCH_EVENTS + 5):
            shipper.put("g", "s", f"e{n}", n)
        big = "x" * (300 * 1024)
        for n in range(5):  # 5 x 300 KiB: more than one call's 1 MiB
            shipper.put("g", "big", big, n)
        assert shipper.flush()
    finally:
        shipper.close()
    sizes = [len(put) for put in client.puts]
    assert sum(sizes) == MAX_LOG_BATCH_EVENTS + 10
    assert max(sizes) == MAX_LOG_BATCH_EVENTS
    for put in client.puts:
        total = sum(len(e["message"].encode()) + LOG_EVENT_OVERHEAD for e in put)
        assert total <= MAX_LOG_BATCH_BYTES


def test_metric_data_is_put_in_calls_of_at_most_the_limit() -> None:
    calls: list[int] = []

    class Client:
        def put_metric_data(self, *, Namespace: str, MetricData: list[Any]) -> None:
            assert Namespace == "NS"
            calls.append(len(MetricData))

    put_metric_data(Client(), "NS", [{"MetricName": "m", "Value": 1.0}] * (2 * MAX_METRIC_DATA + 1))
    assert calls == [MAX_METRIC_DATA, MAX_METRIC_DATA, 1]


def test_a_deleted_log_group_is_created_again_by_the_shipper(aws_endpoint: AwsEndpoint) -> None:
    logs = local_client("logs", aws_endpoint.url, aws_endpoint.region)
    group = f"/test/deleted-{uuid.uuid4().hex[:8]}"
    shipper = LogShipper(lambda _: logs, flush_interval=3600)
    try:
        shipper.put(group, "s", "before", int(time.time() * 1000))
        assert shipper.flush()
        assert _messages(logs, group) == ["before"]
        logs.delete_log_group(logGroupName=group)
        shipper.put(group, "s", "after", int(time.time() * 1000))
        assert shipper.flush()
    finally:
        shipper.close()
    assert _messages(logs, group) == ["after"]
    assert shipper.failed == 0


def test_the_api_gateway_access_logs_follow_the_same_rule(aws_endpoint: AwsEndpoint) -> None:
    logs = local_client("logs", aws_endpoint.url, aws_endpoint.region)
    group = f"/test/access-{uuid.uuid4().hex[:8]}"
    service = ApiGatewayService(
        lambda name, payload, trace_header=None: InvokeResult(
            200, b'{"statusCode": 200, "body": "ok"}'
        ),
        logs_client_factory=lambda: logs,
        publish_metrics=False,
        flush_interval_s=3600,
    )
    try:
        url = service.add_rest_api(
            RestApiSpec(
                api_id=f"t{uuid.uuid4().hex[:6]}",
                name="api",
                stage_name="prod",
                methods=(ApiMethod("/ping", "GET", "AWS_PROXY", function_name="f"),),
                access_log_group_arn=f"arn:aws:logs:{REGION}:123456789012:log-group:{group}:*",
                access_log_format="$context.httpMethod $context.resourcePath",
            )
        )
        for round_ in ("first", "second"):
            with urllib.request.urlopen(url + "ping", timeout=10) as response:  # noqa: S310
                assert response.status == 200
            service.flush()
            assert _messages(logs, group) == ["GET /ping"], f"the {round_} line"
            if round_ == "first":
                logs.delete_log_group(logGroupName=group)
    finally:
        service.close()
