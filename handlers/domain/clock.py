"""A UTC clock that never goes backwards within a process.

``processed_at`` is how the harness reads the processing order from the table alone, so
two completions in one process must never share or invert a timestamp, even if the
system clock is stepped back (NTP) or two calls land in the same microsecond.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_ONE_MICROSECOND = timedelta(microseconds=1)


class MonotonicUtcClock:
    """``now()`` returns strictly increasing UTC datetimes with microsecond resolution."""

    def __init__(self, source: Callable[[], datetime] | None = None) -> None:
        self._source = source or (lambda: datetime.now(UTC))
        self._last: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current time, or 1 µs after the previous answer if that is later."""
        with self._lock:
            current = self._source().astimezone(UTC)
            if self._last is not None and current <= self._last:
                current = self._last + _ONE_MICROSECOND
            self._last = current
            return current
