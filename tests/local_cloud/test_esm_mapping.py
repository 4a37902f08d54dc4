"""SQS event source mappings against a real local queue and real Lambda workers: batching,
deletes, ReportBatchItemFailures, whole-batch retries, redrive, FIFO order, validation,
shutdown and recovery from a killed worker."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.control_plane import LambdaControlPlane
from localcloud.lambda_service.esm import (
    EventSourceMappingService,
    InvalidParameterValueError,
    MappingStats,
)
from localcloud.lambda_service.testing import (
    Endpoint,
    boto_client,
    child_pids,
    function_spec,
    local_endpoint,
    pid_alive,
)
from localcloud.specs import EventSourceMappingSpec, FunctionSpec

FUNCTIONS = Path(__file__).parent / "functions"
FIFO_RECORD_ATTRIBUTES = {
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    with local_endpoint() as ep:
        yield ep


@pytest.fixture
def sqs(endpoint: Endpoint) -> Any:
    return boto_client(endpoint, "sqs")


@dataclass
class Rig:
    """One function, its queue (and DLQ), its journal and the two services."""

    endpoint: Endpoint
    sqs: Any
    lambdas: LambdaService
    mappings: EventSourceMappingService
    tmp: Path

    def queue(
        self, *, visibility: int = 2, max_receive: int | None = None
    ) -> tuple[str, str, str | None]:
        """A FIFO queue (url, arn) with an optional FIFO DLQ (url)."""
        name = f"esm-{uuid.uuid4().hex[:10]}"
        attributes = {"FifoQueue": "true", "VisibilityTimeout": str(visibility)}
        dlq_url = None
        if max_receive is not None:
            dlq_url = self.sqs.create_queue(
                QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"}
            )["QueueUrl"]
            dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
            )
        url = self.sqs.create_queue(QueueName=f"{name}.fifo", Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return url, arn, dlq_url

    def function(
        self,
        mode: str = "report",
        *,
        timeout_s: int = 1,
        reserved: int | None = None,
        response: Any = None,
    ) -> FunctionSpec:
        env = {"JOURNAL": str(self.tmp / f"{uuid.uuid4().hex}.jsonl"), "PROBE_MODE": mode}
        if response is not None:
            env["PROBE_RESPONSE"] = json.dumps(response)
        spec = function_spec(
            FUNCTIONS,
            "lambda_sqs_probe.handler",
            prefix="consumer",
            timeout_s=timeout_s,
            reserved_concurrency=reserved,
            environment=env,
        )
        self.lambdas.add_function(spec)
        return spec

    def map(
        self, spec: FunctionSpec, url: str, arn: str, *, batch_size: int = 10, report: bool = True
    ) -> EventSourceMappingSpec:
        mapping = EventSourceMappingSpec(
            uuid=str(uuid.uuid4()),
            function_name=spec.function_name,
            event_source_arn=arn,
            queue_url=url,
            batch_size=batch_size,
            function_response_types=("ReportBatchItemFailures",) if report else (),
        )
        self.mappings.add(mapping)
        return mapping

    def send(self, url: str, bodies: Sequence[Any], group: str = "g", **extra: Any) -> list[str]:
        """Send in order (batches of 10); returns the message ids."""
        ids: list[str] = []
        for start in range(0, len(bodies), 10):
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": json.dumps(body),
                    "MessageGroupId": group,
                    "MessageDeduplicationId": uuid.uuid4().hex,
                    **extra,
                }
                for i, body in enumerate(bodies[start : start + 10])
            ]
            response = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
            assert not response.get("Failed"), response
            by_id = {e["Id"]: e["MessageId"] for e in response["Successful"]}
            ids.extend(by_id[str(i)] for i in range(len(entries)))
        return ids

    def journal(self, spec: FunctionSpec) -> list[dict[str, Any]]:
        path = Path(spec.environment["JOURNAL"])
        if not path.exists():
            return []
        # A function may be appending a line while the test polls: only whole lines count.
        whole, _, _partial = path.read_text().rpartition("\n")
        return [json.loads(line) for line in whole.splitlines()]

    def processed(self, spec: FunctionSpec) -> list[str]:
        """Message ids in the order completed invocations saw them (failed ones not journaled)."""
        return [r["messageId"] for entry in self.journal(spec) for r in entry["records"]]

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def stats(self, mapping: EventSourceMappingSpec) -> MappingStats:
        return self.mappings.stats()[mapping.uuid]


@pytest.fixture
def rig(endpoint: Endpoint, sqs: Any, tmp_path: Path) -> Iterator[Rig]:
    lambdas = LambdaService(
        endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
    )
    mappings = EventSourceMappingService(lambdas, endpoint.url, endpoint.region, wait_time_s=1)
    try:
        yield Rig(endpoint, sqs, lambdas, mappings, tmp_path)
    finally:
        mappings.close()
        lambdas.close()


def wait_processed(
    rig: Rig, spec: FunctionSpec, ids: Sequence[str], timeout: float = 20
) -> list[str]:
    """Wait until every id in ``ids`` was completed; returns the processed ids in order."""

    def probe() -> list[str] | None:
        seen = rig.processed(spec)
        return seen if set(ids) <= set(seen) else None

    return wait_until(probe, timeout=timeout, description=f"all {len(ids)} messages processed")


def test_batches_respect_batch_size_and_successes_are_deleted(rig: Rig) -> None:
    url, arn, _ = rig.queue()
    spec = rig.function(reserved=3)
    ids = [
        mid for g in range(5) for mid in rig.send(url, [{"n": i} for i in range(5)], group=f"g{g}")
    ]
    mapping = rig.map(spec, url, arn, batch_size=4)

    seen = wait_processed(rig, spec, ids)
    wait_until(lambda: rig.depth(url) == 0, timeout=10, description="the queue to be empty")

    assert sorted(seen) == sorted(ids), "each message processed exactly once"
    sizes = [len(entry["records"]) for entry in rig.journal(spec)]
    assert max(sizes) <= 4
    stats = wait_until(
        lambda: (s := rig.stats(mapping)).deleted == 25 and s,
        timeout=5,
        description="the mapping to count 25 deletes",
    )
    assert (stats.records, stats.failed_batches, stats.max_batch_size) == (25, 0, max(sizes))
    assert stats.batches == len(sizes)


def test_records_carry_the_attributes_aws_sends(rig: Rig) -> None:
    url, arn, _ = rig.queue()
    spec = rig.function()
    (mid,) = rig.send(
        url,
        [{"hello": "world"}],
        group="task-processing",
        MessageAttributes={
            "kind": {"StringValue": "task", "DataType": "String"},
            "blob": {"BinaryValue": b"\x01\x02", "DataType": "Binary"},
        },
    )
    rig.map(spec, url, arn)

    wait_processed(rig, spec, [mid])

    record = rig.journal(spec)[0]["records"][0]
    assert record["messageId"] == mid
    assert record["body"] == json.dumps({"hello": "world"})
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324 - SQS's checksum
    assert set(record["attributes"]) >= FIFO_RECORD_ATTRIBUTES
    assert record["attributes"]["MessageGroupId"] == "task-processing"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "task",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AQI="
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        arn,
        rig.endpoint.region,
    )


def test_reported_item_failures_stay_and_the_rest_is_deleted(rig: Rig) -> None:
    url, arn, _ = rig.queue(visibility=1)
    spec = rig.function("report_only_failed")
    ids = rig.send(url, [{"n": 0}, {"n": 1}, {"n": 2, "fail_until_receive": 2}, {"n": 3}])
    mapping = rig.map(spec, url, arn, batch_size=4)

    wait_until(
        lambda: len(rig.journal(spec)) >= 2, timeout=15, description="the retry of the failed item"
    )
    wait_until(lambda: rig.depth(url) == 0, timeout=10, description="the queue to be empty")

    first, second = rig.journal(spec)[:2]
    assert [r["messageId"] for r in first["records"]] == ids
    assert first["response"] == {"batchItemFailures": [{"itemIdentifier": ids[2]}]}
    assert [r["messageId"] for r in second["records"]] == [ids[2]]
    assert second["records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    stats = rig.stats(mapping)
    assert (stats.partial_batches, stats.failed_batches, stats.deleted) == (1, 0, 4)


def test_fifo_failure_and_everything_after_it_come_back_in_order(rig: Rig) -> None:
    url, arn, _ = rig.queue(visibility=1)
    spec = rig.function("report", reserved=3)
    bodies: list[dict[str, Any]] = [{"n": i} for i in range(8)]
    bodies[3]["fail_until_receive"] = 2
    ids = rig.send(url, bodies)
    rig.map(spec, url, arn, batch_size=5)

    wait_until(lambda: rig.depth(url) == 0, timeout=15, description="the queue to be empty")

    completed = [
        r["messageId"]
        for entry in rig.journal(spec)
        for r in entry["records"][: _first_failed(entry)]
    ]
    assert completed == ids, "each message completed once, in send order"


def _first_failed(entry: dict[str, Any]) -> int | None:
    failures = (entry["response"] or {}).get("batchItemFailures") or []
    if not failures:
        return None
    ids = [r["messageId"] for r in entry["records"]]
    return ids.index(failures[0]["itemIdentifier"])


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        "this is not an EventResponse",
    ],
    ids=["unknown-id", "empty-id", "null-id", "malformed"],
)
def test_bad_batch_item_failures_return_the_whole_batch(rig: Rig, response: Any) -> None:
    url, arn, dlq_url = rig.queue(visibility=1, max_receive=2)
    assert dlq_url is not None
    spec = rig.function("literal", response=response)
    ids = rig.send(url, [{"n": i} for i in range(3)])
    mapping = rig.map(spec, url, arn, batch_size=3)

    wait_until(lambda: rig.depth(dlq_url) == 3, timeout=15, description="all 3 messages in the DLQ")

    entries = rig.journal(spec)
    assert len(entries) == 2, "delivered twice (maxReceiveCount 2), then moved to the DLQ"
    for count, entry in enumerate(entries, start=1):
        assert [r["messageId"] for r in entry["records"]] == ids
        assert {r["attributes"]["ApproximateReceiveCount"] for r in entry["records"]} == {
            str(count)
        }
    stats = rig.stats(mapping)
    assert (stats.failed_batches, stats.deleted) == (2, 0)


@pytest.mark.parametrize("mode", ["raise", "exit", "hang"])
def test_function_error_crash_or_timeout_returns_the_whole_batch(rig: Rig, mode: str) -> None:
    # Visibility 2 s > timeout 1 s: the batch cannot come back while the first try still runs.
    url, arn, _ = rig.queue(visibility=2)
    spec = rig.function(mode, timeout_s=1)
    ids = rig.send(url, [{"n": 0}, {"n": 1, "fail_until_receive": 2}, {"n": 2}])
    mapping = rig.map(spec, url, arn, batch_size=3)

    wait_until(lambda: rig.depth(url) == 0, timeout=15, description="the queue to be empty")

    (entry,) = rig.journal(spec)  # the failed attempt completed nothing
    assert [r["messageId"] for r in entry["records"]] == ids
    assert {r["attributes"]["ApproximateReceiveCount"] for r in entry["records"]} == {"2"}
    stats = wait_until(
        lambda: (s := rig.stats(mapping)).deleted == 3 and s,
        timeout=5,
        description="the mapping to count the deletes",
    )
    assert (stats.failed_batches, stats.deleted, stats.records) == (1, 3, 6)
    expected = {"raise": "RuntimeError", "exit": "Runtime.ExitError", "hang": "Sandbox.Timedout"}[
        mode
    ]
    assert stats.last_error == f"function error {expected}"


def test_poison_message_is_redriven_to_the_dlq_after_max_receive_count(rig: Rig) -> None:
    url, arn, dlq_url = rig.queue(visibility=1, max_receive=3)
    assert dlq_url is not None
    spec = rig.function("raise")
    (poison,) = rig.send(url, [{"poison": True, "fail_until_receive": 99}])
    rig.map(spec, url, arn, batch_size=1)

    wait_until(
        lambda: rig.depth(dlq_url) == 1, timeout=20, description="the poison message in the DLQ"
    )

    moved = rig.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=1)["Messages"][0]
    assert moved["MessageId"] == poison
    assert json.loads(moved["Body"]) == {"poison": True, "fail_until_receive": 99}
    assert rig.depth(url) == 0
    stats = rig.lambdas.stats()[spec.function_name]
    assert (stats.invocations, stats.errors) == (3, 3), "exactly maxReceiveCount attempts"


def test_one_group_is_processed_in_order_one_batch_at_a_time(rig: Rig) -> None:
    url, arn, _ = rig.queue()
    spec = rig.function(reserved=5)
    ids = rig.send(url, [{"n": i, "sleep": 0.02} for i in range(40)], group="task-processing")
    mapping = rig.map(spec, url, arn, batch_size=5)

    seen = wait_processed(rig, spec, ids)

    assert seen == ids
    entries = sorted(rig.journal(spec), key=lambda e: e["started"])
    for earlier, later in itertools.pairwise(entries):
        assert earlier["ended"] <= later["started"], "two batches of one group overlapped"
    assert rig.stats(mapping).pollers == 5


def test_queue_visibility_shorter_than_function_timeout_is_rejected(rig: Rig) -> None:
    url, arn, _ = rig.queue(visibility=5)
    too_slow = rig.function(timeout_s=6)
    just_fits = rig.function(timeout_s=5)

    with pytest.raises(InvalidParameterValueError) as raised:
        rig.map(too_slow, url, arn)
    assert (
        str(raised.value)
        == "Queue visibility timeout: 5 seconds is less than Function timeout: 6 seconds"
    )
    assert raised.value.code == "InvalidParameterValueException"
    rig.map(just_fits, url, arn)


def test_stopping_mid_batch_is_prompt_leaves_no_process_and_loses_nothing(
    endpoint: Endpoint, sqs: Any, tmp_path: Path
) -> None:
    before = child_pids()
    lambdas = LambdaService(
        endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
    )
    mappings = EventSourceMappingService(lambdas, endpoint.url, endpoint.region, wait_time_s=1)
    rig = Rig(endpoint, sqs, lambdas, mappings, tmp_path)
    url, arn, _ = rig.queue(visibility=3)
    spec = rig.function(timeout_s=3, reserved=2)
    ids = rig.send(url, [{"n": i, "sleep": 1.0} for i in range(4)], group="a")
    ids += rig.send(url, [{"n": i, "sleep": 1.0} for i in range(4)], group="b")
    rig.map(spec, url, arn, batch_size=2)
    # Busy is counted from the moment a cold start begins, before its process exists.
    pids = wait_until(
        lambda: lambdas.stats()[spec.function_name].busy_workers >= 1 and lambdas.worker_pids(),
        timeout=10,
        description="a batch to be in flight in a started worker",
    )

    started = time.monotonic()
    mappings.close(timeout=3)
    lambdas.close()
    elapsed = time.monotonic() - started

    assert elapsed < 6, f"shutdown took {elapsed:.1f}s"
    assert pids
    assert not any(pid_alive(p) for p in pids)
    wait_until(lambda: not (child_pids() - before), timeout=5, description="no child process left")
    # Start again: what was in flight comes back after its visibility timeout.
    with (
        LambdaService(
            endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
        ) as again,
        EventSourceMappingService(again, endpoint.url, endpoint.region, wait_time_s=1) as esm,
    ):
        again.add_function(spec)
        rig2 = Rig(endpoint, sqs, again, esm, tmp_path)
        rig2.map(spec, url, arn, batch_size=2)
        wait_processed(rig2, spec, ids, timeout=30)
        wait_until(lambda: rig2.depth(url) == 0, timeout=10, description="the queue to be empty")


def test_a_worker_killed_from_outside_loses_no_message(rig: Rig) -> None:
    url, arn, dlq_url = rig.queue(visibility=2, max_receive=5)
    assert dlq_url is not None
    spec = rig.function(timeout_s=2, reserved=3)
    ids = [
        mid
        for g in "xyz"
        for mid in rig.send(url, [{"g": g, "n": i, "sleep": 0.5} for i in range(6)], group=g)
    ]
    rig.map(spec, url, arn, batch_size=2)

    def running() -> list[int] | None:
        # Two worker processes exist and two invokes are in flight (0.5 s each).
        pids = rig.lambdas.worker_pids(spec.function_name)
        busy = rig.lambdas.stats()[spec.function_name].busy_workers
        return pids if busy >= 2 and len(pids) >= 2 else None

    victims = wait_until(running, timeout=10, description="two workers running batches")
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    seen = wait_processed(rig, spec, ids, timeout=30)
    wait_until(lambda: rig.depth(url) == 0, timeout=10, description="the queue to be empty")
    assert set(seen) == set(ids)
    assert rig.depth(dlq_url) == 0
    stats = rig.lambdas.stats()[spec.function_name]
    assert stats.crashes >= 1
    assert not set(victims) & set(rig.lambdas.worker_pids(spec.function_name))
    for group in "xyz":  # order within each group survives the crash and the redelivery
        bodies = [
            json.loads(r["body"])["n"]
            for entry in rig.journal(spec)
            for r in entry["records"]
            if json.loads(r["body"])["g"] == group
        ]
        # A batch killed after it journaled may run twice; first completions must be in order.
        first_seen = list(dict.fromkeys(bodies))
        assert first_seen == sorted(first_seen), f"group {group} out of order: {bodies}"


def test_disable_and_enable_through_update(rig: Rig) -> None:
    url, arn, _ = rig.queue()
    spec = rig.function()
    mapping = rig.map(spec, url, arn)

    assert rig.mappings.update(mapping.uuid, enabled=False).state == "Disabling"
    # Let any poller of the first generation finish its current long poll (1 s).
    wait_until(
        lambda: (
            not any(t.name.startswith(f"esm-{spec.function_name}") for t in threading.enumerate())
        ),
        timeout=5,
        description="the pollers to stop",
    )
    wait_until(
        lambda: rig.mappings.get(mapping.uuid).state == "Disabled",
        timeout=5,
        description="the mapping Disabled",
    )
    (mid,) = rig.send(url, [{"n": 1}])
    assert rig.processed(spec) == []
    assert rig.depth(url) == 1

    assert rig.mappings.update(mapping.uuid, enabled=True).state == "Enabling"

    wait_processed(rig, spec, [mid])


def test_disabled_through_the_api_only_once_the_batch_in_flight_is_done(rig: Rig) -> None:
    """UpdateEventSourceMapping is asynchronous, as on AWS: Disabling while a poller still
    holds a batch, Disabled once none does; from then on nothing is received."""
    url, arn, _ = rig.queue(visibility=10)
    spec = rig.function(timeout_s=5)
    mapping = rig.map(spec, url, arn)
    plane = LambdaControlPlane(rig.lambdas.invoke, rig.mappings)
    plane.add_function(spec)

    def update(enabled: bool) -> str:
        body = json.dumps({"Enabled": enabled}).encode()
        status, answer, _ = plane.update_event_source_mapping({"uuid": mapping.uuid}, {}, body, {})
        assert status == 202
        return str(json.loads(answer)["State"])

    def state() -> str:
        return rig.mappings.get(mapping.uuid).state

    (slow,) = rig.send(url, [{"sleep": 1.5}])
    wait_until(
        lambda: (
            rig.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
            == "1"
        ),
        timeout=10,
        description="a poller to receive the slow message",
    )
    assert update(False) == "Disabling"
    wait_until(lambda: state() == "Disabled", timeout=10, description="the mapping Disabled")
    # Disabled means the batch in flight is finished: it was processed and deleted.
    assert rig.processed(spec) == [slow]
    assert rig.depth(url) == 0

    (later,) = rig.send(url, [{"n": 2}])
    # Nothing to wait for: a poller would take it within one long poll (1 s).
    time.sleep(2.0)
    assert rig.processed(spec) == [slow], "a disabled mapping received a message"

    assert update(True) == "Enabling"
    wait_processed(rig, spec, [slow, later])
    wait_until(lambda: state() == "Enabled", timeout=10, description="the mapping Enabled")
