"""The in-process CloudWatch and Logs clients against boto3 at a live endpoint, call by call.

Each test makes the same calls through boto3 (at the local endpoint, moto behind its web
layer) and through :mod:`localcloud.inprocess` (moto's backends directly), each path
on resources of its own, and checks both leave the same data in moto and give the caller
the same answer: the same fields and values, or the same exception class and error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from localcloud.clients import local_client
from localcloud.endpoint import AwsEndpoint
from localcloud.inprocess import (
    InProcessCloudWatchClient,
    InProcessLogsClient,
    moto_account_id,
)

PATHS = ("boto3", "in-process")


@pytest.fixture(scope="module")
def cloudwatch(aws_endpoint: AwsEndpoint) -> dict[str, Any]:
    """``{path: client}``: boto3 at the endpoint and the in-process client."""
    return {
        "boto3": local_client("cloudwatch", aws_endpoint.url, aws_endpoint.region),
        "in-process": InProcessCloudWatchClient(aws_endpoint.region),
    }


@pytest.fixture(scope="module")
def logs(aws_endpoint: AwsEndpoint) -> dict[str, Any]:
    """``{path: client}``: boto3 at the endpoint and the in-process client."""
    return {
        "boto3": local_client("logs", aws_endpoint.url, aws_endpoint.region),
        "in-process": InProcessLogsClient(aws_endpoint.region),
    }


@pytest.fixture(scope="module")
def backend(aws_endpoint: AwsEndpoint) -> Any:
    """moto's CloudWatch backend the endpoint serves (what both paths write to)."""
    from localcloud.moto_compat import cloudwatch_backends

    return cloudwatch_backends[moto_account_id()][aws_endpoint.region]


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


def outcome(method: Callable[..., Any], **kwargs: Any) -> tuple[Any, ...]:
    """What a caller of ``method(**kwargs)`` gets: the response without boto3's HTTP
    metadata, or the error (its class name, message and ``response["Error"]``)."""
    try:
        response = method(**kwargs)
    except ClientError as error:
        return ("error", type(error).__name__, str(error), error.response["Error"])
    return ("ok", {k: v for k, v in response.items() if k != "ResponseMetadata"})


def both(clients: dict[str, Any], operation: str, **kwargs: Any) -> dict[str, tuple[Any, ...]]:
    """``operation(**kwargs)`` through each path."""
    return {path: outcome(getattr(clients[path], operation), **kwargs) for path in PATHS}


def same(results: dict[str, tuple[Any, ...]]) -> tuple[Any, ...]:
    assert results["boto3"] == results["in-process"]
    return results["boto3"]


# ------------------------------------------------------------------- put_metric_data


def stored(backend: Any, namespace: str) -> list[tuple[Any, ...]]:
    """The datapoints moto holds for ``namespace``, in arrival order."""
    rows = []
    for datum in backend.metric_data:
        if datum.namespace != namespace:
            continue
        if hasattr(datum, "value"):
            value: Any = datum.value
        else:
            value = (datum.sum, datum.min, datum.max, datum.sample_count)
        dims = sorted((d.name, d.value) for d in datum.dimensions)
        rows.append((type(datum).__name__, datum.name, dims, datum.unit, value, datum.timestamp))
    return rows


def test_put_metric_data_leaves_the_same_datapoints(
    cloudwatch: dict[str, Any], backend: Any, uid: str
) -> None:
    stamp = datetime(2026, 11, 29, 8, 40, 1, 123456, tzinfo=UTC)
    dims = [{"Name": "FunctionName", "Value": "api"}, {"Name": "Stage", "Value": "prod"}]
    data: list[dict[str, Any]] = [
        {"MetricName": "Single", "Dimensions": dims, "Value": 2.5, "Unit": "Count"},
        {"MetricName": "Single", "Value": 7, "Timestamp": stamp},  # an int value
        # The same instant in another zone, naive (UTC, as botocore takes it), epoch, ISO.
        {
            "MetricName": "Zoned",
            "Value": 1.0,
            "Timestamp": stamp.astimezone(timezone(timedelta(hours=2))),
        },
        {"MetricName": "Naive", "Value": 1.0, "Timestamp": stamp.replace(tzinfo=None)},
        {"MetricName": "Epoch", "Value": 1.0, "Timestamp": 1795941601.5},
        {"MetricName": "Iso", "Value": 1.0, "Timestamp": "2026-11-29T08:40:01.250Z"},
        {
            "MetricName": "Many",
            "Dimensions": dims[:1],
            "Values": [1.0, 2.0, 30.0],
            "Counts": [2.0, 1.0, 3.0],
            "Unit": "Milliseconds",
            "Timestamp": stamp,
        },
        {"MetricName": "ManyUncounted", "Values": [4.0, 5.0], "Timestamp": stamp},
        {
            "MetricName": "Stats",
            "Dimensions": dims,
            "StatisticValues": {"SampleCount": 4, "Sum": 10.5, "Minimum": 0.5, "Maximum": 6},
            "Unit": "Milliseconds",
            "Timestamp": stamp,
        },
    ]
    data += [
        {"MetricName": "Batch", "Value": float(i), "Timestamp": stamp + timedelta(seconds=i)}
        for i in range(20)
    ]
    rows = {}
    for path in PATHS:
        namespace = f"Diff/{uid}/{path}"
        before = datetime.now(UTC).replace(tzinfo=None)
        result = outcome(cloudwatch[path].put_metric_data, Namespace=namespace, MetricData=data)
        assert result == ("ok", {})
        after = datetime.now(UTC).replace(tzinfo=None)
        rows[path] = stored(backend, namespace)
        # The datum without a timestamp is stamped on receipt.
        received = rows[path][0][-1]
        assert before <= received <= after
        rows[path][0] = (*rows[path][0][:-1], "on receipt")
    assert rows["boto3"] == rows["in-process"]
    # six single values, Values counted 2 + 1 + 3 times, two uncounted, a set, the batch
    assert len(rows["boto3"]) == 35
    assert {r[-1] for r in rows["boto3"] if r[1] in ("Zoned", "Naive")} == {
        stamp.replace(tzinfo=None)
    }


@pytest.mark.parametrize(
    ("datum", "error_class"),
    [
        ({"MetricName": "m", "Value": float("nan")}, "InvalidParameterValueException"),
        ({"MetricName": "m", "Value": 1.0, "Values": [1.0]}, "InvalidParameterValueException"),
        (
            {"MetricName": "m", "Values": [1.0, 2.0], "Counts": [1.0]},
            "InvalidParameterValueException",
        ),
        (
            {
                "MetricName": "m",
                "Value": 1.0,
                "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1},
            },
            "InvalidParameterCombinationException",
        ),
    ],
    ids=["nan", "value-and-values", "counts-size", "value-and-statistics"],
)
def test_put_metric_data_rejects_what_boto3_gets_rejected(
    cloudwatch: dict[str, Any], datum: dict[str, Any], error_class: str, uid: str
) -> None:
    result = same(both(cloudwatch, "put_metric_data", Namespace=uid, MetricData=[datum]))
    assert result[:2] == ("error", error_class)


# ------------------------------------------------------------------- get_metric_data


@pytest.fixture
def series(cloudwatch: dict[str, Any], uid: str) -> tuple[str, datetime]:
    """10 minutes of datapoints of one metric (values, value lists, statistic sets, two
    units) in a namespace of its own; returns it and the start of the first minute."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=12)
    namespace = f"Series/{uid}"
    # moto matches a query with dimensions on name and dimensions only, not namespace:
    # a queue of its own keeps other tests' series out.
    dims = [{"Name": "QueueName", "Value": namespace}]
    data: list[dict[str, Any]] = []
    for minute in range(10):
        at = start + timedelta(minutes=minute)
        if minute == 4:
            continue  # a period without data
        data.append(
            {
                "MetricName": "Depth",
                "Dimensions": dims,
                "Value": float(minute),
                "Unit": "Count",
                "Timestamp": at + timedelta(seconds=5),
            }
        )
        data.append(
            {
                "MetricName": "Depth",
                "Dimensions": dims,
                "Values": [1.0, 2.0 * minute],
                "Counts": [1.0, 2.0],
                "Unit": "Count",
                "Timestamp": at + timedelta(seconds=30),
            }
        )
        data.append(
            {
                "MetricName": "Depth",
                "Dimensions": dims,
                "Unit": "Seconds",
                "StatisticValues": {
                    "SampleCount": 3,
                    "Sum": 3.0 * minute,
                    "Minimum": 0.5,
                    "Maximum": 10.0 + minute,
                },
                "Timestamp": at + timedelta(seconds=59, microseconds=999_000),
            }
        )
    # Before the queried range: a path that got StartTime wrong would count it.
    data.append(
        {
            "MetricName": "Depth",
            "Dimensions": dims,
            "Value": 100.0,
            "Timestamp": start - timedelta(seconds=90),
        }
    )
    cloudwatch["in-process"].put_metric_data(Namespace=namespace, MetricData=data)
    return namespace, start


def query(namespace: str, qid: str, stat: str, period: int = 60, **extra: Any) -> dict[str, Any]:
    metric_stat: dict[str, Any] = {
        "Metric": {
            "Namespace": namespace,
            "MetricName": extra.pop("metric_name", "Depth"),
            "Dimensions": [{"Name": "QueueName", "Value": namespace}],
        },
        "Period": period,
        "Stat": stat,
    }
    if "unit" in extra:
        metric_stat["Unit"] = extra.pop("unit")
    return {"Id": qid, "MetricStat": metric_stat, **extra}


@pytest.mark.parametrize("scan_by", [None, "TimestampAscending", "TimestampDescending"])
def test_get_metric_data_answers_the_same(
    cloudwatch: dict[str, Any], series: tuple[str, datetime], scan_by: str | None
) -> None:
    namespace, start = series
    queries = [
        query(namespace, "sum", "Sum"),
        query(namespace, "max", "Maximum", period=120),
        query(namespace, "avg", "Average", period=180, Label="mean depth"),
        query(namespace, "count", "SampleCount", period=300),
        query(namespace, "min", "Minimum", unit="Count"),
        query(namespace, "hidden", "Sum", ReturnData=False),
        query(namespace, "none", "Sum", metric_name="Absent"),
    ]
    kwargs: dict[str, Any] = {
        "MetricDataQueries": queries,
        # Another zone and a naive (UTC) end: both paths must read the same instants.
        "StartTime": start.astimezone(timezone(timedelta(hours=-5))),
        "EndTime": (start + timedelta(minutes=10)).replace(tzinfo=None),
    }
    if scan_by:
        kwargs["ScanBy"] = scan_by
    results = both(cloudwatch, "get_metric_data", **kwargs)
    result = same(results)
    assert result[0] == "ok"
    by_id = {r["Id"]: r for r in result[1]["MetricDataResults"]}
    assert set(by_id) == {"sum", "max", "avg", "count", "min", "none"}
    # The data is really there and periods count from StartTime.
    ascending = sorted(zip(by_id["sum"]["Timestamps"], by_id["sum"]["Values"], strict=True))
    assert len(ascending) == 9
    assert ascending[0] == (start, 0.0 + 1.0 + 0.0 + 0.0)
    assert ascending[1] == (start + timedelta(minutes=1), 1.0 + 1.0 + 4.0 + 3.0)
    assert by_id["avg"]["Label"] == "mean depth"
    assert by_id["none"]["Values"] == []
    for path in PATHS:  # aware, as boto3 parses them (its zone may be local; same instant)
        stamps = results[path][1]["MetricDataResults"][0]["Timestamps"]
        assert all(stamp.tzinfo is not None for stamp in stamps), path


def test_get_metric_data_errors_are_the_same(
    cloudwatch: dict[str, Any], series: tuple[str, datetime]
) -> None:
    namespace, start = series
    equal_times = same(
        both(
            cloudwatch,
            "get_metric_data",
            MetricDataQueries=[query(namespace, "q", "Sum")],
            StartTime=start,
            EndTime=start,
        )
    )
    assert equal_times[:2] == ("error", "ValidationException")
    no_stat = same(
        both(
            cloudwatch,
            "get_metric_data",
            MetricDataQueries=[{"Id": "q"}],
            StartTime=start,
            EndTime=start + timedelta(hours=1),
        )
    )
    assert no_stat[:2] == ("error", "ValidationException")


def test_get_metric_data_follows_moto_on_order_and_matching(
    cloudwatch: dict[str, Any], uid: str
) -> None:
    """What the in-process series index must reproduce of moto: late datapoints (moto sums
    in arrival order: floats make that visible), a query with dimensions matching another
    namespace's series too, a query without dimensions matching every series of the
    metric, dimensions given in another order, and metric math (left to moto)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    namespace, other = f"Quirks/{uid}", f"Other/{uid}"
    ab = [{"Name": "A", "Value": uid}, {"Name": "B", "Value": "b"}]
    ba = list(reversed(ab))
    put = cloudwatch["in-process"].put_metric_data

    def datum(value: float, second: float, dims: list[dict[str, str]], **extra: Any) -> Any:
        at = start + timedelta(seconds=second)
        return {"MetricName": "Lag", "Dimensions": dims, "Value": value, "Timestamp": at, **extra}

    put(Namespace=namespace, MetricData=[datum(0.1 * i, 10 * i, ab) for i in range(30)])
    # Late arrivals into earlier minutes, and the same series in another namespace.
    put(Namespace=namespace, MetricData=[datum(0.7, 15, ab), datum(0.2, 75, ab, Unit="Count")])
    put(Namespace=other, MetricData=[datum(100.0, 20, ab), datum(1000.0, 25, ba)])
    put(Namespace=namespace, MetricData=[datum(3.3, 40, [{"Name": "A", "Value": uid}])])
    # Summed in arrival order 1e16 - 1e16 + 1 is 1; in timestamp order 1 is lost.
    put(Namespace=namespace, MetricData=[datum(1e16, 310, ab), datum(-1e16, 320, ab)])
    put(Namespace=namespace, MetricData=[datum(1.0, 305, ab)])

    def stat(qid: str, statistic: str, dims: list[dict[str, str]], **extra: Any) -> Any:
        metric = {"Namespace": namespace, "MetricName": "Lag", "Dimensions": dims}
        return {
            "Id": qid,
            "MetricStat": {"Metric": metric, "Period": 60, "Stat": statistic},
            **extra,
        }

    queries = [
        stat("sum", "Sum", ab),
        stat("reordered", "Sum", ba),
        stat("avg", "Average", ab),
        stat("everything", "Sum", []),
        stat("count", "SampleCount", [{"Name": "A", "Value": uid}]),
    ]
    queries[2]["MetricStat"]["Unit"] = "Count"
    window = {"StartTime": start, "EndTime": start + timedelta(minutes=6)}
    result = same(both(cloudwatch, "get_metric_data", MetricDataQueries=queries, **window))
    assert result[0] == "ok"
    by_id = {r["Id"]: r["Values"] for r in result[1]["MetricDataResults"]}
    assert len(by_id["sum"]) == 6
    assert by_id["sum"][0] == 1.0  # the newest minute first (TimestampDescending)
    assert by_id["avg"] == [0.2]
    math = [*queries[:2], {"Id": "total", "Expression": "sum + reordered"}]
    assert same(both(cloudwatch, "get_metric_data", MetricDataQueries=math, **window))[0] == "ok"
    # Datapoints put after a query are seen by the next one (the index keeps up).
    put(Namespace=namespace, MetricData=[datum(5.5, 30, ab), datum(6.5, 200, ba)])
    again = same(both(cloudwatch, "get_metric_data", MetricDataQueries=queries, **window))
    assert again != result


def test_get_metric_data_refuses_a_period_under_a_second(
    cloudwatch: dict[str, Any], series: tuple[str, datetime]
) -> None:
    namespace, start = series
    for path in PATHS:
        with pytest.raises(ParamValidationError, match="Period"):
            cloudwatch[path].get_metric_data(
                MetricDataQueries=[query(namespace, "q", "Sum", period=0)],
                StartTime=start,
                EndTime=start + timedelta(minutes=1),
            )


# ------------------------------------------------------------------------- alarms


def alarm_kwargs(name: str, uid: str) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmDescription": "errors of the api",
        "ActionsEnabled": False,
        "OKActions": ["arn:aws:sns:us-east-1:123456789012:ok"],
        "AlarmActions": [f"arn:aws:sns:us-east-1:123456789012:alarm-{uid}"],
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": "api"}],
        "Statistic": "Sum",
        "Period": 300,
        "Unit": "Count",
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "Threshold": 5,  # an int, as a caller may give it
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "Tags": [{"Key": "team", "Value": "tasks"}],
    }


def math_alarm_kwargs(name: str) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "EvaluationPeriods": 1,
        "Threshold": 0.1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "ThresholdMetricId": "rate",
        "Metrics": [
            {
                "Id": "rate",
                "Expression": "errors / invocations",
                "Label": "error rate",
                "ReturnData": True,
            },
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "Errors",
                        "Dimensions": [{"Name": "FunctionName", "Value": "api"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                    "Unit": "Count",
                },
                "ReturnData": False,
            },
            {
                "Id": "invocations",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Invocations"},
                    "Period": 60,
                    "Stat": "Sum",
                },
                "ReturnData": False,
            },
        ],
    }


def comparable(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm's description without what differs by name or by when it was made."""
    return {
        k: v
        for k, v in alarm.items()
        if k not in ("AlarmName", "AlarmArn")
        and k not in ("AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp")
    }


def test_alarms_are_put_and_described_the_same(
    cloudwatch: dict[str, Any], backend: Any, uid: str
) -> None:
    prefix = f"diff-{uid}"
    for path in PATHS:
        for kind, kwargs in (
            ("metric", alarm_kwargs(f"{prefix}-metric-{path}", uid)),
            ("math", math_alarm_kwargs(f"{prefix}-math-{path}")),
        ):
            assert outcome(cloudwatch[path].put_metric_alarm, **kwargs) == ("ok", {}), kind
    # A composite alarm (moto has no PutCompositeAlarm; CloudFormation could make one).
    backend.put_metric_alarm(
        name=f"{prefix}-composite",
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description="both",
        dimensions=[],
        alarm_actions=[],
        rule=f'ALARM("{prefix}-metric-boto3") AND ALARM("{prefix}-math-boto3")',
    )
    for describe in (
        {"AlarmNamePrefix": prefix},
        {"AlarmNames": [f"{prefix}-metric-boto3", f"{prefix}-math-in-process"]},
        {"ActionPrefix": f"arn:aws:sns:us-east-1:123456789012:alarm-{uid}"},
    ):
        result = same(both(cloudwatch, "describe_alarms", **describe))
        assert result[0] == "ok"
        assert result[1]["MetricAlarms"], describe
    described = same(both(cloudwatch, "describe_alarms", AlarmNamePrefix=prefix))[1]
    alarms = {a["AlarmName"]: a for a in described["MetricAlarms"]}
    assert [a["AlarmName"] for a in described["CompositeAlarms"]] == [f"{prefix}-composite"]
    # What each path created is the same alarm.
    for kind in ("metric", "math"):
        made = {path: alarms[f"{prefix}-{kind}-{path}"] for path in PATHS}
        assert comparable(made["boto3"]) == comparable(made["in-process"]), kind
    metric = alarms[f"{prefix}-metric-in-process"]
    assert (metric["Threshold"], metric["DatapointsToAlarm"], metric["ActionsEnabled"]) == (
        5.0,
        2,
        False,
    )
    assert alarms[f"{prefix}-math-in-process"]["Metrics"][1]["MetricStat"]["Unit"] == "Count"
    for alarm in alarms.values():
        assert alarm["StateUpdatedTimestamp"].tzinfo is not None
    # Everything in one state, filtered to this test's alarms (other tests add their own).
    by_state = {
        path: [a for a in r[1]["MetricAlarms"] if a["AlarmName"].startswith(prefix)]
        for path, r in both(cloudwatch, "describe_alarms", StateValue="OK").items()
    }
    assert by_state["boto3"] == by_state["in-process"]
    assert len(by_state["boto3"]) == 4


def test_set_alarm_state_is_the_same(cloudwatch: dict[str, Any], backend: Any, uid: str) -> None:
    reason_data = json.dumps({"version": "1.0", "recentDatapoints": [6.0]})
    for path in PATHS:
        name = f"state-{uid}-{path}"
        cloudwatch["boto3"].put_metric_alarm(**alarm_kwargs(name, uid))
        for state in ("ALARM", "OK", "INSUFFICIENT_DATA"):
            result = outcome(
                cloudwatch[path].set_alarm_state,
                AlarmName=name,
                StateValue=state,
                StateReason=f"to {state}",
                StateReasonData=reason_data,
            )
            assert result == ("ok", {})
    described = same(both(cloudwatch, "describe_alarms", AlarmNamePrefix=f"state-{uid}"))
    alarms = {a["AlarmName"]: a for a in described[1]["MetricAlarms"]}
    made = {path: alarms[f"state-{uid}-{path}"] for path in PATHS}
    assert comparable(made["boto3"]) == comparable(made["in-process"])
    assert (made["boto3"]["StateValue"], made["boto3"]["StateReasonData"]) == (
        "INSUFFICIENT_DATA",
        reason_data,
    )
    histories = {
        path: [item[1:4] for item in backend.alarms[f"state-{uid}-{path}"].history]
        for path in PATHS
    }
    assert histories["boto3"] == histories["in-process"]
    assert [state for _reason, _data, state in histories["boto3"]] == ["OK", "ALARM", "OK"]


@pytest.mark.parametrize(
    ("change", "error_class"),
    [
        ({"AlarmName": "no-such-alarm"}, "ResourceNotFound"),
        ({"StateReasonData": "{not json"}, "InvalidFormatFault"),
        ({"StateValue": "BROKEN"}, "ValidationException"),
    ],
)
def test_set_alarm_state_errors_are_the_same(
    cloudwatch: dict[str, Any], uid: str, change: dict[str, str], error_class: str
) -> None:
    name = f"bad-state-{uid}"
    cloudwatch["boto3"].put_metric_alarm(**alarm_kwargs(name, uid))
    kwargs = {"AlarmName": name, "StateValue": "ALARM", "StateReason": "x", **change}
    result = same(both(cloudwatch, "set_alarm_state", **kwargs))
    assert result[:2] == ("error", error_class)


# --------------------------------------------------------------------------- logs


def test_logs_calls_leave_the_same_events_in_the_same_order(logs: dict[str, Any], uid: str) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    batches = [
        # Chronological, with ties kept in the order given.
        [
            {"timestamp": now_ms - 3000, "message": "first"},
            {"timestamp": now_ms - 2000, "message": "tie a"},
            {"timestamp": now_ms - 2000, "message": "tie b"},
            {"timestamp": now_ms - 1000, "message": "third"},
        ],
        # Too old (over 14 days) and too new (over 2 hours ahead) are rejected, not stored.
        [
            {"timestamp": now_ms - 15 * 86_400_000, "message": "ancient"},
            {"timestamp": now_ms, "message": "kept"},
            {"timestamp": now_ms + 3 * 3_600_000, "message": "future"},
        ],
        # Out of order: the whole call is refused.
        [{"timestamp": now_ms, "message": "late"}, {"timestamp": now_ms - 1, "message": "early"}],
    ]
    results: dict[str, list[tuple[Any, ...]]] = {}
    events: dict[str, list[tuple[int, str]]] = {}
    for path in PATHS:
        client, group, stream = logs[path], f"/diff/{uid}/{path}", "2026/11/29/[$LATEST]abc"
        where = {"logGroupName": group, "logStreamName": stream}
        steps = [
            outcome(client.put_log_events, **where, logEvents=batches[0]),
            outcome(client.create_log_stream, **where),
            outcome(client.create_log_group, logGroupName=group),
            outcome(client.create_log_group, logGroupName=group),
            outcome(client.put_log_events, **where, logEvents=batches[0]),
            outcome(client.create_log_stream, **where),
        ]
        steps += [outcome(client.put_log_events, **where, logEvents=b) for b in batches]
        results[path] = steps
        read = logs["boto3"].get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True
        )["events"]
        events[path] = [(e["timestamp"], e["message"]) for e in read]
    assert results["boto3"] == results["in-process"]
    kinds = [
        step[:2] if step[0] == "error" else ("ok", sorted(step[1])) for step in results["boto3"]
    ]
    assert kinds == [
        ("error", "ResourceNotFoundException"),  # no group yet
        ("error", "ResourceNotFoundException"),
        ("ok", []),
        ("error", "ResourceAlreadyExistsException"),
        ("error", "ResourceNotFoundException"),  # no stream yet
        ("ok", []),
        ("ok", ["nextSequenceToken"]),
        ("ok", ["nextSequenceToken", "rejectedLogEventsInfo"]),
        ("error", "InvalidParameterException"),
    ]
    assert results["boto3"][7][1]["rejectedLogEventsInfo"] == {
        "tooOldLogEventEndIndex": 0,
        "tooNewLogEventStartIndex": 2,
    }
    assert events["boto3"] == events["in-process"]
    assert [message for _, message in events["boto3"]] == [
        "first",
        "tie a",
        "tie b",
        "third",
        "kept",
    ]
