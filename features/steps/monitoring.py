"""Steps of the monitoring feature: the alarms' definitions, and each alarm going off from
real failures of its kind at its threshold (and staying OK one below it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdk import contract
from features.steps.common import ScenarioTasks, fault_headers
from harness.drivers import (
    Alarms,
    DeadLetters,
    Functions,
    ServiceMetrics,
    TaskApi,
    TaskStore,
    Traces,
    rest_api_name,
    sampled_trace_header,
)
from harness.payloads import valid_task
from harness.target import DeployedSettings, Target
from harness.waiting import wait_until
from localcloud.metric_math import evaluate, ids_used

ALARMS = {
    "API errors": contract.API_ERRORS_ALARM_NAME,
    "processor errors": contract.PROCESSOR_ERRORS_ALARM_NAME,
    "dead-letter": contract.DLQ_ALARM_NAME,
}
COMPARISONS = {
    "more than": "GreaterThanThreshold",
    "greater than or equal to": "GreaterThanOrEqualToThreshold",
}


@dataclass(frozen=True)
class Timing:
    """How long CloudWatch takes on this target: the local stack evaluates every second
    and has a metric within a second, stamped to the second; AWS publishes metrics a minute
    or more late, stamped to the minute, and evaluates once a minute."""

    metric_delay_s: float
    evaluation_s: float
    # How coarse a datapoint's timestamp is: a failure up to this long before a window's
    # start can be stamped inside it.
    stamp_s: float

    @classmethod
    def of(cls, target: Target) -> Timing:
        return cls(5.0, 1.0, 1.0) if target.name == "local" else cls(240.0, 60.0, 60.0)


def _metric(query: dict[str, Any]) -> tuple[str, str, dict[str, str], str]:
    stat = query["MetricStat"]
    dims = {d["Name"]: d["Value"] for d in stat["Metric"].get("Dimensions", [])}
    return stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], dims, stat["Stat"]


def _check_api_5xx(target: Target, described: dict[str, Any]) -> int:
    stage = target.output(contract.API_URL).rstrip("/").rsplit("/", 1)[-1]
    dims = {d["Name"]: d["Value"] for d in described.get("Dimensions", [])}
    assert (described.get("Namespace"), described.get("MetricName")) == (
        "AWS/ApiGateway",
        "5XXError",
    ), described
    assert described["Statistic"] == "Sum", described
    assert dims == {"ApiName": rest_api_name(target), "Stage": stage}, dims
    return int(described["Period"])


def _check_processor_failures(target: Target, described: dict[str, Any]) -> int:
    queries = {q["Id"]: q for q in described.get("Metrics", [])}
    (total,) = [q for q in queries.values() if q.get("ReturnData", True)]
    metrics = {qid: _metric(q) for qid, q in queries.items() if "MetricStat" in q}
    environment = Functions(target).environment(contract.PROCESSOR_FUNCTION_NAME)
    function = target.output(contract.PROCESSOR_FUNCTION_NAME)
    errors = ("AWS/Lambda", "Errors", {"FunctionName": function}, "Sum")
    failures = (
        environment["POWERTOOLS_METRICS_NAMESPACE"],
        "ProcessingFailures",
        {"service": environment["POWERTOOLS_SERVICE_NAME"]},
        "Sum",
    )
    by_role = {"errors": errors, "failures": failures}
    ids = {
        role: key for role, want in by_role.items() for key, got in metrics.items() if got == want
    }
    assert sorted(ids) == ["errors", "failures"], metrics
    assert len(metrics) == 2, metrics
    expression = str(total["Expression"])
    assert ids_used(expression) == set(metrics), expression
    # The two add up, and one without datapoints in a window does not hide the other.
    for e, f in ((2.0, 3.0), (None, 4.0), (6.0, None), (None, None)):
        series = {ids["errors"]: [e], ids["failures"]: [f]}
        assert evaluate(expression, series, 1) == [(e or 0.0) + (f or 0.0)], (expression, e, f)
    (period,) = {int(q["MetricStat"]["Period"]) for q in queries.values() if "MetricStat" in q}
    return period


def _check_dlq_depth(target: Target, described: dict[str, Any]) -> int:
    dlq = target.output(contract.DEAD_LETTER_QUEUE_URL).rsplit("/", 1)[-1]
    dims = {d["Name"]: d["Value"] for d in described.get("Dimensions", [])}
    assert (described.get("Namespace"), described.get("MetricName")) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    ), described
    assert described["Statistic"] == "Maximum", described
    assert dims == {"QueueName": dlq}, dims
    return int(described["Period"])


METRICS = {
    "the requests the API answered with a 5xx": _check_api_5xx,
    "the processor's failed invocations plus its failed records": _check_processor_failures,
    "the dead-letter queue depth": _check_dlq_depth,
}


@then(
    parsers.parse(
        "the {alarm} alarm goes off when {metric} is {comparison} {threshold:d} "
        "within {minutes:d} minute(s)"
    )
)
def alarm_definition(
    target: Target, alarm: str, metric: str, comparison: str, threshold: int, minutes: int
) -> None:
    described = Alarms(target).describe(ALARMS[alarm])
    period = METRICS[metric](target, described)
    assert described["ComparisonOperator"] == COMPARISONS[comparison], described
    assert float(described["Threshold"]) == threshold, described
    window = period * int(described["EvaluationPeriods"])
    assert window == minutes * 60, f"the alarm looks at {window}s, expected {minutes} min"
    assert int(described.get("DatapointsToAlarm", 1)) == 1, described
    assert described.get("TreatMissingData") == "notBreaching", described


# --- each alarm from real failures ----------------------------------------------------


@dataclass(frozen=True)
class AlarmWindow:
    """An alarm whose window held no failure when the scenario's own began at ``start``."""

    output_key: str
    start: datetime


def _window_s(target: Target, output_key: str) -> float:
    described = Alarms(target).describe(output_key)
    period = described.get("Period") or described["Metrics"][-1]["MetricStat"]["Period"]
    return float(period) * int(described["EvaluationPeriods"])


@given(
    parsers.parse("the {alarm} alarm is OK and its window holds no failures"),
    target_fixture="alarm_window",
)
def clean_window(target: Target, alarm: str) -> AlarmWindow:
    output_key = ALARMS[alarm]
    alarms, timing = Alarms(target), Timing.of(target)
    window_s = _window_s(target, output_key)

    def clean() -> bool:
        now = datetime.now(UTC)
        # The window plus the datapoints' stamping granularity (a minute on AWS).
        value = alarms.window_value(
            output_key, start=now - timedelta(seconds=window_s + timing.stamp_s), end=now
        )
        return not value and alarms.describe(output_key)["StateValue"] == "OK"

    wait_until(
        clean,
        timeout=window_s + timing.stamp_s + timing.metric_delay_s + timing.evaluation_s * 2,
        interval=2.0,
        description=f"alarm {output_key} OK with no failure in its {window_s:.0f}s window",
    )
    return AlarmWindow(output_key, datetime.now(UTC))


def _counted(target: Target, window: AlarmWindow) -> float:
    value = Alarms(target).window_value(
        window.output_key,
        start=window.start - timedelta(minutes=1),
        end=datetime.now(UTC) + timedelta(minutes=1),
    )
    return value or 0.0


@then(parsers.parse("the {alarm} alarm has counted {count:d} and stays OK"))
def counted_and_ok(target: Target, alarm_window: AlarmWindow, alarm: str, count: int) -> None:
    assert alarm_window.output_key == ALARMS[alarm]
    timing = Timing.of(target)
    seen: dict[str, float] = {}

    def arrived() -> bool:
        seen["value"] = _counted(target, alarm_window)
        return seen["value"] >= count

    wait_until(
        arrived,
        timeout=timing.metric_delay_s + 30.0,
        interval=0.5,
        description=f"{count} failures in alarm {alarm_window.output_key}'s metrics",
    )
    assert seen["value"] == count, f"the alarm's metrics hold {seen['value']}, not {count}"
    # Several evaluations with the count in the window: the alarm must not go off.
    Alarms(target).stays_in_state(
        alarm_window.output_key, "OK", seconds=timing.evaluation_s * 3 + 1.0
    )


@then(parsers.parse("the {alarm} alarm goes off"))
def goes_off(target: Target, alarm: str) -> None:
    timing = Timing.of(target)
    Alarms(target).wait_for_state(
        ALARMS[alarm], "ALARM", timeout=timing.metric_delay_s + timing.evaluation_s * 3 + 30.0
    )


def _submissions_answered_503(
    api: TaskApi, target: Target, tasks: ScenarioTasks, count: int, directive: str
) -> None:
    for index in range(count):
        response = api.submit(
            valid_task(f"Alarm {directive} {index}"), headers=fault_headers(target, directive)
        )
        tasks.add(f"{directive} {index}", response)
        assert response.status == 503, response.describe()


@when(
    parsers.parse(
        "{count:d} submissions are answered 503 because storing the task fails behind the API"
    )
)
def store_fails(api: TaskApi, target: Target, tasks: ScenarioTasks, count: int) -> None:
    _submissions_answered_503(api, target, tasks, count, "store-fails")


@when(
    parsers.parse(
        "{count:d} more submission is answered 503 because sending the task fails behind the API"
    )
)
def send_fails(api: TaskApi, target: Target, tasks: ScenarioTasks, count: int) -> None:
    _submissions_answered_503(api, target, tasks, count, "send-fails")


@when(
    parsers.parse(
        "{failing:d} tasks fail each of their {attempts:d} attempts and {once:d} task fails "
        "its first attempt"
    )
)
def failing_tasks(
    api: TaskApi,
    target: Target,
    tasks: ScenarioTasks,
    store: TaskStore,
    budget: DeployedSettings,
    failing: int,
    attempts: int,
    once: int,
) -> None:
    assert attempts == budget.attempt_budget, "a task that always fails gets the whole budget"
    plan = ["always-fail"] * failing + ["fail-attempts=1"] * once
    for index, directive in enumerate(plan):
        response = api.submit(
            valid_task(f"Failing {index}"), headers=fault_headers(target, directive)
        )
        assert response.status == 200, response.describe()
        tasks.add(directive, response)
    expected = ["FAILED"] * failing + ["COMPLETED"] * once
    items = store.wait_all(
        tasks.accepted_ids(),
        {"FAILED", "COMPLETED"},
        timeout=budget.redelivery_budget_s(failing * attempts + once) + 30.0,
    )
    assert [item["status"] for item in items] == expected, items


@when(parsers.parse("the processor crashes on {count:d} more task"))
def crash_once(
    api: TaskApi,
    target: Target,
    tasks: ScenarioTasks,
    store: TaskStore,
    budget: DeployedSettings,
    count: int,
) -> None:
    for index in range(count):
        response = api.submit(valid_task(f"Crash {index}"), headers=fault_headers(target, "crash"))
        assert response.status == 200, response.describe()
        submitted = tasks.add("crash", response)
        # Its first attempt crashes the processor; the next one completes it.
        store.wait_for_status(
            submitted.task_id or "", {"COMPLETED"}, timeout=budget.redelivery_budget_s(2) + 30.0
        )


@given("the dead-letter queue is empty")
def dlq_empty(dead_letters: DeadLetters) -> None:
    dead_letters.drain()


@when("a task that always fails is dead-lettered")
def dead_letter_one(
    api: TaskApi,
    target: Target,
    tasks: ScenarioTasks,
    dead_letters: DeadLetters,
    budget: DeployedSettings,
) -> None:
    response = api.submit(valid_task("Dead letter"), headers=fault_headers(target, "always-fail"))
    assert response.status == 200, response.describe()
    submitted = tasks.add("poison", response)
    dead_letters.wait_for_task(
        submitted.task_id or "", timeout=budget.redelivery_budget_s(budget.attempt_budget) + 30.0
    )


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Run the monitoring scenarios first among the scenarios. Each still waits until its
    alarm's whole window holds no failure of another scenario; first, that wait is over at
    once instead of lasting up to five minutes after the last fault scenario.

    Only the scenarios trade places (the sort is stable and stays within the slots the
    features already hold), so a session that also runs other tests keeps their order and
    the features' local stack is not started early.
    """
    slots = [i for i, item in enumerate(items) if item.get_closest_marker("monitoring")]
    if not slots:
        return
    features = [i for i, item in enumerate(items) if "test_features.py" in item.nodeid]
    ordered = sorted(
        (items[i] for i in features),
        key=lambda item: 0 if item.get_closest_marker("monitoring") else 1,
    )
    for index, item in zip(features, ordered, strict=True):
        items[index] = item


# --- the API's own metrics --------------------------------------------------------------


@dataclass(frozen=True)
class MetricBaseline:
    """One of the API's own metrics summed over a fixed window that spans the scenario,
    noted before it acts: read again later, only the scenario's datapoints change it."""

    metrics: ServiceMetrics
    name: str
    start: datetime
    end: datetime
    before: float

    def now(self) -> float:
        return self.metrics.total(self.name, start=self.start, end=self.end)


@given(parsers.parse("the API's {metric} count is noted"), target_fixture="metric_baseline")
def note_api_metric(target: Target, metric: str) -> MetricBaseline:
    metrics = ServiceMetrics(target, contract.API_FUNCTION_NAME)
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return MetricBaseline(metrics, metric, start, end, metrics.total(metric, start=start, end=end))


@then(parsers.parse("the API's {metric} count went up by exactly {count:d}"))
def api_metric_went_up(
    target: Target, metric_baseline: MetricBaseline, metric: str, count: int
) -> None:
    baseline, timing = metric_baseline, Timing.of(target)
    assert baseline.name == metric, (baseline.name, metric)
    wanted = baseline.before + count
    seen = wait_until(
        lambda: (total := baseline.now()) >= wanted and total,
        timeout=timing.metric_delay_s + 30.0,
        interval=timing.evaluation_s,
        description=(
            f"the API's {metric} ({baseline.metrics.namespace}, service "
            f"{baseline.metrics.service}) to reach {wanted:g} from {baseline.before:g}: its "
            "datapoints travel in the API function's logs (embedded metric format)"
        ),
    )
    # A count that went past the scenario's own requests would count some twice.
    assert seen == wanted, f"{metric} went from {baseline.before:g} to {seen:g}, not +{count}"


# --- traces (X-Ray) -----------------------------------------------------------------------


@dataclass(frozen=True)
class TracedSubmission:
    """A task submitted in a trace the client started, sampled."""

    trace_id: str
    task_id: str
    at: datetime


@when(
    "a client submits a valid task in a new sampled X-Ray trace",
    target_fixture="traced_submission",
)
def submit_traced(api: TaskApi, tasks: ScenarioTasks) -> TracedSubmission:
    at = datetime.now(UTC)
    trace_id, header = sampled_trace_header()
    submitted = tasks.add(
        "traced", api.submit(valid_task("Traced task"), headers={"X-Amzn-Trace-Id": header})
    )
    assert submitted.response.status == 200, submitted.response.describe()
    assert submitted.task_id, submitted.response.describe()
    return TracedSubmission(trace_id, submitted.task_id, at)


@then("X-Ray holds that trace with the API function's segment and its calls to DynamoDB and SQS")
def api_traced(target: Target, traced_submission: TracedSubmission) -> None:
    # The task is stored (PutItem) and sent to the queue (SendMessage) within the request.
    Traces(target).wait_for_function(
        traced_submission.trace_id,
        target.output(contract.API_FUNCTION_NAME),
        {"DynamoDB PutItem", "SQS SendMessage"},
    )
