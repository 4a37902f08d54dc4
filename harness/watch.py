"""``harness local up --watch``: bring edits of the tree into the running local stack.

A :class:`Reloader` thread polls the files synthesis reads (the same list the synthesis
cache hashes, :func:`harness.synth_cache.input_files`) and, once an edit has settled,
applies it by what it touched:

- ``handlers/``: the code is bundled again and swapped into every function running the
  package (:meth:`~harness.local_stack.cloud.LocalDeployment.swap_handler_code`); calls in flight
  finish on the old code, the next ones cold-start on the new, and the old workers are
  retired once idle;
- ``cdk/``, ``cdk.json``: the app is synthesized again (through the
  cache) and the difference redeployed if the local CloudFormation engine can apply it in
  place, otherwise nothing is applied and the line names each change that needs a restart
  (:meth:`~harness.local_stack.cloud.LocalDeployment.redeploy`);
- a requirements file: a restart is needed (after ``make install``), since the workers
  import third-party packages from the virtualenv.

Each reload prints one line: what changed, what was done, how long it took.

Polling, not inotify: the watched tree is about a hundred files, whose ``stat`` takes
about a millisecond twice a second, and it needs no new dependency (``watchdog`` would be
one for a loop this small). A file whose time stamp changed but whose bytes did not
(``touch``, a save without edits, a branch switched back) reloads nothing.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from harness.synth_cache import REQUIREMENT_FILES, input_files

POLL_INTERVAL_S: Final = 0.5
SETTLE_S: Final = 0.2
"""An edit counts as done once a poll this long after the last change sees no other."""
_MAX_SETTLE_S: Final = 5.0  # a tree that keeps changing (a long checkout) reloads anyway


class ReloadResult(Protocol):
    """What a reload did (:class:`harness.local_stack.cloud.Reload`)."""

    @property
    def updated(self) -> tuple[str, ...]: ...

    @property
    def needs_restart(self) -> tuple[str, ...]: ...

    @property
    def synthesized(self) -> bool: ...


class Reloadable(Protocol):
    """The running stack, as the reloader drives it
    (:class:`~harness.local_stack.cloud.LocalDeployment`)."""

    project_root: Path

    def swap_handler_code(self) -> ReloadResult: ...

    def redeploy(self) -> ReloadResult: ...


class TreeWatcher:
    """The synthesis inputs of a tree; :meth:`changed` lists those whose bytes changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stats = self._scan()
        self._digests = {relative: self._digest(relative) for relative in self._stats}

    def _scan(self) -> dict[str, tuple[int, int]]:
        stats: dict[str, tuple[int, int]] = {}
        for relative, path in input_files(self.root):
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted between the listing and the stat
                continue
            stats[relative] = (stat.st_mtime_ns, stat.st_size)
        return stats

    def _digest(self, relative: str) -> str | None:
        try:
            return hashlib.sha256((self.root / relative).read_bytes()).hexdigest()
        except OSError:
            return None

    def changed(self) -> list[str]:
        """Files added, removed or edited since the last call (by content), sorted."""
        stats = self._scan()
        if stats == self._stats:
            return []
        touched = {
            rel for rel in set(stats) | set(self._stats) if stats.get(rel) != self._stats.get(rel)
        }
        self._stats = stats
        changed = []
        for relative in sorted(touched):
            digest = self._digest(relative) if relative in stats else None
            if digest != self._digests.get(relative):
                changed.append(relative)
                if digest is None:
                    self._digests.pop(relative, None)
                else:
                    self._digests[relative] = digest
        return changed


def _summary(paths: list[str]) -> str:
    shown = ", ".join(paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


_TRACEBACK_FILE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')


def error_summary(error: BaseException, root: Path) -> str:
    """An error on one line: its first line, and for a traceback (a failed synthesis
    carries the app's) the last file and line it names and its last line."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()] or [
        type(error).__name__
    ]
    if len(lines) == 1:
        return lines[0]
    where = ""
    for line in reversed(lines):
        match = _TRACEBACK_FILE.match(line)
        if match:
            path = Path(match["file"])
            shown = path.relative_to(root) if path.is_relative_to(root) else path
            where = f" ({shown}, line {match['line']})"
            break
    return f"{lines[0]} ... {lines[-1].strip()}{where}"


class Reloader:
    """Watches ``stack.project_root`` in a thread and reloads the stack on each edit.

    ``on_line`` gets one line per reload. :meth:`stop` ends the thread (waiting for a
    reload in progress, which a synthesis can make last seconds).
    """

    def __init__(
        self,
        stack: Reloadable,
        *,
        on_line: Callable[[str], None],
        interval: float = POLL_INTERVAL_S,
        settle: float = SETTLE_S,
    ) -> None:
        self.stack = stack
        self.on_line = on_line
        self.interval = interval
        self.settle = settle
        self.watcher = TreeWatcher(stack.project_root)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-stack-reloader", daemon=True)

    def start(self) -> Reloader:
        """Start watching; returns itself."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Reloader:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            changed = self.watcher.changed()
            if not changed:
                continue
            deadline = time.monotonic() + _MAX_SETTLE_S
            while time.monotonic() < deadline and not self._stop.wait(self.settle):
                more = self.watcher.changed()
                if not more:
                    break
                changed = sorted(set(changed) | set(more))
            if self._stop.is_set():
                return
            self.on_line(self.reload(changed))

    def reload(self, changed: list[str]) -> str:
        """Apply the changed files (paths relative to the root); returns the line to print."""
        began = time.monotonic()
        head = f"reload: {_summary(changed)} changed:"
        requirements = [path for path in changed if path in REQUIREMENT_FILES]
        if requirements:
            return (
                f"{head} a requirements file changed; restart the stack (after `make "
                "install`) to use it: the workers import packages from the virtualenv. "
                "Nothing was applied."
            )
        code_only = all(path.startswith("handlers/") for path in changed)
        try:
            result = self.stack.swap_handler_code() if code_only else self.stack.redeploy()
        except Exception as error:
            summary = error_summary(error, self.stack.project_root)
            return f"{head} failed after {time.monotonic() - began:.2f}s: {summary}"
        took = time.monotonic() - began
        if code_only:
            how = "code swapped"
        else:
            how = "synthesized again" if result.synthesized else "assembly taken from the cache"
        if result.needs_restart:
            return (
                f"{head} {how} in {took:.2f}s, but these changes need a restart (nothing "
                f"was applied): {'; '.join(result.needs_restart)}"
            )
        if not result.updated:
            return f"{head} {how} in {took:.2f}s; nothing the stack runs differs"
        return (
            f"{head} {how} in {took:.2f}s: {', '.join(result.updated)}; calls in flight "
            "finish on the old code, the next ones start on the new"
        )
