"""Children that stop cleanly, and SIGINT/SIGTERM turned into an orderly teardown.

A CI system cancels a job with SIGINT and then SIGTERM (GitHub Actions: SIGINT, 7.5 s,
SIGTERM, 2.5 s, SIGKILL). Python's default turns only SIGINT into an exception and lets
SIGTERM kill the process on the spot, leaving stacks behind. Here both become
:class:`Interrupted`, raised in the main thread, so ``finally`` blocks run the teardown.

Children run in their own session so a terminal's Ctrl-C reaches only us; we forward the
signal to the child's process group, wait a bounded grace period, then escalate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Final

HANDLED_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
DEFAULT_GRACE_S: Final = 10.0


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it (130 for SIGINT)."""
        return 128 + self.signum


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _note_and_continue(signum: int, _frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    print(
        f"received {name} during teardown; finishing the teardown first "
        "(send SIGKILL to abandon it and leave the stacks to the reaper)",
        file=sys.stderr,
        flush=True,
    )


@contextlib.contextmanager
def _handlers(handler: signal.Handlers | object) -> Iterator[None]:
    # Signal handlers can only be installed from the main thread; elsewhere leave them be.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED_SIGNALS}
    for s in HANDLED_SIGNALS:
        signal.signal(s, handler)  # type: ignore[arg-type]
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def interruptible() -> contextlib.AbstractContextManager[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted`."""
    return _handlers(_raise_interrupted)


def shielded() -> contextlib.AbstractContextManager[None]:
    """Within the block, SIGINT and SIGTERM are reported and otherwise ignored (teardown)."""
    return _handlers(_note_and_continue)


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    grace: float = DEFAULT_GRACE_S,
) -> int:
    """Run ``argv`` with our stdout/stderr (output streams live) and return its exit code.

    If we are interrupted while it runs, the child's process group gets the same signal
    (SIGINT for a KeyboardInterrupt), then SIGTERM and SIGKILL after ``grace`` seconds
    each; then the interruption propagates.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    proc = subprocess.Popen(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        return proc.wait()
    except BaseException as exc:
        first = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        with shielded():
            stop_child(proc, first, grace)
        raise


def stop_child(proc: subprocess.Popen[bytes], first_signal: int, grace: float) -> int:
    """Signal ``proc``'s process group, escalating to SIGTERM then SIGKILL; return its code."""
    for sig in (first_signal, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            print(
                f"child {proc.pid} still running {grace:g}s after "
                f"{signal.Signals(sig).name}; escalating",
                file=sys.stderr,
                flush=True,
            )
    return proc.wait()
