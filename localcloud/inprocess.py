"""The local cloud's own CloudWatch and CloudWatch Logs calls, on moto's backends in-process.

The local cloud's background services (alarm evaluation, the SQS, Lambda and API Gateway
metric publishers, the log shippers) call CloudWatch and CloudWatch Logs all the time. The
local endpoint serves moto in the same process, so a boto3 call to it costs botocore's
serialization and parsing, an HTTP round trip and moto's web layer, all on the CPU that
should serve the functions, for work moto's backend does in microseconds.
:class:`InProcessCloudWatchClient` and :class:`InProcessLogsClient` make the same calls on
moto's backends directly: they take the keyword arguments boto3 takes, hand the backend
what moto's request parser would (timestamps as naive UTC, ``Threshold`` as a float ...),
return what boto3 returns for the fields a caller reads (timestamps tz-aware, to the
millisecond, as they come off the wire) and raise moto's errors as the ``ClientError``
subclasses boto3 raises (``client.exceptions.ResourceNotFound``, same error code).

Only the calls the local cloud makes are here. A service that runs on its own, against an
endpoint in another process, uses boto3 (each service takes its client as a parameter).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from botocore.errorfactory import BaseClientExceptions, ClientExceptionsFactory
from botocore.exceptions import ClientError, ParamValidationError
from botocore.utils import parse_to_aware_datetime

__all__ = ["InProcessCloudWatchClient", "InProcessLogsClient", "moto_account_id"]


def moto_account_id(account_id: str | None = None) -> str:
    """The account moto gives the endpoint's ``testing`` credentials (``MOTO_ACCOUNT_ID``
    or moto's default), unless ``account_id`` says otherwise."""
    from localcloud.moto_compat import get_account_id_from

    return account_id or os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from("testing")


@functools.cache
def _client_exceptions(service: str) -> tuple[BaseClientExceptions, frozenset[str]]:
    """The modeled exceptions of ``service``, built as boto3 builds ``client.exceptions``,
    and the codes of those that are the sender's fault.

    From the service model moto already loaded to parse requests (cached, warmed at start).
    """
    from localcloud.moto_compat import get_service_model

    model = get_service_model(service)
    sender_faults = frozenset(
        cast("Any", shape).error_code  # an ErrorShape (botocore's stub says Shape)
        for shape in model.error_shapes
        if shape.metadata.get("error", {}).get("senderFault")
    )
    return ClientExceptionsFactory().create_client_exceptions(model), sender_faults


class _InProcessClient:
    """What both clients share: the modeled exceptions and moto's errors translated."""

    # CloudWatch's wire says which modeled error it is, as its old query protocol did.
    _query_compatible = False

    def __init__(self, service: str) -> None:
        from localcloud.moto_compat import JsonRESTError, ServiceException

        self.exceptions, self._sender_faults = _client_exceptions(service)
        self._service_errors = ServiceException
        self._rest_errors = JsonRESTError

    @contextlib.contextmanager
    def _operation(self, name: str) -> Iterator[None]:
        """Raise moto's errors in the block as boto3 does for ``name``: a ``ClientError``
        subclass chosen by the error code, ``response["Error"]`` carrying code and message."""
        try:
            yield
        except self._service_errors as error:  # CloudWatch's errors (moto's query services)
            raise self._client_error(name, str(error.code), str(error.message)) from error
        except self._rest_errors as error:  # CloudWatch Logs' errors (JSON protocol)
            raise self._client_error(name, error.error_type, error.message) from error

    def _client_error(self, operation: str, code: str, message: str) -> ClientError:
        # A class, whatever botocore's stub says.
        error_class: type[ClientError] = cast("Any", self.exceptions).from_code(code)
        info = {"Message": message, "Code": code}
        if self._query_compatible and error_class is not ClientError:
            info["QueryErrorCode"] = error_class.__name__
            if code in self._sender_faults:
                info["Type"] = "Sender"
        response: Any = {"Error": info}  # what boto3 parses off the wire for an error
        return error_class(response, operation)


class InProcessLogsClient(_InProcessClient):
    """The CloudWatch Logs calls the local cloud makes (log shippers), on moto in-process.

    The events land where ``logs`` clients at the endpoint read them, with the checks moto's
    ``PutLogEvents`` makes (order, age), without a boto3 request, HTTP and moto's web layer
    per batch (~2.7 ms of this process's CPU each; a busy stack ships tens a second).
    """

    def __init__(self, region: str, account_id: str | None = None) -> None:
        from localcloud.moto_compat import logs_backends

        super().__init__("logs")
        # Any: moto's annotations are narrower than what its own request parser passes.
        self._backend: Any = logs_backends[moto_account_id(account_id)][region]

    def create_log_group(self, *, logGroupName: str) -> dict[str, Any]:
        """``CreateLogGroup``; ``ResourceAlreadyExistsException`` if it exists."""
        with self._operation("CreateLogGroup"):
            self._backend.create_log_group(logGroupName, None, kmsKeyId=None)
        return {}

    def create_log_stream(self, *, logGroupName: str, logStreamName: str) -> dict[str, Any]:
        """``CreateLogStream``; ``ResourceNotFoundException`` without the group."""
        with self._operation("CreateLogStream"):
            self._backend.create_log_stream(logGroupName, logStreamName)
        return {}

    def put_log_events(
        self,
        *,
        logGroupName: str,
        logStreamName: str,
        logEvents: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """``PutLogEvents``: ``nextSequenceToken`` and, if any, ``rejectedLogEventsInfo``."""
        with self._operation("PutLogEvents"):
            token, rejected = self._backend.put_log_events(logGroupName, logStreamName, logEvents)
        result: dict[str, Any] = {"nextSequenceToken": token}
        if rejected:
            result["rejectedLogEventsInfo"] = rejected
        return result


class InProcessCloudWatchClient(_InProcessClient):
    """The CloudWatch calls the local cloud makes, on moto's ``cloudwatch_backends`` in-process.

    ``put_metric_data`` (the metric publishers), ``get_metric_data``, ``describe_alarms``,
    ``put_metric_alarm`` and ``set_alarm_state`` (the alarm evaluator), with the arguments
    moto honours. ``describe_alarms`` answers every field moto keeps for an alarm.
    """

    _query_compatible = True

    def __init__(self, region: str, account_id: str | None = None) -> None:
        from localcloud.moto_compat import (
            CloudWatchValidationError,
            Dimension,
            Metric,
            MetricDataQuery,
            MetricStat,
            Statistics,
            cloudwatch_backends,
        )

        super().__init__("cloudwatch")
        # Any: moto's annotations are narrower than what its own request parser passes
        # (None for every optional member).
        self._backend: Any = cloudwatch_backends[moto_account_id(account_id)][region]
        self._validation_error = CloudWatchValidationError
        self._dimension: Any = Dimension
        self._metric: Any = Metric
        self._metric_stat: Any = MetricStat
        self._metric_data_query: Any = MetricDataQuery
        self._statistics: Any = Statistics
        self._index = _SeriesIndex()
        self._index_lock = threading.Lock()

    # --- metrics ----------------------------------------------------------------------

    def put_metric_data(
        self, *, Namespace: str, MetricData: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """``PutMetricData``: ``Value``, ``Values``/``Counts`` or ``StatisticValues`` per datum,
        stamped on receipt unless it has a ``Timestamp`` (datetime, epoch or ISO string)."""
        data = [
            {**datum, "Timestamp": _moto_time(datum["Timestamp"])}
            if datum.get("Timestamp") is not None
            else datum
            for datum in MetricData
        ]
        with self._operation("PutMetricData"):
            self._backend.put_metric_data(Namespace, data)
        return {}

    def get_metric_data(
        self,
        *,
        MetricDataQueries: Sequence[Mapping[str, Any]],
        StartTime: datetime | float | str,
        EndTime: datetime | float | str,
        ScanBy: str | None = None,
    ) -> dict[str, Any]:
        """``GetMetricData``: per query ``Id``, ``Label``, ``Timestamps`` (aware, UTC),
        ``Values`` and ``StatusCode``, periods counted from ``StartTime`` (moto's way)."""
        with self._operation("GetMetricData"):
            for query in MetricDataQueries:
                if "MetricStat" not in query and "Expression" not in query:
                    # moto's wording, with AWS's trailing new line
                    raise self._validation_error(
                        "The parameter MetricDataQueries.member.1.MetricStat is required.\n"
                    )
            queries = list(MetricDataQueries)
            start, end = _moto_time(StartTime), _moto_time(EndTime)
            scan_by = ScanBy or "TimestampDescending"
            if any("Expression" in query for query in queries):
                # Metric math runs on every query's series: moto's own evaluation.
                results = self._backend.get_metric_data(
                    queries=queries, start_time=start, end_time=end, scan_by=scan_by
                )
            else:
                results = self._metric_stat_results(queries, start, end, scan_by)
        return {
            "MetricDataResults": [
                {
                    "Id": result["id"],
                    "Label": result["label"],
                    "Timestamps": [_wire_time(stamp) for stamp in result["timestamps"]],
                    "Values": [float(value) for value in result["values"]],
                    "StatusCode": result["status_code"],
                }
                for result in results
            ]
        }

    def _metric_stat_results(
        self, queries: list[Mapping[str, Any]], start: datetime, end: datetime, scan_by: str
    ) -> list[dict[str, Any]]:
        """moto's ``get_metric_data`` for ``MetricStat`` queries, from the series index.

        The same answer as moto, whose every call scans every datapoint ever stored once,
        then the range's datapoints once per query and period (the alarm evaluator calls it
        every second: ~25 ms with a 5-minute range of a busy stack's metrics, growing with
        uptime as moto never drops a datapoint). Here: moto's filters, period buckets,
        statistics and datapoint order, on only the range of the series a query matches.
        """
        # moto's checks and wording, on whole seconds as moto compares them.
        start, end = start.replace(microsecond=0), end.replace(microsecond=0)
        if start > end:
            raise self._validation_error("The parameter EndTime must be greater than StartTime.")
        if start == end:
            raise self._validation_error(
                "The parameter StartTime must not equal parameter EndTime."
            )
        with self._index_lock:
            self._index.update(self._backend.metric_data)
            # Datapoints other moto services compute on the fly (S3 bucket sizes): few.
            computed = [md for md in self._backend.aws_metric_data if start <= md.timestamp < end]
            results = []
            for query in queries:
                result = self._metric_stat_result(query, start, end, scan_by, computed)
                if query.get("ReturnData", True):
                    results.append(result)
        return results

    def _metric_stat_result(
        self,
        query: Mapping[str, Any],
        start: datetime,
        end: datetime,
        scan_by: str,
        computed: list[Any],
    ) -> dict[str, Any]:
        metric_stat = query["MetricStat"]
        namespace = metric_stat["Metric"]["Namespace"]
        name = metric_stat["Metric"]["MetricName"]
        period = int(metric_stat["Period"])
        if period < 1:
            # boto3 refuses it before sending (the model's minimum); moto would never return.
            raise ParamValidationError(
                report=f"Invalid value for parameter MetricDataQueries.MetricStat.Period, "
                f"value: {period}, valid min value: 1"
            )
        dimensions = [
            self._dimension(name=d["Name"], value=d["Value"])
            for d in metric_stat["Metric"].get("Dimensions", [])
        ]
        unit = metric_stat.get("Unit")
        stat = metric_stat["Stat"]

        def selected(md: Any) -> bool:
            # moto's filters, in its order: with dimensions it matches name and dimensions
            # only (not the namespace), its dimension sort included.
            if dimensions:
                matches = sorted(md.dimensions) == sorted(dimensions) and md.name == name
            else:
                matches = md.namespace == namespace and md.name == name
            return matches and (not unit or md.unit == unit)

        window = self._index.window(name, start, end, selected)
        window += [md for md in computed if selected(md)]
        delta = timedelta(seconds=period)
        buckets: dict[int, list[Any]] = {}
        for md in window:
            buckets.setdefault((md.timestamp - start) // delta, []).append(md)
        values: list[Any] = []
        timestamps: list[datetime] = []
        for k in sorted(buckets):
            stats = self._statistics([stat], start + k * delta)
            stats.metric_data = buckets[k]
            values.append(stats.get_statistics_for_type(stat))
            timestamps.append(stats.timestamp)
        if scan_by == "TimestampDescending":
            values.reverse()
            timestamps.reverse()
        return {
            "id": query["Id"],
            "label": query.get("Label") or f"{name} {stat}",
            "values": values,
            "timestamps": timestamps,
            "status_code": "Complete",
        }

    # --- alarms -----------------------------------------------------------------------

    def describe_alarms(
        self,
        *,
        AlarmNames: Sequence[str] | None = None,
        AlarmNamePrefix: str | None = None,
        StateValue: str | None = None,
        ActionPrefix: str | None = None,
    ) -> dict[str, Any]:
        """``DescribeAlarms``, one filter at a time in moto's order of precedence."""
        backend = self._backend
        with self._operation("DescribeAlarms"):
            if ActionPrefix:
                alarms = backend.get_alarms_by_action_prefix(ActionPrefix)
            elif AlarmNamePrefix:
                alarms = backend.get_alarms_by_alarm_name_prefix(AlarmNamePrefix)
            elif AlarmNames:
                alarms = backend.get_alarms_by_alarm_names(list(AlarmNames))
            elif StateValue:
                alarms = backend.get_alarms_by_state_value(StateValue)
            else:
                alarms = backend.describe_alarms()
            alarms = list(alarms)
        return {
            "MetricAlarms": [_metric_alarm(a) for a in alarms if a.rule is None],
            "CompositeAlarms": [_composite_alarm(a) for a in alarms if a.rule is not None],
        }

    def put_metric_alarm(
        self,
        *,
        AlarmName: str,
        EvaluationPeriods: int,
        ComparisonOperator: str,
        Namespace: str | None = None,
        MetricName: str | None = None,
        Metrics: Sequence[Mapping[str, Any]] | None = None,
        DatapointsToAlarm: int | None = None,
        Period: int | None = None,
        Threshold: float | None = None,
        Statistic: str | None = None,
        ExtendedStatistic: str | None = None,
        AlarmDescription: str | None = None,
        Dimensions: Sequence[Mapping[str, str]] | None = None,
        AlarmActions: Sequence[str] | None = None,
        OKActions: Sequence[str] | None = None,
        InsufficientDataActions: Sequence[str] | None = None,
        ActionsEnabled: bool | None = None,
        Unit: str | None = None,
        TreatMissingData: str | None = None,
        EvaluateLowSampleCountPercentile: str | None = None,
        ThresholdMetricId: str | None = None,
        Tags: Sequence[Mapping[str, str]] | None = None,
    ) -> dict[str, Any]:
        """``PutMetricAlarm`` (creates or replaces the alarm, in state OK as moto does)."""
        with self._operation("PutMetricAlarm"):
            self._backend.put_metric_alarm(
                name=AlarmName,
                namespace=Namespace,
                metric_name=MetricName,
                metric_data_queries=self._queries(Metrics) if Metrics else None,
                comparison_operator=ComparisonOperator,
                # The types moto's request parser gives it (the model's Integer, Double).
                evaluation_periods=int(EvaluationPeriods),
                datapoints_to_alarm=_maybe(int, DatapointsToAlarm),
                period=_maybe(int, Period),
                threshold=_maybe(float, Threshold),
                statistic=Statistic,
                extended_statistic=ExtendedStatistic,
                description=AlarmDescription,
                dimensions=[dict(d) for d in Dimensions or ()],
                alarm_actions=list(AlarmActions or ()),
                ok_actions=list(OKActions or ()),
                insufficient_data_actions=list(InsufficientDataActions or ()),
                unit=Unit,
                actions_enabled=ActionsEnabled,
                treat_missing_data=TreatMissingData,
                evaluate_low_sample_count_percentile=EvaluateLowSampleCountPercentile,
                threshold_metric_id=ThresholdMetricId,
                rule=None,
                tags=[dict(t) for t in Tags or ()],
            )
        return {}

    def set_alarm_state(
        self,
        *,
        AlarmName: str,
        StateValue: str,
        StateReason: str,
        StateReasonData: str | None = None,
    ) -> dict[str, Any]:
        """``SetAlarmState``; ``ResourceNotFound`` for an unknown alarm."""
        with self._operation("SetAlarmState"):
            self._backend.set_alarm_state(AlarmName, StateReason, StateReasonData, StateValue)
        return {}

    def _queries(self, metrics: Sequence[Mapping[str, Any]]) -> list[Any]:
        """``Metrics`` of a metric-math alarm as moto's ``MetricDataQuery`` (its parser's way)."""
        queries = []
        for query in metrics:
            stat = query.get("MetricStat") or {}
            metric = stat.get("Metric") or {}
            metric_stat = None
            if metric.get("MetricName"):
                metric_stat = self._metric_stat(
                    metric=self._metric(
                        metric_name=metric["MetricName"],
                        namespace=metric.get("Namespace"),
                        dimensions=[
                            self._dimension(name=d.get("Name"), value=d.get("Value"))
                            for d in metric.get("Dimensions", [])
                        ],
                    ),
                    period=stat.get("Period"),
                    stat=stat.get("Stat"),
                    unit=stat.get("Unit"),
                )
            queries.append(
                self._metric_data_query(
                    query_id=query.get("Id"),
                    label=query.get("Label"),
                    period=query.get("Period"),
                    return_data=query.get("ReturnData"),
                    expression=query.get("Expression"),
                    metric_stat=metric_stat,
                )
            )
        return queries


@dataclass
class _Series:
    """One series' datapoints (same name, namespace, unit and dimensions, in order), in
    timestamp order."""

    stamps: list[datetime] = field(default_factory=list)
    entries: list[tuple[int, Any]] = field(default_factory=list)  # (arrival, datum)

    def add(self, arrival: int, datum: Any) -> None:
        stamp = datum.timestamp
        if not self.stamps or stamp >= self.stamps[-1]:  # the usual case: in order
            self.stamps.append(stamp)
            self.entries.append((arrival, datum))
        else:
            at = bisect_right(self.stamps, stamp)
            self.stamps.insert(at, stamp)
            self.entries.insert(at, (arrival, datum))


class _SeriesIndex:
    """moto's stored datapoints by metric name and series, kept up to date incrementally
    (moto only ever appends to its list; a shorter or another list means a reset)."""

    def __init__(self) -> None:
        self._data: list[Any] | None = None
        self._indexed = 0
        self._by_name: dict[str, dict[tuple[Any, ...], _Series]] = {}

    def update(self, data: list[Any]) -> None:
        if data is not self._data or len(data) < self._indexed:
            self._data, self._indexed, self._by_name = data, 0, {}
        for arrival in range(self._indexed, len(data)):
            datum = data[arrival]
            key = (datum.namespace, datum.unit, *((d.name, d.value) for d in datum.dimensions))
            series = self._by_name.setdefault(datum.name, {})
            if key not in series:
                series[key] = _Series()
            series[key].add(arrival, datum)
        self._indexed = len(data)

    def window(
        self, name: str, start: datetime, end: datetime, selected: Callable[[Any], bool]
    ) -> list[Any]:
        """The datapoints named ``name`` in ``[start, end)`` of the series ``selected``
        accepts, in the order moto stored them (its sums add up in that order)."""
        picked: list[tuple[int, Any]] = []
        for series in self._by_name.get(name, {}).values():
            # A series' datapoints share everything a query filters on: judge its first.
            if selected(series.entries[0][1]):
                low, high = bisect_left(series.stamps, start), bisect_left(series.stamps, end)
                picked.extend(series.entries[low:high])
        picked.sort(key=lambda entry: entry[0])
        return [datum for _, datum in picked]


def _maybe(kind: type[Any], value: Any) -> Any:
    return None if value is None else kind(value)


def _moto_time(value: datetime | float | str) -> datetime:
    """A timestamp as moto's request parser hands it to the backend: naive UTC, to the
    microsecond. Naive input is UTC, as botocore takes it."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)
    # botocore's own normalisation (epoch numbers too, whatever its stub says).
    aware: datetime = parse_to_aware_datetime(value)  # type: ignore[arg-type]
    return aware.astimezone(UTC).replace(tzinfo=None)


def _wire_time(moment: datetime) -> datetime:
    """A timestamp of moto's as boto3 gets it: aware, truncated to the millisecond (moto
    serializes epoch milliseconds)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)


def _without_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    # boto3 leaves out the members the response does not carry; moto sends no None.
    return {key: value for key, value in fields.items() if value is not None}


def _common_alarm_fields(alarm: Any) -> dict[str, Any]:
    return {
        "AlarmName": alarm.name,
        "AlarmArn": alarm.alarm_arn,
        "AlarmDescription": alarm.description,
        "AlarmConfigurationUpdatedTimestamp": _wire_time(alarm.configuration_updated_timestamp),
        "ActionsEnabled": alarm.actions_enabled,
        "OKActions": _maybe(list, alarm.ok_actions),
        "AlarmActions": _maybe(list, alarm.alarm_actions),
        "InsufficientDataActions": _maybe(list, alarm.insufficient_data_actions),
        "StateValue": alarm.state_value,
        "StateReason": alarm.state_reason,
        "StateReasonData": alarm.state_reason_data,
        "StateUpdatedTimestamp": _wire_time(alarm.state_updated_timestamp),
    }


def _metric_alarm(alarm: Any) -> dict[str, Any]:
    """One ``MetricAlarm`` of ``DescribeAlarms`` from moto's ``Alarm``."""
    return _without_none(
        {
            **_common_alarm_fields(alarm),
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "Statistic": alarm.statistic,
            "ExtendedStatistic": alarm.extended_statistic,
            "Dimensions": [_dimension(d) for d in alarm.dimensions],
            "Period": alarm.period,
            "Unit": alarm.unit,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm,
            "Threshold": _maybe(float, alarm.threshold),
            "ComparisonOperator": alarm.comparison_operator,
            "TreatMissingData": alarm.treat_missing_data,
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile,
            "Metrics": [_metric_data_query(q) for q in alarm.metric_data_queries],
            "ThresholdMetricId": alarm.threshold_metric_id,
        }
    )


def _composite_alarm(alarm: Any) -> dict[str, Any]:
    """One ``CompositeAlarm`` of ``DescribeAlarms`` from moto's ``Alarm`` with a rule."""
    return _without_none({**_common_alarm_fields(alarm), "AlarmRule": alarm.rule})


def _dimension(dimension: Any) -> dict[str, Any]:
    return _without_none({"Name": dimension.name, "Value": dimension.value})


def _metric_data_query(query: Any) -> dict[str, Any]:
    stat = query.metric_stat
    return _without_none(
        {
            "Id": query.id,
            "MetricStat": None
            if stat is None
            else _without_none(
                {
                    "Metric": _without_none(
                        {
                            "Namespace": stat.metric.namespace,
                            "MetricName": stat.metric.metric_name,
                            "Dimensions": [_dimension(d) for d in stat.metric.dimensions],
                        }
                    ),
                    "Period": _maybe(int, stat.period),
                    "Stat": stat.stat,
                    "Unit": stat.unit,
                }
            ),
            "Expression": query.expression,
            "Label": query.label,
            "ReturnData": query.return_data,
            "Period": _maybe(int, query.period),
        }
    )
