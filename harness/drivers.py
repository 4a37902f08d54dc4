"""Drivers: what feature steps and load scenarios do to a target, in domain terms.

Steps stay thin: they call these drivers, which speak HTTP to the API and boto3 to the
queues, table, alarms and metrics of whichever :class:`~harness.target.Target` they get.
Every wait here is a bounded poll whose message says what was awaited and what was seen.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import requests

from cdk import contract
from harness.api_auth import ApiSigner, requests_auth

# Re-exported: the features read and replay the DLQ through the operator's own code.
from harness.dlq import DeadLetter as DeadLetter
from harness.dlq import DeadLetters as DeadLetters
from harness.target import Target
from harness.waiting import wait_until

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP answer from the Task API."""

    status: int
    headers: Mapping[str, str]
    text: str

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def describe(self) -> str:
        """A one-line summary for assertion messages."""
        return f"HTTP {self.status} {self.text[:300]}"


class TaskApi:
    """The HTTP API of the stack, called as ``who``: the ``invoker`` (signed with
    credentials allowed to invoke it, the default), ``no_invoke`` (signed with a valid key
    whose policies do not allow ``execute-api:Invoke``) or ``anonymous`` (unsigned)."""

    def __init__(
        self,
        target: Target,
        timeout_s: float = 35.0,
        *,
        who: Literal["invoker", "no_invoke", "anonymous"] = "invoker",
    ) -> None:
        self._base = target.output(contract.API_URL).rstrip("/")
        self._timeout = timeout_s
        self._session = requests.Session()
        self.who = who
        if who != "anonymous":
            self._session.auth = requests_auth(ApiSigner.for_target(target, who))

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def submit(
        self,
        task: Mapping[str, Any] | None = None,
        *,
        raw_body: str | bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """POST a task (as JSON, or ``raw_body`` exactly as given)."""
        body = raw_body if raw_body is not None else json.dumps(task)
        all_headers = {"Content-Type": content_type, **(headers or {})}
        return self.request("POST", "/tasks", data=body, headers=all_headers)

    def get(self, task_id: str) -> ApiResponse:
        """GET one task by id."""
        return self.request("GET", f"/tasks/{task_id}")

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: str | bytes | None = None,
    ) -> ApiResponse:
        """Any request to the API (also for gateway-level behaviour: CORS, unknown routes)."""
        response = self._session.request(
            method, self._base + path, headers=headers, data=data, timeout=self._timeout
        )
        return ApiResponse(response.status_code, dict(response.headers), response.text)


class TaskStore:
    """The tasks table: the processor's record of what it did, in which order."""

    def __init__(self, target: Target) -> None:
        self._table_name = target.output(contract.TASKS_TABLE_NAME)
        self._dynamodb = target.client("dynamodb")

    def get(self, task_id: str) -> dict[str, Any] | None:
        """The stored task as plain Python values, or None."""
        item = self._dynamodb.get_item(
            TableName=self._table_name, Key={"task_id": {"S": task_id}}, ConsistentRead=True
        ).get("Item")
        return _plain(item) if item else None

    def clear_fault(self, task_id: str) -> None:
        """Remove the injected fault stored on a task: what an operator's fix amounts to."""
        self._dynamodb.update_item(
            TableName=self._table_name,
            Key={"task_id": {"S": task_id}},
            UpdateExpression="REMOVE fault",
        )

    def find_by_title(self, title: str) -> list[dict[str, Any]]:
        """Every stored task with exactly this (stored) title: a full, paginated scan."""
        found: list[dict[str, Any]] = []
        paginator = self._dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table_name,
            FilterExpression="title = :title",
            ExpressionAttributeValues={":title": {"S": title}},
            ConsistentRead=True,
        ):
            found.extend(_plain(item) for item in page.get("Items", []))
        return found

    def wait_for_status(
        self,
        task_id: str,
        statuses: Iterable[str],
        *,
        timeout: float,
        fail_on: Iterable[str] = (),
        idle: QueueIdle | None = None,
    ) -> dict[str, Any]:
        """Poll until the task has one of ``statuses``; the timeout names what was seen.

        The wait ends early, with an ``AssertionError``, when the task reaches a status in
        ``fail_on``, or (given ``idle``) when the task queue has stayed empty while the task
        is still not there: no delivery is left that could change it, so waiting out the
        timeout would only delay the same verdict.
        """
        wanted = frozenset(statuses)
        ending = frozenset(fail_on)
        awaited = "/".join(sorted(wanted))
        seen: dict[str, Any] = {}

        def probe() -> dict[str, Any] | None:
            # The queue first: a task's last write precedes its message's delete, so an
            # empty queue read before the task means the task read is final.
            quiet = idle is not None and idle.quiet()
            item = self.get(task_id)
            seen["item"] = item
            status = item.get("status") if item else None
            if item and status in wanted:
                return item
            if status in ending:
                raise AssertionError(f"task {task_id} ended {status}, not {awaited}: {item}")
            if quiet and idle is not None:
                raise AssertionError(
                    f"task {task_id} is {status or 'not stored'} and the task queue has been "
                    f"empty for {idle.grace_s:g}s: no delivery is left that could make it "
                    f"{awaited}. Last seen: {_summary(item)}"
                )
            return None

        try:
            return wait_until(
                probe,
                timeout=timeout,
                interval=0.1,
                description=f"task {task_id} to become {awaited}",
            )
        except TimeoutError:
            raise TimeoutError(
                f"task {task_id} did not become {awaited} within {timeout:.0f}s; "
                f"last seen: {_summary(seen.get('item'))}"
            ) from None

    def wait_all(
        self,
        task_ids: Sequence[str],
        statuses: Iterable[str],
        *,
        timeout: float,
        idle: QueueIdle | None = None,
    ) -> list[dict[str, Any]]:
        """Wait for every task in ``task_ids`` (one shared deadline); returns them in order."""
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        items = []
        for task_id in task_ids:
            remaining = max(0.5, (deadline - datetime.now(UTC)).total_seconds())
            items.append(self.wait_for_status(task_id, statuses, timeout=remaining, idle=idle))
        return items


def _summary(item: Mapping[str, Any] | None) -> str:
    if item is None:
        return "no record"
    events = [f"{e.get('event')} {e.get('attempt')}" for e in item.get("history") or []]
    return (
        f"status {item.get('status')}, attempts {item.get('attempts')}, "
        f"history [{', '.join(events)}]"
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One event the processor recorded on a task (see the task record's ``history``)."""

    event: str  # started | completed | failed | dead_lettered | redriven
    attempt: int
    receive_count: int
    invocation: str  # the Lambda request id of the invocation that wrote it
    at: str
    error_code: str | None = None


def history_of(item: Mapping[str, Any]) -> list[HistoryEntry]:
    """A stored task's history, oldest first (empty if the processor never started it)."""
    return [
        HistoryEntry(
            event=str(entry["event"]),
            attempt=int(entry["attempt"]),
            receive_count=int(entry["receive_count"]),
            invocation=str(entry["invocation"]),
            at=str(entry["at"]),
            error_code=None if entry.get("error_code") is None else str(entry["error_code"]),
        )
        for entry in item.get("history") or []
    ]


class TaskQueue:
    """The FIFO task queue: how many messages it holds, waiting or in flight."""

    def __init__(self, target: Target) -> None:
        self._sqs = target.client("sqs")
        self.url = target.output(contract.TASK_QUEUE_URL)

    def depth(self) -> dict[str, int]:
        """Messages waiting (``visible``), received and not yet deleted (``in_flight``),
        and ``delayed``, as SQS counts them."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
        }

    def send(self, body: str, *, deduplication_id: str) -> None:
        """Put ``body`` on the queue in the tasks' message group, as the API does (or as a
        redelivery would with a new ``deduplication_id``)."""
        self._sqs.send_message(
            QueueUrl=self.url,
            MessageBody=body,
            MessageGroupId=contract.MESSAGE_GROUP_ID,
            MessageDeduplicationId=deduplication_id,
        )

    def wait_until_empty(self, *, timeout: float) -> None:
        """Poll until nothing is waiting, in flight or delayed (earlier work is done)."""
        last: dict[str, int] = {}

        def probe() -> bool:
            last.update(self.depth())
            return not any(last.values())

        try:
            wait_until(probe, timeout=timeout, interval=0.2, description="the task queue to empty")
        except TimeoutError:
            raise TimeoutError(
                f"the task queue still holds messages after {timeout:.0f}s: {last}"
            ) from None


class QueueIdle:
    """Whether the task queue has stayed empty (nothing waiting, in flight or delayed) for
    ``grace_s``: then no delivery is left that could still change a task.

    SQS's counts are approximate and may lag on AWS, hence the grace; the local queue's are
    exact. Call :meth:`quiet` at the start of each poll, before reading what it guards.
    """

    def __init__(self, queue: TaskQueue, grace_s: float) -> None:
        self._queue = queue
        self.grace_s = grace_s
        self._empty_since: float | None = None

    @classmethod
    def for_target(cls, target: Target) -> QueueIdle:
        """The grace for ``target``: 1 s locally, 90 s on AWS."""
        return cls(TaskQueue(target), 1.0 if target.name == "local" else 90.0)

    def quiet(self) -> bool:
        """True once the queue has been empty at every poll for ``grace_s``."""
        if any(self._queue.depth().values()):
            self._empty_since = None
            return False
        now = time.monotonic()
        if self._empty_since is None:
            self._empty_since = now
        return now - self._empty_since >= self.grace_s


class ProcessorEventSource:
    """The processor's event source mapping on the task queue, paused and resumed.

    ``UpdateEventSourceMapping`` is asynchronous on AWS (and on the local stack): it
    answers ``Disabling``/``Enabling`` and the change lands later, so every change here
    waits until the mapping reports the state it asked for.
    """

    def __init__(self, target: Target) -> None:
        self._lambda = target.client("lambda")
        function = target.output(contract.PROCESSOR_FUNCTION_NAME)
        queue_arn = target.output(contract.TASK_QUEUE_ARN)
        mappings = self._lambda.list_event_source_mappings(
            FunctionName=function, EventSourceArn=queue_arn
        )["EventSourceMappings"]
        if len(mappings) != 1:
            raise AssertionError(
                f"expected one event source mapping from the task queue to {function}, "
                f"found {len(mappings)}"
            )
        self.uuid = str(mappings[0]["UUID"])
        timeout_s = int(self._lambda.get_function_configuration(FunctionName=function)["Timeout"])
        # A poller finishes the batch it holds before the mapping is Disabled; AWS takes
        # its time on top of that.
        self.settle_timeout_s = timeout_s + (15.0 if target.name == "local" else 180.0)

    def state(self) -> str:
        """``Enabled``, ``Disabled`` or a transition (``Enabling``, ``Disabling``, ...)."""
        return str(self._lambda.get_event_source_mapping(UUID=self.uuid)["State"])

    def set_enabled(self, enabled: bool) -> None:
        """Enable or disable the mapping and wait until it reports that state."""
        wanted = "Enabled" if enabled else "Disabled"
        last = {"state": ""}

        def probe() -> bool:
            last["state"] = self.state()
            if last["state"] == wanted:
                return True
            if last["state"] in ("Enabled", "Disabled"):
                # Another change still landing refuses this one: try again on the next poll.
                with contextlib.suppress(self._lambda.exceptions.ResourceInUseException):
                    self._lambda.update_event_source_mapping(UUID=self.uuid, Enabled=enabled)
            return False

        try:
            wait_until(
                probe,
                timeout=self.settle_timeout_s,
                interval=0.1,
                description=f"the processor's event source mapping to be {wanted}",
            )
        except TimeoutError:
            raise TimeoutError(
                f"the processor's event source mapping {self.uuid} is {last['state']}, "
                f"not {wanted}, after {self.settle_timeout_s:.0f}s"
            ) from None


class Queues:
    """The stack's queues as SQS describes them (their settings, not their messages)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._sqs = target.client("sqs")

    def attributes(self, url_output_key: str) -> dict[str, str]:
        """Every attribute of the queue whose URL the stack emits under ``url_output_key``."""
        return dict(
            self._sqs.get_queue_attributes(
                QueueUrl=self._target.output(url_output_key), AttributeNames=["All"]
            )["Attributes"]
        )


class Functions:
    """The stack's Lambda functions as the Lambda control plane describes them."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._lambda = target.client("lambda")

    def configuration(self, name_output_key: str) -> dict[str, Any]:
        """The configuration of the function the stack emits under ``name_output_key``."""
        return dict(
            self._lambda.get_function_configuration(
                FunctionName=self._target.output(name_output_key)
            )
        )

    def environment(self, name_output_key: str) -> dict[str, str]:
        """The function's environment variables."""
        configuration = self.configuration(name_output_key)
        return dict(configuration.get("Environment", {}).get("Variables", {}))

    def reserved_concurrency(self, name_output_key: str) -> int | None:
        """The function's reserved concurrency, or None when it has none."""
        answer = self._lambda.get_function_concurrency(
            FunctionName=self._target.output(name_output_key)
        )
        value = answer.get("ReservedConcurrentExecutions")
        return None if value is None else int(value)

    def event_source_mappings(self, name_output_key: str) -> list[dict[str, Any]]:
        """Every event source mapping that invokes the function."""
        return [
            dict(mapping)
            for mapping in self._lambda.list_event_source_mappings(
                FunctionName=self._target.output(name_output_key)
            )["EventSourceMappings"]
        ]


def rest_api_name(target: Target) -> str:
    """The REST API's name, which its metrics are published under: from API Gateway on
    AWS; the local cloud does not serve API Gateway's control plane, so there the one name
    its stage has published ``Count`` under (waits up to 15 s for the first request's)."""
    if target.name == "aws":
        api = target.client("apigateway").get_rest_api(restApiId=target.output(contract.API_ID))
        return str(api["name"])
    cloudwatch = target.client("cloudwatch")

    def published() -> set[str]:
        metrics = cloudwatch.list_metrics(Namespace="AWS/ApiGateway", MetricName="Count")
        return {
            d["Value"]
            for m in metrics["Metrics"]
            for d in m["Dimensions"]
            if d["Name"] == "ApiName"
        }

    names = wait_until(
        published, timeout=15.0, interval=0.5, description="the API's metrics in CloudWatch"
    )
    assert len(names) == 1, f"the local API Gateway published metrics under {names}"
    return str(names.pop())


def processing_order(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """The task ids of completed ``items`` sorted by when the processor completed them."""
    completed = [item for item in items if item.get("processed_at")]
    return [
        str(item["task_id"]) for item in sorted(completed, key=lambda i: str(i["processed_at"]))
    ]


class Alarms:
    """The stack's CloudWatch alarms."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._cloudwatch = target.client("cloudwatch")

    def describe(self, output_key: str) -> dict[str, Any]:
        """The alarm whose name the stack emits under ``output_key``."""
        name = self._target.output(output_key)
        alarms = self._cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if not alarms:
            raise AssertionError(f"alarm {name} ({output_key}) does not exist")
        return dict(alarms[0])

    def wait_for_state(self, output_key: str, state: str, *, timeout: float) -> dict[str, Any]:
        """Poll until the alarm is in ``state`` (e.g. ``ALARM``)."""
        last: dict[str, Any] = {}

        def probe() -> dict[str, Any] | None:
            last.update(self.describe(output_key))
            return last if last.get("StateValue") == state else None

        try:
            return wait_until(
                probe,
                timeout=timeout,
                interval=0.5,
                description=f"alarm {output_key} to be {state}",
            )
        except TimeoutError:
            raise TimeoutError(
                f"alarm {self._target.output(output_key)} did not reach {state} within "
                f"{timeout:.0f}s; it is {last.get('StateValue')} ({last.get('StateReason')})"
            ) from None

    def window_value(self, output_key: str, *, start: datetime, end: datetime) -> float | None:
        """What the alarm's metric (or metric-math expression) amounts to over
        ``start``..``end``, with the alarm's own statistics; None when there is no data.

        Over exactly the alarm's window this is the value the alarm compares with its
        threshold; over a longer span, a bound of every window inside it.
        """
        described = self.describe(output_key)
        queries = described.get("Metrics") or [
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": described["Namespace"],
                        "MetricName": described["MetricName"],
                        "Dimensions": described.get("Dimensions", []),
                    },
                    "Stat": described["Statistic"],
                },
                "ReturnData": True,
            }
        ]
        values: dict[str, list[float | None]] = {}
        for query in queries:
            if "MetricStat" not in query:
                continue
            stat = query["MetricStat"]
            statistic = str(stat["Stat"])
            datapoints = self._cloudwatch.get_metric_statistics(
                Namespace=stat["Metric"]["Namespace"],
                MetricName=stat["Metric"]["MetricName"],
                Dimensions=stat["Metric"].get("Dimensions", []),
                StartTime=start,
                EndTime=end,
                Period=60,
                Statistics=[statistic],
            )["Datapoints"]
            found = [float(point[statistic]) for point in datapoints]
            combine = max if statistic == "Maximum" else sum
            values[str(query["Id"])] = [combine(found) if found else None]
        (returned,) = [q for q in queries if q.get("ReturnData", True)]
        if "Expression" not in returned:
            return values[str(returned["Id"])][0]
        from localcloud.metric_math import evaluate

        return evaluate(str(returned["Expression"]), values, 1)[0]

    def stays_in_state(self, output_key: str, state: str, *, seconds: float) -> None:
        """Watch the alarm for ``seconds`` (several evaluations): it must stay in ``state``
        throughout. What "it does not go off" means for something evaluated periodically."""
        deadline = time.monotonic() + seconds
        while True:
            described = self.describe(output_key)
            assert described["StateValue"] == state, (
                f"alarm {described['AlarmName']} left {state}: it is "
                f"{described['StateValue']} ({described.get('StateReason')})"
            )
            if time.monotonic() >= deadline:
                return
            time.sleep(0.5)  # pacing between looks at the alarm, not a wait for work


def _metric_sum(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: Mapping[str, str],
    *,
    start: datetime,
    end: datetime,
) -> float:
    """The sum of a metric over ``start``..``end``, as CloudWatch has it now."""
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        Dimensions=[{"Name": name, "Value": value} for name, value in dimensions.items()],
        StartTime=start,
        EndTime=end,
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(point["Sum"] for point in datapoints))


class FunctionMetrics:
    """AWS/Lambda metrics of one function, as CloudWatch has them."""

    def __init__(self, target: Target, function_output_key: str) -> None:
        self._cloudwatch = target.client("cloudwatch")
        self.function_name = target.output(function_output_key)

    def total(self, metric: str, *, start: datetime, end: datetime) -> float:
        """The sum of ``metric`` over the fixed window ``start``..``end``.

        Read twice over the same window, the difference is what happened in between: a
        baseline that earlier scenarios' datapoints cannot move.
        """
        dimensions = {"FunctionName": self.function_name}
        return _metric_sum(self._cloudwatch, "AWS/Lambda", metric, dimensions, start=start, end=end)


class ServiceMetrics:
    """A function's own metrics (Powertools' embedded metric format, carried by its logs to
    CloudWatch): its ``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service``."""

    def __init__(self, target: Target, function_output_key: str) -> None:
        self._cloudwatch = target.client("cloudwatch")
        environment = Functions(target).environment(function_output_key)
        self.namespace = environment["POWERTOOLS_METRICS_NAMESPACE"]
        self.service = environment["POWERTOOLS_SERVICE_NAME"]

    def total(self, metric: str, *, start: datetime, end: datetime) -> float:
        """The sum of ``metric`` over ``start``..``end`` (see :meth:`FunctionMetrics.total`)."""
        dimensions = {"service": self.service}
        return _metric_sum(
            self._cloudwatch, self.namespace, metric, dimensions, start=start, end=end
        )


@dataclass(frozen=True)
class TracedFunction:
    """What one trace holds of one function: its ``AWS::Lambda::Function`` segment (None
    when the trace has none) and the AWS calls recorded under it (``"DynamoDB PutItem"``)."""

    segment: Mapping[str, Any] | None
    calls: tuple[str, ...]


def traced_function(documents: Sequence[Mapping[str, Any]], function_name: str) -> TracedFunction:
    """Find ``function_name``'s segment in a trace's documents and the AWS calls under it.

    X-Ray on AWS nests each subsegment in its segment's document; a store that keeps the
    documents as sent (the local X-Ray) has the SDK's subsegments apart, each naming its
    ``parent_id``. Both are read the same way: an entity's parent is the one it is nested
    in, else its ``parent_id``.
    """
    entities: dict[str, Mapping[str, Any]] = {}
    parent_of: dict[str, str] = {}

    def walk(entity: Mapping[str, Any], parent: str | None) -> None:
        entity_id = entity.get("id")
        if not isinstance(entity_id, str):
            return
        entities[entity_id] = entity
        parent = parent or entity.get("parent_id")
        if isinstance(parent, str):
            parent_of[entity_id] = parent
        for child in entity.get("subsegments") or ():
            walk(child, entity_id)

    for document in documents:
        walk(document, None)
    function = next(
        (
            entity
            for entity in entities.values()
            if entity.get("origin") == "AWS::Lambda::Function"
            and entity.get("name") == function_name
        ),
        None,
    )
    if function is None:
        return TracedFunction(None, ())

    def under_function(entity_id: str) -> bool:
        seen: set[str] = set()
        while entity_id in parent_of and entity_id not in seen:
            seen.add(entity_id)
            entity_id = parent_of[entity_id]
            if entity_id == function["id"]:
                return True
        return False

    calls = sorted(
        f"{entity.get('name')} {(entity.get('aws') or {}).get('operation')}"
        for entity_id, entity in entities.items()
        if entity.get("namespace") == "aws" and under_function(entity_id)
    )
    return TracedFunction(function, tuple(calls))


class Traces:
    """The stack's X-Ray traces, read by id (``BatchGetTraces``)."""

    def __init__(self, target: Target) -> None:
        self._xray = target.client("xray")
        # X-Ray on AWS makes a trace readable some 30-60 s after its segments were sent;
        # the local daemon stores them within milliseconds.
        self.arrival_s = 10.0 if target.name == "local" else 180.0
        self._interval = 0.2 if target.name == "local" else 5.0

    def documents(self, trace_id: str) -> list[dict[str, Any]]:
        """Every segment document of the trace (none while X-Ray does not have it)."""
        answer = self._xray.batch_get_traces(TraceIds=[trace_id])
        return [
            json.loads(segment["Document"])
            for trace in answer.get("Traces", [])
            for segment in trace.get("Segments", [])
        ]

    def wait_for_function(
        self, trace_id: str, function_name: str, calls: Iterable[str]
    ) -> TracedFunction:
        """Poll until the trace holds ``function_name``'s segment with ``calls`` under it
        (compared without case: the X-Ray SDK names a call's subsegment by the service's
        endpoint prefix, ``dynamodb``)."""
        wanted = {call.lower() for call in calls}
        seen: dict[str, Any] = {}

        def probe() -> TracedFunction | None:
            documents = self.documents(trace_id)
            traced = traced_function(documents, function_name)
            seen.update(documents=documents, traced=traced)
            found = {call.lower() for call in traced.calls}
            return traced if traced.segment is not None and wanted <= found else None

        try:
            return wait_until(
                probe,
                timeout=self.arrival_s,
                interval=self._interval,
                description=f"trace {trace_id} to hold {function_name} calling {sorted(wanted)}",
            )
        except TimeoutError:
            traced = seen.get("traced")
            documents = seen.get("documents") or []
            origins = sorted(
                {f"{d.get('origin') or d.get('type') or '?'} {d.get('name')}" for d in documents}
            )
            raise TimeoutError(
                f"after {self.arrival_s:.0f}s, trace {trace_id} does not hold {function_name}'s "
                f"segment with {sorted(wanted)}: it has {len(documents)} documents ({origins}); "
                f"the function's segment {'is there' if traced and traced.segment else 'is not'}, "
                f"calls under it: {list(traced.calls) if traced else []}"
            ) from None


def sampled_trace_header() -> tuple[str, str]:
    """A new X-Ray trace id and the ``X-Amzn-Trace-Id`` header that starts it sampled: a
    client's decision every service downstream keeps."""
    trace_id = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    return trace_id, f"Root={trace_id};Sampled=1"


def new_idempotency_key() -> str:
    """A fresh key for the ``Idempotency-Key`` header."""
    return f"qa-{uuid.uuid4()}"


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute-value form) as plain Python values."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    result = {}
    for key, value in item.items():
        plain = deserializer.deserialize(value)
        # Decimal -> int/float so assertions and JSON reports read naturally.
        if isinstance(plain, Decimal):
            plain = int(plain) if plain == int(plain) else float(plain)
        result[key] = plain
    return result
