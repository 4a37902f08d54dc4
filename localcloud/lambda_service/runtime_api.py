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
Requests are read by :func:`localcloud.http11.read_request` with ``strict=True`` (the checks
below); the accept loop is this module's own: closing a worker's server is immediate, where
``socketserver``'s would poll.

Under abuse it answers like RAPID (JSON ``{"errorType", "errorMessage"}`` bodies) and keeps
serving: a malformed request gets 400 ``InvalidRequest`` (431 for an oversized head) and the
connection is closed; a truncated body 400 ``TruncatedHTTPRequest``; an answer for a request
id that is not the one in flight 400 ``InvalidRequestID``; an answer when none is in flight, a
second answer, ``/next`` before answering, or ``/init/error`` after init 403
``InvalidStateTransition``. Unlike Lambda, whose Runtime API only the sandbox can reach, this
loopback port is reachable by every local process: so handing out an event, answering one
and reporting an init error are reserved to the worker's own process group (the peer's
socket is looked up in ``/proc``); anyone else gets 403 ``Forbidden`` and cannot steal or
answer an invocation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from localcloud.http11 import (
    MAX_HEAD,
    BadRequestError,
    Reader,
    Request,
    TruncatedRequestError,
    linger,
    read_request,
)

_LOG = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
# Go's net/http default (RAPID's server): 1 MiB of header plus slack. awslambdaric sends the
# X-Ray error cause as a header of up to 1 MiB with every /error.
_MAX_HEAD_BYTES = MAX_HEAD
_RECV_BYTES = 256 * 1024
# After an error that closes the connection, read what the client still sends (bounded) so
# that closing with unread data does not reset the connection before it reads the error.
_LINGER_S = 1.0
_LINGER_BYTES = 16 * 1024 * 1024


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

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The runtime process; it leads its own process group (started in a new session).

        Only that group may take or answer events (see the module docstring).
        """
        ...

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
    100: "Continue",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


def status_body(status: str) -> bytes:
    """RAPID's acknowledgement body: ``{"status": "OK"}``."""
    return json.dumps({"status": status}).encode()


def error_body(error_type: str, message: str) -> bytes:
    """RAPID's error body shape."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _state_error(current: str, wanted: str) -> tuple[int, bytes]:
    """RAPID's answer to a call the runtime's state does not allow (403)."""
    message = (
        f"State transition from {current} to {wanted} failed for runtime. "
        "Error: State transition is not allowed"
    )
    return 403, error_body("InvalidStateTransition", message)


_INVALID_REQUEST_ID = (400, error_body("InvalidRequestID", "Invalid request ID"))


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


# -- who is calling: the peer's socket looked up in /proc ----------------------------------


def _proc_net_address(host: str, port: int) -> str:
    """An IPv4 endpoint as ``/proc/net/tcp`` prints it (address in host byte order)."""
    address = int.from_bytes(socket.inet_aton(host), sys.byteorder)
    return f"{address:08X}:{port:04X}"


def _peer_socket_inode(sock: socket.socket) -> int | None:
    """The inode of the PEER's end of a loopback connection; ``None`` if it is not listed.

    Raises ``OSError`` when ``/proc/net/tcp`` cannot be read (no procfs: cannot tell).
    """
    local_host, local_port = sock.getsockname()[:2]
    peer_host, peer_port = sock.getpeername()[:2]
    # The peer's row: its local address is our remote one and the other way round.
    wanted = (_proc_net_address(peer_host, peer_port), _proc_net_address(local_host, local_port))
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table, None)
        for line in table:
            fields = line.split()
            if len(fields) > 9 and (fields[1], fields[2]) == wanted:
                return int(fields[9]) or None
    return None


def _holds_socket(pid: int, link: str) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == link:
                return True
    return False


def peer_in_process_group(sock: socket.socket, group: int) -> bool:
    """True if the other end of ``sock`` is held by a process of process group ``group``.

    The group leader is checked first (the runtime's own connections: a few dozen fds); only
    a socket it does not hold (a handler's child process, or a stranger) costs a scan of
    ``/proc``. Without a readable ``/proc/net/tcp`` (not Linux) this cannot be told: True.
    """
    try:
        inode = _peer_socket_inode(sock)
    except (OSError, ValueError):
        try:
            sock.getpeername()
        except OSError:
            return False  # the peer is gone already
        return True
    if inode is None:
        return False
    link = f"socket:[{inode}]"
    if _holds_socket(group, link):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == group:
            continue
        try:
            if os.getpgid(int(entry)) != group:
                continue
        except OSError:
            continue
        if _holds_socket(int(entry), link):
            return True
    return False


# -- HTTP/1.1 ------------------------------------------------------------------------------


class _Connection:
    """One accepted socket: requests read by :func:`localcloud.http11.read_request` in strict
    mode, single-write responses."""

    def __init__(self, sock: socket.socket, body_limit: int) -> None:
        self.sock = sock
        self._file = sock.makefile("rb", buffering=_RECV_BYTES)
        self._rfile = cast("Reader", self._file)
        self._body_limit = body_limit
        self.from_runtime: bool | None = None  # decided on the first state-changing call

    def read(self) -> tuple[Request, PostedBody] | None:
        """The next request and its body (read whatever the route: the next request starts
        after it); ``None`` on EOF. A body over the limit is read and dropped, its size kept."""
        request = read_request(
            self._rfile, self.sock, max_body=self._body_limit, strict=True, max_head=_MAX_HEAD_BYTES
        )
        if request is None:
            return None
        return request, PostedBody(request.body, request.body_size, request.too_large)

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

    def linger(self) -> None:
        """Before closing after an error: stop sending, then read (bounded) until the peer ends."""
        linger(self.sock, _LINGER_S, _LINGER_BYTES)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.sock.close()


class _Refused(Exception):
    """A call refused before it reached the backend, with the answer to send."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class RuntimeApiServer:
    """Serves the Runtime API for one worker on ``127.0.0.1:<port>`` until closed."""

    def __init__(self, backend: RuntimeApiBackend, *, name: str, body_limit: int) -> None:
        self._backend = backend
        self._body_limit = body_limit
        self._name = name
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        # The runtime's state as RAPID tracks it: init over (first /next), and the request id
        # handed out by /next that has not been answered yet.
        self._state_lock = threading.Lock()
        self._initialized = False
        self._pending: str | None = None
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
                read = conn.read()
                if read is None:
                    return
                if not self._dispatch(conn, *read):
                    return
        except BadRequestError as exc:
            # RAPID's error types: the stream is out of step, so the connection closes.
            kind = "TruncatedHTTPRequest" if isinstance(exc, TruncatedRequestError) else None
            with contextlib.suppress(OSError):
                body = error_body(kind or "InvalidRequest", str(exc))
                conn.respond(exc.status, body, close=True)
            conn.linger()
        except OSError:
            pass  # the worker went away or we are closing
        except Exception:
            # A bug here must cost one connection, never the worker's Runtime API.
            _LOG.exception("runtime API %s: unexpected error", self._name)
            with contextlib.suppress(OSError):
                conn.respond(
                    500,
                    error_body("InternalServerError", "Internal Server Error"),
                    close=True,
                )
        finally:
            with self._conns_lock:
                self._conns.discard(sock)
            conn.close()

    def _dispatch(self, conn: _Connection, request: Request, body: PostedBody) -> bool:
        """Handle one request; False when the connection must be closed."""
        path = request.target.split("?", 1)[0]
        route = path[len(API_PREFIX) + 1 :].split("/") if path.startswith(API_PREFIX + "/") else []
        keep = request.keep_alive
        if route == ["invocation", "next"]:
            if request.method != "GET":
                return self._not_allowed(conn, request, "GET", keep)
            return self._next(conn) and keep
        answer = len(route) == 3 and route[0] == "invocation" and route[2] in ("response", "error")
        if not answer and route != ["init", "error"]:
            conn.respond(404, error_body("NotFound", f"unknown path {path[:200]}"), close=not keep)
            return keep
        if request.method != "POST":
            return self._not_allowed(conn, request, "POST", keep)
        error_type = request.header("Lambda-Runtime-Function-Error-Type")
        try:
            if route == ["init", "error"]:
                status, reply = self._init_error(conn, body, error_type)
            else:
                status, reply = self._answer(conn, route[1], route[2], body, error_type)
        except _Refused as refused:
            status, reply = refused.status, refused.body
        conn.respond(status, reply, close=not keep)
        return keep

    def _not_allowed(self, conn: _Connection, request: Request, allow: str, keep: bool) -> bool:
        message = f"{request.method[:20]} is not allowed here (only {allow})"
        conn.respond(405, error_body("MethodNotAllowed", message), {"Allow": allow}, close=not keep)
        return keep

    def _require_runtime(self, conn: _Connection) -> None:
        """Refuse (403) a caller outside the worker's process group; decided once per connection."""
        if conn.from_runtime is None:
            process = self._backend.process
            conn.from_runtime = process is not None and peer_in_process_group(
                conn.sock, process.pid
            )
        if not conn.from_runtime:
            try:
                peer = "{}:{}".format(*conn.sock.getpeername()[:2])
            except OSError:
                peer = "the caller"
            message = f"{peer} is not a process of this worker's runtime"
            raise _Refused(403, error_body("Forbidden", message))

    def _state(self) -> str:
        if self._pending is not None:
            return "Running"
        return "Ready" if self._initialized else "Initializing"

    def _next(self, conn: _Connection) -> bool:
        try:
            self._require_runtime(conn)
            with self._state_lock:
                if self._pending is not None:
                    # The current event has not been answered; RAPID refuses the same way.
                    raise _Refused(*_state_error(self._state(), "Ready"))
                self._initialized = True
        except _Refused as refused:
            conn.respond(refused.status, refused.body)
            return True
        event = self._backend.next_invocation(lambda: _peer_gone(conn.sock))
        if event is None:
            conn.respond(500, error_body("Runtime.ShuttingDown", "worker is stopping"), close=True)
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
        with self._state_lock:
            # Before sending: the runtime may answer as soon as the event reaches it.
            self._pending = event.request_id
        try:
            conn.respond(200, event.body, next_headers)
        except OSError:
            with self._state_lock:
                if self._pending == event.request_id:
                    self._pending = None
            self._backend.undelivered(event.request_id)
            raise
        return True

    def _check_pending(self, request_id: str, wanted: str) -> None:
        if self._pending is None:
            # Nothing in flight: before the first event, or this one is answered already.
            raise _Refused(*_state_error(self._state(), wanted))
        if request_id != self._pending:
            raise _Refused(*_INVALID_REQUEST_ID)

    def _answer(
        self,
        conn: _Connection,
        request_id: str,
        kind: str,
        body: PostedBody,
        error_type: str | None,
    ) -> tuple[int, bytes]:
        """``/invocation/{id}/response`` or ``/error``: the first answer for the id counts."""
        wanted = "InvocationResponse" if kind == "response" else "InvocationErrorResponse"
        with self._state_lock:
            self._check_pending(request_id, wanted)
        self._require_runtime(conn)
        with self._state_lock:
            self._check_pending(request_id, wanted)  # a concurrent answer may have won
            self._pending = None
        if kind == "response":
            return self._backend.invocation_response(request_id, body)
        return self._backend.invocation_error(request_id, body, error_type)

    def _init_error(
        self, conn: _Connection, body: PostedBody, error_type: str | None
    ) -> tuple[int, bytes]:
        with self._state_lock:
            if self._initialized:
                raise _Refused(*_state_error(self._state(), "InitError"))
        self._require_runtime(conn)
        return self._backend.init_error(body, error_type)

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
