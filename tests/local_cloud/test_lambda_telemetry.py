"""Worker output and the platform lines reach CloudWatch Logs; AWS/Lambda metrics reach
CloudWatch (read back with boto3, as a user would)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.inprocess import InProcessCloudWatchClient, InProcessLogsClient
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.telemetry import MetricsPublisher
from localcloud.lambda_service.testing import (
    Endpoint,
    boto_client,
    function_spec,
    local_endpoint,
)
from localcloud.specs import FunctionSpec
from localcloud.telemetry import MAX_LOG_EVENT_BYTES

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    with local_endpoint() as ep:
        yield ep


@pytest.fixture(params=["boto3", "in-process"])
def service(endpoint: Endpoint, request: pytest.FixtureRequest) -> Iterator[LambdaService]:
    """Logs shipped through the endpoint (any endpoint) or into moto in this process (the
    local stack's way): users read the same groups, streams and events either way."""
    logs_client = InProcessLogsClient(endpoint.region) if request.param == "in-process" else None
    with LambdaService(
        endpoint.url,
        endpoint.region,
        log_flush_interval=0.1,
        metrics_interval=0.2,
        logs_client=logs_client,
    ) as svc:
        yield svc


def make_spec(**kwargs: Any) -> FunctionSpec:
    return function_spec(FUNCTIONS, "lambda_probe.handler", prefix="telemetry", **kwargs)


def log_events(endpoint: Endpoint, group: str) -> dict[str, list[str]]:
    """Every event of every stream of ``group``, in stream order; {} if the group is missing."""
    logs = boto_client(endpoint, "logs")
    try:
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return {}
    return {
        s["logStreamName"]: [
            e["message"]
            for e in logs.get_log_events(
                logGroupName=group, logStreamName=s["logStreamName"], startFromHead=True
            )["events"]
        ]
        for s in streams
    }


def test_output_and_start_end_report_lines_reach_the_log_group(
    service: LambdaService, endpoint: Endpoint
) -> None:
    spec = make_spec(memory_mb=256)
    service.add_function(spec)
    marker = f"marker-{uuid.uuid4().hex}"

    result = service.invoke(
        spec.function_name, json.dumps({"action": "print", "text": marker}).encode()
    )
    rid = result.extra["RequestId"]
    group = f"/aws/lambda/{spec.function_name}"

    def complete_log() -> dict[str, list[str]] | None:
        streams = log_events(endpoint, group)
        messages = [m for events in streams.values() for m in events]
        return streams if any(m.startswith(f"REPORT RequestId: {rid}") for m in messages) else None

    streams = wait_until(
        complete_log, timeout=10, description=f"the REPORT line of {rid} in {group}"
    )
    assert len(streams) == 1
    ((stream, messages),) = streams.items()
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", stream)
    starts = [
        i for i, m in enumerate(messages) if m == f"START RequestId: {rid} Version: $LATEST\n"
    ]
    printed = [i for i, m in enumerate(messages) if m == marker + "\n"]
    ends = [i for i, m in enumerate(messages) if m == f"END RequestId: {rid}\n"]
    reports = [i for i, m in enumerate(messages) if m.startswith(f"REPORT RequestId: {rid}\t")]
    assert len(starts) == len(printed) == len(ends) == len(reports) == 1, messages
    assert starts[0] < printed[0] < ends[0] < reports[0]
    init_line = [m for m in messages[: starts[0]] if m.startswith("init pid=")]
    assert init_line, "output printed at import time (init) comes before START"
    report = messages[reports[0]]
    assert re.search(r"\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t", report), report
    assert "\tMemory Size: 256 MB\t" in report
    assert re.search(r"\tMax Memory Used: [1-9]\d* MB\t", report), report
    assert re.search(r"\tInit Duration: \d+\.\d\d ms\t", report), report


def test_an_over_long_line_is_cut_to_one_log_event(
    service: LambdaService, endpoint: Endpoint
) -> None:
    spec = make_spec()
    service.add_function(spec)

    result = service.invoke(
        spec.function_name, json.dumps({"action": "print_big", "size": 1_000_000}).encode()
    )
    assert result.function_error is None
    group = f"/aws/lambda/{spec.function_name}"

    def after_line() -> list[str] | None:
        messages = [m for events in log_events(endpoint, group).values() for m in events]
        return messages if "after-big-line\n" in messages else None

    messages = wait_until(after_line, timeout=10, description="the line printed after the big one")
    big = [m for m in messages if m.startswith("xxxx")]
    assert len(big) == 1
    assert len(big[0].encode()) <= MAX_LOG_EVENT_BYTES
    assert big[0].endswith("[truncated]\n")


def test_timeout_and_crash_are_logged_like_lambda(
    service: LambdaService, endpoint: Endpoint
) -> None:
    spec = make_spec(timeout_s=1)
    service.add_function(spec)
    timed_out = service.invoke(
        spec.function_name, json.dumps({"action": "sleep", "seconds": 10}).encode()
    )
    crashed = service.invoke(spec.function_name, json.dumps({"action": "exit", "code": 2}).encode())
    group = f"/aws/lambda/{spec.function_name}"
    t_rid, c_rid = timed_out.extra["RequestId"], crashed.extra["RequestId"]

    def both_reports() -> list[str] | None:
        messages = [m for events in log_events(endpoint, group).values() for m in events]
        done = sum(
            m.startswith(("REPORT RequestId: " + t_rid, "REPORT RequestId: " + c_rid))
            for m in messages
        )
        return messages if done == 2 else None

    messages = wait_until(both_reports, timeout=10, description="REPORT lines of both invocations")
    assert any(m.endswith(f"{t_rid} Task timed out after 1.00 seconds\n") for m in messages)
    assert any(
        m.startswith(f"REPORT RequestId: {t_rid}") and "Status: timeout" in m for m in messages
    )
    assert any(
        m.startswith(f"RequestId: {c_rid} Error: Runtime exited with error: exit status 2")
        for m in messages
    )
    assert any(
        m.startswith(f"REPORT RequestId: {c_rid}") and "Error Type: Runtime.ExitError" in m
        for m in messages
    )


@pytest.mark.parametrize("path", ["boto3", "in-process"])
def test_lambda_metrics_reach_cloudwatch(endpoint: Endpoint, path: str) -> None:
    """Published through the endpoint or into moto in this process (the local stack's
    way); read back with boto3 either way."""
    spec = make_spec(reserved_concurrency=1)
    cloudwatch_client = InProcessCloudWatchClient(endpoint.region) if path == "in-process" else None
    with LambdaService(
        endpoint.url, endpoint.region, metrics_interval=0.2, cloudwatch_client=cloudwatch_client
    ) as service:
        service.add_function(spec)
        for action in ("echo", "echo", "raise"):
            service.invoke(spec.function_name, json.dumps({"action": action}).encode())
        service.invoke(spec.function_name, json.dumps({"action": "echo"}).encode())
        # A throttle needs the one slot taken: occupy it from another thread.
        import threading

        busy = threading.Thread(
            target=service.invoke,
            args=(spec.function_name, json.dumps({"action": "sleep", "seconds": 1}).encode()),
        )
        busy.start()
        wait_until(
            lambda: service.stats()[spec.function_name].busy_workers == 1,
            timeout=5,
            description="the slow invoke to hold the only slot",
        )
        assert service.invoke(spec.function_name, b"{}").status_code == 429
        busy.join()
    cloudwatch = boto_client(endpoint, "cloudwatch")
    dims = [{"Name": "FunctionName", "Value": spec.function_name}]
    now = datetime.now(UTC)

    def total(metric: str, statistic: str = "Sum") -> float | None:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName=metric,
            Dimensions=dims,
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5),
            Period=600,
            Statistics=[statistic],
        )["Datapoints"]
        return sum(float(p[statistic]) for p in points) if points else None

    sums = wait_until(
        lambda: (
            (s := {m: total(m) for m in ("Invocations", "Errors", "Throttles")})["Invocations"] == 5
            and s
        ),
        timeout=10,
        description="Invocations, Errors and Throttles of the function in CloudWatch",
    )
    assert sums == {"Invocations": 5.0, "Errors": 1.0, "Throttles": 1.0}
    assert total("ConcurrentExecutions", "Maximum") == 1.0
    duration_max = total("Duration", "Maximum")
    assert duration_max is not None
    assert duration_max >= 1000.0


class _RecordingCloudWatch:
    """Keeps every ``PutMetricData`` datum instead of sending it."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []

    def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        assert Namespace == "AWS/Lambda"
        self.data.extend(MetricData)


def test_lambda_metrics_are_stamped_with_the_second_of_the_event_not_of_publishing() -> None:
    """A throttle at 100.7 s published at 102.4 s is a datapoint of second 100, as Lambda
    stamps metrics with the invocation's time: a reader counting the throttles of a window
    ending at 101 s finds it there, however late the publisher ran."""
    cloudwatch = _RecordingCloudWatch()
    clock = [100.7]
    publisher = MetricsPublisher(lambda _: cloudwatch, interval=3600, clock=lambda: clock[0])
    try:
        publisher.record_throttle("f")
        # Invoked at 100.2 s, recorded when it returned (now, 100.7 s): invocation's second.
        publisher.record_invocation("f", 500.0, error=False, concurrency=1, invoked_at=100.2)
        clock[0] = 101.3
        publisher.record_throttle("f")
        publisher.record_throttle("f")
        clock[0] = 102.4
        publisher.flush()
    finally:
        publisher.close()

    def per_second(name: str) -> dict[int, float]:
        return {
            int(d["Timestamp"].timestamp()): d["Value"]
            for d in cloudwatch.data
            if d["MetricName"] == name
        }

    assert per_second("Throttles") == {100: 1.0, 101: 2.0}
    assert per_second("Invocations") == {100: 1.0}
    assert {d["Timestamp"] for d in cloudwatch.data} == {
        datetime.fromtimestamp(100, UTC),
        datetime.fromtimestamp(101, UTC),
    }
