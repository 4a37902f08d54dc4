"""The integration timeout: a call slower than its timeout answers 504."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class _Ticket:
    """Who answers a request: the invocation or the timeout, whichever claims first."""

    __slots__ = ("_lock", "callback")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self.callback: Callable[[], None] | None = callback

    def claim(self) -> bool:
        return self._lock.acquire(blocking=False)


class _Watchdog:
    """One thread that answers requests whose integration outlives its timeout.

    Arming costs a heap push. A request that finishes in time settles its ticket, which
    drops the callback (and the request it holds) at once; settled entries are purged
    from the heap in bulk once they are the majority, so memory stays bounded under load.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Ticket]] = []
        self._settled = 0
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="apigw-watchdog", daemon=True)
        self._thread.start()

    def arm(self, deadline: float, callback: Callable[[], None]) -> _Ticket:
        ticket = _Ticket(callback)
        with self._condition:
            sequence = next(self._counter)
            heapq.heappush(self._heap, (deadline, sequence, ticket))
            if self._heap[0][1] == sequence:  # a new earliest deadline: re-arm the wait
                self._condition.notify()
        return ticket

    def settle(self, ticket: _Ticket) -> bool:
        """Claim the answer for the invocation; False if the timeout already answered."""
        if not ticket.claim():
            return False
        ticket.callback = None
        with self._condition:
            self._settled += 1
            if self._settled > 1024 and self._settled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].callback is not None]
                heapq.heapify(self._heap)
                self._settled = 0
        return True

    @property
    def pending(self) -> int:
        """Entries still in the heap (settled ones included until purged)."""
        with self._condition:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, ticket = heapq.heappop(self._heap)
                callback = ticket.callback
                if callback is None:
                    self._settled = max(0, self._settled - 1)
                    continue
            try:
                callback()
            except Exception as error:  # one failed answer must not stop the watchdog
                logger.warning("integration timeout handler failed: %r", error)

    def close(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()
        self._thread.join(5)
