"""Metrics the local cloud publishes to CloudWatch (moto) the way AWS services do.

AWS publishes SQS queue metrics on its own; locally nobody does, so the alarms in the
template (the DLQ alarm above all) would never see a datapoint. :class:`QueueMetricsPublisher`
samples the queues every ``interval_s`` and puts the ``AWS/SQS`` metrics with the
``QueueName`` dimension, exactly the names and units CloudWatch uses, so alarms and
dashboards built by CDK (``queue.metric_approximate_number_of_messages_visible()`` ...)
read them unchanged. Lambda metrics are published by the Lambda service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from localcloud.clients import local_client
from localcloud.closing import ClosesOnExit
from localcloud.sqs.engine import QueueDepth
from localcloud.telemetry import put_metric_data

logger = logging.getLogger(__name__)


def queue_name_from_url(queue_url: str) -> str:
    """``http://host/123456789012/tasks.fifo`` -> ``tasks.fifo`` (the QueueName dimension)."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


DepthSource = Callable[[], Mapping[str, QueueDepth]]
"""Returns ``{queue_url: QueueDepth}`` for every queue to publish."""


class QueueMetricsPublisher(ClosesOnExit):
    """Publish ``AWS/SQS`` queue metrics to CloudWatch every ``interval_s`` seconds.

    ``queues`` is either a list of queue URLs (sampled with ``GetQueueAttributes`` at the
    endpoint; more can be added with :meth:`add_queue`) or a callable returning
    ``{queue_url: QueueDepth}`` (the lead wires the SQS engine's own counters here, which
    costs no HTTP round trip). ``age_of_oldest(queue_url)`` supplies
    ``ApproximateAgeOfOldestMessage`` in seconds when the URL form is used: SQS's
    GetQueueAttributes does not expose it, only CloudWatch does.

    All metrics of one sample go out in a single ``PutMetricData`` call, datapoints stamped
    by the endpoint on receipt (as CloudWatch does for datapoints without a timestamp).
    ``cloudwatch_client`` replaces the boto3 client at ``endpoint_url`` (the local stack
    passes its :class:`~localcloud.inprocess.InProcessCloudWatchClient`).
    """

    NAMESPACE = "AWS/SQS"

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        queues: Sequence[str] | DepthSource,
        *,
        interval_s: float = 1.0,
        age_of_oldest: Callable[[str], float | None] | None = None,
        cloudwatch_client: Any | None = None,
        sqs_client: Any | None = None,
        start: bool = True,
    ) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._interval_s = interval_s
        self._age_of_oldest = age_of_oldest
        self._source: DepthSource | None = None
        self._queue_urls: list[str] = []
        if callable(queues):
            self._source = queues
        else:
            self._queue_urls = list(queues)
        self._cloudwatch = cloudwatch_client or local_client("cloudwatch", endpoint_url, region)
        self._sqs = sqs_client
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_published = 0
        self.last_error: str | None = None
        if start:
            self.start()

    def add_queue(self, queue_url: str) -> None:
        """Publish this queue too (URL form only)."""
        if self._source is not None:
            raise ValueError("this publisher samples a depth callable; it has no URL list")
        with self._lock:
            if queue_url not in self._queue_urls:
                self._queue_urls.append(queue_url)

    def start(self) -> None:
        """Start the background publishing thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sqs-metrics-publisher", daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, QueueDepth]:
        """Read the current depth of every queue."""
        if self._source is not None:
            return dict(self._source())
        with self._lock:
            urls = list(self._queue_urls)
        if self._sqs is None and urls:
            self._sqs = local_client("sqs", self._endpoint_url, self._region)
        depths: dict[str, QueueDepth] = {}
        for url in urls:
            assert self._sqs is not None
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            depths[url] = QueueDepth(
                visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
                not_visible=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
                age_of_oldest_s=self._age_of_oldest(url) if self._age_of_oldest else None,
            )
        return depths

    def publish_once(self) -> int:
        """Sample every queue and publish one datapoint per metric; return the datapoints sent."""
        metric_data = list(_metric_data(self.sample()))
        put_metric_data(self._cloudwatch, self.NAMESPACE, metric_data)
        self.samples_published += 1
        return len(metric_data)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish_once()
                self.last_error = None
            except Exception as error:  # a background publisher must outlive a hiccup
                self.last_error = repr(error)
                logger.debug("publishing SQS metrics failed: %r", error)
            self._stop.wait(self._interval_s)

    def close(self, timeout: float = 5.0) -> None:
        """Stop publishing and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _metric_data(depths: Mapping[str, QueueDepth]) -> Iterable[dict[str, Any]]:
    for url, depth in depths.items():
        dimensions = [{"Name": "QueueName", "Value": queue_name_from_url(url)}]
        for name, value in (
            ("ApproximateNumberOfMessagesVisible", depth.visible),
            ("ApproximateNumberOfMessagesNotVisible", depth.not_visible),
            ("ApproximateNumberOfMessagesDelayed", depth.delayed),
        ):
            yield {
                "MetricName": name,
                "Dimensions": dimensions,
                "Value": float(value),
                "Unit": "Count",
            }
        if depth.age_of_oldest_s is not None:
            yield {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": dimensions,
                "Value": float(depth.age_of_oldest_s),
                "Unit": "Seconds",
            }
