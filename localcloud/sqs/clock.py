"""Time for the SQS engine: the system clock, or a fake one tests move by hand.

Every deadline the engine keeps (visibility, delay, retention, the deduplication window,
the throughput buckets, the PurgeQueue interval, a move task's pace) reads
``Clock.time()``, so a test can let five minutes pass in a microsecond.

A long poll waits through :meth:`Clock.wait`. On the system clock, and on a fake clock by
default, that is a real wait: a fake clock only decides what is due, never how long a
server thread sleeps, so another thread can send while a receive waits. A fake clock made
with ``virtual_waits=True`` instead jumps forward by the wait: an empty long poll of 20 s
returns at once with the clock 20 s later, as it would be after a real one. That is for
single-threaded tests (a replay of recorded calls): nothing can arrive during a wait that
takes no time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time in seconds since the epoch, and a way to wait on it."""

    def time(self) -> float: ...

    def wait(self, condition: threading.Condition, seconds: float) -> float:
        """Wait on ``condition`` (whose lock the caller holds) for up to ``seconds``.

        Returns how many of those seconds passed: less when the condition was notified.
        """
        ...


def _real_wait(condition: threading.Condition, seconds: float) -> float:
    started = time.monotonic()
    condition.wait(seconds)
    return time.monotonic() - started


class SystemClock:
    """The real clock (``time.time``)."""

    def time(self) -> float:
        return time.time()

    def wait(self, condition: threading.Condition, seconds: float) -> float:
        return _real_wait(condition, seconds)


class FakeClock:
    """A clock that stands still until :meth:`advance` moves it (thread-safe).

    ``virtual_waits``: a wait moves the clock by its length instead of blocking (see the
    module docstring).
    """

    def __init__(self, start: float | None = None, *, virtual_waits: bool = False) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()
        self.virtual_waits = virtual_waits

    def time(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += seconds

    def wait(self, condition: threading.Condition, seconds: float) -> float:
        if not self.virtual_waits:
            return _real_wait(condition, seconds)
        self.advance(seconds)
        return seconds
