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
The server is a :class:`localcloud.http11.HttpServer` (requests read in strict mode: the
checks below; responses written by :func:`localcloud.http11.response_bytes`); its accept loop
does not poll, so closing a worker's server is immediate.

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
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from localcloud.http11 import (
    MAX_HEAD,
    WRITTEN,
    BadRequestError,
    HttpServer,
    Request,
    TruncatedRequestError,
    response_bytes,
)

_LOG = logging.getLogger(__name__)

API_PREFIX = "/2018-06-01/runtime"
# Go's net/http default (RAPID's server): 1 MiB of header plus slack. awslambdaric sends the
# X-Ray error cause as a header of up to 1 MiB with every /error.
_MAX_HEAD_BYTES = MAX_HEAD
# After an error that closes the connection, read what the client still sends (bounded) so
# that closing with unread data does not reset the connection before it reads the error.
_LINGER_S = 1.0
_BACKLOG = 16


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
_PEEK_NOWAIT = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)  # once, not per /next


def _peer_gone(sock: socket.socket) -> bool:
    """True if the peer closed the connection (EOF or reset) while we held its request.

    A runtime waiting in ``/next`` sends nothing, so readable-at-EOF means it is gone.
    """
    try:
        return sock.recv(1, _PEEK_NOWAIT) == b""
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


class _Exchange:
    """One request being answered: the connection's socket, the request, and its answer."""

    __slots__ = ("body", "request", "sock")

    def __init__(self, sock: socket.socket, request: Request) -> None:
        self.sock = sock
        self.request = request
        # Read whatever the route (the next request starts after it); a body over the limit
        # was read and dropped, its size kept.
        self.body = PostedBody(request.body, request.body_size, request.too_large)

    def reply(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False
    ) -> bytes:
        """The whole response, for ONE write (see the module docstring); ``close`` ends the
        connection after it."""
        if close:
            self.request.keep_alive = False
        return _response(
            status,
            body,
            headers,
            head=self.request.method == "HEAD",
            close=not self.request.keep_alive,
            http10=self.request.version == "HTTP/1.0",
        )


def _response(
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    head: bool = False,
    close: bool = False,
    http10: bool = False,
) -> bytes:
    """RAPID's framing on the shared writer: JSON unless said otherwise, ``Connection: close``
    when closing, ``keep-alive`` only to an HTTP/1.0 client that keeps the connection."""
    return response_bytes(
        status,
        headers.items() if headers else (),
        body,
        head=head,
        close=close,
        keep_alive_header=http10,
        content_type="application/json",
    )


def _bad_request(error: BadRequestError) -> bytes:
    """RAPID's error types for a request it cannot read: the stream is out of step, so the
    connection closes (after reading what the client still sends: ``linger_s``)."""
    kind = "TruncatedHTTPRequest" if isinstance(error, TruncatedRequestError) else "InvalidRequest"
    return _response(error.status, error_body(kind, str(error)), close=True)


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
        self._name = name
        self._closed = threading.Event()
        # Whether a connection's peer is the worker's runtime: decided on its first
        # state-changing call, forgotten with the connection's socket.
        self._from_runtime: weakref.WeakKeyDictionary[socket.socket, bool] = (
            weakref.WeakKeyDictionary()
        )
        self._from_runtime_lock = threading.Lock()
        # The runtime's state as RAPID tracks it: init over (first /next), and the request id
        # handed out by /next that has not been answered yet.
        self._state_lock = threading.Lock()
        self._initialized = False
        self._pending: str | None = None
        self._http = HttpServer(
            ("127.0.0.1", 0),
            self._respond,
            bad_request=_bad_request,
            max_body=body_limit,
            strict=True,
            max_head=_MAX_HEAD_BYTES,
            linger_s=_LINGER_S,
            backlog=_BACKLOG,
        ).serve_in_thread(f"runtime-api-{name}")
        self.port: int = self._http.port

    @property
    def address(self) -> str:
        """The value for ``AWS_LAMBDA_RUNTIME_API``."""
        return f"127.0.0.1:{self.port}"

    def _respond(
        self, request: Request, sock: socket.socket, client: tuple[str, int]
    ) -> bytes | None:
        if self._closed.is_set():
            return None  # a request read before close() shut the connection
        exchange = _Exchange(sock, request)
        try:
            return self._dispatch(exchange)
        except OSError:
            raise  # the worker went away or we are closing: the connection ends
        except Exception:
            # A bug here must cost one connection, never the worker's Runtime API.
            _LOG.exception("runtime API %s: unexpected error", self._name)
            body = error_body("InternalServerError", "Internal Server Error")
            return exchange.reply(500, body, close=True)

    def _dispatch(self, exchange: _Exchange) -> bytes:
        """Answer one request (:data:`~localcloud.http11.WRITTEN` once ``/next`` sent its event)."""
        request = exchange.request
        path = request.target.split("?", 1)[0]
        route = path[len(API_PREFIX) + 1 :].split("/") if path.startswith(API_PREFIX + "/") else []
        if route == ["invocation", "next"]:
            if request.method != "GET":
                return self._not_allowed(exchange, "GET")
            return self._next(exchange)
        answer = len(route) == 3 and route[0] == "invocation" and route[2] in ("response", "error")
        if not answer and route != ["init", "error"]:
            return exchange.reply(404, error_body("NotFound", f"unknown path {path[:200]}"))
        if request.method != "POST":
            return self._not_allowed(exchange, "POST")
        error_type = request.header("Lambda-Runtime-Function-Error-Type")
        try:
            if route == ["init", "error"]:
                status, reply = self._init_error(exchange, error_type)
            else:
                status, reply = self._answer(exchange, route[1], route[2], error_type)
        except _Refused as refused:
            status, reply = refused.status, refused.body
        return exchange.reply(status, reply)

    def _not_allowed(self, exchange: _Exchange, allow: str) -> bytes:
        message = f"{exchange.request.method[:20]} is not allowed here (only {allow})"
        return exchange.reply(405, error_body("MethodNotAllowed", message), {"Allow": allow})

    def _require_runtime(self, exchange: _Exchange) -> None:
        """Refuse (403) a caller outside the worker's process group; decided once per connection."""
        sock = exchange.sock
        with self._from_runtime_lock:
            from_runtime = self._from_runtime.get(sock)
        if from_runtime is None:
            process = self._backend.process
            from_runtime = process is not None and peer_in_process_group(sock, process.pid)
            with self._from_runtime_lock:
                self._from_runtime[sock] = from_runtime
        if not from_runtime:
            try:
                peer = "{}:{}".format(*sock.getpeername()[:2])
            except OSError:
                peer = "the caller"
            message = f"{peer} is not a process of this worker's runtime"
            raise _Refused(403, error_body("Forbidden", message))

    def _state(self) -> str:
        if self._pending is not None:
            return "Running"
        return "Ready" if self._initialized else "Initializing"

    def _next(self, exchange: _Exchange) -> bytes:
        try:
            self._require_runtime(exchange)
            with self._state_lock:
                if self._pending is not None:
                    # The current event has not been answered; RAPID refuses the same way.
                    raise _Refused(*_state_error(self._state(), "Ready"))
                self._initialized = True
        except _Refused as refused:
            return exchange.reply(refused.status, refused.body)
        event = self._backend.next_invocation(lambda: _peer_gone(exchange.sock))
        if event is None:
            body = error_body("Runtime.ShuttingDown", "worker is stopping")
            return exchange.reply(500, body, close=True)
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
        response = exchange.reply(200, event.body, next_headers)
        with self._state_lock:
            # Before sending: the runtime may answer as soon as the event reaches it.
            self._pending = event.request_id
        try:
            # Sent here, not by the server: a failed send must give the event back.
            exchange.sock.sendall(response)
        except OSError:
            with self._state_lock:
                if self._pending == event.request_id:
                    self._pending = None
            self._backend.undelivered(event.request_id)
            raise
        return WRITTEN

    def _check_pending(self, request_id: str, wanted: str) -> None:
        if self._pending is None:
            # Nothing in flight: before the first event, or this one is answered already.
            raise _Refused(*_state_error(self._state(), wanted))
        if request_id != self._pending:
            raise _Refused(*_INVALID_REQUEST_ID)

    def _answer(
        self, exchange: _Exchange, request_id: str, kind: str, error_type: str | None
    ) -> tuple[int, bytes]:
        """``/invocation/{id}/response`` or ``/error``: the first answer for the id counts."""
        wanted = "InvocationResponse" if kind == "response" else "InvocationErrorResponse"
        with self._state_lock:
            self._check_pending(request_id, wanted)
        self._require_runtime(exchange)
        with self._state_lock:
            self._check_pending(request_id, wanted)  # a concurrent answer may have won
            self._pending = None
        if kind == "response":
            return self._backend.invocation_response(request_id, exchange.body)
        return self._backend.invocation_error(request_id, exchange.body, error_type)

    def _init_error(self, exchange: _Exchange, error_type: str | None) -> tuple[int, bytes]:
        with self._state_lock:
            if self._initialized:
                raise _Refused(*_state_error(self._state(), "InitError"))
        self._require_runtime(exchange)
        return self._backend.init_error(exchange.body, error_type)

    def close(self) -> None:
        """Stop accepting, drop every connection; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._http.close(timeout=2)
