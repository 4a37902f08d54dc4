"""Records what the load users saw, on one machine or across locust workers.

Two records: every task the API accepted (``RECORDER``, ``LOAD_RECORD_FILE``) and every
failed or throttled request with its cause (``FAILURES``, ``LOAD_FAILURES_FILE``).
A local run appends JSON lines to the file directly. In distributed mode
the workers (possibly on other machines) cannot write the master's file, so they send
their records to the master as locust custom messages, every half second and when
their users stop; the master writes them. The worker flushes before it reports itself
stopped, so the master has every record when the run ends.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import IO, Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.load.settings import ENV_FAILURES_FILE, ENV_RECORD_FILE

_FLUSH_INTERVAL_S = 0.5


class JsonLinesRecorder:
    """Collects records and gets them into the master's file (named by ``env_var``)."""

    def __init__(self, message_type: str, env_var: str, default_file: str) -> None:
        self.message_type = message_type
        self._env_var = env_var
        self._default_file = default_file
        self._buffer: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self._environment: Environment | None = None

    def _open(self) -> IO[str]:
        if self._file is None:
            path = Path(os.environ.get(self._env_var, self._default_file))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        return self._file

    def _write(self, records: list[dict[str, Any]]) -> None:
        with self._lock:
            handle = self._open()
            handle.writelines(json.dumps(record) + "\n" for record in records)
            handle.flush()

    def record(self, **fields: Any) -> None:
        """Record one entry (e.g. ``task_id``, ``sent_at``, ``accepted_at``)."""
        runner = self._environment.runner if self._environment else None
        if isinstance(runner, WorkerRunner):
            self._buffer.append(fields)
        else:
            self._write([fields])

    def flush(self) -> None:
        """Send buffered records to the master (workers only)."""
        runner = self._environment.runner if self._environment else None
        if isinstance(runner, WorkerRunner) and self._buffer:
            batch, self._buffer = self._buffer, []
            runner.send_message(self.message_type, {"records": batch})

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(_FLUSH_INTERVAL_S)  # the flush period of a background greenlet
            self.flush()

    def attach(self, environment: Environment) -> None:
        """Wire into a runner: the master listens, a worker flushes periodically and on stop."""
        self._environment = environment
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            runner.register_message(
                self.message_type, lambda msg, **_: self._write(msg.data["records"])
            )
        elif isinstance(runner, WorkerRunner):
            gevent.spawn(self._flush_forever)
            environment.events.test_stop.add_listener(lambda **_: self.flush())  # type: ignore[no-untyped-call]
        environment.events.quitting.add_listener(lambda **_: self.close())  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


RECORDER = JsonLinesRecorder("load_accepted_tasks", ENV_RECORD_FILE, "accepted-tasks.jsonl")
FAILURES = JsonLinesRecorder("load_failures", ENV_FAILURES_FILE, "failures.jsonl")


def _attach(environment: Environment, **_: Any) -> None:
    RECORDER.attach(environment)
    FAILURES.attach(environment)


events.init.add_listener(_attach)  # type: ignore[no-untyped-call]  # locust leaves it unannotated
