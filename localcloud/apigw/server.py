"""The HTTP side: one loopback server per REST API, keep-alive, one write per response."""

from __future__ import annotations

import contextlib
import http
import socket
import socketserver
import threading
from typing import TYPE_CHECKING, cast

from localcloud.apigw.responses import _IDLE_TIMEOUT_S, BAD_REQUEST, MAX_PAYLOAD_BYTES
from localcloud.http11 import BadRequestError, Reader, read_request

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


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: _RestApi) -> None:
        self.api = api
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        # Nagle + delayed ACK would add ~40 ms per keep-alive response (DESIGN.md).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_IDLE_TIMEOUT_S)
        with self.server.connections_lock:
            self.server.connections.add(sock)
        raw_file = sock.makefile("rb", buffering=65536)
        rfile = cast("Reader", raw_file)
        source_ip = self.client_address[0]
        try:
            while True:
                try:
                    request = read_request(rfile, sock, max_body=MAX_PAYLOAD_BYTES)
                except BadRequestError:
                    sock.sendall(self.server.api.gateway_error_bytes(BAD_REQUEST))
                    return
                if request is None:
                    return
                response = self.server.api.handle(request, source_ip, sock)
                if response is None:
                    return  # answered 504 by the watchdog, with Connection: close
                sock.sendall(response)
                if not request.keep_alive:
                    return
        except (OSError, ValueError):
            return  # client went away, idle timeout, or shutdown closed the socket
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(sock)
            raw_file.close()
