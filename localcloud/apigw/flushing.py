"""Shipping access-log lines and ``AWS/ApiGateway`` metrics off the request path."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.apigw.responses import _Outcome
from localcloud.telemetry import LogShipper, put_metric_data

logger = logging.getLogger(__name__)


@dataclass
class _MetricWindow:
    count: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency: list[float] = field(default_factory=list)
    integration_latency: list[float] = field(default_factory=list)


class _Flusher:
    """Ships access-log lines (through the shared :class:`~localcloud.telemetry.LogShipper`)
    and API metrics, never on the request path."""

    def __init__(
        self,
        logs_client_factory: Callable[[], Any] | None,
        cloudwatch_client_factory: Callable[[], Any] | None,
        interval_s: float,
    ) -> None:
        self._logs = (
            None
            if logs_client_factory is None
            else LogShipper(
                lambda _service: logs_client_factory(), flush_interval=interval_s, name="apigw-logs"
            )
        )
        self._cloudwatch_factory = cloudwatch_client_factory
        self._cloudwatch: Any = None
        self._interval_s = interval_s
        self._metrics: dict[tuple[str, str], _MetricWindow] = {}
        self._metrics_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="apigw-flusher", daemon=True)
        self.last_error: str | None = None
        self._thread.start()

    def log(self, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        if self._logs is not None:
            self._logs.put(group, stream, message, timestamp_ms)

    def metric(self, api_name: str, stage: str, outcome: _Outcome, latency_ms: int) -> None:
        if self._cloudwatch_factory is None:
            return
        with self._metrics_lock:
            window = self._metrics.setdefault((api_name, stage), _MetricWindow())
            window.count += 1
            window.errors_4xx += 400 <= outcome.status < 500
            window.errors_5xx += outcome.status >= 500
            window.latency.append(float(latency_ms))
            if outcome.integration_latency_ms is not None:
                window.integration_latency.append(float(outcome.integration_latency_ms))

    def _run(self) -> None:
        # The access logs ship on the log shipper's own thread; this one does the metrics.
        while not self._stop.wait(self._interval_s):
            self._publish_metrics()

    def flush(self) -> None:
        """Ship the access-log lines and metrics recorded so far, now."""
        if self._logs is not None:
            self._logs.flush()
        self._publish_metrics()

    def _publish_metrics(self) -> None:
        try:
            self._flush_metrics()
            self.last_error = None
        except Exception as error:  # keep flushing after a failed round
            self.last_error = repr(error)
            logger.debug("API Gateway flush failed: %r", error)

    def _flush_metrics(self) -> None:
        with self._metrics_lock:
            windows, self._metrics = self._metrics, {}
        if not windows:
            return
        if self._cloudwatch is None and self._cloudwatch_factory is not None:
            self._cloudwatch = self._cloudwatch_factory()
        data: list[dict[str, Any]] = []
        for (api_name, stage), window in windows.items():
            dimensions = [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage}]
            n = float(window.count)
            for name, errors in (("4XXError", window.errors_4xx), ("5XXError", window.errors_5xx)):
                data.append(
                    _statistic(name, dimensions, "Count", n, float(errors), errors > 0, errors < n)
                )
            data.append(
                {
                    "MetricName": "Count",
                    "Dimensions": dimensions,
                    "Unit": "Count",
                    "StatisticValues": {"SampleCount": n, "Sum": n, "Minimum": 1, "Maximum": 1},
                }
            )
            for name, values in (
                ("Latency", window.latency),
                ("IntegrationLatency", window.integration_latency),
            ):
                if values:
                    data.append(
                        {
                            "MetricName": name,
                            "Dimensions": dimensions,
                            "Unit": "Milliseconds",
                            "StatisticValues": {
                                "SampleCount": float(len(values)),
                                "Sum": sum(values),
                                "Minimum": min(values),
                                "Maximum": max(values),
                            },
                        }
                    )
        put_metric_data(self._cloudwatch, "AWS/ApiGateway", data)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._publish_metrics()  # whatever arrived after the last round
        if self._logs is not None:
            self._logs.close(timeout)  # ships what is queued


def _statistic(
    name: str,
    dimensions: list[dict[str, str]],
    unit: str,
    samples: float,
    total: float,
    any_one: bool,
    any_zero: bool,
) -> dict[str, Any]:
    # 4XXError/5XXError are 0/1 per request: Sum counts errors, Average is the error rate.
    return {
        "MetricName": name,
        "Dimensions": dimensions,
        "Unit": unit,
        "StatisticValues": {
            "SampleCount": samples,
            "Sum": total,
            "Minimum": 0.0 if any_zero else 1.0,
            "Maximum": 1.0 if any_one else 0.0,
        },
    }
