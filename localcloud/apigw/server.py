"""The HTTP side: one loopback :class:`~localcloud.http11.HttpServer` per REST API."""

from __future__ import annotations

import http
from typing import TYPE_CHECKING

from localcloud.apigw.responses import _IDLE_TIMEOUT_S, BAD_REQUEST, MAX_PAYLOAD_BYTES
from localcloud.http11 import HttpServer

if TYPE_CHECKING:
    from localcloud.apigw.restapi import _RestApi


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _serialise(
    status: int, headers: list[tuple[str, str]], body: bytes, *, keep_alive: bool, head: bool
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason_phrase(status)}\r\n"]
    for name, value in headers:
        # A CR or LF in a value would split the response: API Gateway never passes one.
        lines.append(f"{name}: {value.replace(chr(13), ' ').replace(chr(10), ' ')}\r\n")
    lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("Connection: keep-alive\r\n\r\n" if keep_alive else "Connection: close\r\n\r\n")
    return "".join(lines).encode("utf-8") + (b"" if head else body)


def serve(api: _RestApi, host: str, port: int) -> HttpServer:
    """The server of one REST API, serving from a daemon thread."""
    server = HttpServer(
        (host, port),
        lambda request, sock, client: api.handle(request, client[0], sock),
        # A request that cannot be parsed gets API Gateway's 400, then the close.
        bad_request=lambda error: api.gateway_error_bytes(BAD_REQUEST),
        max_body=MAX_PAYLOAD_BYTES,
        idle_timeout_s=_IDLE_TIMEOUT_S,
        backlog=128,
    )
    return server.serve_in_thread(f"apigw-{api.spec.api_id}")
