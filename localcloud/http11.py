"""The HTTP/1.1 layer of the local cloud's servers: a lean request reader and one server.

:func:`read_request` reads one request (request line, headers, body) from a buffered
socket file: ``http.server.BaseHTTPRequestHandler`` parses every request's headers with
the ``email`` package, which cost about a third of the endpoint's CPU per request.
:class:`HttpServer` serves with it (a thread per connection, keep-alive, connection
tracking so that stopping closes idle connections, one write per response, an accept loop
that stops at once); the local AWS endpoint, the API Gateway front and every Lambda
worker's Runtime API are each one.

What it does: keep-alive by the HTTP/1.1 and HTTP/1.0 rules, ``Content-Length`` and
``chunked`` bodies (trailers are dropped), ``Expect: 100-continue`` (the interim response
goes out just before the body is read), stray CRLFs between keep-alive requests, and
limits on the request line, the header count and the body size. What it does not: obs-fold
header continuation lines and HTTP/0.9 are rejected (RFC 9112 allows both).

:func:`response_bytes` writes every response of the three servers (the endpoint, the API
Gateway front, the Lambda Runtime API) as one buffer for one ``sendall``; its options are
where they differ (see its docstring).

``strict=True`` is the Lambda Runtime API's policy (RAPID answers malformed requests with
clear 4xx): the method and header names must be RFC 9110 tokens, the target origin-form
without control characters, the version HTTP/1.0 or HTTP/1.1, every line CRLF-terminated,
header values free of control characters; repeated ``Content-Length``, ``Transfer-Encoding``
or ``Host`` headers must agree and other repeats are joined with ", "; both framings at once,
a transfer coding other than ``chunked`` or a ``Content-Length`` that is not plain digits
are refused. The whole head is limited (``max_head``, 431) rather than each line; a body over
``max_body`` is read and dropped (only its size kept, the connection stays usable); a body
the peer ends early raises :class:`TruncatedRequestError`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import selectors
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol, cast

logger = logging.getLogger(__name__)

MAX_LINE = 65536  # bytes in the request line or in one header line
MAX_HEADERS = 200
# Strict mode's limit on the whole head (request line and headers, without the final
# CRLFCRLF): Go's net/http default (RAPID's server), 1 MiB of header plus slack.
MAX_HEAD = 1024 * 1024 + 4096
_DROP_BYTES = 256 * 1024  # an over-limit body is read and dropped in pieces this big
_MAX_CHUNK_LINE = 4096
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token (method, header name)
_CTL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters other than tab
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX = re.compile(r"[0-9A-Fa-f]{1,15}")
_VERSIONS = ("HTTP/1.1", "HTTP/1.0")
_READ_BUFFER = 65536  # per connection; a larger read goes to the socket directly
_SINGLE_HEADERS = ("content-length", "transfer-encoding", "host")


class BadRequestError(Exception):
    """The request cannot be parsed; answer ``status`` and close the connection."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TruncatedRequestError(BadRequestError):
    """Strict mode: the peer ended the request body early (closed or half-closed its side)."""

    def __init__(self, got: int, expected: int | None) -> None:
        of = f" of {expected}" if expected is not None else ""
        super().__init__(f"HTTP request detected as truncated: body ended after {got}{of} bytes")


@dataclass(slots=True)
class Request:
    """One request. ``target`` is the request target as sent (path and query)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes
    keep_alive: bool
    # The declared body was over the limit: it was not read, and the connection cannot
    # be reused (``keep_alive`` is False). The caller answers 413. In strict mode the body
    # was read and dropped instead (``body`` is empty, ``body_size`` its size) and the
    # connection stays usable.
    too_large: bool = False
    body_size: int = 0  # strict mode: the body's size, read or dropped
    _lowered: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """Last value of a header, case-insensitively."""
        if self._lowered is None:
            self._lowered = {key.lower(): value for key, value in self.headers}
        return self._lowered.get(name.lower())


class Reader(Protocol):
    """The part of a buffered binary socket file the reader uses."""

    def readline(self, size: int = -1, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


def read_request(
    rfile: Reader,
    sock: socket.socket,
    *,
    max_body: int,
    max_line: int = MAX_LINE,
    max_headers: int = MAX_HEADERS,
    strict: bool = False,
    max_head: int = MAX_HEAD,
) -> Request | None:
    """Read one HTTP/1.x request; None at a clean end of the connection.

    ``sock`` is where a ``100 Continue`` goes. A body over ``max_body`` bytes is not read:
    the request comes back with ``too_large`` set. Raises :class:`BadRequestError` on a
    malformed request (status 400, 414 for a request line over ``max_line``, 431 for a
    header line over ``max_line`` or more than ``max_headers`` headers).

    ``strict`` applies the Runtime API's policy (see the module docstring); ``max_head``
    then limits the head, and ``max_line`` and ``max_headers`` do not apply.
    """
    if strict:
        return _read_strict(rfile, sock, max_body, max_head)
    line = rfile.readline(max_line + 1)
    while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between keep-alive requests
        line = rfile.readline(max_line + 1)
    if not line:
        return None
    if len(line) > max_line:
        raise BadRequestError("request line too long", 414)
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0] or not parts[1]:
        raise BadRequestError(f"malformed request line {line[:100]!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    while True:
        raw = rfile.readline(max_line + 1)
        if not raw:
            raise BadRequestError("connection closed inside the headers")
        if raw in (b"\r\n", b"\n"):
            break
        if len(raw) > max_line or len(headers) >= max_headers:
            raise BadRequestError("headers too large", 431)
        name, colon, value = raw.decode("latin-1").partition(":")
        # A name with whitespace around it (or an obs-fold line starting with a space) is
        # malformed: RFC 9112 section 5.1 says reject it.
        if not colon or not name or name != name.strip():
            raise BadRequestError(f"malformed header {raw[:100]!r}")
        headers.append((name, value.strip()))
    request = Request(method, target, version, headers, b"", keep_alive=True)
    connection = (request.header("Connection") or "").lower()
    if version == "HTTP/1.0":
        request.keep_alive = "keep-alive" in connection
    else:
        request.keep_alive = "close" not in connection

    transfer_encoding = (request.header("Transfer-Encoding") or "").lower()
    length_header = request.header("Content-Length")
    if "chunked" in transfer_encoding:  # chunked wins over a Content-Length (RFC 9112 6.3)
        _continue_if_expected(request, sock)
        request.body = _read_chunked(rfile, request, max_body, max_line, max_headers)
    elif length_header is not None:
        try:
            length = int(length_header)
        except ValueError:
            raise BadRequestError("bad Content-Length") from None
        if length < 0:
            raise BadRequestError("bad Content-Length")
        if length > max_body:
            # Do not read (or accept) a body we refuse; the connection cannot be reused.
            request.too_large = True
            request.keep_alive = False
            return request
        if length:
            _continue_if_expected(request, sock)
            body = rfile.read(length)
            if len(body) != length:
                raise BadRequestError("connection closed inside the body")
            request.body = body
    return request


def _continue_if_expected(request: Request, sock: socket.socket) -> None:
    if (request.header("Expect") or "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _read_chunked(
    rfile: Reader, request: Request, max_body: int, max_line: int, max_trailers: int
) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = rfile.readline(max_line + 1)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequestError("bad chunk size") from None
        if size < 0:
            raise BadRequestError("bad chunk size")
        if size == 0:
            for _ in range(max_trailers + 1):
                if rfile.readline(max_line + 1) in (b"\r\n", b"\n", b""):
                    return b"".join(chunks)  # trailers are dropped
            raise BadRequestError("too many trailers", 431)
        total += size
        if total > max_body:
            request.too_large = True
            request.keep_alive = False
            return b""
        chunk = rfile.read(size)
        rfile.readline(max_line + 1)
        if len(chunk) != size:
            raise BadRequestError("connection closed inside a chunk")
        chunks.append(chunk)


# -- strict mode (the Lambda Runtime API) -------------------------------------------------


def _read_strict(
    rfile: Reader, sock: socket.socket, max_body: int, max_head: int
) -> Request | None:
    line = rfile.readline(max_head + 3)
    while line == b"\r\n":  # RFC 9112 2.2: ignore empty lines before a request line
        line = rfile.readline(max_head + 3)
    if not line:
        return None
    lines: list[bytes] = []
    used = 0  # the head's bytes so far, each line's CRLF included
    while True:
        limit = max(max_head + 2 - used, 0) + 3
        if not line.endswith(b"\n") and len(line) < limit:
            raise BadRequestError("connection closed in the middle of a request head")
        if line == b"\r\n":
            break
        used += len(line)
        if used > max_head + 2:  # the head without its final CRLFCRLF is over max_head
            raise BadRequestError(f"request head over {max_head} bytes", 431)
        lines.append(line)
        line = rfile.readline(limit)
    request_line = lines[0].decode("latin-1")
    parts = request_line[:-2].split(" ") if request_line.endswith("\r\n") else []
    if (
        len(parts) != 3
        or not _TOKEN.fullmatch(parts[0])
        or not parts[1].startswith("/")
        or _CTL.search(parts[1])
    ):
        raise BadRequestError(f"malformed request line {request_line.rstrip()[:200]!r}")
    if parts[2] not in _VERSIONS:
        raise BadRequestError(f"unsupported HTTP version {parts[2][:20]!r}")
    headers: list[tuple[str, str]] = []
    index: dict[str, int] = {}
    for raw in lines[1:]:
        text = raw.decode("latin-1")
        name, sep, value = (text[:-2] if text.endswith("\r\n") else text).partition(":")
        # No obsolete line folding, no space before the colon, no control characters.
        if not text.endswith("\r\n") or not sep or not _TOKEN.fullmatch(name) or _CTL.search(value):
            raise BadRequestError(f"malformed header line {text.rstrip()[:200]!r}")
        key, value = name.lower(), value.strip(" \t")
        at = index.get(key)
        if at is None:
            index[key] = len(headers)
            headers.append((name, value))
        elif key in _SINGLE_HEADERS:
            if headers[at][1] != value:
                raise BadRequestError(f"conflicting {name} headers")
        else:
            headers[at] = (headers[at][0], f"{headers[at][1]}, {value}")
    method, target, version = parts
    request = Request(method, target, version, headers, b"", keep_alive=True)
    request._lowered = {key: headers[at][1] for key, at in index.items()}
    connection = (request.header("Connection") or "").lower()
    if version == "HTTP/1.0":
        request.keep_alive = "keep-alive" in connection
    else:
        request.keep_alive = "close" not in connection

    coding = request.header("Transfer-Encoding")
    length = request.header("Content-Length")
    if coding is not None:
        if length is not None:
            # Two framings: which one ends the body is ambiguous (request smuggling).
            raise BadRequestError("both Transfer-Encoding and Content-Length")
        if coding.lower() != "chunked":
            raise BadRequestError(f"unsupported Transfer-Encoding {coding[:50]!r}")
        _continue_if_expected(request, sock)
        _read_chunked_strict(rfile, request, max_body)
    elif length is not None:  # RFC 9112 6.3: no framing, no body
        if not _DIGITS.fullmatch(length):
            raise BadRequestError(f"invalid Content-Length {length[:50]!r}")
        size = int(length)
        if size:
            _continue_if_expected(request, sock)
        request.too_large = size > max_body
        request.body = _take(rfile, size, keep=not request.too_large, expected=size)
        request.body_size = size
    return request


def _take(
    rfile: Reader, size: int, *, keep: bool, got: int = 0, expected: int | None = None
) -> bytes:
    """Consume exactly ``size`` body bytes; keep them, or drop them as they arrive."""
    if keep:
        data = rfile.read(size) if size else b""
        if len(data) != size:
            raise TruncatedRequestError(got + len(data), expected)
        return data
    remaining = size
    while remaining > 0:
        piece = rfile.read(min(remaining, _DROP_BYTES))
        if not piece:
            raise TruncatedRequestError(got + size - remaining, expected)
        remaining -= len(piece)
    return b""


def _chunk_line(rfile: Reader, got: int) -> bytes | None:
    """A chunk-size or trailer line without its CRLF; None if it does not end in CRLF."""
    line = rfile.readline(_MAX_CHUNK_LINE + 3)
    if not line.endswith(b"\n"):
        if len(line) > _MAX_CHUNK_LINE:
            raise BadRequestError("chunk header line too long")
        raise TruncatedRequestError(got, None)
    return line[:-2] if line.endswith(b"\r\n") else None


def _read_chunked_strict(rfile: Reader, request: Request, max_body: int) -> None:
    kept: list[bytes] = []
    size = 0
    while True:
        line = _chunk_line(rfile, size)
        size_text = b"" if line is None else line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text.decode("latin-1")):
            raise BadRequestError(f"bad chunk size {size_text[:20]!r}")
        chunk_size = int(size_text, 16)
        if chunk_size == 0:
            while True:  # trailers (dropped), up to the empty line
                trailer = _chunk_line(rfile, size)
                if trailer is None:
                    raise BadRequestError("malformed trailer line")
                if not trailer:
                    break
            break
        keep = size + chunk_size <= max_body
        data = _take(rfile, chunk_size, keep=keep, got=size)
        size += chunk_size
        if keep:
            kept.append(data)
        else:
            kept.clear()
        crlf = rfile.read(2)
        if len(crlf) != 2:
            raise TruncatedRequestError(size + len(crlf), None)
        if crlf != b"\r\n":
            raise BadRequestError("chunk data not followed by CRLF")
    request.too_large = size > max_body
    request.body = b"" if request.too_large else b"".join(kept)
    request.body_size = size


def linger(sock: socket.socket, seconds: float = 1.0, limit: int = 16 * 1024 * 1024) -> None:
    """Before closing after an error: stop sending, then read (bounded) until the peer ends.

    Closing a socket with unread input makes the kernel reset the connection, and the peer
    may then lose the error answer before reading it.
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        drained = 0
        while drained < limit:
            chunk = sock.recv(_DROP_BYTES)
            if not chunk:
                break
            drained += len(chunk)


# -- the response writer ------------------------------------------------------------------

# Framing and connection headers belong to the writer: a caller's are dropped (a handler
# that passes its own Content-Length or Transfer-Encoding would frame the body twice).
_FRAMING_HEADERS = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})
_REASONS = {status.value: status.phrase for status in HTTPStatus}


def response_bytes(
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    head: bool = False,
    close: bool = False,
    keep_alive_header: bool = False,
    content_type: str | None = None,
    encoding: str = "latin-1",
) -> bytes:
    """One response, status line to body, for ONE write (see :class:`HttpServer`).

    Always: the reason phrase is Python's (``HTTPStatus``; empty for an unknown status);
    ``Content-Length`` is the writer's and the caller's framing headers (``Connection``,
    ``Content-Length``, ``Keep-Alive``, ``Transfer-Encoding``) are dropped; a CR or LF in a
    header name or value becomes a space, so no value can split the response. The options
    are where the servers differ:

    - ``head``: the answer to a HEAD request: no body, and the ``Content-Length`` a GET would
      get: the one in ``headers`` if the caller gave one, else the size of ``body``.
    - ``close``: ``Connection: close`` (the caller then closes the connection).
    - ``keep_alive_header``: ``Connection: keep-alive`` when not closing: what an HTTP/1.0
      client needs to keep the connection, and what API Gateway always sends.
    - ``content_type``: the ``Content-Type`` when ``headers`` have none (the Runtime API's
      ``application/json``).
    - ``encoding`` of the status line and headers: ``latin-1`` (HTTP's historical header
      charset) or ``utf-8`` (API Gateway sends an integration's header values as UTF-8); a
      character it cannot encode becomes ``?`` rather than an error.
    """
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}"]
    declared: str | None = None
    typed = content_type is None
    for name, value in headers:
        lowered = name.lower()
        if lowered in _FRAMING_HEADERS:
            if lowered == "content-length":
                declared = value
            continue
        if lowered == "content-type":
            typed = True
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line:
            line = line.replace("\r", " ").replace("\n", " ")
        lines.append(line)
    if not typed:
        lines.append(f"Content-Type: {content_type}")
    if head:
        declared = (declared or "").strip()
        length = declared if declared.isascii() and declared.isdigit() else str(len(body))
        body = b""
    else:
        length = str(len(body))
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    elif keep_alive_header:
        lines.append("Connection: keep-alive")
    lines.append("\r\n")
    return "\r\n".join(lines).encode(encoding, "replace") + body


# -- the server ---------------------------------------------------------------------------

Respond = Callable[[Request, socket.socket, tuple[str, int]], "bytes | None"]
"""Answers one request: the whole response (head and body), which the server sends in one
write; :data:`WRITTEN` when the callback wrote its answer on the socket itself (one
``sendall``); None when the connection must close without another word. After an answer the
connection stays open while ``request.keep_alive`` is true: a callback that must close after
its answer sets it False."""

WRITTEN = b""
"""What a :data:`Respond` callback returns when it sent the answer itself."""

_ACCEPT_RETRY = frozenset({errno.ECONNABORTED, errno.EINTR, errno.EPROTO, errno.EPERM})
_ACCEPT_BACKOFF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_BACKOFF_S = 0.1


class ConnectionTracking:
    """Remembers accepted sockets so that stopping can close idle keep-alive connections.

    A mixin for a ``socketserver`` server: it wraps ``get_request`` and
    ``shutdown_request``. Call :meth:`_init_tracking` before the server's ``__init__``.
    """

    def _init_tracking(self) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()  # type: ignore[misc]
        with self._connections_lock:
            self._connections.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def close_connections(self) -> None:
        """Shut down every open connection (its handler thread then ends)."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class HttpServer(ConnectionTracking, socketserver.ThreadingTCPServer):
    """The local cloud's HTTP/1.1 server: a thread per connection, requests read by
    :func:`read_request`, keep-alive until the client (or an error) ends it, each response
    sent in one write with ``TCP_NODELAY`` (with Nagle on one side and delayed ACKs on the
    other, a response written in pieces waits ~40 ms for an ACK). The local AWS endpoint,
    the API Gateway front and each Lambda worker's Runtime API are one.

    ``respond`` answers a request (see :data:`Respond`); ``bad_request`` answers one that
    cannot be parsed (the connection then closes, after ``linger_s`` of reading what the
    client still sends, if given: see :func:`linger`). ``strict`` and ``max_head`` are the
    reader's (:func:`read_request`). ``idle_timeout_s`` closes a connection idle that long.
    ``TCPServer.server_bind`` is used as is: ``HTTPServer``'s resolves the host's FQDN, a
    DNS lookup nothing here needs.

    The accept loop does not poll: it waits on the listening socket and a wake-up socket
    pair, so :meth:`shutdown` (and :meth:`close`) return at once, where ``socketserver``'s
    loop notices a shutdown only at its next poll (up to ``poll_interval`` later: 0.1 s on
    every Lambda worker's close).
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        respond: Respond,
        *,
        bad_request: Callable[[BadRequestError], bytes],
        max_body: int,
        strict: bool = False,
        max_head: int = MAX_HEAD,
        linger_s: float | None = None,
        idle_timeout_s: float | None = None,
        backlog: int = 128,
    ) -> None:
        self.respond = respond
        self.bad_request = bad_request
        self.max_body = max_body
        self.strict = strict
        self.max_head = max_head
        self.linger_s = linger_s
        self.idle_timeout_s = idle_timeout_s
        self.request_queue_size = backlog
        self._thread: threading.Thread | None = None
        self._connection_thread_name = "http-connection"
        self._stopping = threading.Event()
        self._loop_done = threading.Event()
        self._loop_done.set()  # no loop running: shutdown() has nothing to wait for
        self._wake_read, self._wake_write = socket.socketpair()
        self._init_tracking()
        try:
            super().__init__(address, _ConnectionHandler)
        except BaseException:
            self._wake_read.close()
            self._wake_write.close()
            raise

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept connections until :meth:`shutdown` (``poll_interval`` is ignored: the
        loop sleeps in ``select`` until a connection or the wake-up arrives)."""
        self._loop_done.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_read, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    ready = selector.select()
                    if self._stopping.is_set():
                        return
                    if any(key.fileobj is self.socket for key, _ in ready):
                        self._accept_one()
        finally:
            self._loop_done.set()

    def _accept_one(self) -> None:
        try:
            sock, client = self.get_request()
        except OSError as error:
            if error.errno in _ACCEPT_BACKOFF:  # out of descriptors: let some close first
                self._stopping.wait(_ACCEPT_BACKOFF_S)
            elif error.errno not in _ACCEPT_RETRY and not self._stopping.is_set():
                logger.warning("HTTP server on port %s: accept failed: %s", self.port, error)
            return
        try:
            self.process_request(sock, client)
        except Exception:
            self.handle_error(sock, client)
            self.shutdown_request(sock)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection (named after the server's, for thread dumps)."""
        threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=self._connection_thread_name,
            daemon=True,
        ).start()

    def shutdown(self) -> None:
        """Stop the accept loop and wait until it has stopped; immediate, idempotent."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        self._loop_done.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_read.close()
        self._wake_write.close()

    def serve_in_thread(self, name: str) -> HttpServer:
        """Serve from a daemon thread until :meth:`close`; returns self."""
        self._connection_thread_name = f"{name}-connection"
        self._thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection and release the port; idempotent."""
        self.shutdown()
        self.close_connections()
        self.server_close()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)


class _ConnectionHandler(socketserver.BaseRequestHandler):
    """One connection's requests, answered until the client, an error or a close ends it."""

    server: HttpServer

    def handle(self) -> None:
        server = self.server
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if server.idle_timeout_s is not None:
            sock.settimeout(server.idle_timeout_s)
        raw_file = sock.makefile("rb", buffering=_READ_BUFFER)
        rfile = cast("Reader", raw_file)
        try:
            while True:
                try:
                    request = read_request(
                        rfile,
                        sock,
                        max_body=server.max_body,
                        strict=server.strict,
                        max_head=server.max_head,
                    )
                except BadRequestError as error:
                    sock.sendall(server.bad_request(error))
                    if server.linger_s is not None:
                        linger(sock, server.linger_s)
                    return
                if request is None:
                    return
                response = server.respond(request, sock, self.client_address)
                if response is None:
                    return
                if response:
                    sock.sendall(response)
                if not request.keep_alive:
                    return
        except (OSError, ValueError):
            return  # the client went away, an idle timeout, or close() shut the socket
        finally:
            raw_file.close()
