"""The SQS engine: queues, messages and the rules AWS applies to them, apart from any wire.

State lives under one lock (SQS work here is CPU-bound Python; one lock makes every
multi-queue step, like a dead-letter move, atomic without lock ordering). Each queue has
its own condition on that lock, so a long poll sleeps without holding it and wakes on a
send, on a message coming back from flight, or on a group unlocking.

Every operation is O(1) or O(log n) in the queue's size: messages sit in a dict by
sequence number; what is ready is a heap (per message group on FIFO queues, plus a heap
of groups that may deliver); in-flight, delayed and retention deadlines are heaps whose
stale entries are skipped when popped and compacted when they outnumber live ones.

FIFO rules (AWS's: the SQS developer guide, and AWS's recorded answers):
- order within a message group, across redeliveries and partial deletes: a message that
  comes back from flight goes back to its place by sequence number;
- a group delivers only the messages before its first one in flight: while its oldest
  message is in flight nothing of it is delivered (a new send does not change that), but a
  message that comes back from flight (its visibility timeout ran out or was changed) is
  delivered again even while later messages of its group are still in flight;
- a receive takes as many messages of one group as it can before moving to the next
  group, and groups take turns in the order they became deliverable;
- deduplication within a 5-minute window that outlives the message (PurgeQueue clears it);
- a SequenceNumber that increases with every send.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localcloud.sqs import queue_attributes as qa
from localcloud.sqs.attributes import (
    MessageAttributes,
    attributes_md5,
    attributes_size,
    has_invalid_characters,
    select_attributes,
    validate_message_attributes,
)
from localcloud.sqs.clock import Clock, SystemClock
from localcloud.sqs.errors import (
    SqsError,
    batch_ids_not_distinct,
    batch_request_too_long,
    empty_batch,
    invalid_attribute_name,
    invalid_attribute_value,
    invalid_batch_entry_id,
    invalid_message_contents,
    invalid_parameter_value,
    message_not_inflight,
    missing_parameter,
    purge_in_progress,
    queue_deleted_recently,
    queue_does_not_exist,
    queue_name_exists,
    receipt_handle_expired,
    receipt_handle_is_invalid,
    resource_not_found,
    throttled,
    too_many_entries,
)

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"
DEDUPLICATION_WINDOW_S = 300.0
PURGE_INTERVAL_S = 60.0
# How long a deleted queue's name stays taken (QueueDeletedRecently).
RECREATE_DELAY_S = 60.0
FIFO_TRANSACTIONS_PER_SECOND = 300.0
MAX_BATCH_ENTRIES = 10
MAX_RECEIVE_MESSAGES = 10
MAX_WAIT_TIME_S = 20
MAX_TAGS = 50
# SequenceNumbers are 20-digit decimal strings on AWS; ours count up from here.
_SEQUENCE_BASE = 18_000_000_000_000_000_000

_READY, _DELAYED, _INFLIGHT = 0, 1, 2
_STANDARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_FIFO_NAME = re.compile(r"^[A-Za-z0-9_-]{1,75}\.fifo$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# MessageGroupId / MessageDeduplicationId: 1 to 128 alphanumeric or punctuation characters.
_FIFO_ID = re.compile(r"^[!-~]{1,128}$")
_SYSTEM_ATTRIBUTE_NAMES = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
# API actions that share one FIFO throughput bucket (a batch is one transaction).
_THROTTLE_BUCKET = {
    "SendMessage": "SendMessage",
    "SendMessageBatch": "SendMessage",
    "ReceiveMessage": "ReceiveMessage",
    "DeleteMessage": "DeleteMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibility": "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


# ----------------------------------------------------------------------------------------
# Public value types
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many messages a queue holds, as the AWS/SQS CloudWatch metrics count them.

    The one queue-depth type: the engine's counters, and the samples
    :class:`~localcloud.metrics.QueueMetricsPublisher` publishes.
    """

    visible: int
    not_visible: int
    delayed: int
    age_of_oldest_s: float | None = None
    """Seconds since the oldest message arrived (0 when empty; the engine always knows it).
    None: unknown (a sample through ``GetQueueAttributes``, which does not report it), and
    ``ApproximateAgeOfOldestMessage`` is then not published."""


@dataclass(frozen=True, slots=True)
class SendEntry:
    """One message to send (a SendMessage, or one entry of a SendMessageBatch)."""

    id: str
    body: str
    delay_seconds: int | None = None
    message_attributes: Mapping[str, Mapping[str, Any]] | None = None
    system_attributes: Mapping[str, Mapping[str, Any]] | None = None
    deduplication_id: str | None = None
    group_id: str | None = None
    # The request's X-Amzn-Trace-Id header: the AWSTraceHeader system attribute unless
    # the entry sets that attribute itself.
    trace_header: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What SendMessage returns (a duplicate returns the original's id and sequence number)."""

    message_id: str
    md5_of_body: str
    md5_of_message_attributes: str | None = None
    md5_of_message_system_attributes: str | None = None
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class BatchError:
    """A failed batch entry."""

    id: str
    code: str
    message: str
    sender_fault: bool = True


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message as ReceiveMessage returns it."""

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: dict[str, str]
    message_attributes: MessageAttributes
    md5_of_message_attributes: str | None


@dataclass(frozen=True, slots=True)
class MoveTaskInfo:
    """One message move task, as ListMessageMoveTasks reports it."""

    task_handle: str
    status: str
    source_arn: str
    destination_arn: str | None
    max_messages_per_second: int | None
    messages_moved: int
    messages_to_move: int
    started_ms: int
    failure_reason: str | None = None


# ----------------------------------------------------------------------------------------
# Internal state
# ----------------------------------------------------------------------------------------


class _Message:
    __slots__ = (
        "age_base",
        "attributes",
        "attributes_md5",
        "available_at",
        "body",
        "body_md5",
        "dedup_id",
        "dlq_source_arn",
        "first_receive_ms",
        "group_id",
        "message_id",
        "receive_count",
        "received_at",
        "retention_base",
        "sender_id",
        "sent_ms",
        "seq",
        "sequence_number",
        "state",
        "system_attributes",
        "visible_at",
    )

    def __init__(
        self,
        *,
        message_id: str,
        body: str,
        body_md5: str,
        attributes: MessageAttributes,
        attributes_md5: str | None,
        system_attributes: dict[str, str],
        group_id: str | None,
        dedup_id: str | None,
        sender_id: str,
        sent_ms: int,
        retention_base: float,
        age_base: float,
    ) -> None:
        self.message_id = message_id
        self.body = body
        self.body_md5 = body_md5
        self.attributes = attributes
        self.attributes_md5 = attributes_md5
        self.system_attributes = system_attributes
        self.group_id = group_id
        self.dedup_id = dedup_id
        self.sender_id = sender_id
        self.sent_ms = sent_ms
        self.retention_base = retention_base
        self.age_base = age_base
        self.seq = 0
        self.sequence_number: str | None = None
        self.state = _READY
        self.available_at = 0.0
        self.visible_at = 0.0
        self.received_at = 0.0
        self.receive_count = 0
        self.first_receive_ms: int | None = None
        self.dlq_source_arn: str | None = None


class _Group:
    __slots__ = (
        "group_id",
        "inflight",
        "inflight_seqs",
        "listed",
        "ready",
        "ready_count",
        "version",
    )

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.ready: list[tuple[int, int]] = []  # heap of (seq, receive_count)
        self.ready_count = 0
        self.inflight = 0
        # heap of the sequence numbers of messages delivered (stale ones skipped at the top)
        self.inflight_seqs: list[int] = []
        self.listed = False  # has a valid entry in the queue's group heap
        self.version = 0


@dataclass(slots=True)
class _Dedup:
    expires_at: float
    message_id: str
    sequence_number: str | None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class Queue:
    """One queue's state. Read its public attributes; change it only through the engine."""

    def __init__(
        self,
        *,
        name: str,
        account_id: str,
        region: str,
        url: str,
        fifo: bool,
        attributes: dict[str, str],
        tags: dict[str, str],
        lock: threading.Lock,
        now: float,
    ) -> None:
        self.name = name
        self.account_id = account_id
        self.region = region
        self.url = url
        self.arn = f"arn:aws:sqs:{region}:{account_id}:{name}"
        self.fifo = fifo
        self.tags = tags
        self.created = int(now)
        self.last_modified = int(now)
        self.incarnation = uuid.uuid4().hex[:12]
        self.cond = threading.Condition(lock)
        self.deleted = False
        self.last_purge: float | None = None
        self._attributes: dict[str, str] = {}
        # messages by sequence number (a dict keeps send order)
        self.messages: dict[int, _Message] = {}
        self.next_seq = 0
        self.n_ready = 0
        self.n_inflight = 0
        self.n_delayed = 0
        self.ready: list[tuple[int, int]] = []  # standard queues: heap of (seq, receive_count)
        self.groups: dict[str, _Group] = {}  # FIFO queues
        # groups that may deliver: (turn, group id, version), turns in listing order
        self.group_heap: list[tuple[int, str, int]] = []
        self.group_version = 0
        self.inflight: dict[int, None] = {}
        self.inflight_heap: list[tuple[float, int, int]] = []  # (visible_at, seq, receive_count)
        self.delayed_heap: list[tuple[float, int]] = []  # (available_at, seq)
        self.retention_heap: list[tuple[float, int]] = []  # (retention_base, seq)
        self.age_heap: list[tuple[float, int]] = []  # (age_base, seq)
        self.dedup: dict[tuple[str | None, str], _Dedup] = {}
        self.dedup_order: deque[tuple[float, tuple[str | None, str]]] = deque()
        self.buckets: dict[str, _Bucket] = {}
        self.set_attributes(attributes, now)
        # The deduplication scope the queue was created with: AWS kept applying it after
        # SetQueueAttributes changed DeduplicationScope, both ways (recorded).
        self.dedup_per_group = self._attributes.get("DeduplicationScope") == "messageGroup"

    # -- attributes ---------------------------------------------------------------------

    def set_attributes(self, attributes: Mapping[str, str], now: float) -> None:
        """Store normalised attributes and refresh the typed values the rules read."""
        for name, value in attributes.items():
            if value == "" and name in qa.CLEARED_BY_EMPTY:
                self._attributes.pop(name, None)
            else:
                self._attributes[name] = value
        if "KmsMasterKeyId" in attributes:
            if self._attributes.get("KmsMasterKeyId"):
                # A KMS key replaces SQS-managed encryption (recorded).
                self._attributes["SqsManagedSseEnabled"] = "false"
            else:
                # No key: its reuse period goes with it; SQS-managed SSE stays off (recorded).
                self._attributes.pop("KmsDataKeyReusePeriodSeconds", None)
        self.last_modified = int(now)
        get = self._attributes.get
        self.visibility_timeout = int(get("VisibilityTimeout", "30"))
        self.retention_period = int(get("MessageRetentionPeriod", "345600"))
        self.delay_seconds = int(get("DelaySeconds", "0"))
        self.maximum_message_size = int(get("MaximumMessageSize", str(qa.MAX_MESSAGE_BYTES)))
        self.wait_time_seconds = int(get("ReceiveMessageWaitTimeSeconds", "0"))
        self.content_based_dedup = get("ContentBasedDeduplication") == "true"
        self.high_throughput = (
            get("FifoThroughputLimit") == "perMessageGroupId"
            and get("DeduplicationScope") == "messageGroup"
        )
        redrive = get("RedrivePolicy")
        if redrive:
            policy = json.loads(redrive)
            self.dlq_arn: str | None = str(policy["deadLetterTargetArn"])
            self.max_receive_count = int(policy["maxReceiveCount"])
        else:
            self.dlq_arn = None
            self.max_receive_count = 0

    def stored_attributes(self) -> dict[str, str]:
        """The settable attributes as GetQueueAttributes returns them."""
        return dict(self._attributes)

    def attribute(self, name: str) -> str | None:
        return self._attributes.get(name)


class _MoveTask:
    """A message move task. It makes progress whenever the engine runs, by its clock: a
    task at N messages per second may have moved N messages after its start and N more
    at each whole second after that (all at once without a rate)."""

    def __init__(
        self,
        *,
        handle: str,
        source_arn: str,
        destination_arn: str | None,
        rate: int | None,
        started: float,
        to_move: list[int],
    ) -> None:
        self.handle = handle
        self.source_arn = source_arn
        self.destination_arn = destination_arn
        self.rate = rate
        self.started = started
        self.to_move = deque(to_move)
        self.messages_to_move = len(to_move)
        self.moved = 0
        self.status = "RUNNING"
        self.failure_reason: str | None = None

    def allowed(self, now: float) -> int:
        """How many messages the task may have moved by ``now``."""
        if self.rate is None:
            return self.messages_to_move
        return self.rate * (int(now - self.started) + 1)

    @property
    def next_due(self) -> float:
        """When the task may move its next message."""
        if self.rate is None:
            return self.started
        return self.started + self.moved // self.rate

    def info(self) -> MoveTaskInfo:
        return MoveTaskInfo(
            task_handle=self.handle,
            status=self.status,
            source_arn=self.source_arn,
            destination_arn=self.destination_arn,
            max_messages_per_second=self.rate,
            messages_moved=self.moved,
            messages_to_move=self.messages_to_move,
            started_ms=int(self.started * 1000),
            failure_reason=self.failure_reason,
        )


# ----------------------------------------------------------------------------------------
# Receipt handles
# ----------------------------------------------------------------------------------------


def _encode_handle(queue: Queue, message: _Message) -> str:
    # Self-describing, so validating one needs no table of issued handles: which queue
    # incarnation, which message, which receive (a later receive makes older handles stale).
    raw = f"{queue.incarnation}:{message.seq}:{message.receive_count}:{message.message_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_handle(handle: str) -> tuple[str, int, int] | None:
    try:
        raw = base64.urlsafe_b64decode(handle.encode()).decode()
        incarnation, seq, receive_count, _ = raw.split(":", 3)
        return incarnation, int(seq), int(receive_count)
    except (ValueError, UnicodeError, binascii.Error):
        return None


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------


class SqsEngine:
    """An SQS service: queues and the rules AWS applies, callable in-process or over a wire.

    ``throttling`` enforces the non-high-throughput FIFO quota (300 transactions per
    second per API action per queue; a batch is one transaction). ``clock`` decides what
    is due (visibility, delay, retention, deduplication, quotas); tests pass a
    :class:`~localcloud.sqs.clock.FakeClock`.
    """

    def __init__(
        self,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        base_url: str = "http://127.0.0.1",
        clock: Clock | None = None,
        throttling: bool = True,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.base_url = base_url.rstrip("/")
        self.clock: Clock = clock or SystemClock()
        self.throttling = throttling
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], Queue] = {}
        self._by_arn: dict[str, Queue] = {}
        self._move_tasks: dict[str, _MoveTask] = {}
        self._moves_running: list[_MoveTask] = []
        self._deleted: dict[tuple[str, str], float] = {}  # (account, name) -> deleted at
        self._closed = False
        self._waiting = 0

    # -- lifecycle ----------------------------------------------------------------------

    def reopen(self) -> None:
        """Accept long polls again after :meth:`close` (an endpoint restarted)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        """Wake every long poll (they return empty)."""
        with self._lock:
            self._closed = True
            for queue in self._queues.values():
                queue.cond.notify_all()

    # -- lookups (also for the local cloud's metrics and event source mappings) ---------

    def long_polls_waiting(self) -> int:
        """How many ReceiveMessage calls are waiting for messages right now."""
        with self._lock:
            return self._waiting

    def queue_url(self, name: str, account_id: str | None = None) -> str:
        return f"{self.base_url}/{account_id or self.account_id}/{name}"

    def find_queue(self, ref: str) -> Queue | None:
        """The queue a URL, ARN or name refers to, or None."""
        with self._lock:
            return self._find(ref)

    def queue_depth(self, ref: str) -> QueueDepth:
        """Visible, in-flight and delayed counts and the age of the oldest message."""
        with self._lock:
            queue = self._require(ref)
            now = self.clock.time()
            self._maintain(queue, now)
            return self._depth(queue, now)

    def queue_depths(self) -> dict[str, QueueDepth]:
        """``{queue_url: QueueDepth}`` for every queue."""
        with self._lock:
            now = self.clock.time()
            result: dict[str, QueueDepth] = {}
            for queue in self._queues.values():
                self._maintain(queue, now)
                result[queue.url] = self._depth(queue, now)
            return result

    def _depth(self, queue: Queue, now: float) -> QueueDepth:
        heap = queue.age_heap
        while heap and queue.messages.get(heap[0][1]) is None:
            heapq.heappop(heap)
        age = max(0.0, now - heap[0][0]) if heap else 0.0
        return QueueDepth(
            visible=queue.n_ready,
            not_visible=queue.n_inflight,
            delayed=queue.n_delayed,
            age_of_oldest_s=age,
        )

    def _find(self, ref: str) -> Queue | None:
        if ref.startswith("arn:"):
            return self._by_arn.get(ref)
        parts = [part for part in ref.split("?", 1)[0].split("/") if part]
        if not parts:
            return None
        name = parts[-1]
        account = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else self.account_id
        return self._queues.get((account, name))

    def _require(self, ref: str | None) -> Queue:
        if not ref:
            raise missing_parameter("QueueUrl")
        queue = self._find(ref)
        if queue is None:
            raise queue_does_not_exist()
        return queue

    # -- queue management ---------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Queue:
        """Create a queue, or return the existing one if its attributes match."""
        attributes = dict(attributes or {})
        if not name:
            raise missing_parameter("QueueName")
        fifo_attribute = str(attributes.get("FifoQueue", "false")).lower()
        fifo = fifo_attribute == "true"
        if fifo and not _FIFO_NAME.match(name):
            raise invalid_parameter_value(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                "or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
        if not fifo and not _STANDARD_NAME.match(name):
            raise invalid_parameter_value(
                "Can only include alphanumeric characters, hyphens, or underscores. "
                "1 to 80 in length"
            )
        normalized = qa.normalize_all(attributes, fifo=fifo)
        if tags is not None and len(tags) > MAX_TAGS:
            raise invalid_parameter_value(f"Too many tags added for queue {name}.")
        with self._lock:
            now = self.clock.time()
            existing = self._queues.get((self.account_id, name))
            deleted_at = self._deleted.get((self.account_id, name))
            if existing is None and deleted_at is not None:
                if now - deleted_at < RECREATE_DELAY_S:
                    raise queue_deleted_recently()
                del self._deleted[(self.account_id, name)]
            if existing is not None:
                current = existing.stored_attributes()
                defaults = {**qa.DEFAULTS, **(qa.FIFO_DEFAULTS if existing.fifo else {})}
                for key, value in normalized.items():
                    if current.get(key, defaults.get(key)) != value:
                        raise queue_name_exists(key)
                return existing
            if normalized.get("RedrivePolicy"):
                self._check_redrive_target(normalized["RedrivePolicy"], fifo=fifo)
            merged = {**qa.DEFAULTS, **(qa.FIFO_DEFAULTS if fifo else {}), **normalized}
            queue = Queue(
                name=name,
                account_id=self.account_id,
                region=self.region,
                url=self.queue_url(name),
                fifo=fifo,
                attributes=merged,
                tags=dict(tags or {}),
                lock=self._lock,
                now=now,
            )
            self._queues[(self.account_id, name)] = queue
            self._by_arn[queue.arn] = queue
            return queue

    def _check_redrive_target(self, policy_text: str, *, fifo: bool) -> None:
        target_arn = json.loads(policy_text)["deadLetterTargetArn"]
        target = self._by_arn.get(target_arn)
        if target is None:
            raise invalid_parameter_value(
                f"Value {policy_text} for parameter RedrivePolicy is invalid. "
                "Reason: Dead letter target does not exist."
            )
        if target.fifo != fifo:
            # The double period is AWS's.
            raise invalid_parameter_value(
                f"Value {policy_text} for parameter RedrivePolicy is invalid. "
                "Reason: Dead-letter queue must be same type of queue as the source.."
            )

    def delete_queue(self, queue_url: str) -> None:
        with self._lock:
            queue = self._require(queue_url)
            queue.deleted = True
            del self._queues[(queue.account_id, queue.name)]
            del self._by_arn[queue.arn]
            now = self.clock.time()
            for key, deleted_at in list(self._deleted.items()):
                if now - deleted_at >= RECREATE_DELAY_S:
                    del self._deleted[key]
            self._deleted[(queue.account_id, queue.name)] = now
            queue.cond.notify_all()

    def get_queue_url(self, name: str, owner_account_id: str | None = None) -> str:
        with self._lock:
            queue = self._queues.get((owner_account_id or self.account_id, name))
            if queue is None:
                raise queue_does_not_exist()
            return queue.url

    def list_queues(self, prefix: str | None = None) -> list[str]:
        """Queue URLs whose name starts with ``prefix``, in creation order."""
        with self._lock:
            return [
                queue.url
                for queue in self._queues.values()
                if not prefix or queue.name.startswith(prefix)
            ]

    def get_queue_attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        """The attributes asked for (``All`` for every one)."""
        for name in names:
            if name not in qa.READABLE_ATTRIBUTES:
                raise invalid_attribute_name(f"Unknown Attribute {name}.")
        with self._lock:
            queue = self._require(queue_url)
            if not names:
                return {}
            now = self.clock.time()
            self._maintain(queue, now)
            values = queue.stored_attributes()
            values.update(
                {
                    "ApproximateNumberOfMessages": str(queue.n_ready),
                    "ApproximateNumberOfMessagesNotVisible": str(queue.n_inflight),
                    "ApproximateNumberOfMessagesDelayed": str(queue.n_delayed),
                    "CreatedTimestamp": str(queue.created),
                    "LastModifiedTimestamp": str(queue.last_modified),
                    "QueueArn": queue.arn,
                }
            )
            if values.get("KmsMasterKeyId"):
                values.setdefault("KmsDataKeyReusePeriodSeconds", "300")
            else:
                values.pop("KmsDataKeyReusePeriodSeconds", None)
            if "All" in names:
                return values
            return {name: values[name] for name in names if name in values}

    def set_queue_attributes(self, queue_url: str, attributes: Mapping[str, Any]) -> None:
        with self._lock:
            queue = self._require(queue_url)
            if queue.fifo and str(attributes.get("FifoQueue", "true")).lower() != "true":
                raise invalid_attribute_value("FifoQueue", "Modifying queue type is not supported.")
            # FifoQueue is unknown on a standard queue, so normalize_all refuses it there.
            rest = {k: v for k, v in attributes.items() if k != "FifoQueue" or not queue.fifo}
            normalized = qa.normalize_all(rest, fifo=queue.fifo)
            if normalized.get("RedrivePolicy"):
                self._check_redrive_target(normalized["RedrivePolicy"], fifo=queue.fifo)
            now = self.clock.time()
            self._maintain(queue, now)
            queue.set_attributes(normalized, now)
            # A shorter visibility timeout or retention may have made something due now.
            queue.cond.notify_all()

    def tag_queue(self, queue_url: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            queue = self._require(queue_url)
            if not tags:
                raise missing_parameter("Tags")
            merged = {**queue.tags, **tags}
            if len(merged) > MAX_TAGS:
                raise invalid_parameter_value(f"Too many tags added for queue {queue.name}.")
            queue.tags = merged

    def untag_queue(self, queue_url: str, keys: Iterable[str]) -> None:
        with self._lock:
            queue = self._require(queue_url)
            for key in keys:
                queue.tags.pop(key, None)

    def list_queue_tags(self, queue_url: str) -> dict[str, str]:
        with self._lock:
            return dict(self._require(queue_url).tags)

    def add_permission(
        self, queue_url: str, label: str, account_ids: Sequence[str], actions: Sequence[str]
    ) -> None:
        with self._lock:
            queue = self._require(queue_url)
            policy = self._policy(queue)
            if any(statement.get("Sid") == label for statement in policy["Statement"]):
                raise invalid_parameter_value(
                    f"Value {label} for parameter Label is invalid. Reason: Already exists."
                )
            principals = [f"arn:aws:iam::{account}:root" for account in account_ids]
            sqs_actions = [f"SQS:{action}" for action in actions]
            policy["Statement"].append(
                {
                    "Sid": label,
                    "Effect": "Allow",
                    "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                    "Action": sqs_actions[0] if len(sqs_actions) == 1 else sqs_actions,
                    "Resource": queue.arn,
                }
            )
            queue.set_attributes(
                {"Policy": json.dumps(policy, separators=(",", ":"))}, self.clock.time()
            )

    def remove_permission(self, queue_url: str, label: str) -> None:
        with self._lock:
            queue = self._require(queue_url)
            policy = self._policy(queue)
            kept = [s for s in policy["Statement"] if s.get("Sid") != label]
            if len(kept) == len(policy["Statement"]):
                raise invalid_parameter_value(
                    f"Value {label} for parameter Label is invalid. Reason: can't find label."
                )
            policy["Statement"] = kept
            value = json.dumps(policy, separators=(",", ":")) if kept else ""
            queue.set_attributes({"Policy": value}, self.clock.time())

    @staticmethod
    def _policy(queue: Queue) -> dict[str, Any]:
        text = queue.attribute("Policy")
        if text:
            policy: dict[str, Any] = json.loads(text)
            policy.setdefault("Statement", [])
            return policy
        # The version and id AWS gives the policy AddPermission creates (recorded).
        return {"Version": "2008-10-17", "Id": f"{queue.arn}/SQSDefaultPolicy", "Statement": []}

    def list_dead_letter_source_queues(self, queue_url: str) -> list[str]:
        with self._lock:
            target = self._require(queue_url)
            return [q.url for q in self._queues.values() if q.dlq_arn == target.arn]

    def purge_queue(self, queue_url: str) -> None:
        """Delete every message (in flight too) and forget the deduplication window."""
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            if queue.last_purge is not None and now - queue.last_purge < PURGE_INTERVAL_S:
                raise purge_in_progress(queue.name)
            queue.last_purge = now
            queue.messages.clear()
            queue.n_ready = queue.n_inflight = queue.n_delayed = 0
            queue.ready.clear()
            queue.groups.clear()
            queue.group_heap.clear()
            queue.inflight.clear()
            queue.inflight_heap.clear()
            queue.delayed_heap.clear()
            queue.retention_heap.clear()
            queue.age_heap.clear()
            queue.dedup.clear()
            queue.dedup_order.clear()

    # -- throughput quota ---------------------------------------------------------------

    def _throttle(self, queue: Queue, action: str, now: float) -> None:
        if not self.throttling or not queue.fifo or queue.high_throughput:
            return
        key = _THROTTLE_BUCKET[action]
        bucket = queue.buckets.get(key)
        if bucket is None:
            bucket = queue.buckets[key] = _Bucket(FIFO_TRANSACTIONS_PER_SECOND, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(
            FIFO_TRANSACTIONS_PER_SECOND, bucket.tokens + elapsed * FIFO_TRANSACTIONS_PER_SECOND
        )
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise throttled()
        bucket.tokens -= 1.0

    # -- sending ------------------------------------------------------------------------

    def send_message(
        self,
        queue_url: str,
        body: str,
        *,
        delay_seconds: int | None = None,
        message_attributes: Mapping[str, Mapping[str, Any]] | None = None,
        system_attributes: Mapping[str, Mapping[str, Any]] | None = None,
        deduplication_id: str | None = None,
        group_id: str | None = None,
        sender_id: str = DEFAULT_SENDER_ID,
        trace_header: str | None = None,
    ) -> SendResult:
        """Send one message; a FIFO duplicate within the window succeeds and is not delivered."""
        entry = SendEntry(
            id="",
            body=body,
            delay_seconds=delay_seconds,
            message_attributes=message_attributes,
            system_attributes=system_attributes,
            deduplication_id=deduplication_id,
            group_id=group_id,
            trace_header=trace_header,
        )
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "SendMessage", now)
            self._maintain(queue, now)
            result = self._send(queue, entry, now, sender_id)
            queue.cond.notify()
            return result

    def send_message_batch(
        self, queue_url: str, entries: Sequence[SendEntry], *, sender_id: str = DEFAULT_SENDER_ID
    ) -> tuple[list[tuple[str, SendResult]], list[BatchError]]:
        """Send up to 10 messages as one transaction; returns (successes, failures)."""
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "SendMessageBatch", now)
            self._check_batch([entry.id for entry in entries], "SendMessageBatch")
            total = sum(
                len(entry.body.encode()) + attributes_size(entry.message_attributes or {})
                for entry in entries
            )
            if total > qa.MAX_MESSAGE_BYTES:
                raise batch_request_too_long(qa.MAX_MESSAGE_BYTES, total)
            if queue.fifo:
                # AWS rejects the whole batch for these (recorded), not the entry.
                for entry in entries:
                    if not entry.group_id:
                        raise invalid_parameter_value(
                            "The request must contain the parameter MessageGroupId."
                        )
                if not queue.content_based_dedup:
                    for entry in entries:
                        if entry.deduplication_id is None:
                            raise _no_deduplication_id()
            self._maintain(queue, now)
            successes: list[tuple[str, SendResult]] = []
            failures: list[BatchError] = []
            for entry in entries:
                try:
                    successes.append(
                        (entry.id, self._send(queue, entry, now, sender_id, in_batch=True))
                    )
                except SqsError as error:
                    failures.append(
                        BatchError(entry.id, error.code, error.message, error.sender_fault)
                    )
            if successes:
                queue.cond.notify(len(successes))
            return successes, failures

    @staticmethod
    def _check_batch(ids: Sequence[str], action: str) -> None:
        if not ids:
            raise empty_batch(action)
        if len(ids) > MAX_BATCH_ENTRIES:
            raise too_many_entries(len(ids))
        seen: set[str] = set()
        for entry_id in ids:
            if not _BATCH_ID.match(entry_id or ""):
                raise invalid_batch_entry_id()
            if entry_id in seen:
                raise batch_ids_not_distinct(entry_id)
            seen.add(entry_id)

    def _send(
        self, queue: Queue, entry: SendEntry, now: float, sender_id: str, *, in_batch: bool = False
    ) -> SendResult:
        body = entry.body
        if body is None or body == "":
            raise missing_parameter("MessageBody")
        attributes = {k: dict(v) for k, v in (entry.message_attributes or {}).items()}
        validate_message_attributes(attributes)
        system = self._system_attributes(entry.system_attributes)
        if entry.trace_header and "AWSTraceHeader" not in system:
            system["AWSTraceHeader"] = entry.trace_header
        body_bytes = body.encode()
        size = len(body_bytes) + attributes_size(attributes)
        if size > queue.maximum_message_size:
            # A batch entry's wording differs from a single send's (both recorded).
            verb = "cannot be validated" if in_batch else "are invalid"
            raise invalid_parameter_value(
                f"One or more parameters {verb}. Reason: Message must be shorter than "
                f"{queue.maximum_message_size} bytes."
            )
        if has_invalid_characters(body):
            raise invalid_message_contents()
        delay = queue.delay_seconds
        if entry.delay_seconds is not None:
            requested = int(entry.delay_seconds)
            if not 0 <= requested <= 900:
                raise invalid_parameter_value(
                    f"Value {requested} for parameter DelaySeconds is invalid. "
                    "Reason: DelaySeconds must be >= 0 and <= 900."
                )
            if queue.fifo and requested > 0:
                raise invalid_parameter_value(
                    f"Value {requested} for parameter DelaySeconds is invalid. Reason: The "
                    "request include parameter that is not valid for this queue type."
                )
            if not queue.fifo:
                # A FIFO queue's own delay applies even to DelaySeconds=0 (recorded).
                delay = requested
        group_id = entry.group_id
        dedup_id = entry.deduplication_id
        if group_id is not None:
            _check_fifo_id(group_id, "MessageGroupId")
        if dedup_id is not None:
            _check_fifo_id(dedup_id, "MessageDeduplicationId")
        body_md5 = hashlib.md5(body_bytes).hexdigest()  # noqa: S324 - SQS wire format
        attributes_digest = attributes_md5(attributes)
        system_digest = attributes_md5(entry.system_attributes or {})
        dedup_key: tuple[str | None, str] | None = None
        if queue.fifo:
            if not group_id:
                raise missing_parameter("MessageGroupId")
            if dedup_id is None:
                if not queue.content_based_dedup:
                    raise _no_deduplication_id()
                dedup_id = hashlib.sha256(body_bytes).hexdigest()
            dedup_key = (group_id if queue.dedup_per_group else None, dedup_id)
            self._prune_dedup(queue, now)
            original = queue.dedup.get(dedup_key)
            if original is not None:
                return SendResult(
                    message_id=original.message_id,
                    md5_of_body=body_md5,
                    md5_of_message_attributes=attributes_digest,
                    md5_of_message_system_attributes=system_digest,
                    sequence_number=original.sequence_number,
                )
        elif dedup_id is not None:
            raise invalid_parameter_value(
                f"Value {dedup_id} for parameter MessageDeduplicationId is invalid. Reason: The "
                "request includes a parameter that is not valid for this queue type."
            )
        message = _Message(
            message_id=str(uuid.uuid4()),
            body=body,
            body_md5=body_md5,
            attributes=attributes,
            attributes_md5=attributes_digest,
            system_attributes=system,
            group_id=group_id,
            dedup_id=dedup_id if queue.fifo else None,
            sender_id=sender_id,
            sent_ms=int(now * 1000),
            retention_base=now,
            age_base=now,
        )
        self._enqueue(queue, message, now, delay)
        if dedup_key is not None:
            expires = now + DEDUPLICATION_WINDOW_S
            queue.dedup[dedup_key] = _Dedup(expires, message.message_id, message.sequence_number)
            queue.dedup_order.append((expires, dedup_key))
        return SendResult(
            message_id=message.message_id,
            md5_of_body=body_md5,
            md5_of_message_attributes=attributes_digest,
            md5_of_message_system_attributes=system_digest,
            sequence_number=message.sequence_number,
        )

    @staticmethod
    def _system_attributes(
        attributes: Mapping[str, Mapping[str, Any]] | None,
    ) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, value in (attributes or {}).items():
            if name != "AWSTraceHeader":
                raise invalid_parameter_value(f"Message system attribute name '{name}' is invalid.")
            if value.get("DataType") != "String" or not value.get("StringValue"):
                raise invalid_parameter_value(
                    "Message system attribute 'AWSTraceHeader' must be of type String."
                )
            result[name] = str(value["StringValue"])
        return result

    @staticmethod
    def _prune_dedup(queue: Queue, now: float) -> None:
        order = queue.dedup_order
        while order and order[0][0] <= now:
            expires, key = order.popleft()
            current = queue.dedup.get(key)
            if current is not None and current.expires_at == expires:
                del queue.dedup[key]

    def _enqueue(self, queue: Queue, message: _Message, now: float, delay: int) -> None:
        """Add a message (new, dead-lettered or redriven) to ``queue``."""
        queue.next_seq += 1
        seq = message.seq = queue.next_seq
        if queue.fifo:
            message.sequence_number = str(_SEQUENCE_BASE + seq)
        else:
            message.sequence_number = None
        queue.messages[seq] = message
        heapq.heappush(queue.retention_heap, (message.retention_base, seq))
        heapq.heappush(queue.age_heap, (message.age_base, seq))
        if delay > 0:
            message.state = _DELAYED
            message.available_at = now + delay
            queue.n_delayed += 1
            heapq.heappush(queue.delayed_heap, (message.available_at, seq))
        else:
            self._make_ready(queue, message)

    def _make_ready(self, queue: Queue, message: _Message) -> None:
        message.state = _READY
        queue.n_ready += 1
        entry = (message.seq, message.receive_count)
        if not queue.fifo:
            heapq.heappush(queue.ready, entry)
            return
        group_id = message.group_id or ""
        group = queue.groups.get(group_id)
        if group is None:
            group = queue.groups[group_id] = _Group(group_id)
        heapq.heappush(group.ready, entry)
        group.ready_count += 1
        self._list_group(queue, group)

    @staticmethod
    def _ready_head(queue: Queue, group: _Group) -> int | None:
        """The sequence number of the group's first ready message (stale entries dropped)."""
        heap = group.ready
        while heap:
            seq, count = heap[0]
            message = queue.messages.get(seq)
            if message is not None and message.state == _READY and message.receive_count == count:
                return seq
            heapq.heappop(heap)
        return None

    @staticmethod
    def _first_inflight(queue: Queue, group: _Group) -> int | None:
        """The sequence number of the group's first message in flight, if any."""
        if not group.inflight:
            group.inflight_seqs.clear()
            return None
        heap = group.inflight_seqs
        while heap:
            message = queue.messages.get(heap[0])
            if message is not None and message.state == _INFLIGHT:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _list_group(self, queue: Queue, group: _Group) -> None:
        """Give a group a turn to deliver if its first ready message precedes everything
        of it in flight (see the FIFO rules in the module docstring)."""
        if group.listed or not group.ready_count:
            return
        head = self._ready_head(queue, group)
        if head is None:
            return
        first_inflight = self._first_inflight(queue, group)
        if first_inflight is not None and first_inflight < head:
            return
        queue.group_version += 1
        group.version = queue.group_version
        group.listed = True
        heapq.heappush(queue.group_heap, (group.version, group.group_id, group.version))
        queue.cond.notify()

    # -- maintenance: what time has made due --------------------------------------------

    def _maintain(self, queue: Queue, now: float) -> None:
        """Apply what time has made due to ``queue`` (and let move tasks progress)."""
        if self._moves_running:
            self._progress_moves(now)
        self._maintain_queue(queue, now)

    def _maintain_queue(self, queue: Queue, now: float) -> None:
        # Retention first, so an expired message is never delivered.
        heap = queue.retention_heap
        period = queue.retention_period
        while heap and heap[0][0] + period <= now:
            base, seq = heapq.heappop(heap)
            message = queue.messages.get(seq)
            if message is not None and message.retention_base == base:
                self._remove(queue, message)
        delayed = queue.delayed_heap
        while delayed and delayed[0][0] <= now:
            _, seq = heapq.heappop(delayed)
            message = queue.messages.get(seq)
            if message is not None and message.state == _DELAYED:
                queue.n_delayed -= 1
                self._make_ready(queue, message)
                queue.cond.notify()
        inflight = queue.inflight_heap
        while inflight and inflight[0][0] <= now:
            visible_at, seq, count = heapq.heappop(inflight)
            message = queue.messages.get(seq)
            if (
                message is not None
                and message.state == _INFLIGHT
                and message.receive_count == count
                and message.visible_at == visible_at
            ):
                self._return_from_flight(queue, message)
        self._compact(queue)

    @staticmethod
    def _compact(queue: Queue) -> None:
        # Stale heap entries (deleted messages) are skipped lazily; rebuild a heap when
        # they outnumber live entries, which keeps the amortised cost per operation O(1).
        live = len(queue.messages)
        if len(queue.retention_heap) > 2 * live + 1024:
            queue.retention_heap = [(m.retention_base, s) for s, m in queue.messages.items()]
            heapq.heapify(queue.retention_heap)
            queue.age_heap = [(m.age_base, s) for s, m in queue.messages.items()]
            heapq.heapify(queue.age_heap)
        if len(queue.inflight_heap) > 2 * len(queue.inflight) + 1024:
            rebuilt = []
            for seq in queue.inflight:
                message = queue.messages[seq]
                rebuilt.append((message.visible_at, seq, message.receive_count))
            heapq.heapify(rebuilt)
            queue.inflight_heap = rebuilt

    def _return_from_flight(self, queue: Queue, message: _Message) -> None:
        queue.n_inflight -= 1
        del queue.inflight[message.seq]
        if queue.fifo:
            group = queue.groups[message.group_id or ""]
            group.inflight -= 1
            self._make_ready(queue, message)
        else:
            self._make_ready(queue, message)
        queue.cond.notify()

    def _remove(self, queue: Queue, message: _Message) -> None:
        """Take a message out of ``queue`` whatever its state (delete, expiry, DLQ move)."""
        del queue.messages[message.seq]
        group = queue.groups.get(message.group_id or "") if queue.fifo else None
        if message.state == _READY:
            queue.n_ready -= 1
            if group is not None:
                group.ready_count -= 1
        elif message.state == _INFLIGHT:
            queue.n_inflight -= 1
            del queue.inflight[message.seq]
            if group is not None:
                group.inflight -= 1
                self._list_group(queue, group)
        else:
            queue.n_delayed -= 1
        if group is not None and group.ready_count == 0 and group.inflight == 0:
            del queue.groups[group.group_id]

    # -- receiving ----------------------------------------------------------------------

    def receive_message(
        self,
        queue_url: str,
        *,
        max_messages: int = 1,
        wait_time_s: int | None = None,
        visibility_timeout: int | None = None,
        system_attribute_names: Sequence[str] = (),
        message_attribute_names: Sequence[str] = (),
    ) -> list[ReceivedMessage]:
        """Receive up to ``max_messages``; long-poll up to ``wait_time_s`` (queue default)."""
        if not 1 <= max_messages <= MAX_RECEIVE_MESSAGES:
            raise invalid_parameter_value(
                f"Value {max_messages} for parameter MaxNumberOfMessages is invalid. "
                "Reason: Must be between 1 and 10, if provided."
            )
        if wait_time_s is not None and not 0 <= wait_time_s <= MAX_WAIT_TIME_S:
            raise invalid_parameter_value(
                f"Value {wait_time_s} for parameter WaitTimeSeconds is invalid. "
                "Reason: Must be >= 0 and <= 20, if provided."
            )
        if visibility_timeout is not None and not (
            0 <= visibility_timeout <= qa.MAX_VISIBILITY_TIMEOUT_S
        ):
            raise invalid_parameter_value(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                f"Reason: Must be >= 0 and <= {qa.MAX_VISIBILITY_TIMEOUT_S}, if provided."
            )
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "ReceiveMessage", now)
            remaining = float(queue.wait_time_seconds if wait_time_s is None else wait_time_s)
            while True:
                now = self.clock.time()
                self._maintain(queue, now)
                timeout = (
                    queue.visibility_timeout if visibility_timeout is None else visibility_timeout
                )
                taken = self._take(queue, max_messages, timeout, now)
                if taken or remaining <= 0 or self._closed or queue.deleted:
                    return [
                        self._view(queue, message, system_attribute_names, message_attribute_names)
                        for message in taken
                    ]
                # Wake by the next visibility, delay or move deadline even without a notify.
                step = remaining
                due = self._next_due(queue)
                if due is not None:
                    step = min(step, max(0.005, due - now))
                self._waiting += 1
                try:
                    remaining -= self.clock.wait(queue.cond, step)
                finally:
                    self._waiting -= 1

    def _next_due(self, queue: Queue) -> float | None:
        candidates = []
        if queue.inflight_heap:
            candidates.append(queue.inflight_heap[0][0])
        if queue.delayed_heap:
            candidates.append(queue.delayed_heap[0][0])
        if self._moves_running:
            candidates.extend(task.next_due for task in self._moves_running)
        return min(candidates) if candidates else None

    def _take(self, queue: Queue, limit: int, timeout: int, now: float) -> list[_Message]:
        taken: list[_Message] = []
        if not queue.fifo:
            ready = queue.ready
            while ready and len(taken) < limit:
                seq, count = heapq.heappop(ready)
                message = queue.messages.get(seq)
                if message is None or message.state != _READY or message.receive_count != count:
                    continue
                if self._dead_letter(queue, message, now):
                    continue
                self._deliver(queue, message, timeout, now, None)
                taken.append(message)
            return taken
        heap = queue.group_heap
        while heap and len(taken) < limit:
            _, group_id, version = heapq.heappop(heap)
            group = queue.groups.get(group_id)
            if group is None or group.version != version or not group.listed:
                continue
            group.listed = False
            # Fill from this group first, in order, before moving to the next group, up to
            # its first message that was already in flight.
            first_inflight = self._first_inflight(queue, group)
            ready = group.ready
            while ready and len(taken) < limit:
                head, count = ready[0]
                if first_inflight is not None and head > first_inflight:
                    break  # the rest of the group waits behind a message in flight
                heapq.heappop(ready)
                message = queue.messages.get(head)
                if message is None or message.state != _READY or message.receive_count != count:
                    continue
                if self._dead_letter(queue, message, now):
                    continue
                self._deliver(queue, message, timeout, now, group)
                taken.append(message)
            if group.ready_count == 0 and group.inflight == 0:
                queue.groups.pop(group_id, None)
            else:
                self._list_group(queue, group)
        return taken

    def _deliver(
        self, queue: Queue, message: _Message, timeout: int, now: float, group: _Group | None
    ) -> None:
        queue.n_ready -= 1
        queue.n_inflight += 1
        if group is not None:
            group.ready_count -= 1
            group.inflight += 1
            heapq.heappush(group.inflight_seqs, message.seq)
            if len(group.inflight_seqs) > 2 * group.inflight + 64:
                # Drop the entries of messages no longer in flight (amortised O(1)).
                live = [
                    seq
                    for seq in group.inflight_seqs
                    if (m := queue.messages.get(seq)) is not None and m.state == _INFLIGHT
                ]
                heapq.heapify(live)
                group.inflight_seqs = live
        message.state = _INFLIGHT
        message.receive_count += 1
        if message.first_receive_ms is None:
            message.first_receive_ms = int(now * 1000)
        message.received_at = now
        message.visible_at = now + timeout
        queue.inflight[message.seq] = None
        heapq.heappush(
            queue.inflight_heap, (message.visible_at, message.seq, message.receive_count)
        )

    def _dead_letter(self, queue: Queue, message: _Message, now: float) -> bool:
        """Move a message received maxReceiveCount times to the DLQ; True if it moved."""
        if not queue.max_receive_count or message.receive_count < queue.max_receive_count:
            return False
        target = self._by_arn.get(queue.dlq_arn or "")
        if target is None:
            return False  # AWS keeps delivering when the dead-letter queue is gone
        self._remove(queue, message)
        copy = _clone(message)
        copy.dlq_source_arn = queue.arn
        # Retention runs from the original enqueue on standard queues, from the move on
        # FIFO ones; the age metric counts from the move on both.
        copy.retention_base = now if queue.fifo else message.retention_base
        copy.age_base = now
        self._enqueue(target, copy, now, 0)
        target.cond.notify()
        return True

    def _view(
        self,
        queue: Queue,
        message: _Message,
        system_names: Sequence[str],
        attribute_names: Sequence[str],
    ) -> ReceivedMessage:
        wanted = _SYSTEM_ATTRIBUTE_NAMES if "All" in system_names else system_names
        attributes: dict[str, str] = {}
        for name in wanted:
            value = _system_attribute(message, name)
            if value is not None:
                attributes[name] = value
        selected = select_attributes(message.attributes, attribute_names)
        if len(selected) == len(message.attributes):
            digest = message.attributes_md5
        else:
            digest = attributes_md5(selected)
        return ReceivedMessage(
            message_id=message.message_id,
            receipt_handle=_encode_handle(queue, message),
            body=message.body,
            md5_of_body=message.body_md5,
            attributes=attributes,
            message_attributes=selected,
            md5_of_message_attributes=digest,
        )

    # -- deleting and changing visibility -----------------------------------------------

    def delete_message(self, queue_url: str, receipt_handle: str) -> None:
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "DeleteMessage", now)
            self._maintain(queue, now)
            self._delete(queue, receipt_handle)

    def delete_message_batch(
        self, queue_url: str, entries: Sequence[tuple[str, str]]
    ) -> tuple[list[str], list[BatchError]]:
        """Delete ``(id, receipt_handle)`` entries; returns (successful ids, failures)."""
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "DeleteMessageBatch", now)
            self._check_batch([entry_id for entry_id, _ in entries], "DeleteMessageBatch")
            self._maintain(queue, now)
            done: list[str] = []
            failed: list[BatchError] = []
            for entry_id, handle in entries:
                try:
                    self._delete(queue, handle)
                    done.append(entry_id)
                except SqsError as error:
                    failed.append(BatchError(entry_id, error.code, error.message))
            return done, failed

    def _locate(self, queue: Queue, handle: str) -> tuple[_Message | None, bool]:
        """The message a handle names and whether the handle is its current one."""
        decoded = _decode_handle(handle or "")
        if decoded is None or decoded[0] != queue.incarnation:
            raise receipt_handle_is_invalid(handle)
        _, seq, count = decoded
        message = queue.messages.get(seq)
        if message is None:
            return None, False
        return message, message.receive_count == count

    def _delete(self, queue: Queue, handle: str) -> None:
        message, current = self._locate(queue, handle)
        if message is None:
            return  # already deleted (or expired): deleting again succeeds
        if not current or message.state != _INFLIGHT:
            # The message was received again, or its visibility timeout ran out.
            if queue.fifo:
                raise receipt_handle_expired(handle)
            if not current:
                return  # standard queues: the request succeeds, the message stays
        self._remove(queue, message)

    def change_message_visibility(
        self, queue_url: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "ChangeMessageVisibility", now)
            self._maintain(queue, now)
            self._change_visibility(queue, receipt_handle, visibility_timeout, now)

    def change_message_visibility_batch(
        self, queue_url: str, entries: Sequence[tuple[str, str, int]]
    ) -> tuple[list[str], list[BatchError]]:
        """Apply ``(id, receipt_handle, timeout)`` entries; returns (successful ids, failures)."""
        with self._lock:
            queue = self._require(queue_url)
            now = self.clock.time()
            self._throttle(queue, "ChangeMessageVisibilityBatch", now)
            self._check_batch([entry[0] for entry in entries], "ChangeMessageVisibilityBatch")
            self._maintain(queue, now)
            done: list[str] = []
            failed: list[BatchError] = []
            for entry_id, handle, timeout in entries:
                try:
                    self._change_visibility(queue, handle, timeout, now)
                    done.append(entry_id)
                except SqsError as error:
                    failed.append(BatchError(entry_id, error.code, error.message))
            return done, failed

    def _change_visibility(self, queue: Queue, handle: str, timeout: int, now: float) -> None:
        if not 0 <= timeout <= qa.MAX_VISIBILITY_TIMEOUT_S:
            raise invalid_parameter_value(
                f"Value {timeout} for parameter VisibilityTimeout is invalid. "
                f"Reason: Must be >= 0 and <= {qa.MAX_VISIBILITY_TIMEOUT_S}, if provided."
            )
        message, current = self._locate(queue, handle)
        if message is None or not current:
            raise invalid_parameter_value(
                f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does "
                "not exist or is not available for visibility timeout change."
            )
        if message.state != _INFLIGHT:
            if not queue.fifo:
                return  # AWS answers 200 for a standard queue's expired message (recorded)
            raise message_not_inflight()
        # Whole seconds since the receive, so extending to 12 h right after it is allowed.
        if int(now - message.received_at) + timeout > qa.MAX_VISIBILITY_TIMEOUT_S:
            raise invalid_parameter_value(
                f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                f"VisibilityTimeout for the message is beyond the limit "
                f"[{qa.MAX_VISIBILITY_TIMEOUT_S} seconds]"
            )
        message.visible_at = now + timeout
        if timeout == 0:
            self._return_from_flight(queue, message)
        else:
            heapq.heappush(
                queue.inflight_heap, (message.visible_at, message.seq, message.receive_count)
            )
            # A waiting long poll must recompute its wake-up time.
            queue.cond.notify_all()

    # -- dead-letter redrive (StartMessageMoveTask) -------------------------------------

    def start_message_move_task(
        self,
        source_arn: str,
        destination_arn: str | None = None,
        max_messages_per_second: int | None = None,
    ) -> str:
        """Move a dead-letter queue's messages back to their sources (or to ``destination_arn``)."""
        if max_messages_per_second is not None and not 1 <= max_messages_per_second <= 500:
            raise invalid_parameter_value(
                f"Value {max_messages_per_second} for parameter MaxNumberOfMessagesPerSecond "
                "is invalid. Reason: Must be between 1 and 500."
            )
        with self._lock:
            source = self._by_arn.get(source_arn)
            if source is None:
                raise resource_not_found(
                    "The resource that you specified for the SourceArn parameter doesn't exist."
                )
            if not any(q.dlq_arn == source_arn for q in self._queues.values()):
                raise invalid_parameter_value(
                    "Source queue must be configured as a Dead Letter Queue."
                )
            if destination_arn and destination_arn not in self._by_arn:
                raise resource_not_found(
                    "The resource that you specified for the DestinationArn parameter doesn't "
                    "exist."
                )
            now = self.clock.time()
            self._maintain(source, now)
            if any(
                t.source_arn == source_arn and t.status in ("RUNNING", "CANCELLING")
                for t in self._move_tasks.values()
            ):
                raise invalid_parameter_value(
                    "There is already a task running. Only one active task is allowed for a "
                    "source queue arn at a given time."
                )
            pending = [seq for seq, m in source.messages.items() if m.state == _READY]
            task_id = str(uuid.uuid4())
            handle = base64.b64encode(
                json.dumps(
                    {"taskId": task_id, "sourceArn": source_arn}, separators=(",", ":")
                ).encode()
            ).decode()
            task = _MoveTask(
                handle=handle,
                source_arn=source_arn,
                destination_arn=destination_arn,
                rate=max_messages_per_second,
                started=now,
                to_move=pending,
            )
            self._move_tasks[handle] = task
            self._moves_running.append(task)
            self._progress_moves(now)
            return handle

    def _progress_moves(self, now: float) -> None:
        """Move what each running task may have moved by ``now``."""
        for task in list(self._moves_running):
            if task.status == "RUNNING":
                self._progress_move(task, now)
            elif task.status == "CANCELLING":
                task.status = "CANCELLED"
            if task.status != "RUNNING":
                self._moves_running.remove(task)

    def _progress_move(self, task: _MoveTask, now: float) -> None:
        source = self._by_arn.get(task.source_arn)
        if source is None:
            task.status, task.failure_reason = "FAILED", "AWS.SimpleQueueService.NonExistentQueue"
            return
        self._maintain_queue(source, now)
        allowed = task.allowed(now)
        while task.to_move and task.moved < allowed:
            message = source.messages.get(task.to_move[0])
            if message is None or message.state != _READY:
                task.to_move.popleft()  # deleted, expired or received since the start
                continue
            target = self._by_arn.get(task.destination_arn or message.dlq_source_arn or "")
            if target is None:
                task.status = "FAILED"
                task.failure_reason = "AWS.SimpleQueueService.NonExistentQueue"
                return
            task.to_move.popleft()
            self._remove(source, message)
            copy = _clone(message)
            copy.receive_count = 0
            copy.first_receive_ms = None
            copy.dlq_source_arn = None
            copy.retention_base = copy.age_base = now
            self._maintain_queue(target, now)
            self._enqueue(target, copy, now, 0)
            target.cond.notify()
            task.moved += 1
        if not task.to_move:
            task.status = "COMPLETED"

    def cancel_message_move_task(self, task_handle: str) -> int:
        try:
            document = json.loads(base64.b64decode(task_handle, validate=True))
            source_arn = str(document["sourceArn"])
            str(document["taskId"])
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise invalid_parameter_value("Value for parameter TaskHandle is invalid.") from None
        with self._lock:
            self._progress_moves(self.clock.time())
            if source_arn not in self._by_arn:
                raise resource_not_found(
                    "The resource that you specified for the SourceArn parameter doesn't exist."
                )
            task = self._move_tasks.get(task_handle)
            if task is None:
                raise resource_not_found("Task does not exist.")
            if task.status != "RUNNING":
                raise SqsError(
                    "AWS.SimpleQueueService.UnsupportedOperation",
                    "Only active tasks can be cancelled.",
                    shape="UnsupportedOperation",
                )
            # Cancelled at the task's next step, as AWS's CANCELLING -> CANCELLED.
            task.status = "CANCELLING"
            return task.moved

    def list_message_move_tasks(self, source_arn: str, max_results: int = 1) -> list[MoveTaskInfo]:
        with self._lock:
            if source_arn not in self._by_arn:
                raise resource_not_found(
                    "The resource that you specified for the SourceArn parameter doesn't exist."
                )
            self._progress_moves(self.clock.time())
            tasks = [t for t in self._move_tasks.values() if t.source_arn == source_arn]
            tasks.sort(key=lambda t: t.started, reverse=True)
            return [task.info() for task in tasks[: max(1, max_results)]]


def _no_deduplication_id() -> SqsError:
    return invalid_parameter_value(
        "The queue should either have ContentBasedDeduplication enabled or "
        "MessageDeduplicationId provided explicitly"
    )


def _check_fifo_id(value: str, parameter: str) -> None:
    if not _FIFO_ID.match(value):
        raise invalid_parameter_value(
            f"Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only "
            "include alphanumeric and punctuation characters. 1 to 128 in length."
        )


def _clone(message: _Message) -> _Message:
    copy = _Message(
        message_id=message.message_id,
        body=message.body,
        body_md5=message.body_md5,
        attributes=message.attributes,
        attributes_md5=message.attributes_md5,
        system_attributes=message.system_attributes,
        group_id=message.group_id,
        dedup_id=message.dedup_id,
        sender_id=message.sender_id,
        sent_ms=message.sent_ms,
        retention_base=message.retention_base,
        age_base=message.age_base,
    )
    copy.receive_count = message.receive_count
    copy.first_receive_ms = message.first_receive_ms
    copy.dlq_source_arn = message.dlq_source_arn
    return copy


def _system_attribute(message: _Message, name: str) -> str | None:
    if name == "SenderId":
        return message.sender_id
    if name == "SentTimestamp":
        return str(message.sent_ms)
    if name == "ApproximateReceiveCount":
        return str(message.receive_count)
    if name == "ApproximateFirstReceiveTimestamp":
        return str(message.first_receive_ms) if message.first_receive_ms is not None else None
    if name == "SequenceNumber":
        return message.sequence_number
    if name == "MessageDeduplicationId":
        return message.dedup_id
    if name == "MessageGroupId":
        return message.group_id
    if name == "DeadLetterQueueSourceArn":
        return message.dlq_source_arn
    if name == "AWSTraceHeader":
        return message.system_attributes.get("AWSTraceHeader")
    return None


def set_fifo_quota(calls_per_s: float) -> None:
    """Set the FIFO quota (calls/s per action per queue) of every engine in this process.

    The engine reads ``FIFO_TRANSACTIONS_PER_SECOND`` whenever it creates or refills a
    queue's token bucket, so setting it before a stack starts applies it to every FIFO
    queue, those created later included.
    """
    global FIFO_TRANSACTIONS_PER_SECOND
    FIFO_TRANSACTIONS_PER_SECOND = float(calls_per_s)


__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "BatchError",
    "MoveTaskInfo",
    "Queue",
    "QueueDepth",
    "ReceivedMessage",
    "SendEntry",
    "SendResult",
    "SqsEngine",
    "set_fifo_quota",
]
