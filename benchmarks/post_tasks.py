"""Load generator for the ingest benchmark: concurrent ``POST /tasks`` in its own process.

    python benchmarks/post_tasks.py API_URL COUNT THREADS
    python benchmarks/post_tasks.py --direct COUNT

Each thread holds one keep-alive connection and writes raw HTTP/1.1 (a request costs
this process ~0.15 ms of CPU; ``http.client`` costs several times that, mostly parsing
response headers with the ``email`` package). It runs outside the benchmark's process,
which is the local cloud: API Gateway's clients are not in the cloud's process on AWS
either, and here they would otherwise contend for its GIL.

``--direct`` calls the API function's handler in this process instead (one caller; run
several processes for concurrency), with the function's environment from the caller:
the same DynamoDB and SQS calls against the same endpoint, without API Gateway and the
Lambda runtime. It measures the ceiling the function itself sets on this machine.

The API's methods use IAM authorization: with ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (and ``AWS_DEFAULT_REGION``) set, every request is signed with
SigV4 (botocore's signer, ``harness.api_auth``); without them it goes unsigned.

Protocol on stdin/stdout, one JSON line each, so the caller can read CPU counters
around the timed part only: once started it prints ``{"ready": true}``; any line on
stdin starts the run; it then prints
``{"elapsed_s", "cpu_s", "statuses", "task_ids"}`` and exits.
"""

from __future__ import annotations

import argparse
import importlib
import io
import itertools
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit

_TIMEOUT_S = 60.0


class _Connection:
    """One keep-alive connection that posts tasks and returns (status, task_id)."""

    def __init__(
        self, host: str, port: int, path: str, sign: Callable[[bytes], str] | None = None
    ) -> None:
        self._address = (host, port)
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        ).encode()
        self._sign = sign
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
        payload = _task_body(index).encode()
        try:
            sock, reader = self._connect()
            signed = self._sign(payload).encode() if self._sign else b""
            sock.sendall(
                self._head
                + signed
                + b"Content-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
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


class LambdaContext:
    """The bits of a Lambda context the handlers touch, for direct calls."""

    aws_request_id = "direct"
    function_name = "direct"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:direct"
    log_group_name = "/aws/lambda/direct"
    log_stream_name = "direct"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _task_body(index: int) -> str:
    return json.dumps({"title": f"bench {index}", "description": "d", "priority": "low"})


class _DirectCaller:
    """Calls ``handlers.api.handler`` with a ``POST /tasks`` proxy event, in this process."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        api = importlib.import_module("handlers.api")
        self._handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = api.handler
        self._context = LambdaContext()

    def post(self, index: int) -> tuple[int, str | None]:
        headers = {"Content-Type": "application/json", "Host": "127.0.0.1"}
        event = {
            "resource": "/tasks",
            "path": "/tasks",
            "httpMethod": "POST",
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": "prod",
                "resourcePath": "/tasks",
                "httpMethod": "POST",
                "path": "/prod/tasks",
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": _task_body(index),
            "isBase64Encoded": False,
        }
        reply = self._handler(event, self._context)
        status = int(reply["statusCode"])
        return status, json.loads(reply["body"]).get("task_id") if status == 200 else None

    def close(self) -> None:
        pass


class _Poster(Protocol):
    def post(self, index: int) -> tuple[int, str | None]: ...

    def close(self) -> None: ...


def run(posters: list[_Poster], count: int, out: TextIO) -> None:
    """Report ready, wait for the go line, post ``count`` tasks, report the figures."""
    print(json.dumps({"ready": True}), file=out, flush=True)
    sys.stdin.readline()

    counter = itertools.count()
    lock = threading.Lock()
    results: list[tuple[int, str | None]] = []

    def work(poster: _Poster) -> None:
        mine: list[tuple[int, str | None]] = []
        while (index := next(counter)) < count:
            mine.append(poster.post(index))
        with lock:
            results.extend(mine)

    workers = [threading.Thread(target=work, args=(p,)) for p in posters]
    cpu, began = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    for poster in posters:
        poster.close()
    statuses: dict[int, int] = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    task_ids = [task_id for _, task_id in results if task_id]
    report = {"elapsed_s": elapsed, "cpu_s": cpu, "statuses": statuses, "task_ids": task_ids}
    print(json.dumps(report), file=out, flush=True)


def _signer(url: str) -> Callable[[bytes], str] | None:
    """Header lines signing a POST of a body to ``url`` with the environment's credentials."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    api_auth = importlib.import_module("harness.api_auth")
    credentials = api_auth.ApiCredentials(key, secret, os.environ.get("AWS_SESSION_TOKEN"))
    signer = api_auth.ApiSigner(
        credentials, api_auth.api_region(url, os.environ.get("AWS_DEFAULT_REGION"))
    )

    def sign(body: bytes) -> str:
        headers = signer.headers("POST", url, body)
        return "".join(f"{name}: {value}\r\n" for name, value in headers.items())

    return sign


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--direct", action="store_true", help="call the handler in-process")
    parser.add_argument("target", nargs="+", help="API_URL COUNT THREADS, or COUNT with --direct")
    args = parser.parse_args(argv)
    if len(args.target) != (1 if args.direct else 3):
        parser.error("expected API_URL COUNT THREADS, or --direct COUNT")
    numbers = args.target if args.direct else args.target[1:]
    if not all(n.isdigit() and int(n) > 0 for n in numbers):
        parser.error(f"COUNT and THREADS must be positive integers, got {numbers}")
    if args.direct:
        # The handler logs to stdout, as in a worker: keep stdout for the reports only.
        out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), sys.stdout.fileno())
        run([_DirectCaller()], int(numbers[0]), out)
        return 0
    parts = urlsplit(args.target[0])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path.rstrip("/") + "/tasks"
    count, threads = (int(n) for n in numbers)
    sign = _signer(f"{parts.scheme}://{host}:{port}{path}")
    run([_Connection(host, port, path, sign) for _ in range(threads)], count, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
