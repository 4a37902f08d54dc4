"""SQS event source mappings, run the way Lambda runs them.

For each enabled mapping, pollers long-poll the queue (boto3 against the local endpoint),
build the SQS event exactly as Lambda does and invoke the function synchronously through
:class:`~localcloud.lambda_service.LambdaService`. Then, like AWS:

- a successful invoke deletes the batch; with ``ReportBatchItemFailures`` a response of
  ``null``, ``""``, ``{}`` or ``{"batchItemFailures": []}`` (or ``null``) is full success and
  listed ``itemIdentifier`` s stay in the queue while the other records are deleted; an
  ``itemIdentifier`` that is null, empty, not a string, under another key, or not a message
  of the batch, or a response that is not a JSON object, fails the whole batch;
- a function error, crash, timeout or throttle deletes nothing: the batch comes back after
  the queue's visibility timeout (which is left alone), and the queue moves a message to its
  dead-letter queue after ``maxReceiveCount`` receives.

Concurrency: ``min(reserved concurrency, ScalingConfig.MaximumConcurrency)`` pollers (5 when
neither bounds it, the number of concurrent batches Lambda starts SQS polling with). On a
FIFO queue the queue itself keeps one batch per message group in flight (its group lock),
so pollers beyond the number of active groups just get empty receives, and concurrency ends
up bounded by the active groups, as on AWS.

The service is the one owner of the mappings: their settings, their state and their
pollers. Updating a mapping is asynchronous, as on AWS: :meth:`EventSourceMappingService.update`
answers with ``State`` ``Enabling``, ``Disabling`` or ``Updating``, and the mapping reaches
``Enabled``/``Disabled`` later, once the pollers of the old settings have stopped (and at
least ``transition_s`` after the call, so a client that does not wait for the state it
needs is caught here too). Another update meanwhile is refused with AWS's
``ResourceInUseException``.

Not emulated: Lambda's 6 MB cap on a batch's payload (a batch of large messages over 6 MB
is invoked whole and fails with ``RequestEntityTooLargeException``); filter criteria.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from localcloud.clients import client_factory
from localcloud.closing import ClosesOnExit
from localcloud.identity import AccessLog
from localcloud.lambda_service.service import LambdaService, LambdaServiceClosedError
from localcloud.specs import EventSourceMappingSpec, InvokeResult

_LOG = logging.getLogger(__name__)

DEFAULT_POLLERS = 5
ENABLED, DISABLED = "Enabled", "Disabled"
_SETTLED_STATES = frozenset({ENABLED, DISABLED})
DEFAULT_TRANSITION_S = 0.5
_FIFO_MAX_BATCH = 10
_RECEIVE_MAX = 10  # ReceiveMessage's MaxNumberOfMessages limit
# What CreateEventSourceMapping requires the function's role to allow on an SQS queue.
_CONSUMER_ACTIONS = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
_MAX_BATCH = 10_000
# Record attributes Lambda passes through from ReceiveMessage.
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)


class EventSourceMappingError(Exception):
    """An AWS-shaped error from CreateEventSourceMapping (``code`` is the AWS error code)."""

    code = "ServiceException"


class InvalidParameterValueError(EventSourceMappingError):
    """AWS's ``InvalidParameterValueException``."""

    code = "InvalidParameterValueException"


class ResourceNotFoundError(EventSourceMappingError):
    """AWS's ``ResourceNotFoundException``."""

    code = "ResourceNotFoundException"


class ResourceInUseError(EventSourceMappingError):
    """AWS's ``ResourceInUseException``: the mapping is still in a transition."""

    code = "ResourceInUseException"


@dataclass(frozen=True)
class EventSourceMapping:
    """A mapping as GetEventSourceMapping reads it: its settings and its state."""

    spec: EventSourceMappingSpec
    state: str
    """``Enabled``, ``Disabled``, or ``Enabling``/``Disabling``/``Updating`` meanwhile."""


def _settled_state(spec: EventSourceMappingSpec) -> str:
    return ENABLED if spec.enabled else DISABLED


@dataclass
class MappingStats:
    """Counters for one mapping."""

    uuid: str
    function_name: str
    queue_url: str
    pollers: int
    batches: int = 0
    records: int = 0
    deleted: int = 0
    failed_batches: int = 0
    partial_batches: int = 0
    throttled_batches: int = 0
    receive_errors: int = 0
    delete_failures: int = 0
    last_error: str | None = None
    max_batch_size: int = 0


@dataclass(frozen=True)
class BatchDecision:
    """What to do with a batch after the invoke: which receipt handles to delete."""

    delete: tuple[Mapping[str, Any], ...]
    whole_batch_failed: bool
    reason: str = ""


def sqs_event(
    messages: Sequence[Mapping[str, Any]],
    *,
    event_source_arn: str,
    region: str,
    batching_window: bool = False,
) -> dict[str, Any]:
    """The event Lambda sends for a batch of SQS messages (``ReceiveMessage`` output).

    A record has ``md5OfMessageAttributes`` when its message has attributes; without them
    the key is ``null`` if the mapping has a batching window and absent if not (every
    AWS-recorded sample agrees; tests/parity/test_event_shapes.py holds them).
    """
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": {k: attributes[k] for k in _RECORD_ATTRIBUTES if k in attributes},
            "messageAttributes": {
                name: _lambda_message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": event_source_arn,
            "awsRegion": region,
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        elif batching_window:
            record["md5OfMessageAttributes"] = None
        records.append(record)
    return {"Records": records}


def _b64(value: bytes | str) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS's ``{"StringValue", "DataType", ...}`` in Lambda's camelCase record shape."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues", [])]
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def decide(
    result: InvokeResult, messages: Sequence[Mapping[str, Any]], *, report_failures: bool
) -> BatchDecision:
    """Apply Lambda's rules for an SQS batch to one invoke result."""
    everything = tuple(messages)
    if result.status_code == 429:
        return BatchDecision((), True, "throttled")
    if result.status_code != 200 or result.function_error is not None:
        return BatchDecision((), True, f"function error {result.error_type}")
    if not report_failures:
        return BatchDecision(everything, False)
    raw = result.payload.strip()
    if not raw:
        return BatchDecision(everything, False)
    try:
        response = json.loads(raw)
    except ValueError:
        return BatchDecision((), True, "response is not valid JSON")
    if response is None:
        return BatchDecision(everything, False)
    if not isinstance(response, dict):
        return BatchDecision((), True, f"response is not an object: {raw[:100]!r}")
    failures = response.get("batchItemFailures")
    if failures is None:
        return BatchDecision(everything, False)
    if not isinstance(failures, list):
        return BatchDecision((), True, "batchItemFailures is not a list")
    by_id = {m["MessageId"]: m for m in messages}
    failed_ids: set[str] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return BatchDecision((), True, f"batch item failure without itemIdentifier: {item!r}")
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return BatchDecision((), True, f"null or empty itemIdentifier: {identifier!r}")
        if identifier not in by_id:
            return BatchDecision((), True, f"itemIdentifier not in the batch: {identifier!r}")
        failed_ids.add(identifier)
    keep = tuple(m for m in messages if m["MessageId"] not in failed_ids)
    return BatchDecision(keep, False, f"{len(failed_ids)} item(s) reported failed")


@dataclass
class _Mapping:
    """One generation of a mapping's pollers (``update`` starts a new generation)."""

    spec: EventSourceMappingSpec
    stats: MappingStats
    lock: threading.Lock
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)


class EventSourceMappingService(ClosesOnExit):
    """Runs SQS event source mappings against a :class:`LambdaService`."""

    def __init__(
        self,
        lambda_service: LambdaService,
        endpoint_url: str,
        region: str,
        *,
        wait_time_s: int = 1,
        unbounded_pollers: int = DEFAULT_POLLERS,
        error_backoff_s: float = 0.5,
        sqs_client: Any = None,
        access: AccessLog | None = None,
        transition_s: float = DEFAULT_TRANSITION_S,
    ) -> None:
        """``sqs_client`` replaces the boto3 client the pollers use (the local cloud passes
        its engine's :class:`~localcloud.sqs.protocol.InProcessSqsClient`); ``access``
        records the SQS calls the pollers make with the function's role, as AWS's do;
        ``transition_s`` is the shortest time a mapping spends in a transitional state."""
        self._transition_s = transition_s
        self._access = access
        self._lambda = lambda_service
        self._region = region
        # One thread-safe client for all pollers, its pool big enough for every long poll.
        self._make_client = client_factory(endpoint_url, region, max_pool_connections=64)
        self._client_lock = threading.Lock()
        self._client: Any = sqs_client
        # Short long-polls bound how long close() waits for a poller to notice the stop flag.
        self._wait_time_s = wait_time_s
        self._unbounded = unbounded_pollers
        self._backoff = error_backoff_s
        self._lock = threading.Lock()
        self._mappings: dict[str, _Mapping] = {}
        self._states: dict[str, str] = {}
        self._retired: list[_Mapping] = []
        self._closed = False

    def add(self, spec: EventSourceMappingSpec) -> None:
        """Validate like CreateEventSourceMapping, then start polling if enabled."""
        pollers = self._validate(spec)
        stats = MappingStats(spec.uuid, spec.function_name, spec.queue_url, pollers)
        mapping = _Mapping(spec, stats, threading.Lock())
        with self._lock:
            if self._closed:
                raise RuntimeError("EventSourceMappingService is closed")
            if spec.uuid in self._mappings:
                raise InvalidParameterValueError(f"mapping {spec.uuid} already exists")
            self._mappings[spec.uuid] = mapping
            self._states[spec.uuid] = _settled_state(spec)
            self._start(mapping, pollers)

    def get(self, uuid: str) -> EventSourceMapping:
        """One mapping's settings and state (``ResourceNotFoundError`` if there is none)."""
        with self._lock:
            mapping = self._mappings.get(uuid)
            if mapping is None:
                raise ResourceNotFoundError(
                    f"The resource you requested does not exist. (Service: Lambda; UUID {uuid})"
                )
            return EventSourceMapping(mapping.spec, self._states[uuid])

    def find(
        self, *, function_name: str | None = None, event_source_arn: str | None = None
    ) -> list[EventSourceMapping]:
        """The mappings, in creation order, optionally of one function or one source."""
        with self._lock:
            return [
                EventSourceMapping(m.spec, self._states[uuid])
                for uuid, m in self._mappings.items()
                if (function_name is None or m.spec.function_name == function_name)
                and (event_source_arn is None or m.spec.event_source_arn == event_source_arn)
            ]

    def update(
        self, uuid: str, *, enabled: bool | None = None, batch_size: int | None = None
    ) -> EventSourceMapping:
        """UpdateEventSourceMapping: enable, disable or change the batch size.

        Answers at once with the transitional state. The current pollers finish the batch
        they hold (and delete it if it succeeded) and stop; new pollers start from the new
        settings if enabled. The mapping reaches ``Enabled``/``Disabled`` once every poller
        of the old settings has stopped, so nothing is received under them any more (what
        ``Disabled`` means), and no sooner than ``transition_s`` after the call.
        """
        done_at = time.monotonic() + self._transition_s
        current = self.get(uuid)
        self._check_settled(current)
        changes: dict[str, Any] = {}
        if enabled is not None:
            changes["enabled"] = enabled
        if batch_size is not None:
            changes["batch_size"] = batch_size
        spec = replace(current.spec, **changes)
        if spec.enabled != current.spec.enabled:
            transition = "Enabling" if spec.enabled else "Disabling"
        else:
            transition = "Updating"
        pollers = self._validate(spec)
        with self._lock:
            if self._closed:
                raise RuntimeError("EventSourceMappingService is closed")
            old = self._mappings[uuid]
            # Another update may have started while this one was validated.
            self._check_settled(EventSourceMapping(old.spec, self._states[uuid]))
            self._states[uuid] = transition
            old.stop.set()
            self._retired.append(old)
            with old.lock:
                old.stats.pollers = pollers
            mapping = _Mapping(spec, old.stats, old.lock)
            self._mappings[spec.uuid] = mapping
            self._start(mapping, pollers)

        def settle() -> None:
            # A poller ends its long poll (wait_time_s) or its invoke (the function's
            # timeout), then sees the stop flag; no deadline is needed here. Then the
            # shortest transition: both are the modelled duration, not a poll.
            for thread in old.threads:
                thread.join()
            remaining = done_at - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
            with self._lock:
                if self._mappings[uuid] is mapping:
                    self._states[uuid] = _settled_state(spec)

        threading.Thread(target=settle, name=f"esm-settle-{uuid[:8]}", daemon=True).start()
        return EventSourceMapping(spec, transition)

    @staticmethod
    def _check_settled(mapping: EventSourceMapping) -> None:
        if mapping.state not in _SETTLED_STATES:
            raise ResourceInUseError("Cannot update the event source mapping because it is in use.")

    def _validate(self, spec: EventSourceMappingSpec) -> int:
        """Check ``spec`` as AWS does; return how many pollers it gets."""
        try:
            function = self._lambda.function_spec(spec.function_name)
        except KeyError:
            raise ResourceNotFoundError(f"Function not found: {spec.function_name}") from None
        if self._access is not None:
            # AWS refuses the mapping unless the function's role may consume the queue.
            principal = self._lambda.principal_of(function)
            for action in _CONSUMER_ACTIONS:
                if not self._access.allows(principal, f"sqs:{action}", spec.event_source_arn):
                    raise InvalidParameterValueError(
                        "The provided execution role does not have permissions to call "
                        f"{action} on SQS"
                    )
        client = self._sqs()
        self._record(spec, "sqs:GetQueueAttributes")
        attributes = client.get_queue_attributes(
            QueueUrl=spec.queue_url, AttributeNames=["VisibilityTimeout", "FifoQueue"]
        )["Attributes"]
        visibility = int(attributes.get("VisibilityTimeout", "30"))
        if visibility < function.timeout_s:
            raise InvalidParameterValueError(
                f"Queue visibility timeout: {visibility} seconds is less than Function "
                f"timeout: {function.timeout_s} seconds"
            )
        fifo = attributes.get("FifoQueue", "false").lower() == "true"
        limit = _FIFO_MAX_BATCH if fifo else _MAX_BATCH
        if not 1 <= spec.batch_size <= limit:
            raise InvalidParameterValueError(
                f"BatchSize must be between 1 and {limit} for this queue, got {spec.batch_size}"
            )
        if spec.batch_size > _RECEIVE_MAX and spec.maximum_batching_window_s < 1:
            raise InvalidParameterValueError(
                "Maximum batch window in seconds must be greater than 0 if maximum batch "
                "size is greater than 10"
            )
        if spec.maximum_concurrency is not None and not 2 <= spec.maximum_concurrency <= 1000:
            raise InvalidParameterValueError("MaximumConcurrency must be between 2 and 1000")
        pollers = self._unbounded
        if function.reserved_concurrency is not None:
            # Reserved concurrency 0 still gets one poller: its invokes are throttled and the
            # messages come back (and count receives), as on AWS.
            pollers = max(function.reserved_concurrency, 1)
        if spec.maximum_concurrency is not None:
            pollers = min(pollers, spec.maximum_concurrency)
        return pollers

    def _record(self, spec: EventSourceMappingSpec, action: str) -> None:
        """A call the mapping makes with its function's role: recorded, and refused with
        :class:`~localcloud.iam_policy.AccessDeniedError` if the role does not allow it."""
        if self._access is not None:
            function = self._lambda.function_spec(spec.function_name)
            principal = self._lambda.principal_of(function)
            self._access.check(principal, action, spec.event_source_arn)

    def _sqs(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client("sqs")
            return self._client

    def _start(self, mapping: _Mapping, pollers: int) -> None:
        if not mapping.spec.enabled:
            return
        for index in range(pollers):
            thread = threading.Thread(
                target=self._poll,
                args=(mapping,),
                name=f"esm-{mapping.spec.function_name}-{index}",
                daemon=True,
            )
            mapping.threads.append(thread)
            thread.start()

    def stats(self) -> dict[str, MappingStats]:
        """A snapshot of each mapping's counters, by UUID."""
        out: dict[str, MappingStats] = {}
        for uuid, mapping in list(self._mappings.items()):
            with mapping.lock:
                out[uuid] = MappingStats(**vars(mapping.stats))
        return out

    def _receive(self, client: Any, mapping: _Mapping) -> list[dict[str, Any]]:
        """One batch: a single receive, or several within the batching window (> 10)."""
        spec = mapping.spec
        messages: list[dict[str, Any]] = []
        window_end = time.monotonic() + spec.maximum_batching_window_s
        while not mapping.stop.is_set():
            wanted = min(spec.batch_size - len(messages), _RECEIVE_MAX)
            remaining = window_end - time.monotonic()
            wait = (
                self._wait_time_s
                if not messages
                else max(0, min(int(remaining), self._wait_time_s))
            )
            self._record(spec, "sqs:ReceiveMessage")
            response = client.receive_message(
                QueueUrl=spec.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages.extend(received)
            if (
                len(messages) >= spec.batch_size
                or spec.maximum_batching_window_s <= 0
                or time.monotonic() >= window_end
            ):
                break
        return messages

    def _poll(self, mapping: _Mapping) -> None:
        spec = mapping.spec
        stats = mapping.stats
        report_failures = "ReportBatchItemFailures" in spec.function_response_types
        client: Any = None
        while not mapping.stop.is_set():
            try:
                if client is None:
                    client = self._sqs()
                messages = self._receive(client, mapping)
            except Exception as exc:  # throttled, endpoint gone, or the role may not receive:
                # back off and retry, as AWS's pollers go on polling (docs/local-cloud/iam.md)
                with mapping.lock:
                    stats.receive_errors += 1
                    stats.last_error = f"receive: {exc}"
                mapping.stop.wait(self._backoff)
                continue
            if not messages:
                continue
            event = sqs_event(
                messages,
                event_source_arn=spec.event_source_arn,
                region=self._region,
                batching_window=spec.maximum_batching_window_s > 0,
            )
            try:
                result = self._lambda.invoke(spec.function_name, json.dumps(event).encode())
            except LambdaServiceClosedError:
                return  # shutting down: the batch comes back after its visibility timeout
            except Exception as exc:
                _LOG.exception("invoke of %s failed", spec.function_name)
                result = InvokeResult(
                    status_code=500, payload=str(exc).encode(), error_type="ServiceException"
                )
            decision = decide(result, messages, report_failures=report_failures)
            with mapping.lock:
                stats.batches += 1
                stats.records += len(messages)
                stats.max_batch_size = max(stats.max_batch_size, len(messages))
                if decision.whole_batch_failed:
                    stats.failed_batches += 1
                    stats.last_error = decision.reason
                    if result.status_code == 429:
                        stats.throttled_batches += 1
                elif len(decision.delete) < len(messages):
                    stats.partial_batches += 1
            if decision.delete:
                self._delete(client, mapping, decision.delete)
            if result.status_code != 200:
                # Throttled (or the function is gone): back off instead of spinning.
                mapping.stop.wait(self._backoff)

    def _delete(
        self, client: Any, mapping: _Mapping, messages: Sequence[Mapping[str, Any]]
    ) -> None:
        deleted = failed = 0
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            try:
                self._record(mapping.spec, "sqs:DeleteMessage")
                response = client.delete_message_batch(
                    QueueUrl=mapping.spec.queue_url, Entries=entries
                )
            except Exception as exc:
                failed += len(chunk)
                with mapping.lock:
                    mapping.stats.last_error = f"delete: {exc}"
                continue
            deleted += len(response.get("Successful", []))
            failed += len(response.get("Failed", []))
        with mapping.lock:
            mapping.stats.deleted += deleted
            mapping.stats.delete_failures += failed

    def close(self, timeout: float = 5.0) -> None:
        """Stop every poller; returns within about ``timeout`` s. Idempotent.

        A poller still inside an invoke when the time is up is left to finish on its own
        (daemon thread): if the Lambda service is closed next, that invoke ends with an error
        and its batch is not deleted, so it comes back after the visibility timeout.
        """
        with self._lock:
            self._closed = True
            mappings = [*self._mappings.values(), *self._retired]
        for mapping in mappings:
            mapping.stop.set()
        threads = [t for m in mappings for t in m.threads]
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        still = [t.name for t in threads if t.is_alive()]
        if still:
            _LOG.info("pollers still finishing an invoke: %s", ", ".join(still))
