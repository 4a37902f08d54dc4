"""The Lambda Runtime API on loopback: a tiny HTTP/1.1 server, one per worker process.

The official runtime interface client (``awslambdaric``) talks to this exactly as it talks
to Lambda's own Runtime API ("RAPID"): ``GET /2018-06-01/runtime/invocation/next`` blocks
until there is an event, then the runtime posts ``/invocation/{id}/response`` or
``/invocation/{id}/error``; a runtime that cannot load its handler posts ``/init/error``.

Each worker gets its own listening socket, so the port a request arrives on identifies the
worker without trusting anything the request says.

Why not ``http.server``: it writes the status line, headers and body in separate writes.
With Nagle's algorithm on one side and delayed ACKs on the other, every invoke then waits
for a ~40 ms ACK timer (measured: ~44 ms per warm invoke). Here every accepted socket gets
``TCP_NODELAY`` and every response goes out in one ``sendall``: ~0.25 ms per invoke.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_LOG = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
_MAX_HEAD_BYTES = 64 * 1024
_RECV_BYTES = 256 * 1024


@dataclass(frozen=True)
class NextEvent:
    """What ``/invocation/next`` hands the runtime: the event and its Lambda headers."""

    request_id: str
    body: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None


@dataclass(frozen=True)
class PostedBody:
    """A request body, or only its size when it was larger than the limit (then dropped)."""

    data: bytes
    size: int
    too_large: bool


class RuntimeApiBackend(Protocol):
    """What the server calls; implemented by the worker it serves."""

    def next_invocation(self, peer_gone: Callable[[], bool]) -> NextEvent | None:
        """Block until there is an event for this worker; ``None`` when it is shutting down.

        ``peer_gone`` tells whether the runtime hung up while waiting (it was killed): then
        the event must not be handed over, so that it can run elsewhere.
        """
        ...

    def undelivered(self, request_id: str) -> None:
        """Sending the event for ``request_id`` to the runtime failed."""
        ...

    def invocation_response(self, request_id: str, body: PostedBody) -> tuple[int, bytes]:
        """The runtime's result for ``request_id``; returns (HTTP status, JSON body)."""
        ...

    def invocation_error(
        self, request_id: str, body: PostedBody, error_type: str | None
    ) -> tuple[int, bytes]:
        """The runtime reports that the handler failed for ``request_id``."""
        ...

    def init_error(self, body: PostedBody, error_type: str | None) -> tuple[int, bytes]:
        """The runtime could not initialise (import the handler, ...)."""
        ...


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}


def status_body(status: str) -> bytes:
    """RAPID's acknowledgement body: ``{"status": "OK"}``."""
    return json.dumps({"status": status}).encode()


def error_body(error_type: str, message: str) -> bytes:
    """RAPID's error body shape."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _peer_gone(sock: socket.socket) -> bool:
    """True if the peer closed the connection (EOF or reset) while we held its request.

    A runtime waiting in ``/next`` sends nothing, so readable-at-EOF means it is gone.
    """
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _BadRequestError(Exception):
    pass


class _Connection:
    """One accepted socket: a buffered reader of HTTP/1.1 requests, single-write responses."""

    def __init__(self, sock: socket.socket, body_limit: int) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._body_limit = body_limit

    def _fill(self) -> bool:
        chunk = self.sock.recv(_RECV_BYTES)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def read_head(self) -> tuple[str, str, dict[str, str]] | None:
        """Method, path and lower-cased headers of the next request; ``None`` on EOF."""
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > _MAX_HEAD_BYTES:
                raise _BadRequestError("request head too large")
            if not self._fill():
                return None
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[: end + 4]
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            raise _BadRequestError(f"malformed request line {request_line!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return parts[0], parts[1], headers

    def _take(self, size: int, keep: bool) -> bytes:
        """Consume exactly ``size`` body bytes; keep them or drop them as they arrive."""
        kept = bytearray()
        remaining = size
        while remaining > 0:
            if not self._buf and not self._fill():
                raise ConnectionError("peer closed mid-body")
            piece = min(remaining, len(self._buf))
            if keep:
                kept += self._buf[:piece]
            del self._buf[:piece]
            remaining -= piece
        return bytes(kept)

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if len(self._buf) > _MAX_HEAD_BYTES:
                raise _BadRequestError("chunk header too large")
            if not self._fill():
                raise ConnectionError("peer closed mid-body")

    def read_body(self, headers: dict[str, str]) -> PostedBody:
        """The request body; a body over the limit is read and dropped, only its size kept."""
        if headers.get("expect", "").lower() == "100-continue":
            # libcurl (inside awslambdaric's native client) asks before sending big bodies.
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        try:
            size = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequestError("bad Content-Length") from exc
        too_large = size > self._body_limit
        return PostedBody(self._take(size, keep=not too_large), size, too_large)

    def _read_chunked(self) -> PostedBody:
        kept = bytearray()
        size = 0
        while True:
            line = self._read_line()
            try:
                chunk_size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError as exc:
                raise _BadRequestError("bad chunk size") from exc
            if chunk_size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                break
            size += chunk_size
            keep = size <= self._body_limit
            data = self._take(chunk_size, keep=keep)
            if keep:
                kept += data
            else:
                kept.clear()
            self._take(2, keep=False)  # CRLF after each chunk
        too_large = size > self._body_limit
        return PostedBody(b"" if too_large else bytes(kept), size, too_large)

    def respond(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False
    ) -> None:
        """Send status line, headers and body in ONE write (see the module docstring)."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if "Content-Type" not in (headers or {}):
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body)


class RuntimeApiServer:
    """Serves the Runtime API for one worker on ``127.0.0.1:<port>`` until closed."""

    def __init__(self, backend: RuntimeApiBackend, *, name: str, body_limit: int) -> None:
        self._backend = backend
        self._body_limit = body_limit
        self._name = name
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"runtime-api-{name}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        """The value for ``AWS_LAMBDA_RUNTIME_API``."""
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._conns_lock:
                if self._closed.is_set():
                    sock.close()
                    return
                self._conns.add(sock)
            threading.Thread(
                target=self._serve, args=(sock,), name=f"runtime-conn-{self._name}", daemon=True
            ).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock, self._body_limit)
        try:
            while not self._closed.is_set():
                request = conn.read_head()
                if request is None:
                    return
                if not self._dispatch(conn, *request):
                    return
        except _BadRequestError as exc:
            with contextlib.suppress(OSError):
                conn.respond(400, error_body("InvalidRequest", str(exc)), close=True)
        except OSError:
            pass  # the worker went away or we are closing
        finally:
            with self._conns_lock:
                self._conns.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def _dispatch(self, conn: _Connection, method: str, path: str, headers: dict[str, str]) -> bool:
        """Handle one request; False when the connection must be closed."""
        path = path.split("?", 1)[0]
        if not path.startswith(API_PREFIX + "/"):
            conn.read_body(headers)
            conn.respond(404, error_body("NotFound", f"unknown path {path}"))
            return True
        route = path[len(API_PREFIX) + 1 :].split("/")
        error_type = headers.get("lambda-runtime-function-error-type")
        if route == ["invocation", "next"] and method == "GET":
            event = self._backend.next_invocation(lambda: _peer_gone(conn.sock))
            if event is None:
                conn.respond(
                    500, error_body("Runtime.ShuttingDown", "worker is stopping"), close=True
                )
                return False
            next_headers = {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": event.request_id,
                "Lambda-Runtime-Deadline-Ms": str(event.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": event.function_arn,
                "Lambda-Runtime-Trace-Id": event.trace_id,
            }
            if event.client_context is not None:
                next_headers["Lambda-Runtime-Client-Context"] = event.client_context
            if event.cognito_identity is not None:
                next_headers["Lambda-Runtime-Cognito-Identity"] = event.cognito_identity
            try:
                conn.respond(200, event.body, next_headers)
            except OSError:
                self._backend.undelivered(event.request_id)
                raise
            return True
        if method != "POST":
            conn.read_body(headers)
            conn.respond(405, error_body("MethodNotAllowed", f"{method} {path}"))
            return True
        body = conn.read_body(headers)
        if len(route) == 3 and route[0] == "invocation" and route[2] == "response":
            status, reply = self._backend.invocation_response(route[1], body)
        elif len(route) == 3 and route[0] == "invocation" and route[2] == "error":
            status, reply = self._backend.invocation_error(route[1], body, error_type)
        elif route == ["init", "error"]:
            status, reply = self._backend.init_error(body, error_type)
        else:
            status, reply = 404, error_body("NotFound", f"unknown path {path}")
        conn.respond(status, reply)
        return True

    def close(self) -> None:
        """Stop accepting, drop every connection; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            # shutdown() wakes a thread blocked in accept(); close() alone does not on Linux.
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=2)
