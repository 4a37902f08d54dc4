"""The HTTP side: one loopback :class:`~localcloud.http11.HttpServer` per REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from localcloud.apigw.responses import _IDLE_TIMEOUT_S, BAD_REQUEST, MAX_PAYLOAD_BYTES
from localcloud.http11 import HttpServer, response_bytes

if TYPE_CHECKING:
    from localcloud.apigw.restapi import _RestApi


def _serialise(
    status: int, headers: list[tuple[str, str]], body: bytes, *, keep_alive: bool, head: bool
) -> bytes:
    """API Gateway's way with the shared writer: the connection's fate always stated, header
    values sent as UTF-8 (a Lambda proxy's headers are JSON strings)."""
    return response_bytes(
        status,
        headers,
        body,
        head=head,
        close=not keep_alive,
        keep_alive_header=True,
        encoding="utf-8",
    )


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
