"""Benchmark of the local SQS engine against plain moto, quotas off, in one run.

Both servers run in this process on 127.0.0.1 (so both share the GIL with the client the
same way) and are driven over HTTP by one boto3 client on a FIFO queue with
content-based deduplication and 100 message groups:

- SendMessage, ReceiveMessage (10 at a time) and DeleteMessage operations per second on a
  queue of about 1,000 messages;
- drain rate of a 10,000 and a 100,000 message backlog (ReceiveMessage 10 + one
  DeleteMessageBatch per cycle), in messages per second.

Plain moto's SQS scans the whole queue on every send, receive and delete, so every moto
phase runs under a time budget (``--budget``) and reports the rate it reached. Its backlogs
are put into moto's backend directly (what a send would store, minus the scans): sending
100,000 messages through moto's API would take days. Where a moto phase cannot finish, the
time the whole phase would take is extrapolated from the measured rate and labelled so.

Also printed: the engine called in-process (no HTTP, no boto3) and the two HTTP fronts
the endpoint can use (threading vs werkzeug), on raw keep-alive requests.

    .venv/bin/python benchmarks/sqs_bench.py [--sizes 10000 100000] [--budget 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from localcloud.endpoint import AwsEndpoint, Front
from localcloud.sqs import SqsEngine
from localcloud.sqs.testing import client

GROUPS = 100
FIFO = {"FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "600"}


@dataclass
class Rate:
    """Operations (or messages) per second, and whether the phase finished in its budget."""

    per_second: float
    done: int
    wanted: int
    seconds: float

    @property
    def complete(self) -> bool:
        return self.done >= self.wanted

    def label(self) -> str:
        text = f"{self.per_second:,.1f}"
        if not self.complete:
            text += f" (budget: {self.done:,}/{self.wanted:,})"
        return text


def timed(step: Callable[[], int], wanted: int, budget: float) -> Rate:
    """Call ``step`` (returns how much it did) until ``wanted`` is done or the budget ends."""
    done = 0
    started = time.perf_counter()
    while done < wanted:
        done += step()
        if time.perf_counter() - started > budget:
            break
    elapsed = time.perf_counter() - started
    return Rate(done / elapsed if elapsed else 0.0, done, wanted, elapsed)


class Target:
    """One SQS implementation behind a URL, driven by a boto3 client."""

    def __init__(self, name: str, url: str, fill: Callable[[str, int], None]) -> None:
        self.name = name
        self.url = url
        # One moto receive at a 100,000 backlog takes minutes: wait for it, never retry.
        self.sqs = client("sqs", url, Config(retries={"total_max_attempts": 1}, read_timeout=1800))
        self._fill = fill

    def queue(self) -> str:
        return str(
            self.sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:10]}.fifo", Attributes=FIFO)[
                "QueueUrl"
            ]
        )

    def backlog(self, size: int) -> str:
        queue = self.queue()
        self._fill(queue, size)
        return queue

    # -- phases ---------------------------------------------------------------------------

    def send(self, queue: str, wanted: int, budget: float) -> Rate:
        counter = iter(range(10**9))

        def one() -> int:
            n = next(counter)
            self.sqs.send_message(
                QueueUrl=queue, MessageBody=f"s{n}", MessageGroupId=f"g{n % GROUPS}"
            )
            return 1

        return timed(one, wanted, budget)

    def receive(self, queue: str, wanted: int, budget: float, handles: list[str]) -> Rate:
        def one() -> int:
            messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            handles.extend(m["ReceiptHandle"] for m in messages)
            return 1

        return timed(one, wanted, budget)

    def delete(self, queue: str, handles: list[str], budget: float) -> Rate:
        pending = iter(list(handles))

        def one() -> int:
            self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=next(pending))
            return 1

        return timed(one, len(handles), budget)

    def drain(self, queue: str, size: int, budget: float) -> Rate:
        def cycle() -> int:
            messages = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if messages:
                self.sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
            return len(messages)

        return timed(cycle, size, budget)


def fill_over_http(sqs: Any) -> Callable[[str, int], None]:
    def fill(queue: str, size: int) -> None:
        for start in range(0, size, 10):
            sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": f"b{start + i}",
                        "MessageGroupId": f"g{(start + i) % GROUPS}",
                    }
                    for i in range(min(10, size - start))
                ],
            )

    return fill


def fill_moto_backend(queue_url: str, size: int) -> None:
    """Store messages in moto's SQS backend as its send would, without its O(n) scans."""
    import hashlib

    from localcloud.moto_compat import SqsMessage as Message
    from localcloud.moto_compat import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].get_queue(queue_url.rsplit("/", 1)[1])
    for n in range(size):
        body = f"b{n}"
        message = Message(str(uuid.uuid4()), body)
        message.group_id = f"g{n % GROUPS}"
        message.deduplication_id = hashlib.sha256(body.encode()).hexdigest()
        message.mark_sent()
        queue._messages.append(message)


# -- in-process engine and HTTP fronts ---------------------------------------------------


def engine_in_process(count: int) -> dict[str, float]:
    engine = SqsEngine(throttling=False)
    queue = engine.create_queue("inproc.fifo", FIFO).url
    started = time.perf_counter()
    for n in range(count):
        # Ten messages per group, so every receive finds a whole unlocked group.
        engine.send_message(queue, f"m{n}", group_id=f"g{n // 10}")
    send = count / (time.perf_counter() - started)
    handles: list[str] = []
    started = time.perf_counter()
    receives = 0
    while len(handles) < count:
        received = engine.receive_message(queue, max_messages=10)
        if not received:
            raise RuntimeError("in-process receive found nothing: the benchmark is wrong")
        handles.extend(m.receipt_handle for m in received)
        receives += 1
    receive = receives / (time.perf_counter() - started)
    started = time.perf_counter()
    for handle in handles:
        engine.delete_message(queue, handle)
    delete = len(handles) / (time.perf_counter() - started)
    return {"send": send, "receive": receive, "delete": delete}


def front_rate(front: Front, count: int) -> float:
    with AwsEndpoint(throttling=False, front=front) as endpoint:
        queue = endpoint.sqs.create_queue("front").url
        connection = http.client.HTTPConnection("127.0.0.1", endpoint.port)
        body = json.dumps({"QueueUrl": queue, "MessageBody": "x" * 100}).encode()
        headers = {
            "X-Amz-Target": "AmazonSQS.SendMessage",
            "Content-Type": "application/x-amz-json-1.0",
        }
        started = time.perf_counter()
        for _ in range(count):
            connection.request("POST", "/", body, headers)
            connection.getresponse().read()
        rate = count / (time.perf_counter() - started)
        connection.close()
        return rate


# -- report ------------------------------------------------------------------------------


def ratio(ours: Rate, theirs: Rate) -> str:
    if theirs.per_second <= 0:
        return "n/a"
    return f"{ours.per_second / theirs.per_second:,.0f}x"


def row(name: str, ours: Rate, theirs: Rate) -> None:
    print(f"{name:<34}{ours.label():>22}{theirs.label():>34}{ratio(ours, theirs):>10}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--ops", type=int, default=1000, help="operations per op phase")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per moto phase")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

    from moto.server import ThreadedMotoServer

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    endpoint = AwsEndpoint(throttling=False).start()
    try:
        ours = Target("engine", endpoint.url, lambda q, n: None)
        ours._fill = fill_over_http(ours.sqs)
        theirs = Target("moto", f"http://{host}:{port}", fill_moto_backend)
        budget_ours = 3600.0

        print(
            f"Local SQS vs plain moto: FIFO queue, content-based deduplication, {GROUPS} message "
            "groups, quotas off, one boto3 client over HTTP on 127.0.0.1; moto phases capped "
            f"at {args.budget:g} s.",
            flush=True,
        )
        print(f"{'':<34}{'engine':>22}{'plain moto':>34}{'ratio':>10}")

        ours_queue, theirs_queue = ours.queue(), theirs.queue()
        row(
            "SendMessage ops/s",
            ours.send(ours_queue, args.ops, budget_ours),
            theirs.send(theirs_queue, args.ops, args.budget),
        )
        ours_queue, theirs_queue = (
            ours.backlog(1000 + 10 * args.ops),
            theirs.backlog(1000 + 10 * args.ops),
        )
        ours_handles: list[str] = []
        theirs_handles: list[str] = []
        row(
            "ReceiveMessage(10) ops/s",
            ours.receive(ours_queue, args.ops // 10, budget_ours, ours_handles),
            theirs.receive(theirs_queue, args.ops // 10, args.budget, theirs_handles),
        )
        row(
            "DeleteMessage ops/s",
            ours.delete(ours_queue, ours_handles, budget_ours),
            theirs.delete(theirs_queue, theirs_handles, args.budget),
        )
        extrapolations: list[str] = []
        for size in args.sizes:
            started = time.perf_counter()
            ours_backlog = ours.backlog(size)
            fill_rate = size / (time.perf_counter() - started)
            mine = ours.drain(ours_backlog, size, budget_ours)
            theirs_backlog = theirs.backlog(size)
            moto_rate = theirs.drain(theirs_backlog, size, args.budget)
            row(f"drain {size:,} backlog msgs/s", mine, moto_rate)
            print(
                f"{'':<4}engine: filled by SendMessageBatch at {fill_rate:,.0f} msgs/s, drained "
                f"in {mine.seconds:,.1f} s",
                flush=True,
            )
            if not moto_rate.complete and moto_rate.per_second > 0:
                # A lower bound: moto's cost per receive falls only as its queue empties.
                hours = size / moto_rate.per_second / 3600
                extrapolations.append(
                    f"drain {size:,}: moto would need about {hours:,.1f} h at its measured "
                    f"starting rate (extrapolated, not measured)"
                )
            theirs.sqs.delete_queue(QueueUrl=theirs_backlog)
            ours.sqs.delete_queue(QueueUrl=ours_backlog)
        for line in extrapolations:
            print(line)

        print()
        inproc = engine_in_process(20_000)
        print(
            "engine in-process (no HTTP, no boto3), 20,000 messages: "
            f"send {inproc['send']:,.0f}/s, receive(10) {inproc['receive']:,.0f}/s, "
            f"delete {inproc['delete']:,.0f}/s",
            flush=True,
        )
        fronts = {front: front_rate(front, 3000) for front in ("threading", "werkzeug")}
        print(
            "HTTP front, raw keep-alive SendMessage requests/s: "
            + ", ".join(f"{front} {rate:,.0f}" for front, rate in fronts.items()),
            flush=True,
        )
    finally:
        endpoint.stop()
        moto_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
