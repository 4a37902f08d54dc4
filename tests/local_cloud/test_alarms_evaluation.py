"""CloudWatch alarm evaluation against moto: thresholds, statistics, M of N, missing data."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.alarms import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmService,
    Datapoint,
    evaluate,
)
from localcloud.clients import local_client
from localcloud.inprocess import InProcessCloudWatchClient
from localcloud.specs import AlarmSpec, MetricDimension

from .conftest import dlq_alarm

REGION = "us-east-1"
T0 = datetime(2026, 11, 29, 8, 40, tzinfo=UTC)


@pytest.fixture(params=["boto3", "in-process"])
def evaluator_client(moto_url: str, request: pytest.FixtureRequest) -> Any:
    """What the evaluator talks to CloudWatch through: boto3 at the moto server, or moto's
    backend in this process (the local stack's way). Tests read back with boto3 either way."""
    if request.param == "in-process":
        return InProcessCloudWatchClient(REGION)
    return local_client("cloudwatch", moto_url, REGION)


@pytest.fixture
def alarms(moto_url: str, evaluator_client: Any) -> Iterator[AlarmService]:
    # Evaluated explicitly by each test (evaluate_now), unless a test starts the thread.
    with AlarmService(moto_url, REGION, start=False, cloudwatch_client=evaluator_client) as service:
        yield service


def errors_alarm(function: str) -> AlarmSpec:
    """The API errors alarm's shape: Sum of Errors > 5 over five minutes."""
    return AlarmSpec(
        alarm_name=f"errors-{function}",
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions=(MetricDimension("FunctionName", function),),
        statistic="Sum",
        period_s=300,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        threshold=5.0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
    )


def put(cloudwatch: Any, spec: AlarmSpec, value: float, timestamp: datetime | None = None) -> None:
    datum: dict[str, Any] = {
        "MetricName": spec.metric_name,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in spec.dimensions],
        "Value": value,
    }
    if timestamp is not None:
        datum["Timestamp"] = timestamp
    cloudwatch.put_metric_data(Namespace=spec.namespace, MetricData=[datum])


def described(cloudwatch: Any, name: str) -> dict[str, Any]:
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm  # type: ignore[no-any-return]


def unique() -> str:
    return uuid.uuid4().hex[:8]


# -------------------------------------------------------------- pure evaluation


def points(*values: float | None, period_s: int = 60) -> list[Datapoint]:
    return [Datapoint(T0 + timedelta(seconds=i * period_s), v) for i, v in enumerate(values)]


def three_of_three(treat_missing: str) -> AlarmSpec:
    return replace(
        dlq_alarm("q", treat_missing),
        evaluation_periods=3,
        datapoints_to_alarm=3,
        comparison_operator="GreaterThanThreshold",
        threshold=0.5,
    )


X, GOOD, MISSING = 1.0, 0.0, None  # breaching, not breaching, missing


# CloudWatch's table of how a 3-out-of-3 alarm treats missing data ("Configuring how
# CloudWatch alarms treat missing data"), over the three evaluated periods. None in the
# expected column means "the alarm keeps its current state".
@pytest.mark.parametrize(
    ("datapoints", "missing", "ignore", "breaching", "not_breaching"),
    [
        ((GOOD, MISSING, X), OK, OK, OK, OK),
        ((GOOD, MISSING, MISSING), OK, OK, OK, OK),
        ((MISSING, MISSING, MISSING), INSUFFICIENT_DATA, None, ALARM, OK),
        ((X, X, X), ALARM, ALARM, ALARM, ALARM),
        ((MISSING, X, MISSING), ALARM, None, ALARM, OK),
        ((X, MISSING, X), ALARM, None, ALARM, OK),
    ],
)
def test_missing_data_is_treated_like_cloudwatch(
    datapoints: tuple[float | None, ...],
    missing: str | None,
    ignore: str | None,
    breaching: str | None,
    not_breaching: str | None,
) -> None:
    for treat, expected in [
        ("missing", missing),
        ("ignore", ignore),
        ("breaching", breaching),
        ("notBreaching", not_breaching),
    ]:
        outcome = evaluate(three_of_three(treat), points(*datapoints), T0)
        assert outcome.state == expected, (treat, datapoints, outcome.reason)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((X, GOOD, X), ALARM),
        ((GOOD, X, X), ALARM),
        ((X, GOOD, GOOD), OK),
        ((GOOD, GOOD, GOOD), OK),
        ((X, X, GOOD), ALARM),
    ],
)
def test_m_out_of_n(values: tuple[float, ...], expected: str) -> None:
    spec = replace(three_of_three("missing"), datapoints_to_alarm=2)
    assert evaluate(spec, points(*values), T0).state == expected


@pytest.mark.parametrize(
    ("operator", "value", "breaches"),
    [
        ("GreaterThanOrEqualToThreshold", 5.0, True),
        ("GreaterThanOrEqualToThreshold", 4.9, False),
        ("GreaterThanThreshold", 5.0, False),
        ("GreaterThanThreshold", 5.1, True),
        ("LessThanThreshold", 4.9, True),
        ("LessThanThreshold", 5.0, False),
        ("LessThanOrEqualToThreshold", 5.0, True),
        ("LessThanOrEqualToThreshold", 5.1, False),
    ],
)
def test_comparison_operators(operator: str, value: float, breaches: bool) -> None:
    spec = replace(dlq_alarm("q"), comparison_operator=operator, threshold=5.0)
    assert evaluate(spec, points(value), T0).state == (ALARM if breaches else OK)


def test_reasons_are_worded_like_cloudwatch() -> None:
    spec = dlq_alarm("q")
    alarm = evaluate(spec, points(1.0), T0 + timedelta(seconds=61))
    assert alarm.reason == (
        "Threshold Crossed: 1 datapoint [1.0 (29/11/26 08:40:00)] was greater than or "
        "equal to the threshold (1.0)."
    )
    assert alarm.reason_data["recentDatapoints"] == [1.0]
    assert alarm.reason_data["statistic"] == "Maximum"
    ok = evaluate(spec, points(0.0), T0)
    assert ok.reason == (
        "Threshold Crossed: 1 datapoint [0.0 (29/11/26 08:40:00)] was not greater than or "
        "equal to the threshold (1.0)."
    )
    two_of_three = replace(three_of_three("missing"), datapoints_to_alarm=2)
    assert evaluate(two_of_three, points(6.0, GOOD, 7.0), T0).reason == (
        "Threshold Crossed: 2 out of the last 3 datapoints [7.0 (29/11/26 08:42:00), "
        "6.0 (29/11/26 08:40:00)] were greater than the threshold (0.5) "
        "(minimum 2 datapoints for OK -> ALARM transition)."
    )
    assert evaluate(three_of_three("missing"), points(None, None, None), T0).reason == (
        "Insufficient Data: 3 datapoints were unknown."
    )


# ------------------------------------------------------------ against moto


def test_dlq_alarm_fires_on_a_datapoint_and_clears_when_it_ages_out(
    alarms: AlarmService, moto_cloudwatch: Any
) -> None:
    spec = dlq_alarm(f"dlq-{unique()}.fifo")
    alarms.add_alarm(spec)
    assert alarms.evaluate_now() == {spec.alarm_name: OK}
    put(moto_cloudwatch, spec, 0.0)
    assert alarms.evaluate_now()[spec.alarm_name] == OK

    put(moto_cloudwatch, spec, 1.0)
    assert alarms.evaluate_now()[spec.alarm_name] == ALARM
    alarm = described(moto_cloudwatch, spec.alarm_name)
    assert alarm["StateValue"] == ALARM
    assert re.fullmatch(
        r"Threshold Crossed: 1 datapoint \[1\.0 \(\d\d/\d\d/\d\d \d\d:\d\d:\d\d\)\] was greater "
        r"than or equal to the threshold \(1\.0\)\.",
        alarm["StateReason"],
    ), alarm["StateReason"]
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [1.0]

    # The queue drained: zeros are published, but the minute's Maximum is still 1 ...
    put(moto_cloudwatch, spec, 0.0)
    assert alarms.evaluate_now()[spec.alarm_name] == ALARM
    # ... until the 1 is more than a period old (evaluated at a later clock).
    later = datetime.now(UTC) + timedelta(seconds=90)
    put(moto_cloudwatch, spec, 0.0, timestamp=later - timedelta(seconds=5))
    assert alarms.evaluate_now(later)[spec.alarm_name] == OK

    history = moto_cloudwatch.describe_alarm_history(
        AlarmName=spec.alarm_name, HistoryItemType="StateUpdate"
    )["AlarmHistoryItems"]
    assert [item["HistorySummary"] for item in history] == [
        "Alarm updated from ALARM to OK",
        "Alarm updated from OK to ALARM",
    ]
    newest = json.loads(history[0]["HistoryData"])
    assert newest["oldState"]["stateValue"] == ALARM
    assert newest["newState"]["stateReason"].startswith("Threshold Crossed: 1 datapoint [0.0")


def test_errors_alarm_stays_ok_at_five_and_fires_at_six(
    alarms: AlarmService, moto_cloudwatch: Any
) -> None:
    spec = errors_alarm(f"api-{unique()}")
    alarms.add_alarm(spec)
    for _ in range(5):
        put(moto_cloudwatch, spec, 1.0)
    assert alarms.evaluate_now()[spec.alarm_name] == OK
    put(moto_cloudwatch, spec, 1.0)
    assert alarms.evaluate_now()[spec.alarm_name] == ALARM
    assert described(moto_cloudwatch, spec.alarm_name)["StateReason"].startswith(
        "Threshold Crossed: 1 datapoint [6.0 ("
    )
    # Five minutes later the errors are out of the window: back to OK (notBreaching).
    assert alarms.evaluate_now(datetime.now(UTC) + timedelta(seconds=301))[spec.alarm_name] == OK


def test_sum_covers_the_whole_period_not_just_the_last_second(
    alarms: AlarmService, moto_cloudwatch: Any
) -> None:
    spec = errors_alarm(f"api-{unique()}")
    alarms.add_alarm(spec)
    now = datetime.now(UTC)
    for seconds_ago in (280, 200, 120, 60, 30, 1):  # six errors spread over ~5 minutes
        put(moto_cloudwatch, spec, 1.0, timestamp=now - timedelta(seconds=seconds_ago))
    assert alarms.evaluate_now(now)[spec.alarm_name] == ALARM


@pytest.mark.parametrize(
    ("treat_missing", "expected"),
    [
        ("missing", INSUFFICIENT_DATA),
        ("notBreaching", OK),
        ("breaching", ALARM),
    ],
)
def test_no_data_follows_treat_missing_data(
    alarms: AlarmService, moto_cloudwatch: Any, treat_missing: str, expected: str
) -> None:
    spec = dlq_alarm(f"empty-{unique()}", treat_missing)
    alarms.add_alarm(spec)
    assert alarms.evaluate_now()[spec.alarm_name] == expected
    assert described(moto_cloudwatch, spec.alarm_name)["StateValue"] == expected


def test_ignore_keeps_the_current_state_without_data(
    alarms: AlarmService, moto_cloudwatch: Any
) -> None:
    spec = dlq_alarm(f"ignore-{unique()}", "ignore")
    alarms.add_alarm(spec)
    moto_cloudwatch.set_alarm_state(
        AlarmName=spec.alarm_name, StateValue=ALARM, StateReason="manual"
    )
    assert alarms.evaluate_now()[spec.alarm_name] == ALARM
    put(moto_cloudwatch, spec, 0.0)
    assert alarms.evaluate_now()[spec.alarm_name] == OK


def test_m_of_n_over_real_periods(alarms: AlarmService, moto_cloudwatch: Any) -> None:
    spec = replace(
        dlq_alarm(f"mofn-{unique()}", "notBreaching"),
        alarm_name=f"mofn-{unique()}",
        evaluation_periods=3,
        datapoints_to_alarm=2,
    )
    alarms.add_alarm(spec)
    now = datetime.now(UTC)
    put(moto_cloudwatch, spec, 3.0, timestamp=now - timedelta(seconds=150))  # oldest period
    assert alarms.evaluate_now(now)[spec.alarm_name] == OK  # 1 of 3
    put(moto_cloudwatch, spec, 0.0, timestamp=now - timedelta(seconds=90))  # middle period
    assert alarms.evaluate_now(now)[spec.alarm_name] == OK
    put(moto_cloudwatch, spec, 2.0, timestamp=now - timedelta(seconds=10))  # newest period
    assert alarms.evaluate_now(now)[spec.alarm_name] == ALARM  # 2 of 3
    reason = described(moto_cloudwatch, spec.alarm_name)["StateReason"]
    assert reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [2.0 (")
    assert reason.endswith("(minimum 2 datapoints for OK -> ALARM transition).")


def test_state_is_set_only_on_change(alarms: AlarmService, moto_cloudwatch: Any) -> None:
    spec = dlq_alarm(f"quiet-{unique()}")
    alarms.add_alarm(spec)
    put(moto_cloudwatch, spec, 2.0)
    for _ in range(3):
        assert alarms.evaluate_now()[spec.alarm_name] == ALARM
    history = moto_cloudwatch.describe_alarm_history(AlarmName=spec.alarm_name)["AlarmHistoryItems"]
    assert len(history) == 1


def test_background_evaluation_reaches_alarm_without_being_asked(
    moto_url: str, moto_cloudwatch: Any, evaluator_client: Any
) -> None:
    spec = dlq_alarm(f"bg-{unique()}.fifo")
    with AlarmService(
        moto_url, REGION, evaluation_interval_s=0.1, cloudwatch_client=evaluator_client
    ) as service:
        service.add_alarm(spec)
        put(moto_cloudwatch, spec, 1.0)
        wait_until(
            lambda: described(moto_cloudwatch, spec.alarm_name)["StateValue"] == ALARM,
            timeout=10,
            description=f"{spec.alarm_name} in ALARM",
        )
        assert service.last_error is None
        assert service.states() == {spec.alarm_name: ALARM}


def test_add_alarm_creates_a_missing_alarm_and_keeps_an_existing_one(
    alarms: AlarmService, moto_cloudwatch: Any
) -> None:
    spec = errors_alarm(f"created-{unique()}")
    alarms.add_alarm(spec)
    created = described(moto_cloudwatch, spec.alarm_name)
    assert (created["Namespace"], created["MetricName"], created["Threshold"]) == (
        "AWS/Lambda",
        "Errors",
        5.0,
    )
    assert created["TreatMissingData"] == "notBreaching"
    alarms.add_alarm(spec)
    assert len(moto_cloudwatch.describe_alarms(AlarmNames=[spec.alarm_name])["MetricAlarms"]) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"statistic": "p99"},
        {"comparison_operator": "LessThanLowerOrGreaterThanUpperThreshold"},
        {"treat_missing_data": "sometimes"},
    ],
)
def test_unsupported_alarm_shapes_are_rejected_by_name(
    alarms: AlarmService, change: dict[str, str]
) -> None:
    spec = replace(dlq_alarm("q"), **change)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=spec.alarm_name):
        alarms.add_alarm(spec)
