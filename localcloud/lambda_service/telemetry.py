"""The local Lambda service's own telemetry: log stream names, EMF, ``AWS/Lambda`` metrics.

Logs go through the shared :class:`localcloud.telemetry.LogShipper` and metrics through
:func:`localcloud.telemetry.put_metric_data`, from background threads, so an invocation
never waits on a CloudWatch call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localcloud.clients import ClientFactory
from localcloud.telemetry import put_metric_data

_LOG = logging.getLogger(__name__)


def log_stream_name(now: datetime | None = None, *, suffix: str) -> str:
    """Lambda's stream naming: ``2026/11/29/[$LATEST]<32 hex>`` (one per execution env)."""
    when = now or datetime.now(UTC)
    return f"{when:%Y/%m/%d}/[$LATEST]{suffix}"


@dataclass
class _Aggregate:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_min: float = float("inf")
    duration_max: float = 0.0
    max_concurrency: int = 0
    dimensions: dict[str, str] = field(default_factory=dict)


EMF_PREFIX = '{"_aws"'
_MAX_EMF_VALUES = 100  # CloudWatch's limit of values per metric in one EMF object


def parse_emf(message: str) -> list[tuple[str, dict[str, Any]]]:
    """The metrics of one log line in CloudWatch's embedded metric format, as
    ``(namespace, PutMetricData datum)`` pairs; ``[]`` for any other line.

    What CloudWatch Logs extracts from a Lambda function's log: for each directive of
    ``_aws.CloudWatchMetrics``, each dimension set and each metric, the metric's value (or
    each of its values) with the dimension values from the same object, stamped with
    ``_aws.Timestamp``. A line that is not valid EMF is only a log line, as on AWS.
    """
    if not message.startswith(EMF_PREFIX):
        return []
    try:
        blob = json.loads(message)
        meta = blob["_aws"]
        stamp = datetime.fromtimestamp(int(meta["Timestamp"]) / 1000, UTC)
        data: list[tuple[str, dict[str, Any]]] = []
        for directive in meta["CloudWatchMetrics"]:
            namespace = str(directive["Namespace"])
            for dimension_set in directive.get("Dimensions") or [[]]:
                dims = [{"Name": name, "Value": str(blob[name])} for name in dimension_set]
                for metric in directive["Metrics"]:
                    raw = blob[metric["Name"]]
                    values = raw if isinstance(raw, list) else [raw]
                    for value in values[:_MAX_EMF_VALUES]:
                        datum: dict[str, Any] = {
                            "MetricName": str(metric["Name"]),
                            "Dimensions": dims,
                            "Timestamp": stamp,
                            "Value": float(value),
                        }
                        if metric.get("Unit"):
                            datum["Unit"] = str(metric["Unit"])
                        data.append((namespace, datum))
        return data
    except (ValueError, KeyError, TypeError, OverflowError):
        return []


class MetricsPublisher:
    """Aggregates the AWS/Lambda metrics per function and second; puts them every ``interval``
    s, with the custom metrics the functions logged in the embedded metric format.

    Published like Lambda does: ``Invocations``, ``Errors`` (also when 0, so an alarm on
    Errors sees data), ``Duration`` (as statistic sets), ``Throttles`` and
    ``ConcurrentExecutions`` (the maximum seen), with the ``FunctionName`` dimension.
    Each datapoint is stamped with the second its invocations started (or were throttled)
    in, not the moment it is published: "the timestamp on a metric reflects when the
    function was invoked" (Lambda developer guide, "Using CloudWatch metrics with
    Lambda"). A reader counting a window's throttles then finds every throttle of the
    window in it, however late the publishing thread runs. EMF lines (:func:`parse_emf`)
    become metrics in their own namespace, as CloudWatch Logs extracts them from a Lambda
    log group.
    """

    NAMESPACE = "AWS/Lambda"

    def __init__(
        self,
        make_client: ClientFactory,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._make_client = make_client
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._aggregates: dict[tuple[str, int], _Aggregate] = {}
        self._custom: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self.published = 0
        self.failed = 0
        self._client_obj: Any = None
        self._thread = threading.Thread(target=self._run, name="lambda-metrics", daemon=True)
        self._thread.start()

    def _agg(self, function_name: str, at: float | None) -> _Aggregate:
        key = (function_name, int(self._clock() if at is None else at))
        agg = self._aggregates.get(key)
        if agg is None:
            agg = self._aggregates[key] = _Aggregate()
        return agg

    def record_invocation(
        self,
        function_name: str,
        duration_ms: float,
        *,
        error: bool,
        concurrency: int,
        invoked_at: float | None = None,
    ) -> None:
        """One invocation that ran (successfully or not), started at ``invoked_at`` (epoch
        seconds; default: now)."""
        with self._lock:
            agg = self._agg(function_name, invoked_at)
            agg.invocations += 1
            agg.errors += int(error)
            agg.duration_count += 1
            agg.duration_sum += duration_ms
            agg.duration_min = min(agg.duration_min, duration_ms)
            agg.duration_max = max(agg.duration_max, duration_ms)
            agg.max_concurrency = max(agg.max_concurrency, concurrency)

    def record_log_line(self, message: str) -> None:
        """A line of a function's log: its EMF metrics, if it is an EMF object."""
        data = parse_emf(message)
        if data:
            with self._lock:
                self._custom.extend(data)

    def record_throttle(self, function_name: str) -> None:
        """One invocation rejected by the concurrency limit, now."""
        with self._lock:
            self._agg(function_name, None).throttles += 1

    def flush(self) -> None:
        """Publish what has been aggregated so far (the background thread calls this)."""
        with self._lock:
            aggregates, self._aggregates = self._aggregates, {}
            custom, self._custom = self._custom, []
        if custom:
            self._put_custom(custom)
        if not aggregates:
            return
        data: list[dict[str, Any]] = []
        for (name, second), agg in aggregates.items():
            dims = [{"Name": "FunctionName", "Value": name}]
            stamp = datetime.fromtimestamp(second, UTC)

            def metric(metric_name: str, value: float, unit: str) -> dict[str, Any]:
                return {
                    "MetricName": metric_name,
                    "Dimensions": dims,  # noqa: B023 - used immediately, in this iteration
                    "Timestamp": stamp,  # noqa: B023 - likewise
                    "Value": value,
                    "Unit": unit,
                }

            if agg.invocations:
                data.append(metric("Invocations", agg.invocations, "Count"))
                data.append(metric("Errors", agg.errors, "Count"))
                data.append(metric("ConcurrentExecutions", agg.max_concurrency, "Count"))
                data.append(
                    {
                        "MetricName": "Duration",
                        "Dimensions": dims,
                        "Timestamp": stamp,
                        "StatisticValues": {
                            "SampleCount": agg.duration_count,
                            "Sum": agg.duration_sum,
                            "Minimum": agg.duration_min,
                            "Maximum": agg.duration_max,
                        },
                        "Unit": "Milliseconds",
                    }
                )
            if agg.throttles:
                data.append(metric("Throttles", agg.throttles, "Count"))
        try:
            put_metric_data(self._client(), self.NAMESPACE, data)
            self.published += len(data)
        except Exception:  # best-effort telemetry: never take an invocation down
            _LOG.exception("could not publish %d Lambda metrics", len(data))
            self.failed += len(data)

    def _put_custom(self, custom: list[tuple[str, dict[str, Any]]]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in custom:
            by_namespace.setdefault(namespace, []).append(datum)
        try:
            client = self._client()
            for namespace, data in by_namespace.items():
                put_metric_data(client, namespace, data)
            self.published += len(custom)
        except Exception:  # best-effort telemetry: never take an invocation down
            _LOG.exception("could not publish %d EMF metrics", len(custom))
            self.failed += len(custom)

    def _client(self) -> Any:
        if self._client_obj is None:
            self._client_obj = self._make_client("cloudwatch")
        return self._client_obj

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self, timeout: float = 10.0) -> None:
        """Publish the last aggregates and stop; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout)
        self.flush()
