"""A lean HTTP/1.1 request reader shared by the local cloud's servers.

:func:`read_request` reads one request (request line, headers, body) from a buffered
socket file. It is what the local API Gateway and the local AWS endpoint parse requests
with: ``http.server.BaseHTTPRequestHandler`` parses every request's headers with the
``email`` package, which cost about a third of the endpoint's CPU per request.

What it does: keep-alive by the HTTP/1.1 and HTTP/1.0 rules, ``Content-Length`` and
``chunked`` bodies (trailers are dropped), ``Expect: 100-continue`` (the interim response
goes out just before the body is read), stray CRLFs between keep-alive requests, and
limits on the request line, the header count and the body size. What it does not: obs-fold
header continuation lines and HTTP/0.9 are rejected (RFC 9112 allows both), and the caller
writes the response.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Protocol

MAX_LINE = 65536  # bytes in the request line or in one header line
MAX_HEADERS = 200


class BadRequestError(Exception):
    """The request cannot be parsed; answer ``status`` and close the connection."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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
    # be reused (``keep_alive`` is False). The caller answers 413.
    too_large: bool = False
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
) -> Request | None:
    """Read one HTTP/1.x request; None at a clean end of the connection.

    ``sock`` is where a ``100 Continue`` goes. A body over ``max_body`` bytes is not read:
    the request comes back with ``too_large`` set. Raises :class:`BadRequestError` on a
    malformed request (status 400, 414 for a request line over ``max_line``, 431 for a
    header line over ``max_line`` or more than ``max_headers`` headers).
    """
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
