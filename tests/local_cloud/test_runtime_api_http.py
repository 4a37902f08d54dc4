"""The Lambda Runtime API's HTTP framing on the shared server and writer
(``localcloud.lambda_service.runtime_api`` on ``localcloud.http11``), through raw sockets.

The abuse cases (malformed framing, strangers, state transitions) are in
``tests/hardening/test_local_cloud_abuse.py``, against real workers.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from localcloud.lambda_service.runtime_api import (
    API_PREFIX,
    NextEvent,
    PostedBody,
    RuntimeApiServer,
    status_body,
)


class _Process:
    """Stands for the runtime process: this test process, which holds the client sockets."""

    pid = os.getpid()


class _Backend:
    """Hands out one event, then reports the worker stopping; records the answers."""

    def __init__(self, event: NextEvent) -> None:
        self.events: list[NextEvent | None] = [event]
        self.answers: list[tuple[str, bytes]] = []

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return cast("subprocess.Popen[bytes]", _Process())

    def next_invocation(self, peer_gone: Callable[[], bool]) -> NextEvent | None:
        return self.events.pop(0) if self.events else None

    def undelivered(self, request_id: str) -> None:
        raise AssertionError(f"{request_id} was delivered")

    def invocation_response(self, request_id: str, body: PostedBody) -> tuple[int, bytes]:
        self.answers.append((request_id, body.data))
        return 202, status_body("OK")

    def invocation_error(
        self, request_id: str, body: PostedBody, error_type: str | None
    ) -> tuple[int, bytes]:
        raise AssertionError("no error expected")

    def init_error(self, body: PostedBody, error_type: str | None) -> tuple[int, bytes]:
        raise AssertionError("no init error expected")


EVENT = NextEvent(
    request_id="req-1",
    body=b'{"id": 1}',
    deadline_ms=1_700_000_000_000,
    function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
    trace_id="Root=1-abc",
    client_context='{"custom": "a\r\nX-Injected: yes"}',
)


@pytest.fixture
def backend() -> _Backend:
    return _Backend(EVENT)


@pytest.fixture
def api(backend: _Backend) -> Iterator[RuntimeApiServer]:
    server = RuntimeApiServer(backend, name="http-test", body_limit=1024)
    try:
        yield server
    finally:
        server.close()


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.rfile = self.sock.makefile("rb")

    def exchange(self, data: bytes, *, head: bool = False) -> tuple[int, list[Any], bytes]:
        self.sock.sendall(data)
        status_line = self.rfile.readline()
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        headers: list[tuple[str, str]] = []
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.lower(), value.strip()))
        length = 0 if head else int(dict(headers)["content-length"])
        return int(status_line.split()[1]), headers, self.rfile.read(length)

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


@pytest.fixture
def client(api: RuntimeApiServer) -> Iterator[_Client]:
    opened = _Client(api.port)
    try:
        yield opened
    finally:
        opened.close()


def test_the_event_goes_out_with_its_headers_and_no_value_can_add_one(
    client: _Client, backend: _Backend
) -> None:
    status, headers, body = client.exchange(
        f"GET {API_PREFIX}/invocation/next HTTP/1.1\r\nHost: h\r\n\r\n".encode()
    )
    answer = f"POST {API_PREFIX}/invocation/req-1/response HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"
    acknowledged = client.exchange(answer.encode())

    assert (status, body) == (200, EVENT.body)
    names = [name for name, _ in headers]
    assert "x-injected" not in names, "a CR/LF in the client context cannot add a header"
    assert ("lambda-runtime-client-context", '{"custom": "a  X-Injected: yes"}') in headers
    assert names.count("content-type") == 1
    assert ("lambda-runtime-aws-request-id", "req-1") in headers
    assert "connection" not in names, "HTTP/1.1 keep-alive is not announced"
    assert acknowledged[0] == 202
    assert ("content-type", "application/json") in acknowledged[1], "JSON by default"
    assert backend.answers == [("req-1", b"ok")]


def test_a_head_request_gets_no_body_and_the_connection_stays_in_step(client: _Client) -> None:
    status, headers, body = client.exchange(
        f"HEAD {API_PREFIX}/invocation/next HTTP/1.1\r\nHost: h\r\n\r\n".encode(), head=True
    )
    after = client.exchange(b"GET /elsewhere HTTP/1.1\r\nHost: h\r\n\r\n")

    assert (status, body) == (405, b"")
    assert int(dict(headers)["content-length"]) > 0, "the length a GET would have"
    assert ("allow", "GET") in headers
    assert after[0] == 404, "the next response is read where it starts"


def test_http_1_0_keep_alive_is_answered_in_kind(client: _Client) -> None:
    kept = client.exchange(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    closing = client.exchange(b"GET /x HTTP/1.0\r\n\r\n")

    assert (kept[0], dict(kept[1]).get("connection")) == (404, "keep-alive")
    assert (closing[0], dict(closing[1]).get("connection")) == (404, "close")
    assert client.rfile.read(1) == b"", "then the server closes"


def test_a_worker_stopping_during_next_answers_500_and_closes(
    api: RuntimeApiServer, backend: _Backend
) -> None:
    backend.events.clear()
    client = _Client(api.port)
    try:
        status, headers, body = client.exchange(
            f"GET {API_PREFIX}/invocation/next HTTP/1.1\r\nHost: h\r\n\r\n".encode()
        )

        assert status == 500
        assert b"Runtime.ShuttingDown" in body
        assert ("connection", "close") in headers
        assert client.rfile.read(1) == b""
    finally:
        client.close()
