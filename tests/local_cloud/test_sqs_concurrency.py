"""Many pollers on many message groups: never two in-flight batches of one group, nothing
lost, nothing duplicated, every group consumed in order."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from localcloud.endpoint import AwsEndpoint
from localcloud.sqs.testing import client

GROUPS = 20
PER_GROUP = 25
POLLERS = 12


@dataclass
class Ledger:
    """What the pollers saw, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    holder: dict[str, int] = field(default_factory=dict)  # group -> poller holding a batch
    overlaps: list[str] = field(default_factory=list)
    deliveries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deleted: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    released: int = 0
    errors: list[str] = field(default_factory=list)

    def total_deleted(self) -> int:
        with self.lock:
            return sum(len(seqs) for seqs in self.deleted.values())


def fill(sqs: Any, queue: str, groups: int = GROUPS, per_group: int = PER_GROUP) -> None:
    # Interleave groups so every batch spans several groups.
    for index in range(per_group):
        entries = [
            {
                "Id": f"g{group}",
                "MessageBody": f"g{group}:{index}",
                "MessageGroupId": f"g{group}",
                "MessageDeduplicationId": f"g{group}-{index}",
            }
            for group in range(groups)
        ]
        for start in range(0, len(entries), 10):
            response = sqs.send_message_batch(QueueUrl=queue, Entries=entries[start : start + 10])
            assert not response.get("Failed")


def poller(number: int, url: str, queue: str, ledger: Ledger, stop: threading.Event) -> None:
    sqs = client("sqs", url)
    receives = 0
    while not stop.is_set():
        try:
            messages = sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=30
            ).get("Messages", [])
        except Exception as error:
            ledger.errors.append(repr(error))
            return
        receives += 1
        if not messages:
            continue
        by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in messages:
            by_group[message["Body"].split(":")[0]].append(message)
        with ledger.lock:
            for group in by_group:
                if group in ledger.holder:
                    ledger.overlaps.append(
                        f"{group} delivered to poller {number} while poller "
                        f"{ledger.holder[group]} holds a batch of it"
                    )
                ledger.holder[group] = number
            for message in messages:
                ledger.deliveries[message["MessageId"]] += 1
        # Every fourth batch is handed back (as a failed consumer would) and must come
        # back whole and in order; the rest is processed and deleted.
        release = receives % 4 == 0
        with ledger.lock:
            for group, group_messages in by_group.items():
                del ledger.holder[group]
                if not release:
                    ledger.deleted[group].extend(
                        int(m["Body"].split(":")[1]) for m in group_messages
                    )
            if release:
                ledger.released += 1
        # The holder is cleared before the server hears of it: no other poller can get the
        # group until this delete or visibility change has reached the server.
        handles = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        if release:
            sqs.change_message_visibility_batch(
                QueueUrl=queue, Entries=[{**h, "VisibilityTimeout": 0} for h in handles]
            )
        else:
            sqs.delete_message_batch(QueueUrl=queue, Entries=handles)


def run_pollers(url: str, queue: str, timeout: float, expected: int) -> Ledger:
    ledger = Ledger()
    stop = threading.Event()
    threads = [
        threading.Thread(target=poller, args=(n, url, queue, ledger, stop), daemon=True)
        for n in range(POLLERS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    try:
        while ledger.total_deleted() < expected and time.monotonic() < deadline:
            if ledger.errors:
                break
            # Pacing for the progress check; the pollers do the work.
            time.sleep(0.05)
    finally:
        stop.set()
        join_deadline = time.monotonic() + 10
        for thread in threads:
            thread.join(timeout=max(0.0, join_deadline - time.monotonic()))
    return ledger


def check(ledger: Ledger, groups: int = GROUPS, per_group: int = PER_GROUP) -> None:
    assert ledger.errors == []
    assert ledger.overlaps == []
    assert ledger.total_deleted() == groups * per_group, "nothing lost"
    for group in range(groups):
        assert ledger.deleted[f"g{group}"] == list(range(per_group)), f"g{group} in order, once"
    assert ledger.released > 0, "some batches were handed back and redelivered"


def test_many_pollers_many_groups(unthrottled_endpoint: AwsEndpoint) -> None:
    sqs = client("sqs", unthrottled_endpoint.url)
    queue = sqs.create_queue(
        QueueName=f"concurrency-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    fill(sqs, queue)

    ledger = run_pollers(unthrottled_endpoint.url, queue, timeout=120, expected=GROUPS * PER_GROUP)

    check(ledger)


@pytest.mark.xfail(
    reason="plain moto is not thread-safe and reorders redelivered batches: groups are "
    "consumed out of order",
    strict=True,
)
def test_many_pollers_many_groups_on_plain_moto(moto_url: str) -> None:
    sqs = client("sqs", moto_url)
    # A smaller workload (plain moto's sends and receives scan the whole queue), run up to
    # three times: one lucky interleaving must not make the strict xfail flaky.
    for _ in range(3):
        queue = sqs.create_queue(
            QueueName=f"concurrency-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        fill(sqs, queue, groups=6, per_group=10)

        ledger = run_pollers(moto_url, queue, timeout=20, expected=60)

        check(ledger, groups=6, per_group=10)
