"""One Lambda execution environment: a real ``python -m awslambdaric`` process.

A worker owns its process, its Runtime API server (its own loopback port), the reader of
its stdout/stderr (one pipe, like Lambda captures both) and the thread that notices when the
process exits. An :class:`Invocation` is handed to at most one worker; whoever completes it
first (the runtime's response or error, the process exiting, the timeout) wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from localcloud.lambda_service.runtime_api import (
    NextEvent,
    PostedBody,
    RuntimeApiServer,
    error_body,
    status_body,
)
from localcloud.telemetry import MAX_LOG_EVENT_BYTES, truncate_message

OutcomeKind = Literal["response", "error", "too_large", "init_error", "exit", "timeout"]

LOG_TAIL_BYTES = 4096  # what Invoke's LogType=Tail returns
_ACCEPTED = status_body("OK")  # every answer's acknowledgement, encoded once


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended, before it is turned into an ``InvokeResult``."""

    kind: OutcomeKind
    body: bytes = b""
    error_type: str | None = None
    detail: str = ""  # exit description ("exit status 1", "signal: killed") or response size


def new_trace_id() -> str:
    """An X-Ray trace header like the one Lambda passes (unsampled)."""
    random = os.urandom(20).hex()  # one read for both ids (every invoke pays this)
    return f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:]};Sampled=0"


class Invocation:
    """One request to one function, handed to exactly one worker."""

    def __init__(
        self,
        payload: bytes,
        *,
        timeout_s: float,
        function_arn: str,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.timeout_s = timeout_s
        self.function_arn = function_arn
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.trace_id = trace_id or new_trace_id()
        self.picked_up_at: float | None = None  # monotonic, when the runtime took the event
        self.outcome: Outcome | None = None
        self._cond = threading.Condition(threading.Lock())
        self._tail: deque[str] = deque()
        self._tail_bytes = 0

    def pick_up(self) -> bool:
        """The runtime takes the event; False if the invocation already ended (do not run it)."""
        with self._cond:
            if self.outcome is not None:
                return False
            self.picked_up_at = time.monotonic()
            # No notify: waking the invoking thread here would cost a context switch on
            # the hot path; it wakes on completion or on its own deadline (see _await).
            return True

    def unpick(self) -> None:
        """Undo ``pick_up`` when the event could not be sent (unless already ended)."""
        with self._cond:
            if self.outcome is None:
                self.picked_up_at = None

    def complete(self, outcome: Outcome) -> bool:
        """Record how the invocation ended; only the first call counts (returns True)."""
        with self._cond:
            if self.outcome is not None:
                return False
            self.outcome = outcome
            self._cond.notify_all()
            return True

    def wait_done(self, timeout: float) -> bool:
        """Wait until the invocation ended."""
        with self._cond:
            return self._cond.wait_for(lambda: self.outcome is not None, timeout)

    def add_log(self, message: str) -> None:
        """Keep the last 4 KiB of this invocation's log (Invoke's ``LogType=Tail``)."""
        with self._cond:
            self._tail.append(message)
            self._tail_bytes += len(message)
            while self._tail_bytes > LOG_TAIL_BYTES and len(self._tail) > 1:
                self._tail_bytes -= len(self._tail.popleft())

    def log_tail(self) -> str:
        """The kept tail of the log, cut to 4 KiB."""
        with self._cond:
            return "".join(self._tail)[-LOG_TAIL_BYTES:]


def describe_exit(returncode: int) -> str:
    """Lambda's wording: ``exit status 1`` or ``signal: killed``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal: {-returncode}"
    words = {"SIGKILL": "killed", "SIGSEGV": "segmentation fault", "SIGABRT": "aborted"}
    return f"signal: {words.get(name, name.lower().removeprefix('sig'))}"


class WorkerStoppedError(RuntimeError):
    """``start()`` after ``stop()``: the service is closing."""


class Worker:
    """A runtime process plus the Runtime API it talks to."""

    def __init__(
        self,
        *,
        worker_id: str,
        command: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        stream_name: str,
        body_limit: int,
        log_sink: Callable[[str, str], None],
        on_exit: Callable[[Worker], None],
    ) -> None:
        self.worker_id = worker_id
        self.stream_name = stream_name
        self._command = list(command)
        self._cwd = cwd
        self._env = dict(env)
        self._log_sink = log_sink
        self._on_exit = on_exit
        self._inbox: queue.SimpleQueue[Invocation | None] = queue.SimpleQueue()
        self.current: Invocation | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.init_duration_ms: float | None = None
        self.init_failed = False
        self.exit_description: str | None = None
        self.served = 0
        self.peak_rss_mb = 0
        self._exited = threading.Event()
        self._life_lock = threading.Lock()  # start() versus kill()/stop()
        self._stopping = False
        self._out_lock = threading.Lock()
        self._out_fd = -1
        self._eof = False
        self._partial = bytearray()
        self._skipping = False
        self._threads: list[threading.Thread] = []
        self.server = RuntimeApiServer(self, name=worker_id, body_limit=body_limit)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """False once the process has exited (or never started)."""
        return self.process is not None and not self._exited.is_set()

    def start(self, first: Invocation) -> None:
        """Start the process with ``first`` already queued (a cold start).

        Raises ``WorkerStoppedError`` if ``stop()`` came first (the service is closing), so
        no process can be started after the service has collected its workers to stop.
        """
        with self._life_lock:
            if self._stopping:
                raise WorkerStoppedError(self.worker_id)
            self._spawn(first)

    def _spawn(self, first: Invocation) -> None:
        self.current = first
        self._inbox.put(first)
        env = dict(self._env)
        env["AWS_LAMBDA_RUNTIME_API"] = self.server.address
        self.spawned_at = time.monotonic()
        self.process = subprocess.Popen(
            self._command,
            cwd=self._cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group: a timeout or close() kills the handler's children too.
            start_new_session=True,
            close_fds=True,
        )
        assert self.process.stdout is not None
        self._out_fd = self.process.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        for target, name in ((self._read_loop, "out"), (self._wait_loop, "wait")):
            thread = threading.Thread(target=target, name=f"{self.worker_id}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def dispatch(self, invocation: Invocation) -> None:
        """Hand a warm worker its next event."""
        self.current = invocation
        self._inbox.put(invocation)
        if self._exited.is_set():
            # The exit handler sets the flag before it looks at ``current``: either it saw
            # this invocation or we see the flag here, so the invocation never hangs.
            invocation.complete(Outcome("exit", detail=self.exit_description or "exited"))

    def release(self) -> None:
        """The current invocation is over."""
        self.current = None

    def kill(self) -> None:
        """SIGKILL the whole process group (the runtime and anything it spawned)."""
        with self._life_lock:
            proc = self.process
            if proc is None:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop(self, timeout: float = 5.0) -> None:
        """Kill the process, reap it and stop every thread of this worker."""
        with self._life_lock:
            self._stopping = True
        self.kill()
        self._inbox.put(None)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.server.close()
        for thread in self._threads:
            thread.join(timeout)

    def sample_peak_rss(self) -> int:
        """Peak resident memory of the runtime process in MB (Lambda's "Max Memory Used")."""
        proc = self.process
        if proc is None:
            return self.peak_rss_mb
        try:
            # One read as bytes: every invoke pays this (half the cost of a text file).
            fd = os.open(f"/proc/{proc.pid}/status", os.O_RDONLY)
            try:
                status = os.read(fd, 16384)
            finally:
                os.close(fd)
            at = status.find(b"\nVmHWM:")
            if at >= 0:
                kb = int(status[at + 7 : status.index(b"\n", at + 1)].split()[0])
                self.peak_rss_mb = max(self.peak_rss_mb, kb // 1024)
        except (OSError, ValueError, IndexError):
            pass  # gone already, or no /proc: keep the last sample
        return self.peak_rss_mb

    def _wait_loop(self) -> None:
        assert self.process is not None
        returncode = self.process.wait()
        self.exit_description = describe_exit(returncode)
        self.drain_output()
        self._exited.set()
        invocation = self.current
        if invocation is not None:
            invocation.complete(Outcome("exit", detail=self.exit_description))
        self._inbox.put(None)  # unblock a connection thread waiting in /next
        self.server.close()
        self._on_exit(self)

    # -- output ------------------------------------------------------------------------

    def log(self, message: str, invocation: Invocation | None = None) -> None:
        """Write a platform line (START, END, REPORT, ...) into this worker's stream."""
        self._log_sink(self.stream_name, message)
        if invocation is not None:
            invocation.add_log(message)

    def drain_output(self, then: Callable[[], None] | None = None) -> None:
        """Read whatever the process has written so far, then run ``then`` under the same lock.

        The runtime writes its output before it posts a response (its stdout is
        unbuffered), so draining at the response puts every handler line before END.
        """
        with self._out_lock:
            self._drain_locked()
            if then is not None:
                then()

    def _read_loop(self) -> None:
        poller = select.poll()
        poller.register(self._out_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            poller.poll(1000)
            with self._out_lock:
                if self._drain_locked():
                    return

    def _drain_locked(self) -> bool:
        """Read all available output; True at end of file."""
        if self._eof:
            return True
        while True:
            try:
                chunk = os.read(self._out_fd, 65536)
            except BlockingIOError:
                return False
            except OSError:
                chunk = b""
            if not chunk:
                if self._partial and not self._skipping:
                    self._emit(bytes(self._partial))
                self._partial.clear()
                self._eof = True
                if self.process is not None and self.process.stdout is not None:
                    with contextlib.suppress(OSError):
                        self.process.stdout.close()
                return True
            self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        data = self._partial
        data += chunk
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            if self._skipping:
                self._skipping = False  # the rest of an over-long line: dropped
            else:
                self._emit(bytes(data[start : newline + 1]))
            start = newline + 1
        del data[:start]
        if self._skipping:
            data.clear()
        elif len(data) > MAX_LOG_EVENT_BYTES:
            # A line longer than a log event can hold: keep its head, drop up to the newline.
            self._emit(bytes(data))
            data.clear()
            self._skipping = True

    def _emit(self, line: bytes) -> None:
        message = truncate_message(line.decode("utf-8", errors="replace"))
        self._log_sink(self.stream_name, message)
        invocation = self.current
        if invocation is not None and invocation.picked_up_at is not None:
            invocation.add_log(message)

    # -- Runtime API backend -----------------------------------------------------------

    def next_invocation(self, peer_gone: Callable[[], bool]) -> NextEvent | None:
        """Block until the next event for this worker (called by the Runtime API server)."""
        if self.init_duration_ms is None:
            self.init_duration_ms = (time.monotonic() - self.spawned_at) * 1000
        while True:
            invocation = self._inbox.get()
            if invocation is None:
                return None
            if peer_gone():
                # Killed while idle, and the exit handler has not run yet: leave the event
                # unstarted; that handler ends it and the service runs it on another worker.
                self._inbox.put(invocation)
                return None
            started: list[bool] = []

            def start_line(inv: Invocation = invocation, started: list[bool] = started) -> None:
                # Under the output lock, after draining init output: START comes after it.
                if inv.pick_up():
                    started.append(True)
                    self.log(f"START RequestId: {inv.request_id} Version: $LATEST\n", inv)

            self.drain_output(start_line)
            if not started:
                continue  # ended before it reached the runtime (e.g. killed): skip it
            assert invocation.picked_up_at is not None
            deadline_ms = int(time.time() * 1000 + invocation.timeout_s * 1000)
            return NextEvent(
                request_id=invocation.request_id,
                body=invocation.payload,
                deadline_ms=deadline_ms,
                function_arn=invocation.function_arn,
                trace_id=invocation.trace_id,
                client_context=invocation.client_context,
                cognito_identity=invocation.cognito_identity,
            )

    def undelivered(self, request_id: str) -> None:
        """The event never reached the runtime (its socket broke): treat it as not started."""
        invocation = self._current_for(request_id)
        if invocation is not None:
            invocation.unpick()

    def _current_for(self, request_id: str) -> Invocation | None:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            return None
        return invocation

    def invocation_response(self, request_id: str, body: PostedBody) -> tuple[int, bytes]:
        """The runtime posts the handler's result."""
        invocation = self._current_for(request_id)
        if invocation is None:
            return 400, error_body("InvalidRequestID", f"unknown request id {request_id}")
        if body.too_large:
            invocation.complete(Outcome("too_large", detail=str(body.size)))
            return 413, error_body(
                "RequestEntityTooLarge", f"response of {body.size} bytes is over the limit"
            )
        invocation.complete(Outcome("response", body.data))
        return 202, _ACCEPTED

    def invocation_error(
        self, request_id: str, body: PostedBody, error_type: str | None
    ) -> tuple[int, bytes]:
        """The runtime reports the handler raised."""
        invocation = self._current_for(request_id)
        if invocation is None:
            return 400, error_body("InvalidRequestID", f"unknown request id {request_id}")
        data = (
            body.data
            if not body.too_large
            else json.dumps(
                {"errorMessage": "error payload too large", "errorType": error_type or ""}
            ).encode()
        )
        invocation.complete(Outcome("error", data, error_type=error_type))
        return 202, _ACCEPTED

    def init_error(self, body: PostedBody, error_type: str | None) -> tuple[int, bytes]:
        """The runtime could not load the handler; it exits right after this."""
        self.init_failed = True
        if self.init_duration_ms is None:
            self.init_duration_ms = (time.monotonic() - self.spawned_at) * 1000
        invocation = self.current
        if invocation is not None:
            invocation.complete(Outcome("init_error", body.data, error_type=error_type))
        return 202, _ACCEPTED
