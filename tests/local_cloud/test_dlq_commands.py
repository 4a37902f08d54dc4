"""``harness dlq`` against the local cloud's SQS engine and against plain moto (the path a
deployed stack takes: the same boto3 calls, with AWS's long polls).

Each test builds a one-group FIFO task queue with a FIFO dead-letter queue and a tasks
table, puts dead-lettered tasks on record and in the DLQ the way the processor does
(forward, then FAILED with a ``dead_lettered`` history entry), and drives the operator's
code: the listing must not touch a message, a replay must send every chosen task back once
and in the DLQ's order (also when it is interrupted and run again), a purge must empty the
queue and only an ephemeral stack may be purged.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cdk import contract
from harness.cli import main
from harness.dlq.queue import DeadLetters, replay_deduplication_id, utc_timestamp
from harness.target import Target, TargetName
from localcloud.endpoint import AwsEndpoint
from localcloud.sqs.testing import REGION

DLQ_RETENTION_S = 14 * 86400


@pytest.fixture(params=["engine", "moto"])
def stack(request: pytest.FixtureRequest) -> Target:
    """Task queue, DLQ (its redrive target) and tasks table on one backend.

    ``engine`` is the local stack's endpoint (target ``local``); ``moto`` stands in for
    AWS (target ``aws``: the long polls AWS needs).
    """
    name: TargetName
    if request.param == "engine":
        endpoint: AwsEndpoint = request.getfixturevalue("aws_endpoint")
        url, name = endpoint.url, "local"
    else:
        url, name = request.getfixturevalue("moto_url"), "aws"
    target = Target(name=name, outputs={contract.AWS_ENDPOINT_URL: url, contract.REGION: REGION})
    sqs = target.client("sqs")
    prefix = f"dlq-{uuid.uuid4().hex[:8]}"
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-dlq.fifo",
        Attributes={"FifoQueue": "true", "MessageRetentionPeriod": str(DLQ_RETENTION_S)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    task_url = sqs.create_queue(
        QueueName=f"{prefix}.fifo",
        Attributes={
            "FifoQueue": "true",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 31}),
        },
    )["QueueUrl"]
    table = f"{prefix}-tasks"
    target.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    target.outputs.update(
        {
            contract.TASK_QUEUE_URL: task_url,
            contract.DEAD_LETTER_QUEUE_URL: dlq_url,
            contract.TASKS_TABLE_NAME: table,
        }
    )
    return target


class Record:
    """Puts tasks in the table and messages in the DLQ as the processor would."""

    def __init__(self, target: Target, *, start: datetime | None = None) -> None:
        self.target = target
        self.sqs = target.client("sqs")
        self.dynamodb = target.client("dynamodb")
        self.start = start or datetime.now(UTC) - timedelta(minutes=5)
        self.n = 0

    def _stamp(self, offset: timedelta = timedelta(0)) -> str:
        self.n += 1
        return utc_timestamp(self.start + offset + timedelta(milliseconds=self.n))

    def task(self, status: str = "FAILED", *, age: timedelta = timedelta(0)) -> str:
        task_id = str(uuid.uuid4())
        at = self._stamp(-age)
        history: list[dict[str, Any]] = [
            {"event": "started", "attempt": 3, "receive_count": 3, "invocation": "i", "at": at},
            {"event": "failed", "attempt": 3, "receive_count": 3, "invocation": "i", "at": at},
        ]
        if status == "FAILED":
            history.append(
                {
                    "event": "dead_lettered",
                    "attempt": 3,
                    "receive_count": 3,
                    "invocation": "i",
                    "at": at,
                }
            )
        item: dict[str, Any] = {
            "task_id": {"S": task_id},
            "status": {"S": status},
            "attempts": {"N": "3"},
            "updated_at": {"S": at},
            "history": {"L": [{"M": _attributes(entry)} for entry in history]},
        }
        if status == "FAILED":
            item["failure_code"] = {"S": "injected_fault"}
        self.dynamodb.put_item(TableName=self.target.output(contract.TASKS_TABLE_NAME), Item=item)
        return task_id

    def dead_letter(self, task_id: str) -> str:
        body = json.dumps({"schema_version": 1, "task_id": task_id, "task": {"title": "t"}})
        self.put(body, "attempts_exhausted")
        return body

    def put(self, body: str, reason: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.target.output(contract.DEAD_LETTER_QUEUE_URL),
            MessageBody=body,
            MessageGroupId=contract.MESSAGE_GROUP_ID,
            MessageDeduplicationId=uuid.uuid4().hex,
            MessageAttributes={
                "PoisonReason": {"DataType": "String", "StringValue": reason},
                "SourceReceiveCount": {"DataType": "Number", "StringValue": "3"},
            },
        )

    def failed(self, count: int) -> list[str]:
        """``count`` FAILED tasks, each in the DLQ, in the order they failed."""
        ids = [self.task() for _ in range(count)]
        for task_id in ids:
            self.dead_letter(task_id)
        return ids


def _attributes(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {"N": str(value)} if isinstance(value, int) else {"S": str(value)}
        for key, value in entry.items()
    }


def drain_task_queue(target: Target) -> list[dict[str, Any]]:
    """Every message on the task queue, in order (received and deleted)."""
    sqs = target.client("sqs")
    url = target.output(contract.TASK_QUEUE_URL)
    found: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return found
        found.extend(batch)
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _task_of(message: dict[str, Any]) -> str:
    return str(json.loads(message["Body"])["task_id"])


# --- the view --------------------------------------------------------------------------


def test_the_view_sees_every_message_and_keeps_them_in_order(stack: Target) -> None:
    record = Record(stack)
    bodies = []
    for index in range(25):
        if index % 7 == 3:
            bodies.append(f"{{not json {index}")
            record.put(bodies[-1], "malformed_json")
        else:
            bodies.append(record.dead_letter(str(uuid.uuid4())))
    dead_letters = DeadLetters(stack)

    first = dead_letters.messages()
    second = dead_letters.messages()

    assert [letter.body for letter in first] == bodies, "not every message, or out of order"
    assert [letter.body for letter in second] == bodies, "the view changed the queue"
    assert first[3].task_id is None
    assert first[3].attributes == {"PoisonReason": "malformed_json", "SourceReceiveCount": "3"}
    assert first[4].task_id == json.loads(bodies[4])["task_id"]
    assert dead_letters.counts().total == 25, "the view left messages in flight or duplicated"


def test_the_listing_shows_every_task_on_record_and_receives_nothing(stack: Target) -> None:
    record = Record(stack)
    expired = record.task(age=timedelta(seconds=DLQ_RETENTION_S + 3600))
    ids = record.failed(12)
    record.put("{not json", "malformed_json")
    record.task(status="COMPLETED")

    listing = DeadLetters(stack).listing()

    assert [task.task_id for task in listing.tasks] == ids, "not every task, or out of order"
    assert expired not in [task.task_id for task in listing.tasks]
    assert listing.expired == 1
    first = listing.tasks[0]
    assert (first.reason, first.receive_count, first.error_code, first.attempts) == (
        "attempts_exhausted",
        3,
        "injected_fault",
        3,
    )
    assert listing.counts.total == 13
    assert listing.unaccounted == 1, "the poison body must show as a mismatch"
    # Nothing was received: the oldest message's first receive is this one.
    (message,) = stack.client("sqs").receive_message(
        QueueUrl=stack.output(contract.DEAD_LETTER_QUEUE_URL),
        MaxNumberOfMessages=1,
        AttributeNames=["ApproximateReceiveCount"],
        WaitTimeSeconds=1,
    )["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert json.loads(message["Body"])["task_id"] == ids[0]


# --- replay ----------------------------------------------------------------------------


def test_replay_all_sends_every_task_back_once_in_the_dlq_order(stack: Target) -> None:
    record = Record(stack)
    ids = record.failed(4)
    record.put("{not json", "malformed_json")
    record.dead_letter(str(uuid.uuid4()))  # a task message with no task on record
    ids += record.failed(8)

    report = DeadLetters(stack).replay()

    assert report.replayed == ids
    assert report.kept == 2
    sent = drain_task_queue(stack)
    assert [_task_of(m) for m in sent] == ids, "sent back out of order, or not each once"
    assert [m["Attributes"]["MessageDeduplicationId"] for m in sent] == [
        replay_deduplication_id(task_id, 3) for task_id in ids
    ]
    left = DeadLetters(stack).messages()
    assert [letter.attributes["PoisonReason"] for letter in left] == [
        "malformed_json",
        "attempts_exhausted",
    ], "what cannot be replayed must stay in the DLQ, in order"


def test_replay_of_chosen_tasks_follows_the_dlq_order(stack: Target) -> None:
    ids = Record(stack).failed(12)
    missing = str(uuid.uuid4())

    report = DeadLetters(stack).replay([ids[7], ids[2], missing])

    assert report.replayed == [ids[2], ids[7]]
    assert report.not_found == [missing]
    assert [_task_of(m) for m in drain_task_queue(stack)] == [ids[2], ids[7]]
    rest = [letter.task_id for letter in DeadLetters(stack).messages()]
    assert rest == [i for i in ids if i not in (ids[2], ids[7])]


def test_an_interrupted_replay_run_again_sends_each_task_once(stack: Target) -> None:
    ids = Record(stack).failed(12)
    dead_letters = DeadLetters(stack)

    def interrupt_at_the_fifth(task_id: str) -> None:
        if task_id == ids[4]:
            raise KeyboardInterrupt  # after the send, before the DLQ message is deleted

    with pytest.raises(KeyboardInterrupt):
        dead_letters.replay(on_sent=interrupt_at_the_fifth)
    counts = dead_letters.counts()
    assert (counts.waiting, counts.in_flight) == (8, 0), "the interrupted run must release"

    again = dead_letters.replay()

    assert again.replayed == ids[4:]
    sent = drain_task_queue(stack)
    assert [_task_of(m) for m in sent] == ids, "a task was sent back twice, or out of order"
    assert dead_letters.counts().total == 0


def test_a_completed_task_and_a_second_copy_are_removed_without_a_send(stack: Target) -> None:
    record = Record(stack)
    failed = record.task()
    completed = record.task(status="COMPLETED")
    for task_id in (failed, completed, failed):
        record.dead_letter(task_id)

    report = DeadLetters(stack).replay()

    assert report.replayed == [failed]
    assert report.removed == [
        (completed, "the task is COMPLETED already"),
        (failed, "another copy was sent back in this run"),
    ]
    assert [_task_of(m) for m in drain_task_queue(stack)] == [failed]
    assert DeadLetters(stack).counts().total == 0


# --- purge -----------------------------------------------------------------------------


def test_purge_empties_the_queue_and_the_listing_leaves_out_what_it_deleted(
    stack: Target,
) -> None:
    Record(stack).failed(12)
    dead_letters = DeadLetters(stack)

    assert dead_letters.purge() == 12

    listing = dead_letters.listing()
    assert dead_letters.counts().total == 0
    assert (listing.tasks, listing.before_purge, listing.unaccounted) == ([], 12, 0)
    later = Record(stack, start=datetime.now(UTC)).failed(1)
    assert [task.task_id for task in dead_letters.listing().tasks] == later


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def outputs_file(stack: Target, tmp_path: Path) -> Path:
    """The stack's outputs file under a CI-style prefix (``ci-dlq-Queue``, ...)."""
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "ci-dlq-Queue": dict(stack.outputs),
                "ci-dlq-Api": {contract.API_URL: "http://127.0.0.1:9/"},
            }
        )
    )
    return path


def test_the_commands_list_replay_and_purge(
    stack: Target, outputs_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = Record(stack)
    ids = record.failed(11)
    record.put("{not json", "malformed_json")
    where = ["--outputs", str(outputs_file)]

    assert main(["dlq", "list", *where]) == 0
    text = capsys.readouterr().out
    assert all(task_id in text for task_id in ids)
    assert "11 dead-lettered task(s) on record; the queue holds 12 message(s)" in text
    assert "mismatch: 1 message(s)" in text

    assert main(["dlq", "replay", ids[3], "--dry-run", "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)["would_replay"] == [ids[3]]
    assert DeadLetters(stack).counts().total == 12, "a dry run changed the queue"

    assert main(["dlq", "replay", "--all", "--json", *where]) == 0
    assert json.loads(capsys.readouterr().out)["replayed"] == ids
    assert main(["dlq", "replay", ids[0], *where]) == 1
    assert f"not in the dead-letter queue: {ids[0]}" in capsys.readouterr().out

    assert main(["dlq", "purge", "--yes", *where]) == 0
    assert "deleted 1 message(s)" in capsys.readouterr().out
    assert DeadLetters(stack).counts().total == 0


@pytest.mark.parametrize("prefix", ["TaskApi", "prod-eu", "orders-live"])
def test_purge_is_refused_on_a_production_named_stack(
    stack: Target, tmp_path: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Record(stack).failed(2)
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                f"{prefix}-Queue": dict(stack.outputs),
                f"{prefix}-Api": {contract.API_URL: "http://127.0.0.1:9/"},
            }
        )
    )

    assert main(["dlq", "purge", "--yes", "--outputs", str(path)]) == 3

    assert "refused" in capsys.readouterr().err
    assert DeadLetters(stack).counts().total == 2, "a refused purge deleted messages"
