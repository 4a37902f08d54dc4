"""CloudWatch alarm evaluation for the local cloud.

moto stores alarms and metric datapoints but never evaluates an alarm: its alarms stay in
the state they were created in. :class:`AlarmService` does what CloudWatch does, for the
alarms the template declares (:class:`~localcloud.specs.AlarmSpec`), on a single metric
or on metric math (arithmetic and ``FILL``: :mod:`localcloud.metric_math`): every
``evaluation_interval_s`` it reads the last ``evaluation_periods`` periods of each metric
with its statistic from moto (one ``GetMetricData`` per group of alarms), evaluates the
alarm's expression per period if it has one, applies the threshold and comparison,
"M out of N" (``datapoints_to_alarm``) and the ``treat_missing_data`` rule, and on a state
change only calls ``SetAlarmState`` with a reason worded like CloudWatch's. boto3
``describe_alarms`` then shows the state, and ``describe_alarm_history`` the transitions
(moto lacks that call; see
:func:`localcloud.moto_compat.install_describe_alarm_history`).

Deliberate local differences, for fast and deterministic feedback:

- The periods are sliding windows ending at the evaluation time (the newest one is the
  last ``period_s`` seconds up to now), not clock-aligned periods evaluated after they
  close. A 5-minute Sum still sums five minutes of data; it just fires at once.
- The evaluation range is exactly ``evaluation_periods`` periods. CloudWatch sometimes
  reaches further back for real datapoints when recent ones are missing; we do not.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from localcloud import metric_math
from localcloud.clients import local_client
from localcloud.closing import ClosesOnExit
from localcloud.moto_compat import aware, install_describe_alarm_history
from localcloud.specs import AlarmSpec, MetricQuery

logger = logging.getLogger(__name__)

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"

SUPPORTED_STATISTICS = frozenset({"SampleCount", "Average", "Sum", "Minimum", "Maximum"})

# Wording of CloudWatch's state reasons, per comparison operator.
_COMPARISONS: Mapping[str, tuple[str, Any]] = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
_TREAT_MISSING = frozenset({"missing", "ignore", "breaching", "notBreaching"})


@dataclass(frozen=True)
class Datapoint:
    """One evaluated period: its start and the statistic's value (None: no data)."""

    start: datetime
    value: float | None


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one alarm once. ``state`` None: keep the current state."""

    state: str | None
    reason: str
    reason_data: Mapping[str, Any] = field(default_factory=dict)


def breaches(spec: AlarmSpec, value: float) -> bool:
    """Whether ``value`` is on the alarming side of the threshold."""
    return bool(_COMPARISONS[spec.comparison_operator][1](value, spec.threshold))


def evaluate(spec: AlarmSpec, datapoints: Sequence[Datapoint], query_date: datetime) -> Evaluation:
    """Evaluate ``spec`` over ``datapoints`` (oldest first, one per period) like CloudWatch.

    Rules, from CloudWatch's "how alarm state is evaluated when data is missing" table:
    with ``breaching``/``notBreaching`` missing periods count as breaching/not breaching;
    with ``missing`` the alarm judges the real datapoints it has (all missing:
    INSUFFICIENT_DATA; fewer real ones than M: ALARM only if every one breaches); with
    ``ignore`` it keeps its state unless the real datapoints already decide it.
    """
    n = len(datapoints)
    m = spec.datapoints_to_alarm or spec.evaluation_periods
    treat = spec.treat_missing_data or "missing"
    words = _COMPARISONS[spec.comparison_operator][0]
    present = [d for d in datapoints if d.value is not None]
    breaching = [d for d in present if breaches(spec, d.value)]  # type: ignore[arg-type]
    good = [d for d in present if not breaches(spec, d.value)]  # type: ignore[arg-type]
    missing = n - len(present)
    data = _reason_data(spec, datapoints, query_date)
    threshold = _number(spec.threshold)

    if not present:
        periods = _plural(n, "period")
        if treat == "breaching":
            return Evaluation(
                ALARM,
                f"Threshold Crossed: no datapoints were received for {periods} and "
                f"{_plural(n, 'missing datapoint')} {_was(n)} treated as [Breaching].",
                data,
            )
        if treat == "notBreaching":
            return Evaluation(
                OK,
                f"Threshold Crossed: no datapoints were received for {periods} and "
                f"{_plural(n, 'missing datapoint')} {_was(n)} treated as [NonBreaching].",
                data,
            )
        if treat == "ignore":
            return Evaluation(None, "no datapoints; missing data is ignored", data)
        return Evaluation(
            INSUFFICIENT_DATA,
            f"Insufficient Data: {_plural(n, 'datapoint')} {_was(n)} unknown.",
            data,
        )

    breach_count = len(breaching) + (missing if treat == "breaching" else 0)
    if treat in ("breaching", "notBreaching"):
        alarming: bool | None = breach_count >= m
    elif treat == "missing":
        alarming = len(breaching) >= min(m, len(present))
    else:  # ignore: decide only when the real datapoints settle it
        if len(breaching) >= m:
            alarming = True
        elif len(good) > n - m:
            alarming = False
        else:
            alarming = None
    if alarming is None:
        return Evaluation(None, "not enough datapoints; missing data is ignored", data)

    shown = breaching if alarming else good
    listed = ", ".join(f"{_number(d.value)} ({_stamp(d.start)})" for d in reversed(shown))
    negation = "" if alarming else "not "
    if n == 1 and len(shown) == 1:
        reason = (
            f"Threshold Crossed: 1 datapoint [{listed}] was {negation}{words} "
            f"the threshold ({threshold})."
        )
    else:
        count = len(shown)
        needed = m if alarming else n - m + 1
        transition = "OK -> ALARM" if alarming else "ALARM -> OK"
        reason = (
            f"Threshold Crossed: {count} out of the last {n} datapoints [{listed}] "
            f"{_was(count)} {negation}{words} the threshold ({threshold}) "
            f"(minimum {_plural(needed, 'datapoint')} for {transition} transition)."
        )
    if missing and treat in ("breaching", "notBreaching"):
        as_what = "Breaching" if treat == "breaching" else "NonBreaching"
        reason = (
            f"{reason[:-1]} and {_plural(missing, 'missing datapoint')} {_was(missing)} "
            f"treated as [{as_what}]."
        )
    return Evaluation(ALARM if alarming else OK, reason, data)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _number(value: float | None) -> str:
    return repr(float(value)) if value is not None else "null"


def _stamp(moment: datetime) -> str:
    # CloudWatch's own format in state reasons: 29/11/26 08:40:00
    return moment.astimezone(UTC).strftime("%d/%m/%y %H:%M:%S")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}+0000"
    )


def _reason_data(
    spec: AlarmSpec, datapoints: Sequence[Datapoint], query_date: datetime
) -> dict[str, Any]:
    present = [d for d in datapoints if d.value is not None]
    return {
        "version": "1.0",
        "queryDate": _iso(query_date),
        "startDate": _iso(datapoints[0].start) if datapoints else _iso(query_date),
        "statistic": spec.statistic,
        "period": spec.period_s,
        "recentDatapoints": [d.value for d in present],
        "threshold": spec.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(d.start), "value": d.value} for d in reversed(present)
        ],
    }


class AlarmService(ClosesOnExit):
    """Evaluate the template's metric alarms against moto's CloudWatch, like CloudWatch does.

    ``add_alarm`` registers a spec (creating the alarm in moto if the CloudFormation engine
    has not); a background thread evaluates every alarm each ``evaluation_interval_s``
    and sets the state in moto on change. :meth:`evaluate_now` runs one evaluation
    synchronously (what tests and ``harness local status`` use). ``cloudwatch_client``
    replaces the boto3 client at ``endpoint_url`` (the local stack passes its
    :class:`~localcloud.inprocess.InProcessCloudWatchClient`).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        evaluation_interval_s: float = 1.0,
        cloudwatch_client: Any | None = None,
        start: bool = True,
    ) -> None:
        self._cloudwatch = cloudwatch_client or local_client("cloudwatch", endpoint_url, region)
        self._interval_s = evaluation_interval_s
        self._specs: dict[str, AlarmSpec] = {}
        self._lock = threading.Lock()  # guards _specs
        self._evaluating = threading.Lock()  # one evaluation at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.evaluations = 0
        self.last_error: str | None = None
        install_describe_alarm_history()
        if start:
            self.start()

    def add_alarm(self, spec: AlarmSpec) -> None:
        """Evaluate ``spec`` from now on; create it in CloudWatch if it does not exist yet."""
        if spec.comparison_operator not in _COMPARISONS:
            raise ValueError(
                f"alarm {spec.alarm_name!r}: comparison {spec.comparison_operator!r} is not "
                f"supported locally (supported: {', '.join(sorted(_COMPARISONS))})"
            )
        statistics = [q.statistic for q in spec.metrics if q.expression is None] or [spec.statistic]
        for statistic in statistics:
            if statistic not in SUPPORTED_STATISTICS:
                raise ValueError(
                    f"alarm {spec.alarm_name!r}: statistic {statistic!r} is not supported "
                    f"locally (supported: {', '.join(sorted(SUPPORTED_STATISTICS))})"
                )
        if spec.metrics:
            check_metric_math(spec)
        if (spec.treat_missing_data or "missing") not in _TREAT_MISSING:
            raise ValueError(
                f"alarm {spec.alarm_name!r}: unknown TreatMissingData {spec.treat_missing_data!r}"
            )
        existing = self._cloudwatch.describe_alarms(AlarmNames=[spec.alarm_name])["MetricAlarms"]
        if not existing:
            metric: dict[str, Any] = (
                {"Metrics": [_query_json(q) for q in spec.metrics]}
                if spec.metrics
                else {
                    "Namespace": spec.namespace,
                    "MetricName": spec.metric_name,
                    "Dimensions": [{"Name": d.name, "Value": d.value} for d in spec.dimensions],
                    "Statistic": spec.statistic,
                    "Period": spec.period_s,
                }
            )
            self._cloudwatch.put_metric_alarm(
                AlarmName=spec.alarm_name,
                **metric,
                EvaluationPeriods=spec.evaluation_periods,
                DatapointsToAlarm=spec.datapoints_to_alarm or spec.evaluation_periods,
                Threshold=spec.threshold,
                ComparisonOperator=spec.comparison_operator,
                TreatMissingData=spec.treat_missing_data or "missing",
                ActionsEnabled=spec.actions_enabled,
            )
        with self._lock:
            self._specs[spec.alarm_name] = spec

    def start(self) -> None:
        """Start the background evaluation thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="alarm-evaluator", daemon=True)
        self._thread.start()

    def states(self) -> dict[str, str]:
        """The current state of every registered alarm, as CloudWatch reports it."""
        with self._lock:
            names = list(self._specs)
        return self._current_states(names)

    def evaluate_now(self, now: datetime | None = None) -> dict[str, str]:
        """Evaluate every alarm once; return ``{alarm_name: state}`` after any change."""
        with self._evaluating:
            return self._evaluate(now or datetime.now(UTC))

    def _evaluate(self, now: datetime) -> dict[str, str]:
        with self._lock:
            specs = list(self._specs.values())
        if not specs:
            return {}
        # Datapoints are stamped on receipt with sub-second precision while moto compares
        # whole seconds: end at the next whole second so what was just published counts.
        end = datetime.fromtimestamp(math.floor(now.timestamp()) + 1, UTC)
        series = self._read_series(specs, end)
        current = self._current_states([s.alarm_name for s in specs])
        result: dict[str, str] = {}
        for spec in specs:
            outcome = evaluate(spec, series[spec.alarm_name], now)
            state = current.get(spec.alarm_name, INSUFFICIENT_DATA)
            if outcome.state is not None and outcome.state != state:
                self._cloudwatch.set_alarm_state(
                    AlarmName=spec.alarm_name,
                    StateValue=outcome.state,
                    StateReason=outcome.reason,
                    StateReasonData=json.dumps(outcome.reason_data),
                )
                logger.info("alarm %s: %s -> %s", spec.alarm_name, state, outcome.state)
                state = outcome.state
            result[spec.alarm_name] = state
        self.evaluations += 1
        return result

    def _read_series(self, specs: Sequence[AlarmSpec], end: datetime) -> dict[str, list[Datapoint]]:
        """One GetMetricData per evaluation span; moto buckets periods from StartTime.

        A metric-math alarm's metrics are read like single metrics (over the same span),
        then its expressions are evaluated period by period.
        """
        by_span: dict[int, list[tuple[AlarmSpec, MetricQuery]]] = {}
        for spec in specs:
            for query in _metric_queries(spec):
                by_span.setdefault(spec.period_s * spec.evaluation_periods, []).append(
                    (spec, query)
                )
        values_of: dict[tuple[str, str], list[float | None]] = {}
        starts: dict[str, datetime] = {}
        for span, group in by_span.items():
            start = end - timedelta(seconds=span)
            queries = [
                {
                    "Id": f"m{index}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.metric_name,
                            "Dimensions": [
                                {"Name": d.name, "Value": d.value} for d in query.dimensions
                            ],
                        },
                        "Period": query.period_s,
                        "Stat": query.statistic,
                    },
                    "ReturnData": True,
                }
                for index, (_, query) in enumerate(group)
            ]
            results = self._cloudwatch.get_metric_data(
                MetricDataQueries=queries,
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )["MetricDataResults"]
            by_id = {r["Id"]: r for r in results}
            for index, (spec, query) in enumerate(group):
                values: dict[int, float] = {}
                found = by_id.get(f"m{index}", {})
                for stamp, value in zip(
                    found.get("Timestamps", []), found.get("Values", []), strict=False
                ):
                    slot = round((aware(stamp) - start).total_seconds() / spec.period_s)
                    values[slot] = float(value)
                values_of[(spec.alarm_name, query.id)] = [
                    values.get(k) for k in range(spec.evaluation_periods)
                ]
                starts[spec.alarm_name] = start
        series: dict[str, list[Datapoint]] = {}
        for spec in specs:
            start = starts.get(spec.alarm_name, end - timedelta(seconds=spec.period_s))
            series[spec.alarm_name] = [
                Datapoint(start + timedelta(seconds=k * spec.period_s), value)
                for k, value in enumerate(_alarm_values(spec, values_of))
            ]
        return series

    def _current_states(self, names: Sequence[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        # DescribeAlarms takes at most 100 names per call.
        for offset in range(0, len(names), 100):
            alarms = self._cloudwatch.describe_alarms(AlarmNames=list(names[offset : offset + 100]))
            for alarm in alarms["MetricAlarms"]:
                states[alarm["AlarmName"]] = alarm["StateValue"]
        return states

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.evaluate_now()
                self.last_error = None
            except Exception as error:  # the evaluator must outlive a failed round
                self.last_error = repr(error)
                logger.debug("alarm evaluation failed: %r", error)

    def close(self, timeout: float = 5.0) -> None:
        """Stop evaluating and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


_SINGLE_METRIC = "m"


def _metric_queries(spec: AlarmSpec) -> list[MetricQuery]:
    """The metrics an alarm reads: its MetricStat queries, or its one metric."""
    if spec.metrics:
        return [q for q in spec.metrics if q.expression is None]
    return [
        MetricQuery(
            id=_SINGLE_METRIC,
            namespace=spec.namespace,
            metric_name=spec.metric_name,
            dimensions=spec.dimensions,
            statistic=spec.statistic,
            period_s=spec.period_s,
            return_data=True,
        )
    ]


def _alarm_values(
    spec: AlarmSpec, values_of: Mapping[tuple[str, str], list[float | None]]
) -> list[float | None]:
    """The alarm's value per evaluation period: its metric's, or its expression's."""
    periods = spec.evaluation_periods
    if not spec.metrics:
        return values_of.get((spec.alarm_name, _SINGLE_METRIC), [None] * periods)
    known: dict[str, list[float | None]] = {
        q.id: values_of.get((spec.alarm_name, q.id), [None] * periods)
        for q in spec.metrics
        if q.expression is None
    }
    pending = [q for q in spec.metrics if q.expression is not None]
    while pending:  # expressions may use each other: evaluate once their inputs are known
        ready = [q for q in pending if metric_math.ids_used(q.expression or "") <= set(known)]
        if not ready:
            raise metric_math.UnsupportedExpressionError(
                f"alarm {spec.alarm_name!r}: expressions refer to unknown ids or to each other "
                f"in a cycle: {[q.id for q in pending]}"
            )
        for query in ready:
            known[query.id] = metric_math.evaluate(query.expression or "", known, periods)
            pending.remove(query)
    (returned,) = [q.id for q in spec.metrics if q.return_data]
    return [None if v is None or v != v else v for v in known[returned]]  # NaN: no value


def check_metric_math(spec: AlarmSpec) -> None:
    """Refuse, at deploy time, a metric-math alarm the local evaluator cannot evaluate."""
    returned = [q for q in spec.metrics if q.return_data]
    if len(returned) != 1:
        raise ValueError(
            f"alarm {spec.alarm_name!r}: exactly one of its Metrics must return data, "
            f"got {len(returned)}"
        )
    periods = {q.period_s for q in spec.metrics if q.expression is None}
    if len(periods) != 1:
        raise ValueError(
            f"alarm {spec.alarm_name!r}: its metrics must share one period locally, got {periods}"
        )
    _alarm_values(spec, {})  # parses every expression and checks their ids


def _query_json(query: MetricQuery) -> dict[str, Any]:
    if query.expression is not None:
        return {"Id": query.id, "Expression": query.expression, "ReturnData": query.return_data}
    return {
        "Id": query.id,
        "MetricStat": {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.metric_name,
                "Dimensions": [{"Name": d.name, "Value": d.value} for d in query.dimensions],
            },
            "Period": query.period_s,
            "Stat": query.statistic,
        },
        "ReturnData": query.return_data,
    }
