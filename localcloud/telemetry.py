"""What every local service ships to CloudWatch Logs and CloudWatch, and how.

One log shipper (:class:`LogShipper`: batched on a background thread, bounded, one rule
for a deleted log group) and one way to put metrics (:func:`put_metric_data`), both
within CloudWatch's limits, for the Lambda service's logs and metrics, the API Gateway's
access logs and metrics and the ``AWS/SQS`` queue metrics.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from localcloud.clients import ClientFactory

_LOG = logging.getLogger(__name__)

# CloudWatch Logs: an event is at most 256 KiB including 26 bytes of per-event overhead;
# a PutLogEvents call carries at most 1 MiB (events + overhead) and 10,000 events.
LOG_EVENT_OVERHEAD = 26
MAX_LOG_EVENT_BYTES = 256 * 1024 - LOG_EVENT_OVERHEAD
MAX_LOG_BATCH_BYTES = 1_048_576
MAX_LOG_BATCH_EVENTS = 10_000
# CloudWatch: a PutMetricData call carries at most 1,000 datums.
MAX_METRIC_DATA = 1000
_TRUNCATED = " [truncated]\n"


def truncate_message(message: str) -> str:
    """Cut a log message to the CloudWatch Logs event limit, marking the cut."""
    data = message.encode("utf-8", errors="replace")
    if len(data) <= MAX_LOG_EVENT_BYTES:
        return message
    keep = MAX_LOG_EVENT_BYTES - len(_TRUNCATED)
    return data[:keep].decode("utf-8", errors="ignore") + _TRUNCATED


def put_metric_data(client: Any, namespace: str, data: Sequence[dict[str, Any]]) -> None:
    """``PutMetricData`` of ``data`` in ``namespace``, in as many calls as the limit needs."""
    for start in range(0, len(data), MAX_METRIC_DATA):
        client.put_metric_data(
            Namespace=namespace, MetricData=list(data[start : start + MAX_METRIC_DATA])
        )


class LogShipper:
    """Batches log events per (group, stream) and puts them with ``put_log_events``.

    Creates a group or stream on first use if missing; a group deleted behind its back
    (a stack re-deployed) is created again and the batch put once more: the one rule for
    a deleted log group. Memory is bounded by ``max_buffer_bytes``: beyond it events are
    dropped and counted in ``dropped``.
    """

    def __init__(
        self,
        make_client: ClientFactory,
        *,
        flush_interval: float = 0.2,
        max_buffer_bytes: int = 32 * 1024 * 1024,
        name: str = "log-shipper",
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
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        """Queue one event (already truncated by the caller if it came from a function)."""
        ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        size = len(message) + LOG_EVENT_OVERHEAD
        with self._cond:
            if self._closing and not self._thread.is_alive():
                self.dropped += 1
                return
            if self._buffer_bytes + size > self._max_bytes:
                self.dropped += 1
                return
            self._buffer.append((group, stream, ts, message))
            self._buffer_bytes += size
            if self._buffer_bytes > MAX_LOG_BATCH_BYTES:
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
                        or self._buffer_bytes > MAX_LOG_BATCH_BYTES
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
                size = len(message.encode("utf-8", errors="replace")) + LOG_EVENT_OVERHEAD
                if chunk and (
                    chunk_bytes + size > MAX_LOG_BATCH_BYTES or len(chunk) >= MAX_LOG_BATCH_EVENTS
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
