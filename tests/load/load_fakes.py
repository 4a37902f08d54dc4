"""STAND-IN for the local stack until it exists: a tiny Task API on 127.0.0.1.

It answers like the real API (``POST /tasks``, ``GET /tasks/{id}``, validation errors,
``Idempotency-Key``, the ``X-Fault-Injection: always-fail`` header) and "processes"
tasks in acceptance order on a background thread, so the load scenarios and their
ledger can run for real in ``make test``. It is not the system under test: the smoke
tests switch to the local stack by changing one fixture (see ``conftest.py``).

Test knobs: ``lose_every=N`` silently never processes every Nth task (to prove the
ledger catches a loss); ``reorder=True`` processes pairs out of order.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_TASK_PATH = re.compile(r"^/tasks/([^/]+)$")
_FIELDS = {"title", "description", "priority", "due_date"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def validate(body: Any) -> list[dict[str, str]]:
    """The API's validation rules, simplified; one entry per invalid field."""
    if not isinstance(body, dict):
        return [{"field": "body", "problem": "must be a JSON object"}]
    problems = [{"field": k, "problem": "unknown field"} for k in body if k not in _FIELDS]
    for name, limit in (("title", 200), ("description", 2000)):
        value = body.get(name)
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit:
            problems.append({"field": name, "problem": f"required, 1-{limit} characters"})
    if str(body.get("priority", "")).lower() not in {"low", "medium", "high"}:
        problems.append({"field": "priority", "problem": "one of low, medium, high"})
    due = body.get("due_date")
    if due is not None:
        try:
            if "T" in str(due):
                if datetime.fromisoformat(str(due)).tzinfo is None:
                    raise ValueError("no timezone")
            else:
                date.fromisoformat(str(due))
        except ValueError:
            problems.append(
                {"field": "due_date", "problem": "ISO 8601 date or date-time with zone"}
            )
    return problems


@dataclass
class FakeApi:
    """The in-memory state behind the stand-in."""

    lose_every: int = 0
    reorder: bool = False
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, tuple[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    work: queue.Queue[str | None] = field(default_factory=queue.Queue)
    sequence: int = 0

    def create(
        self, body: dict[str, Any], key: str | None, poison: bool
    ) -> tuple[int, dict[str, Any]]:
        canonical = json.dumps(body, sort_keys=True)
        with self.lock:
            if key and key in self.by_key:
                task_id, seen = self.by_key[key]
                if seen != canonical:
                    return 422, {
                        "error": "IdempotencyConflict",
                        "message": "key reused with another body",
                    }
                return 200, {
                    "task_id": task_id,
                    "message": "Task created successfully",
                    "status": "QUEUED",
                }
            task_id = str(uuid.uuid4())
            self.sequence += 1
            self.tasks[task_id] = {
                "task_id": task_id,
                "status": "QUEUED",
                "attempts": 0,
                "created_at": _now(),
                "processed_at": None,
                "sequence_number": str(10**19 + self.sequence),
                "duplicate_deliveries": 0,
                "poison": poison,
            }
            if key:
                self.by_key[key] = (task_id, canonical)
            lost = self.lose_every and self.sequence % self.lose_every == 0
        if not lost:
            self.work.put(task_id)
        return 200, {"task_id": task_id, "message": "Task created successfully", "status": "QUEUED"}

    def process_forever(self) -> None:
        """The "processor": settle tasks in acceptance order (or pairwise swapped)."""
        held: str | None = None
        while (task_id := self.work.get()) is not None:
            if self.reorder and held is None:
                held = task_id
                continue
            for current in (task_id, held) if held else (task_id,):
                with self.lock:
                    task = self.tasks[current]
                    task["attempts"] = 3 if task["poison"] else 1
                    task["status"] = "FAILED" if task["poison"] else "COMPLETED"
                    task["processed_at"] = _now()
            held = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # headers and body in one write (no Nagle / delayed-ACK stall)
    api: FakeApi

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a load test makes thousands of requests."""

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/tasks":
            self._send(404, {"error": "NotFound", "message": f"no route {self.path}"})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": "BadRequest", "message": "malformed JSON"})
            return
        problems = validate(body)
        if problems:
            self._send(
                400, {"error": "ValidationError", "message": "invalid task", "details": problems}
            )
            return
        poison = self.headers.get("X-Fault-Injection") == "always-fail"
        self._send(*self.api.create(body, self.headers.get("Idempotency-Key"), poison))

    def do_GET(self) -> None:
        match = _TASK_PATH.match(self.path)
        if not match:
            self._send(404, {"error": "NotFound", "message": f"no route {self.path}"})
            return
        with self.api.lock:
            task = self.api.tasks.get(match.group(1))
            task = None if task is None else {k: v for k, v in task.items() if k != "poison"}
        if task is None:
            self._send(404, {"error": "NotFound", "message": "no such task"})
        else:
            self._send(200, task)


@contextmanager
def running_fake_api(**knobs: Any) -> Iterator[tuple[str, FakeApi]]:
    """Serve a :class:`FakeApi` on 127.0.0.1 (an ephemeral port); yields ``(url, api)``."""
    api = FakeApi(**knobs)
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threads = [
        threading.Thread(target=server.serve_forever, name="fake-api", daemon=True),
        threading.Thread(target=api.process_forever, name="fake-processor", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", api
    finally:
        server.shutdown()
        server.server_close()
        api.work.put(None)
        for thread in threads:
            thread.join(timeout=5)


def write_outputs(path: Path, outputs: dict[str, str], stack: str = "FakeStack") -> Path:
    """Write a stack outputs file ``{stack: outputs}`` and return its path."""
    path.write_text(json.dumps({stack: outputs}), encoding="utf-8")
    return path


@contextmanager
def running_sqs_endpoint() -> Iterator[tuple[str, str, str]]:
    """An SQS endpoint on 127.0.0.1: ``(url, region, kind)``.

    The local SQS endpoint (``localcloud.endpoint.AwsEndpoint``, with SQS FIFO's
    throughput quotas) when it is importable; otherwise moto's server, which has no
    quotas, so a run against it can show no throttling.
    """
    try:
        from localcloud.endpoint import AwsEndpoint
    except ImportError:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}", "us-east-1", "moto"
        finally:
            server.stop()
        return
    endpoint = AwsEndpoint()
    endpoint.start()
    try:
        yield endpoint.url, endpoint.region, "endpoint"
    finally:
        endpoint.stop()
