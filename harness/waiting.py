"""Bounded polling: the only way the harness and its tests wait for asynchronous work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | bool | None],
    *,
    timeout: float,
    interval: float = 0.05,
    description: str,
) -> T:
    """Call ``probe`` until it returns something truthy and return that value.

    Raises ``TimeoutError`` after ``timeout`` seconds, naming what was awaited
    (``description``) and the last value the probe returned, so a failure says what
    was seen rather than just "timed out".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = probe()
        if last:
            return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout:g}s waiting for {description}; last seen: {last!r}"
            )
        # Pacing between polls of an external system, not a wait for the work itself.
        time.sleep(interval)
