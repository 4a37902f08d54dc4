"""Time for the SQS engine: the system clock, or a fake one tests move by hand.

Every deadline the engine keeps (visibility, delay, retention, the deduplication window,
the throughput buckets, the PurgeQueue interval) reads ``Clock.time()``, so a test can
let five minutes pass in a microsecond. Long polls still wait in real time: a fake clock
only decides what is due, never how long a server thread sleeps.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in seconds since the epoch."""

    def time(self) -> float: ...


class SystemClock:
    """The real clock (``time.time``)."""

    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock that stands still until :meth:`advance` moves it (thread-safe)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += seconds
