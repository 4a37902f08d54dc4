"""Fixtures for the local cloud's fidelity tests.

SQS fidelity tests take the ``sqs_backend`` fixture, which runs each test twice: against
our endpoint (``engine``) and against plain moto in server mode (``moto``). A test marked
``@pytest.mark.moto_differs("why")`` checks a behaviour plain moto gets wrong: its moto run
is a strict xfail, so the suite proves the gap still exists (and says so when moto fixes
it). Tests without the marker pass on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.clients import local_client
from localcloud.endpoint import AwsEndpoint
from localcloud.specs import AlarmSpec, MetricDimension
from localcloud.sqs import FakeClock
from localcloud.sqs.testing import REGION, SqsBackend, client


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "moto_differs(reason): plain moto gets this SQS behaviour wrong; "
        "the test's moto run is a strict xfail",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("moto_differs")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None:
            continue
        if callspec.params.get("sqs_backend") == "moto":
            reason = marker.args[0] if marker.args else "plain moto differs from AWS"
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"plain moto: {reason}"))


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[AwsEndpoint]:
    """Our endpoint with AWS's FIFO throughput quotas on (the default)."""
    with AwsEndpoint() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def unthrottled_endpoint() -> Iterator[AwsEndpoint]:
    """Our endpoint with the throughput quotas off (for load-shaped tests)."""
    with AwsEndpoint(throttling=False) as endpoint:
        yield endpoint


@pytest.fixture
def clocked_endpoint() -> Iterator[tuple[AwsEndpoint, FakeClock]]:
    """A fresh endpoint whose SQS engine runs on a fake clock the test advances."""
    clock = FakeClock()
    with AwsEndpoint(clock=clock) as endpoint:
        yield endpoint, clock


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """Plain moto in server mode, as the local cloud would use it without our engine."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["engine", "moto"])
def sqs_backend(request: pytest.FixtureRequest) -> SqsBackend:
    """Each test once against our endpoint and once against plain moto."""
    if request.param == "engine":
        url = request.getfixturevalue("aws_endpoint").url
    else:
        url = request.getfixturevalue("moto_url")
    return SqsBackend(kind=request.param, url=url, sqs=client("sqs", url))


@pytest.fixture
def engine_backend(aws_endpoint: AwsEndpoint) -> SqsBackend:
    """Our endpoint only (behaviours plain moto cannot be driven through, e.g. a fake clock)."""
    return SqsBackend(kind="engine", url=aws_endpoint.url, sqs=client("sqs", aws_endpoint.url))


@pytest.fixture
def moto_sqs(moto_url: str) -> Any:
    """An SQS client on plain moto (``moto_url``)."""
    return local_client("sqs", moto_url, REGION)


@pytest.fixture
def moto_cloudwatch(moto_url: str) -> Any:
    """A CloudWatch client on plain moto (``moto_url``)."""
    return local_client("cloudwatch", moto_url, REGION)


def dlq_alarm(queue: str, treat_missing: str = "notBreaching") -> AlarmSpec:
    """The DLQ alarm's shape: Maximum of visible messages >= 1 over one minute."""
    return AlarmSpec(
        alarm_name=f"dlq-{queue}",
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions=(MetricDimension("QueueName", queue),),
        statistic="Maximum",
        period_s=60,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        threshold=1.0,
        comparison_operator="GreaterThanOrEqualToThreshold",
        treat_missing_data=treat_missing,
    )
