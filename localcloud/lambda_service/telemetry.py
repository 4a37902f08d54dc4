"""Where the local Lambda service's logs and metrics go: CloudWatch Logs and CloudWatch.

Both are shipped from a background thread in batches, so an invocation never waits on a
CloudWatch call, and both are bounded so a chatty or stuck function cannot exhaust memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localcloud.clients import ClientFactory

_LOG = logging.getLogger(__name__)

# A CloudWatch Logs event is at most 256 KiB including 26 bytes of per-event overhead.
MAX_LOG_EVENT_BYTES = 256 * 1024 - 26
_MAX_BATCH_BYTES = 1_048_576
_MAX_BATCH_EVENTS = 10_000
_EVENT_OVERHEAD = 26
_TRUNCATED = " [truncated]\n"


def truncate_message(message: str) -> str:
    """Cut a log message to the CloudWatch Logs event limit, marking the cut."""
    data = message.encode("utf-8", errors="replace")
    if len(data) <= MAX_LOG_EVENT_BYTES:
        return message
    keep = MAX_LOG_EVENT_BYTES - len(_TRUNCATED)
    return data[:keep].decode("utf-8", errors="ignore") + _TRUNCATED


def log_stream_name(now: datetime | None = None, *, suffix: str) -> str:
    """Lambda's stream naming: ``2026/11/29/[$LATEST]<32 hex>`` (one per execution env)."""
    when = now or datetime.now(UTC)
    return f"{when:%Y/%m/%d}/[$LATEST]{suffix}"


class LogShipper:
    """Batches log events per (group, stream) and puts them with ``put_log_events``.

    Creates a group or stream on first use if missing. Memory is bounded by
    ``max_buffer_bytes``: beyond it events are dropped and counted in ``dropped``.
    """

    def __init__(
        self,
        make_client: ClientFactory,
        *,
        flush_interval: float = 0.2,
        max_buffer_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self._make_client = make_client
        self._interval = flush_interval
        self._max_bytes = max_buffer_bytes
        self._cond = threading.Condition()
        self._buffer: list[tuple[str, str, int, str]] = []
        self._buffer_bytes = 0
        self._closing = False
        self._flush_requested = 0
        self._flushed = 0
        self._groups: set[str] = set()
        self._streams: set[tuple[str, str]] = set()
        self.dropped = 0
        self.shipped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="lambda-logs", daemon=True)
        self._thread.start()

    def put(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        """Queue one event (already truncated by the caller if it came from a function)."""
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        size = len(message) + _EVENT_OVERHEAD
        with self._cond:
            if self._closing and not self._thread.is_alive():
                self.dropped += 1
                return
            if self._buffer_bytes + size > self._max_bytes:
                self.dropped += 1
                return
            self._buffer.append((group, stream, ts, message))
            self._buffer_bytes += size
            if self._buffer_bytes > _MAX_BATCH_BYTES:
                self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Ship everything queued so far; True if that finished within ``timeout``."""
        with self._cond:
            self._flush_requested += 1
            target = self._flush_requested
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self._flushed >= target or not self._thread.is_alive(), timeout
            )

    def close(self, timeout: float = 10.0) -> None:
        """Ship what is queued and stop the thread; idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        client: Any = None
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closing
                        or self._flush_requested > self._flushed
                        or self._buffer_bytes > _MAX_BATCH_BYTES
                    ),
                    self._interval,
                )
                batch, self._buffer, self._buffer_bytes = self._buffer, [], 0
                closing = self._closing
                requested = self._flush_requested
            if batch:
                try:
                    if client is None:
                        client = self._make_client("logs")
                    self._ship(client, batch)
                except Exception:  # keep shipping later events; this is best-effort telemetry
                    _LOG.exception("could not ship %d log events", len(batch))
                    self.failed += len(batch)
            with self._cond:
                self._flushed = requested
                self._cond.notify_all()
            if closing:
                with self._cond:
                    if not self._buffer:
                        return

    def _ensure(self, client: Any, group: str, stream: str) -> None:
        if group not in self._groups:
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_group(logGroupName=group)
            self._groups.add(group)
        if (group, stream) not in self._streams:
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams.add((group, stream))

    def _ship(self, client: Any, batch: list[tuple[str, str, int, str]]) -> None:
        per_stream: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for group, stream, ts, message in batch:
            per_stream[(group, stream)].append((ts, message))
        for (group, stream), events in per_stream.items():
            self._ensure(client, group, stream)
            # put_log_events wants chronological order; sorted() is stable for equal stamps.
            events.sort(key=lambda e: e[0])
            chunk: list[dict[str, Any]] = []
            chunk_bytes = 0
            for ts, message in events:
                size = len(message.encode("utf-8", errors="replace")) + _EVENT_OVERHEAD
                if chunk and (
                    chunk_bytes + size > _MAX_BATCH_BYTES or len(chunk) >= _MAX_BATCH_EVENTS
                ):
                    self._put(client, group, stream, chunk)
                    chunk, chunk_bytes = [], 0
                chunk.append({"timestamp": ts, "message": message})
                chunk_bytes += size
            if chunk:
                self._put(client, group, stream, chunk)

    def _put(self, client: Any, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        try:
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except client.exceptions.ResourceNotFoundException:
            # The group was deleted behind our back (e.g. a stack re-deploy): recreate it.
            self._groups.discard(group)
            self._streams.discard((group, stream))
            self._ensure(client, group, stream)
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        self.shipped += len(events)


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
            client = self._client()
            for start in range(0, len(data), 500):
                client.put_metric_data(
                    Namespace=self.NAMESPACE, MetricData=data[start : start + 500]
                )
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
                for start in range(0, len(data), 500):
                    client.put_metric_data(
                        Namespace=namespace, MetricData=data[start : start + 500]
                    )
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
