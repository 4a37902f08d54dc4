"""Operate the dead-letter queue: list, replay, purge (``harness dlq``).

:mod:`harness.dlq.queue` holds what every caller uses (the command, the features' steps,
the tests); :mod:`harness.dlq.cli` is the command line.
"""

from harness.dlq.queue import DeadLetter, DeadLetters, Listing, ReplayReport

__all__ = ["DeadLetter", "DeadLetters", "Listing", "ReplayReport"]
