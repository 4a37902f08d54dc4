"""The SQS implementations a recorded case is replayed against, on virtual time.

``engine`` is our endpoint over HTTP with its engine on a :class:`FakeClock` whose waits
are virtual; ``moto`` is plain moto's server in this process with its SQS clock (the two
time functions its SQS model reads) replaced by real time plus an offset the case moves,
and its long-poll wait turned into a move of that offset. So ``time.sleep(n)`` in a
recording becomes :meth:`Sqs.sleep`, and an empty long poll of N s takes no real time on
either, while every rule about time still runs on each implementation's own code.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from harness.waiting import wait_until
from localcloud.sqs import FakeClock, SqsEngine
from tests.parity.expect import Placeholders, differences

# A recording's time.sleep(n) returns a little after n seconds and the next call takes a
# few milliseconds more; a deadline exactly n seconds away has passed by then.
SLEEP_OVERSHOOT_S = 0.05
REGION = "us-east-1"


class VirtualTime(Protocol):
    virtual_waits: bool

    def advance(self, seconds: float) -> None: ...

    def long_polls_waiting(self) -> int: ...


class EngineTime:
    """The engine's fake clock, and what the engine says about its long polls."""

    def __init__(self, clock: FakeClock, engine: SqsEngine) -> None:
        self._clock = clock
        self._engine = engine

    @property
    def virtual_waits(self) -> bool:
        return self._clock.virtual_waits

    @virtual_waits.setter
    def virtual_waits(self, value: bool) -> None:
        self._clock.virtual_waits = value

    def advance(self, seconds: float) -> None:
        self._clock.advance(seconds)

    def long_polls_waiting(self) -> int:
        return self._engine.long_polls_waiting()


class MotoClock:
    """moto's SQS clock: real time plus an offset; its long-poll waits move the offset."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.virtual_waits = True
        self._waiting = 0
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.offset += seconds

    def long_polls_waiting(self) -> int:
        with self._lock:
            return self._waiting

    @contextlib.contextmanager
    def installed(self) -> Iterator[MotoClock]:
        """Put this clock into moto's SQS model for the duration."""
        models: Any = importlib.import_module("moto.sqs.models")
        original_time, original_millis = models.unix_time, models.unix_time_millis
        original_wait = models.Queue.wait_for_messages
        clock = self

        def unix_time(dt: Any = None) -> float:
            return float(original_time(dt)) + (0.0 if dt is not None else clock.offset)

        def unix_time_millis(dt: Any = None) -> float:
            return unix_time(dt) * 1000.0

        def wait_for_messages(queue: Any, timeout: int) -> None:
            if clock.virtual_waits:
                clock.advance(timeout)
                return
            with clock._lock:
                clock._waiting += 1
            try:
                original_wait(queue, timeout)
            finally:
                with clock._lock:
                    clock._waiting -= 1

        models.unix_time, models.unix_time_millis = unix_time, unix_time_millis
        models.Queue.wait_for_messages = wait_for_messages
        try:
            yield self
        finally:
            models.unix_time, models.unix_time_millis = original_time, original_millis
            models.Queue.wait_for_messages = original_wait


@dataclass
class Sqs:
    """One SQS implementation, one protocol, and the placeholder bindings of one case."""

    kind: str  # "engine" or "moto"
    protocol: str  # "json" or "query"
    url: str
    json: Any  # boto3 client, JSON protocol (what the recordings' aws_client.sqs spoke)
    query: Any  # botocore client, query protocol
    clock: VirtualTime
    account: str

    def __post_init__(self) -> None:
        self.slept = 0.0  # virtual seconds this case has slept
        self.placeholders = Placeholders(
            {"partition": "aws", "region": REGION, "account": self.account, "endpoint": self.url}
        )

    @property
    def client(self) -> Any:
        """The client of the protocol under test (the recordings' ``aws_sqs_client``)."""
        return self.json if self.protocol == "json" else self.query

    def expect(self, key: str, actual: Any, expected: Any) -> None:
        """Compare one answer with the recorded one named ``key`` in the snapshot."""
        found = differences(expected, actual, self.placeholders)
        if found:
            raise AssertionError(
                f"{key!r} differs from AWS's recorded answer:\n  " + "\n  ".join(found)
            )

    def sleep(self, seconds: float) -> None:
        """What ``time.sleep(seconds)`` was in the recording: the virtual clock moves."""
        self.clock.advance(seconds + SLEEP_OVERSHOOT_S)
        self.slept += seconds + SLEEP_OVERSHOOT_S

    @contextlib.contextmanager
    def real_time_waits(self) -> Iterator[None]:
        """Long polls block in real time (for a case where another thread sends meanwhile)."""
        self.clock.virtual_waits = False
        try:
            yield
        finally:
            self.clock.virtual_waits = True

    @staticmethod
    def name(prefix: str = "test-queue", suffix: str = "") -> str:
        """A unique queue name in the recording's style (``test-queue-1a2b3c4d``)."""
        return f"{prefix}-{uuid.uuid4().hex[:8]}{suffix}"

    def create_queue(self, name: str | None = None, **attributes: str) -> str:
        """The recordings' ``sqs_create_queue`` fixture: JSON protocol, a fresh name."""
        name = name or self.name()
        response = self.json.create_queue(QueueName=name, Attributes=attributes)
        return str(response["QueueUrl"])

    def counts(self, queue_url: str) -> tuple[str, str, str]:
        """ApproximateNumberOfMessages, ...NotVisible and ...Delayed (what the recordings read)."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        response = self.client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
        attributes = response["Attributes"]
        assert set(attributes) == set(names), attributes
        return attributes[names[0]], attributes[names[1]], attributes[names[2]]

    def arn(self, queue_url: str) -> str:
        response = self.json.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(response["Attributes"]["QueueArn"])

    def await_long_poll(self, timeout: float = 10.0) -> None:
        """Return once a ReceiveMessage is waiting for messages (real-time waits only)."""
        wait_until(
            lambda: self.clock.long_polls_waiting() > 0,
            timeout=timeout,
            interval=0.005,
            description="a ReceiveMessage long poll to be waiting",
        )
