"""The dead-letter queue, operated: list, replay and purge what it holds (``harness dlq``).

The DLQ is FIFO with one message group, so a receive hides every message behind the ones
in flight: a plain receive loop never sees more than the first batch. Three ways to look
at it, each with its cost (``docs/decisions/dlq-operations.md``):

- :meth:`DeadLetters.listing` never touches the queue's messages. The tasks table is the
  record of every dead-lettered task (the processor forwards a task's message and then
  marks it FAILED with a ``dead_lettered`` history entry); the queue's own counters stand
  beside it, so a message that is not a FAILED task on record (a poison body, a message
  moved by the queue's redrive policy) shows as a mismatch.
- :meth:`DeadLetters.messages` reads the messages themselves by one *rotation*: each
  message received is sent again to the end of its group and the original deleted, until
  the first copy comes round. Same messages, same order; new message ids and sent times.
- :meth:`DeadLetters.replay` is the same rotation, sending the chosen tasks back to the
  task queue (in the DLQ's order) instead of re-queueing them.

Replay is exactly-once per failure: each send carries the deduplication id
``replay-<task id>-<attempts>`` (the same for every copy of one failure, so SQS drops a
repeat within its 5-minute window), a task already COMPLETED is never sent, a second copy
of a failure already sent in this run is deleted, and the processor treats a delivery of
a COMPLETED task as a duplicate. Interrupted, it releases what it holds, so running it
again picks up where it stopped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cdk import contract
from harness.target import Target
from harness.waiting import wait_until

# A rotation holds each batch this long; a batch takes a few calls per message.
RECEIVE_VISIBILITY_S: Final = 30
# Tag on the DLQ recording the last purge: FAILED tasks dead-lettered before it are gone.
PURGED_AT_TAG: Final = "harness:purged-at"
DEAD_LETTERED_EVENT: Final = "dead_lettered"
ATTEMPTS_EXHAUSTED: Final = "attempts_exhausted"


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, as a scenario reads it."""

    message_id: str
    task_id: str | None
    body: str
    attributes: Mapping[str, str]
    """The message attributes the processor attached (``PoisonReason``, ...), as strings."""


@dataclass(frozen=True)
class DeadLetteredTask:
    """A FAILED task on record: why, on which receive and when it was dead-lettered."""

    task_id: str
    reason: str
    receive_count: int
    dead_lettered_at: str
    error_code: str | None
    attempts: int


@dataclass(frozen=True)
class QueueCounts:
    """The DLQ's own (approximate, on AWS) counters."""

    waiting: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        """Every message the queue holds."""
        return self.waiting + self.in_flight + self.delayed


@dataclass(frozen=True)
class Listing:
    """What ``harness dlq list`` shows: the tasks on record beside the queue's counters."""

    tasks: list[DeadLetteredTask]
    counts: QueueCounts
    retention_s: int
    expired: int
    """FAILED tasks dead-lettered longer ago than the DLQ keeps messages (not listed)."""
    purged_at: str | None
    before_purge: int
    """FAILED tasks dead-lettered before the last ``purge`` (not listed)."""

    @property
    def unaccounted(self) -> int:
        """Messages in the DLQ minus tasks listed: 0 when the two records agree."""
        return self.counts.total - len(self.tasks)

    def as_json(self) -> dict[str, Any]:
        """The listing as plain JSON values."""
        return {
            "tasks": [asdict(task) for task in self.tasks],
            "queue": {**asdict(self.counts), "total": self.counts.total},
            "retention_s": self.retention_s,
            "expired": self.expired,
            "purged_at": self.purged_at,
            "before_purge": self.before_purge,
            "unaccounted": self.unaccounted,
        }


@dataclass
class ReplayReport:
    """What a replay did, message by message, in the DLQ's order."""

    replayed: list[str] = field(default_factory=list)
    """Task ids sent back to the task queue, in the order they were sent."""
    removed: list[tuple[str, str]] = field(default_factory=list)
    """(task id, why) of messages deleted without a send: the task is COMPLETED already,
    or it is a second copy of a failure sent back in this run."""
    kept: int = 0
    """Messages left in the DLQ (not chosen, not a task, or a task not on record)."""
    not_found: list[str] = field(default_factory=list)
    """Chosen task ids that had no message in the DLQ."""

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON values."""
        return {
            "replayed": self.replayed,
            "removed": [{"task_id": task_id, "why": why} for task_id, why in self.removed],
            "kept": self.kept,
            "not_found": self.not_found,
        }


class DeadLetters:
    """The stack's dead-letter queue: its record, its messages, and what an operator does."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._sqs = target.client("sqs")
        self.url = target.output(contract.DEAD_LETTER_QUEUE_URL)
        # AWS may answer a short poll empty while messages wait; the local queue does not.
        self._wait_s = 0 if target.name == "local" else 1

    # --- the record: no message is touched --------------------------------------------

    def counts(self) -> QueueCounts:
        """The queue's counters: waiting, in flight, delayed."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return QueueCounts(
            waiting=int(attributes["ApproximateNumberOfMessages"]),
            in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            delayed=int(attributes["ApproximateNumberOfMessagesDelayed"]),
        )

    def listing(self, now: datetime | None = None) -> Listing:
        """Every dead-lettered task on record, oldest first, beside the queue's counters.

        Reads the whole tasks table (a paginated, consistent scan for FAILED tasks) and the
        queue's attributes and tags; receives nothing, so it cannot hide, reorder or
        consume a message, however many there are.
        """
        counts = self.counts()
        retention_s = int(
            self._sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["MessageRetentionPeriod"]
            )["Attributes"]["MessageRetentionPeriod"]
        )
        purged_at = self._purged_at()
        oldest_kept = utc_timestamp((now or datetime.now(UTC)) - timedelta(seconds=retention_s))
        tasks: list[DeadLetteredTask] = []
        expired = before_purge = 0
        for task in self._failed_tasks():
            if task.dead_lettered_at < oldest_kept:
                expired += 1
            elif purged_at is not None and task.dead_lettered_at <= purged_at:
                before_purge += 1
            else:
                tasks.append(task)
        tasks.sort(key=lambda task: (task.dead_lettered_at, task.task_id))
        return Listing(tasks, counts, retention_s, expired, purged_at, before_purge)

    def _failed_tasks(self) -> Iterable[DeadLetteredTask]:
        from harness.drivers import _plain  # drivers imports this module

        paginator = self._target.client("dynamodb").get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._target.output(contract.TASKS_TABLE_NAME),
            FilterExpression="#status = :failed",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":failed": {"S": "FAILED"}},
            ConsistentRead=True,
        ):
            for raw in page.get("Items", []):
                yield dead_lettered_task(_plain(raw))

    def _purged_at(self) -> str | None:
        tags = self._sqs.list_queue_tags(QueueUrl=self.url).get("Tags") or {}
        value = tags.get(PURGED_AT_TAG)
        return str(value) if value else None

    # --- the messages: one rotation ---------------------------------------------------

    def messages(self) -> list[DeadLetter]:
        """Every message in the DLQ, oldest first, each once (however many there are).

        One rotation: the queue ends with the same messages in the same order, under new
        message ids and sent times (retention restarts). See the module docstring.
        """
        return self._rotate(lambda letter, message: True)

    def task_ids(self) -> dict[str, dict[str, Any]]:
        """Every task id in the DLQ with its message's attributes and body.

        A message that is not a task is keyed by its message id.
        """
        return {
            letter.task_id or letter.message_id: {
                "attributes": dict(letter.attributes),
                "body": letter.body,
            }
            for letter in self.messages()
        }

    def wait_for_task(self, task_id: str, *, timeout: float) -> DeadLetter:
        """Poll until ``task_id`` is in the DLQ; returns its message there."""

        def find() -> DeadLetter | None:
            return next((m for m in self.messages() if m.task_id == task_id), None)

        return wait_until(
            find,
            timeout=timeout,
            interval=0.5,
            description=f"task {task_id} to reach the dead-letter queue",
        )

    # --- what an operator does ----------------------------------------------------------

    def replay(
        self,
        task_ids: Iterable[str] | None = None,
        *,
        on_sent: Callable[[str], None] | None = None,
    ) -> ReplayReport:
        """Send dead-lettered tasks back to the task queue, in the DLQ's order, each once.

        ``task_ids`` None replays every task the DLQ holds. Messages that are not tasks, or
        whose task is not on record, stay in the DLQ (sent back they would only return).
        ``on_sent`` is called with each task id right after its send, before its DLQ
        message is deleted (tests interrupt a replay there).
        """
        chosen = None if task_ids is None else set(task_ids)
        report = ReplayReport()
        task_queue = self._target.output(contract.TASK_QUEUE_URL)
        from harness.drivers import TaskStore  # drivers imports this module

        store = TaskStore(self._target)
        sent: dict[str, int] = {}  # task id -> its attempts when sent back

        def keep(letter: DeadLetter, message: Mapping[str, Any]) -> bool:
            task_id = letter.task_id
            if task_id is None or (chosen is not None and task_id not in chosen):
                report.kept += 1
                return True
            item = store.get(task_id)
            if item is None:
                report.kept += 1
                return True
            attempts = int(item.get("attempts", 0))
            if item.get("status") == "COMPLETED":
                report.removed.append((task_id, "the task is COMPLETED already"))
                return False
            if task_id in sent:
                if sent[task_id] == attempts:
                    # A copy of the failure this run sent back (an earlier rotation was
                    # interrupted between its send and its delete).
                    report.removed.append((task_id, "another copy was sent back in this run"))
                    return False
                # Failed again since this run sent it back: a new failure, left for later.
                report.kept += 1
                return True
            self._sqs.send_message(
                QueueUrl=task_queue,
                MessageBody=letter.body,
                MessageGroupId=_group_of(message),
                MessageDeduplicationId=replay_deduplication_id(task_id, attempts),
            )
            sent[task_id] = attempts
            report.replayed.append(task_id)
            if on_sent is not None:
                on_sent(task_id)
            return False

        self._wait_for_released()
        self._rotate(keep)
        if chosen is not None:
            handled = set(report.replayed) | {task_id for task_id, _ in report.removed}
            report.not_found = sorted(chosen - handled)
        return report

    def send_back(self, task_id: str) -> None:
        """Replay one task (what the features' operator does); an error if it is not there."""
        report = self.replay([task_id])
        if task_id not in report.replayed:
            raise AssertionError(f"task {task_id} is not in the dead-letter queue: {report}")

    def purge(self) -> int:
        """Delete every message and record when (test stacks only); returns how many.

        Deletes by rotation rather than ``PurgeQueue`` (which AWS allows once a minute and
        applies within a minute), so the queue is empty when this returns.
        """
        self._wait_for_released()
        self._sqs.tag_queue(
            QueueUrl=self.url, Tags={PURGED_AT_TAG: utc_timestamp(datetime.now(UTC))}
        )
        return len(self._rotate(lambda letter, message: False))

    drain = purge

    # --- the rotation --------------------------------------------------------------------

    def _wait_for_released(self) -> None:
        """Wait until nothing of the DLQ is in flight: a message held by an interrupted
        reader would hide every message behind it until its visibility timeout ends."""
        last: dict[str, int] = {}

        def probe() -> bool:
            counts = self.counts()
            last["in_flight"] = counts.in_flight
            return counts.in_flight == 0

        try:
            wait_until(
                probe,
                timeout=RECEIVE_VISIBILITY_S + 10.0,
                interval=0.5,
                description="the dead-letter queue's messages in flight to return",
            )
        except TimeoutError:
            raise TimeoutError(
                f"{last.get('in_flight')} message(s) of the dead-letter queue are still in "
                f"flight after {RECEIVE_VISIBILITY_S + 10}s: another reader holds them"
            ) from None

    def _rotate(self, keep: Callable[[DeadLetter, Mapping[str, Any]], bool]) -> list[DeadLetter]:
        """One pass over the whole queue; a message ``keep`` says False to is deleted.

        Interrupted (any exception, Ctrl-C), it first releases the messages it holds, so a
        second run sees them at once instead of after their visibility timeout.
        """
        copies: set[str] = set()
        seen: list[DeadLetter] = []
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=RECEIVE_VISIBILITY_S,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=self._wait_s,
            ).get("Messages", [])
            if not batch:
                return seen
            index = 0
            try:
                for index, message in enumerate(batch):
                    if message["MessageId"] in copies:
                        # Full circle: this and everything behind it were seen already.
                        self._release(batch[index:])
                        return seen
                    letter = _dead_letter(message)
                    if keep(letter, message):
                        copies.add(self._requeue(message))
                    self._sqs.delete_message(
                        QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"]
                    )
                    seen.append(letter)
            except BaseException:
                self._release(batch[index:])
                raise

    def _requeue(self, message: Mapping[str, Any]) -> str:
        """Send a copy of ``message`` to the end of its group; returns the copy's id."""
        attributes = {
            name: {
                k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        kwargs: dict[str, Any] = {}
        if attributes:
            kwargs["MessageAttributes"] = attributes
        response = self._sqs.send_message(
            QueueUrl=self.url,
            MessageBody=message["Body"],
            MessageGroupId=_group_of(message),
            MessageDeduplicationId=f"view-{uuid.uuid4()}",
            **kwargs,
        )
        return str(response["MessageId"])

    def _release(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for index in range(0, len(messages), 10):
            chunk = messages[index : index + 10]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(chunk)
                ],
            )


def replay_deduplication_id(task_id: str, attempts: int) -> str:
    """The task queue deduplication id of a replay: one per task and failure, so every
    copy of one failure sent back within SQS's 5-minute window is delivered once."""
    return f"replay-{task_id}-{attempts}"


def utc_timestamp(moment: datetime) -> str:
    """The processor's timestamp form (``handlers.domain.tasks.utc_timestamp``, which the
    harness cannot import): fixed width, so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dead_lettered_task(item: Mapping[str, Any]) -> DeadLetteredTask:
    """A FAILED task item (plain values) as a listing row.

    The row's receive count and time are those of its latest ``dead_lettered`` history
    entry; a FAILED task without one (which the processor never writes) shows receive
    count 0 and its ``updated_at``, so it stands out instead of vanishing.
    """
    entries = [
        entry
        for entry in item.get("history") or []
        if isinstance(entry, Mapping) and entry.get("event") == DEAD_LETTERED_EVENT
    ]
    last = entries[-1] if entries else None
    return DeadLetteredTask(
        task_id=str(item["task_id"]),
        reason=ATTEMPTS_EXHAUSTED,
        receive_count=int(last["receive_count"]) if last else 0,
        dead_lettered_at=str(last["at"]) if last else str(item.get("updated_at", "")),
        error_code=None if item.get("failure_code") is None else str(item["failure_code"]),
        attempts=int(item.get("attempts", 0)),
    )


def format_listing(listing: Listing) -> str:
    """The listing as a table, with the queue's counters and any mismatch explained."""
    lines = []
    if listing.tasks:
        header = ("TASK ID", "REASON", "ATTEMPTS", "RECEIVES", "DEAD-LETTERED AT", "LAST ERROR")
        rows = [
            (
                task.task_id,
                task.reason,
                str(task.attempts),
                str(task.receive_count),
                task.dead_lettered_at,
                task.error_code or "-",
            )
            for task in listing.tasks
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )
    counts = listing.counts
    lines.append(
        f"{len(listing.tasks)} dead-lettered task(s) on record; the queue holds "
        f"{counts.total} message(s) ({counts.waiting} waiting, {counts.in_flight} in flight, "
        f"{counts.delayed} delayed)"
    )
    if listing.unaccounted > 0:
        lines.append(
            f"mismatch: {listing.unaccounted} message(s) in the queue are not dead-lettered "
            "tasks on record (poison bodies, unknown tasks, messages moved by the queue's "
            "redrive policy, or copies left by an interrupted rotation); "
            "`harness dlq list --messages` reads them"
        )
    elif listing.unaccounted < 0:
        lines.append(
            f"mismatch: {-listing.unaccounted} task(s) on record have no message in the queue "
            "(sent back and not processed yet, or deleted outside `harness dlq`)"
        )
    if listing.expired:
        lines.append(
            f"{listing.expired} older FAILED task(s) not listed: dead-lettered more than "
            f"{listing.retention_s // 86400} day(s) ago, past the queue's retention"
        )
    if listing.before_purge:
        lines.append(
            f"{listing.before_purge} FAILED task(s) not listed: dead-lettered before the "
            f"purge at {listing.purged_at}"
        )
    return "\n".join(lines)


def format_messages(letters: Sequence[DeadLetter]) -> str:
    """The DLQ's messages, one line each, oldest first."""
    lines = [
        f"{letter.task_id or '(not a task)':36}  "
        f"{letter.attributes.get('PoisonReason', '(no reason: moved by the redrive policy)')}  "
        f"receives {letter.attributes.get('SourceReceiveCount', '?')}  "
        f"{letter.body[:60] if letter.task_id is None else ''}".rstrip()
        for letter in letters
    ]
    lines.append(f"{len(letters)} message(s) in the dead-letter queue")
    return "\n".join(lines)


def _dead_letter(message: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(
        message_id=str(message["MessageId"]),
        task_id=_task_id_of(message["Body"]),
        body=str(message["Body"]),
        attributes={
            key: str(value.get("StringValue"))
            for key, value in message.get("MessageAttributes", {}).items()
        },
    )


def _group_of(message: Mapping[str, Any]) -> str:
    return str(message.get("Attributes", {}).get("MessageGroupId", contract.MESSAGE_GROUP_ID))


def _task_id_of(body: str) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if isinstance(payload, dict):
        task_id = payload.get("task_id")
        return str(task_id) if task_id else None
    return None
