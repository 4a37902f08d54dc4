"""Reading the system during and after a run: task states, queue depth, scratch queues.

- :class:`TableStates` / :class:`ApiStates` fetch task states for the ledger (the tasks
  table by ``BatchGetItem``, or ``GET /tasks/{id}`` when no table is reachable).
- :class:`BacklogSampler` records queue depth every second into ``backlog.csv``.
- :func:`lambda_metric` reads a function's ``AWS/Lambda`` metric over the run (the
  throttles that API Gateway turns into bare 500s);
- :func:`scratch_queues` creates the FIFO queues sqs_fifo_limits hammers, cloned from the
  task queue's attributes, and always deletes them.
"""

from __future__ import annotations

import csv
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from harness.api_auth import ApiSigner
from harness.load.ledger import TaskState
from harness.load.target import Target
from harness.waiting import wait_until

_BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem keys per call


class StateSource(Protocol):
    """Fetches the current state of tasks by id (ids the system does not know are absent)."""

    name: str

    def fetch(self, task_ids: Iterable[str]) -> dict[str, TaskState]: ...


class TableStates:
    """Task states from the tasks table (``TasksTableName``) with ``BatchGetItem``."""

    name = "table"

    def __init__(self, target: Target) -> None:
        if not target.tasks_table_name:
            raise ValueError("the stack outputs name no tasks table")
        self._table_name = target.tasks_table_name
        self._dynamodb = target.dynamodb()

    def fetch(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        ids = list(dict.fromkeys(task_ids))
        states: dict[str, TaskState] = {}
        for start in range(0, len(ids), _BATCH_GET_LIMIT):
            request: dict[str, object] = {
                self._table_name: {
                    "Keys": [{"task_id": i} for i in ids[start : start + _BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while request:
                reply = self._dynamodb.batch_get_item(RequestItems=request)  # type: ignore[arg-type]
                for item in reply.get("Responses", {}).get(self._table_name, []):
                    state = TaskState.from_item(item)
                    states[state.task_id] = state
                # DynamoDB may hand back part of a batch under load; ask again for the rest.
                request = dict(reply.get("UnprocessedKeys") or {})
        return states


class ApiStates:
    """Task states from ``GET /tasks/{id}`` (when the table is not reachable)."""

    name = "api"

    def __init__(
        self,
        api_url: str,
        *,
        parallel: int = 8,
        timeout: float = 10.0,
        signer: ApiSigner | None = None,
    ) -> None:
        self._base = api_url.rstrip("/")
        self._signer = signer  # the API's IAM authorization
        self._parallel = parallel
        self._timeout = timeout

    def _one(self, task_id: str) -> TaskState | None:
        # The base URL is the stack's own ApiUrl output (http or https), never user input.
        url = f"{self._base}/tasks/{task_id}"
        headers = self._signer.headers("GET", url) if self._signer else {}
        request = urllib.request.Request(url, method="GET", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return TaskState.from_item(json.loads(response.read()))
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def fetch(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        with ThreadPoolExecutor(self._parallel) as pool:
            found = pool.map(self._one, list(dict.fromkeys(task_ids)))
        return {state.task_id: state for state in found if state is not None}


def state_source(target: Target, preference: str = "auto") -> StateSource:
    """The table when the outputs name one (``auto``/``table``), else the API."""
    if preference in ("auto", "table") and target.tasks_table_name:
        return TableStates(target)
    if preference == "table":
        raise ValueError("--ledger-source table, but the stack outputs name no tasks table")
    if not target.api_url:
        raise ValueError("neither a tasks table nor an API URL in the stack outputs")
    return ApiStates(target.api_url, signer=target.api_signer())


def settle(
    source: StateSource,
    task_ids: Iterable[str],
    *,
    timeout: float,
    interval: float = 0.5,
    progress: Callable[[str], None] | None = None,
) -> dict[str, TaskState]:
    """Poll until every task is COMPLETED or FAILED, or ``timeout``; return the last states.

    Stragglers at the timeout are returned as they are (the ledger counts them lost);
    only tasks not yet terminal are fetched again.
    """
    states: dict[str, TaskState] = {}
    open_ids = list(dict.fromkeys(task_ids))
    last_report = 0.0

    def probe() -> bool:
        nonlocal open_ids, last_report
        states.update(source.fetch(open_ids))
        open_ids = [i for i in open_ids if i not in states or not states[i].terminal]
        now = time.monotonic()
        if progress is not None and (not open_ids or now - last_report >= 2.0):
            last_report = now
            done = len(states) - sum(1 for s in states.values() if not s.terminal)
            progress(f"[load] drain: {done} settled, {len(open_ids)} still open")
        return not open_ids

    try:
        wait_until(
            probe, timeout=timeout, interval=interval, description="accepted tasks to settle"
        )
    except TimeoutError:
        if progress is not None:
            progress(
                f"[load] drain: gave up after {timeout:g}s with {len(open_ids)} open (counted lost)"
            )
    return states


def queue_depth(target: Target, queue_url: str) -> dict[str, int]:
    """``visible``, ``in_flight`` and ``delayed`` message counts of one queue (approximate)."""
    attributes = (
        target.sqs()
        .get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )
        .get("Attributes", {})
    )
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def lambda_metric(
    target: Target, function_name: str, metric: str, *, start: float, end: float
) -> dict[int, float]:
    """``{epoch second: sum}`` of one ``AWS/Lambda`` metric of a function over a window.

    Per second from the local stack (it publishes every second); per minute on AWS,
    whose standard-resolution Lambda metrics have 60-second periods.
    """
    period = 1 if target.endpoint_url else 60
    first = int(start) - int(start) % period
    reply = target.cloudwatch().get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Lambda",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                    },
                    "Period": period,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=datetime.fromtimestamp(first, UTC),
        EndTime=datetime.fromtimestamp(int(end) + period, UTC),
    )
    series: dict[int, float] = {}
    for result in reply.get("MetricDataResults", []):
        for moment, value in zip(
            result.get("Timestamps", []), result.get("Values", []), strict=False
        ):
            second = int(moment.timestamp())
            series[second] = series.get(second, 0.0) + float(value)
    return series


@dataclass(frozen=True)
class BacklogSample:
    """Depth of one queue at one moment (epoch seconds)."""

    timestamp: float
    queue: str
    visible: int
    in_flight: int


BACKLOG_FIELDS = ("timestamp", "queue", "visible", "in_flight")


class BacklogSampler:
    """A background thread writing queue depths to a CSV file every ``interval`` seconds.

    Use as a context manager around the run (and the drain); errors reading a queue are
    kept in :attr:`errors` rather than stopping the run.
    """

    def __init__(
        self, target: Target, queues: Mapping[str, str], path: Path, *, interval: float = 1.0
    ) -> None:
        self._target = target
        self._queues = dict(queues)
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-sampler", daemon=True)
        self.samples: list[BacklogSample] = []
        self.errors: list[str] = []

    def __enter__(self) -> BacklogSampler:
        if self._queues:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        client = self._target.sqs()
        with self._path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(BACKLOG_FIELDS)
            while True:
                for name, url in self._queues.items():
                    try:
                        attrs = client.get_queue_attributes(
                            QueueUrl=url,
                            AttributeNames=[
                                "ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible",
                            ],
                        ).get("Attributes", {})
                    except Exception as error:  # a sampling gap must not end the run
                        self.errors.append(f"{name}: {error}")
                        continue
                    sample = BacklogSample(
                        time.time(),
                        name,
                        int(attrs.get("ApproximateNumberOfMessages", 0)),
                        int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                    )
                    self.samples.append(sample)
                    writer.writerow(
                        [f"{sample.timestamp:.3f}", name, sample.visible, sample.in_flight]
                    )
                handle.flush()
                # The sampling period, not a wait for work: stop() wakes it at once.
                if self._stop.wait(self._interval):
                    return


def read_backlog_csv(path: Path) -> list[BacklogSample]:
    """Read a ``backlog.csv`` written by :class:`BacklogSampler`."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            BacklogSample(
                float(row["timestamp"]), row["queue"], int(row["visible"]), int(row["in_flight"])
            )
            for row in csv.DictReader(handle)
        ]


# sqs_fifo_limits user roles, each with its own queue so their quotas do not mix.
SQS_ROLES = ("send-one", "send-many", "batch-one", "batch-many")
_CLONED_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "MaximumMessageSize",
)


@contextmanager
def scratch_queues(target: Target, run_id: str) -> Iterator[dict[str, str]]:
    """FIFO queues configured like the task queue (one per role), deleted on exit.

    Each role gets its own queue because SQS quotas are per queue and per action: one
    queue per role measures each variant against the full quota. The task queue itself
    is left alone so its processor does not receive thousands of synthetic messages.
    """
    if not target.task_queue_url:
        raise ValueError("the stack outputs name no task queue")
    client = target.sqs()
    source = client.get_queue_attributes(
        QueueUrl=target.task_queue_url, AttributeNames=["All"]
    ).get("Attributes", {})
    attributes = {key: source[key] for key in _CLONED_ATTRIBUTES if key in source}
    attributes["FifoQueue"] = "true"
    base = target.task_queue_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".fifo")
    created: dict[str, str] = {}
    try:
        for role in SQS_ROLES:
            # Queue names: 80 characters at most, ".fifo" included.
            name = f"{base[:40]}-load-{run_id[:12]}-{role}.fifo"
            created[role] = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        yield created
    finally:
        for url in created.values():
            try:
                client.delete_queue(QueueUrl=url)
            except Exception as error:  # report, keep deleting the rest
                print(f"[load] could not delete scratch queue {url}: {error}")
