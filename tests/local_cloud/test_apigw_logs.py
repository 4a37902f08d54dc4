"""The local API Gateway's access logs and metrics reach moto's CloudWatch Logs/CloudWatch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from moto.server import ThreadedMotoServer

from harness.waiting import wait_until
from localcloud.apigw import ApiGatewayService
from localcloud.clients import local_client
from localcloud.inprocess import InProcessCloudWatchClient, InProcessLogsClient
from localcloud.specs import ApiMethod, InvokeResult, RestApiSpec

REGION = "us-east-1"
LOG_GROUP = "/aws/apigateway/task-api-access"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:123456789012:log-group:{LOG_GROUP}:*"
# What CDK's AccessLogFormat.json_with_standard_fields(...) synthesizes, all fields on.
CDK_JSON_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"user":"$context.identity.user","caller":"$context.identity.caller",'
    '"requestTime":"$context.requestTime","httpMethod":"$context.httpMethod",'
    '"resourcePath":"$context.resourcePath","status":"$context.status",'
    '"protocol":"$context.protocol","responseLength":"$context.responseLength"}'
)
EXTRA_FORMAT = (
    '{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",'
    '"path":"$context.path","stage":"$context.stage","domainName":"$context.domainName",'
    '"requestTimeEpoch":"$context.requestTimeEpoch","latency":"$context.responseLatency",'
    '"integrationLatency":"$context.integrationLatency",'
    '"integrationStatus":"$context.integrationStatus","error":"$context.error.message",'
    '"errorType":"$context.error.responseType","userAgent":"$context.identity.userAgent"}'
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["boto3", "in-process"])
def clients(request: pytest.FixtureRequest) -> dict[str, Any]:
    """How the gateway ships logs and metrics: boto3 at the endpoint (its default) or into
    moto's backends in this process (the local stack's way). Read back with boto3."""
    if request.param == "boto3":
        return {}
    return {
        "logs_client_factory": lambda: InProcessLogsClient(REGION),
        "cloudwatch_client_factory": lambda: InProcessCloudWatchClient(REGION),
    }


def unique(name: str) -> str:
    """An API id of its own per run: moto's state outlives a test within the process."""
    return f"{name}{uuid.uuid4().hex[:6]}"


def invoke(function_name: str, payload: bytes, *, trace_header: str | None = None) -> InvokeResult:
    return InvokeResult(200, json.dumps({"statusCode": 201, "body": '{"ok": true}'}).encode())


def spec(api_id: str, log_format: str) -> RestApiSpec:
    return RestApiSpec(
        api_id=api_id,
        name=f"TaskApi-{api_id}",
        stage_name="prod",
        methods=(ApiMethod("/tasks", "POST", "AWS_PROXY", function_name="api"),),
        access_log_group_arn=LOG_GROUP_ARN,
        access_log_format=log_format,
    )


def log_lines(endpoint: str, stream: str, count: int) -> list[dict[str, Any]]:
    logs = local_client("logs", endpoint, REGION)

    def probe() -> list[dict[str, Any]] | None:
        try:
            events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return None
        return [json.loads(e["message"]) for e in events] if len(events) >= count else None

    return wait_until(
        probe, timeout=15, interval=0.1, description=f"{count} access-log lines in {stream}"
    )


def test_access_log_lines_in_cdk_json_format_reach_cloudwatch_logs(
    endpoint: str, clients: dict[str, Any]
) -> None:
    api_id = unique("jsonfmt")
    with ApiGatewayService(invoke, endpoint_url=endpoint, region=REGION, **clients) as gateway:
        url = gateway.add_rest_api(spec(api_id, CDK_JSON_FORMAT))
        created = requests.post(f"{url}tasks", json={"title": "x"}, timeout=10)
        missing = requests.get(f"{url}nowhere", timeout=10)
        lines = log_lines(endpoint, f"{api_id}-prod", 2)
    assert created.status_code == 201
    assert missing.status_code == 403
    first, second = lines
    assert first == {
        "requestId": created.headers["x-amzn-RequestId"],
        "ip": "127.0.0.1",
        "user": "-",
        "caller": "-",
        "requestTime": first["requestTime"],
        "httpMethod": "POST",
        "resourcePath": "/tasks",
        "status": "201",
        "protocol": "HTTP/1.1",
        "responseLength": "12",
    }
    datetime.strptime(first["requestTime"], "%d/%b/%Y:%H:%M:%S +0000")
    assert second["requestId"] == missing.headers["x-amzn-RequestId"]
    assert (second["status"], second["httpMethod"], second["resourcePath"]) == ("403", "GET", "-")


def test_access_log_resolves_latency_error_and_identity_variables(
    endpoint: str, clients: dict[str, Any]
) -> None:
    api_id = unique("extra")
    with ApiGatewayService(invoke, endpoint_url=endpoint, region=REGION, **clients) as gateway:
        url = gateway.add_rest_api(spec(api_id, EXTRA_FORMAT))
        created = requests.post(
            f"{url}tasks", json={}, headers={"User-Agent": "probe/2"}, timeout=10
        )
        requests.delete(f"{url}tasks", timeout=10)
        ok_line, error_line = log_lines(endpoint, f"{api_id}-prod", 2)
    assert ok_line["extendedRequestId"] == created.headers["x-amz-apigw-id"]
    assert ok_line["path"] == "/prod/tasks"
    assert ok_line["stage"] == "prod"
    assert ok_line["domainName"].startswith("127.0.0.1:")
    assert ok_line["userAgent"] == "probe/2"
    assert ok_line["integrationStatus"] == "200"
    assert int(ok_line["latency"]) >= int(ok_line["integrationLatency"]) >= 0
    assert abs(int(ok_line["requestTimeEpoch"]) / 1000 - datetime.now(UTC).timestamp()) < 60
    assert (ok_line["error"], ok_line["errorType"]) == ("-", "-")
    assert error_line["error"] == "Missing Authentication Token"
    assert error_line["errorType"] == "MISSING_AUTHENTICATION_TOKEN"
    assert error_line["integrationStatus"] == "-"


def test_api_metrics_reach_cloudwatch(endpoint: str, clients: dict[str, Any]) -> None:
    api_id = unique("metrics")
    with ApiGatewayService(invoke, endpoint_url=endpoint, region=REGION, **clients) as gateway:
        url = gateway.add_rest_api(spec(api_id, CDK_JSON_FORMAT))
        for _ in range(3):
            requests.post(f"{url}tasks", json={}, timeout=10)
        requests.get(f"{url}nowhere", timeout=10)
    # close() flushed what was pending.
    cloudwatch = local_client("cloudwatch", endpoint, REGION)
    now = datetime.now(UTC)

    def total(metric: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/ApiGateway",
            MetricName=metric,
            Dimensions=[
                {"Name": "ApiName", "Value": f"TaskApi-{api_id}"},
                {"Name": "Stage", "Value": "prod"},
            ],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=360,
            Statistics=["Sum", "SampleCount"],
        )["Datapoints"]
        return float(sum(p["Sum"] for p in points))

    assert total("Count") == 4
    assert total("4XXError") == 1
    assert total("5XXError") == 0
