"""Reading the system for a load run: task states, queue depth, scratch queues, outputs."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from harness.load.ledger import TaskState
from harness.load.sources import (
    SQS_ROLES,
    ApiStates,
    BacklogSampler,
    TableStates,
    read_backlog_csv,
    scratch_queues,
    settle,
    state_source,
)
from harness.load.target import Target, load_target
from harness.waiting import wait_until
from tests.load.conftest import FakeApiFactory
from tests.load.load_fakes import write_outputs


@pytest.fixture
def moto_target(tmp_path: Path) -> Iterator[Target]:
    """A moto server with a tasks table, described by an outputs file."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        outputs = write_outputs(
            tmp_path / "outputs.json",
            {"TasksTableName": "tasks", "AwsEndpointUrl": url, "Region": "us-east-1"},
        )
        target = load_target(outputs)
        target.dynamodb().create_table(
            TableName="tasks",
            KeySchema=[{"AttributeName": "task_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "task_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield target
    finally:
        server.stop()


def test_table_states_read_more_than_one_batch(moto_target: Target) -> None:
    table = moto_target.dynamodb().Table("tasks")
    ids = [str(uuid.uuid4()) for _ in range(150)]  # BatchGetItem takes 100 keys a call
    with table.batch_writer() as batch:
        for n, task_id in enumerate(ids):
            batch.put_item(
                Item={
                    "task_id": task_id,
                    "status": "COMPLETED",
                    "attempts": 1,
                    "sequence_number": str(n),
                }
            )
    source = state_source(moto_target)
    assert isinstance(source, TableStates)
    states = source.fetch([*ids, str(uuid.uuid4())])
    assert set(states) == set(ids)  # the unknown id is simply absent
    assert states[ids[149]].sequence_number == 149
    assert states[ids[0]].attempts == 1


def test_api_states_read_get_and_skip_unknown(fake_api: FakeApiFactory) -> None:
    outputs, _api = fake_api()
    target = load_target(outputs, "end_to_end")
    request = urllib.request.Request(  # noqa: S310  # the fake's own loopback URL
        f"{target.api_url}/tasks",
        data=json.dumps({"title": "t", "description": "d", "priority": "low"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        task_id = json.loads(response.read())["task_id"]
    source = state_source(target)
    assert isinstance(source, ApiStates)
    states = source.fetch([task_id, str(uuid.uuid4())])
    assert list(states) == [task_id]
    assert states[task_id].status in {"QUEUED", "COMPLETED"}


class _ScriptedSource:
    """A state source whose tasks settle after a given number of fetches."""

    name = "scripted"

    def __init__(self, settles_after: dict[str, int | None]) -> None:
        self.settles_after = settles_after
        self.fetches: dict[str, int] = {}

    def fetch(self, task_ids: Iterable[str]) -> dict[str, TaskState]:
        states = {}
        for task_id in task_ids:
            self.fetches[task_id] = self.fetches.get(task_id, 0) + 1
            after = self.settles_after[task_id]
            done = after is not None and self.fetches[task_id] >= after
            states[task_id] = TaskState(task_id, "COMPLETED" if done else "QUEUED")
        return states


def test_settle_polls_only_open_tasks_until_all_are_terminal() -> None:
    source = _ScriptedSource({"a": 1, "b": 3})
    lines: list[str] = []
    states = settle(source, ["a", "b"], timeout=10, interval=0.01, progress=lines.append)
    assert all(s.terminal for s in states.values())
    assert source.fetches == {"a": 1, "b": 3}  # "a" was not asked for again once settled
    assert any("0 still open" in line for line in lines)


def test_settle_gives_up_at_the_timeout_and_returns_stragglers() -> None:
    source = _ScriptedSource({"a": 1, "stuck": None})
    lines: list[str] = []
    states = settle(source, ["a", "stuck"], timeout=0.2, interval=0.01, progress=lines.append)
    assert states["a"].terminal
    assert not states["stuck"].terminal
    assert "gave up" in lines[-1]


def test_backlog_sampler_records_queue_depth(sqs_outputs: Path, tmp_path: Path) -> None:
    target = load_target(sqs_outputs, "sqs_fifo_limits")
    assert target.task_queue_url
    sqs = target.sqs()
    for n in range(5):
        sqs.send_message(QueueUrl=target.task_queue_url, MessageBody=f"m{n}", MessageGroupId="g")
    path = tmp_path / "backlog.csv"
    with BacklogSampler(target, {"task queue": target.task_queue_url}, path, interval=0.05) as s:
        wait_until(
            lambda: len(s.samples) >= 2,
            timeout=10,
            description="two backlog samples",
        )
    samples = read_backlog_csv(path)
    assert len(samples) >= 2
    assert not s.errors
    assert {(x.queue, x.visible, x.in_flight) for x in samples} == {("task queue", 5, 0)}


def test_an_sqs_client_without_retries_surfaces_a_throttle_from_its_one_attempt(
    sqs_outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sqs_fifo_limits users count throttles; a client that retried one after botocore's
    # back-off (up to 1 s) would hide it and stall the user, offering less than its rate.
    engine = pytest.importorskip("localcloud.sqs.engine")
    monkeypatch.setattr(engine, "FIFO_TRANSACTIONS_PER_SECOND", 1.0)
    target = load_target(sqs_outputs, "sqs_fifo_limits")
    assert target.task_queue_url
    sqs, queue_url = target.sqs(retries=False), target.task_queue_url

    # Calls of a few ms against 1 call/s: one of the first few is throttled, however slow
    # the machine (a retrying client would show it only when its retry was throttled too).
    def send_twenty() -> None:
        for n in range(20):
            sqs.send_message(QueueUrl=queue_url, MessageBody=f"m{n}", MessageGroupId="g")

    with pytest.raises(ClientError) as raised:
        send_twenty()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 0


def test_scratch_queues_clone_the_task_queue_and_are_always_deleted(sqs_outputs: Path) -> None:
    target = load_target(sqs_outputs, "sqs_fifo_limits")
    sqs = target.sqs()
    seen: dict[str, str] = {}
    cloned: dict[str, dict[str, str]] = {}

    def use_then_fail() -> None:
        with scratch_queues(target, "run1") as queues:
            seen.update(queues)
            for url in queues.values():
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
                cloned[url] = {str(k): v for k, v in attributes["Attributes"].items()}
            raise RuntimeError("boom")  # the queues must go even when the run fails

    with pytest.raises(RuntimeError, match="boom"):
        use_then_fail()
    assert sorted(seen) == sorted(SQS_ROLES)
    for url in seen.values():
        assert url.endswith(".fifo")
        assert "-load-run1-" in url
        # Configured like the task queue (FIFO, content-based deduplication).
        assert cloned[url]["FifoQueue"] == "true"
        assert cloned[url]["ContentBasedDeduplication"] == "true"
    remaining = sqs.list_queues().get("QueueUrls", [])
    assert remaining == [target.task_queue_url]


def test_outputs_missing_what_a_scenario_needs_is_a_clear_error(tmp_path: Path) -> None:
    outputs = write_outputs(tmp_path / "o.json", {"TaskQueueUrl": "http://q"})
    with pytest.raises(ValueError, match="api_ingest needs stack output\\(s\\) ApiUrl"):
        load_target(outputs, "api_ingest")
    assert load_target(outputs, "sqs_fifo_limits").api_url is None
    two_stacks = tmp_path / "two.json"
    two_stacks.write_text(
        json.dumps({"p-Api": {"ApiUrl": "https://x/prod/"}, "p-Queue": {"TaskQueueUrl": "q"}})
    )
    target = load_target(two_stacks, "api_ingest")
    assert (target.api_url, target.task_queue_url) == ("https://x/prod", "q")
    assert target.boto3_kwargs() == {}  # AWS: boto3's default chain, no endpoint


def test_boto3_clients_use_the_local_endpoint(tmp_path: Path) -> None:
    outputs = write_outputs(
        tmp_path / "o.json",
        {"TaskQueueUrl": "q", "AwsEndpointUrl": "http://127.0.0.1:1", "Region": "eu-west-1"},
    )
    kwargs = load_target(outputs).boto3_kwargs()
    assert kwargs["endpoint_url"] == "http://127.0.0.1:1"
    assert kwargs["region_name"] == "eu-west-1"
    client = boto3.client("sqs", **kwargs)
    assert client.meta.endpoint_url == "http://127.0.0.1:1"
