"""Load generator for the ingest benchmark: concurrent ``POST /tasks`` in its own process.

    python benchmarks/post_tasks.py API_URL COUNT THREADS

Each thread holds one keep-alive connection and writes raw HTTP/1.1 (a request costs
this process ~0.1 ms of CPU; ``http.client`` costs several times that, mostly parsing
response headers with the ``email`` package). It runs outside the benchmark's process,
which is the local cloud: API Gateway's clients are not in the cloud's process on AWS
either, and here they would otherwise contend for its GIL.

Protocol on stdin/stdout, one JSON line each, so the caller can read CPU counters
around the timed part only: once started it prints ``{"ready": true}``; any line on
stdin starts the run; it then prints
``{"elapsed_s", "cpu_s", "statuses", "task_ids"}`` and exits.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

_TIMEOUT_S = 60.0


class _Connection:
    """One keep-alive connection that posts tasks and returns (status, task_id)."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self._address = (host, port)
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._sock: socket.socket | None = None
        self._file: io.BufferedReader | None = None

    def _connect(self) -> tuple[socket.socket, io.BufferedReader]:
        if self._sock is None or self._file is None:
            self._sock = socket.create_connection(self._address, timeout=_TIMEOUT_S)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._file = self._sock.makefile("rb")
        assert self._file is not None
        return self._sock, self._file

    def post(self, index: int) -> tuple[int, str | None]:
        body = json.dumps({"title": f"bench {index}", "description": "d", "priority": "low"})
        payload = body.encode()
        try:
            sock, reader = self._connect()
            sock.sendall(self._head + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            status, data = self._read_response(reader)
        except (OSError, ValueError):
            self.close()
            return 0, None
        task_id = json.loads(data).get("task_id") if status == 200 else None
        return status, task_id

    def _read_response(self, reader: io.BufferedReader) -> tuple[int, bytes]:
        status_line = reader.readline()
        if not status_line:
            raise ValueError("connection closed")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        data = reader.read(length) if length else b""
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None


def run(api_url: str, count: int, threads: int) -> None:
    """Report ready, wait for the go line, post ``count`` tasks, report the figures."""
    parts = urlsplit(api_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path.rstrip("/") + "/tasks"
    connections = [_Connection(host, port, path) for _ in range(threads)]
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()

    counter = itertools.count()
    lock = threading.Lock()
    results: list[tuple[int, str | None]] = []

    def work(connection: _Connection) -> None:
        mine: list[tuple[int, str | None]] = []
        while (index := next(counter)) < count:
            mine.append(connection.post(index))
        with lock:
            results.extend(mine)

    workers = [threading.Thread(target=work, args=(c,)) for c in connections]
    cpu, began = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    for connection in connections:
        connection.close()
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    task_ids = [task_id for _, task_id in results if task_id]
    report = {"elapsed_s": elapsed, "cpu_s": cpu, "statuses": statuses, "task_ids": task_ids}
    print(json.dumps(report), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("api_url")
    parser.add_argument("count", type=int)
    parser.add_argument("threads", type=int)
    args = parser.parse_args(argv)
    run(args.api_url, args.count, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
