"""The shared HTTP/1.1 layer (``localcloud.http11``): the request reader, the response
writer, the server's accept loop and answer contract, and the local AWS endpoint's front
built on it, spoken to through raw sockets."""

from __future__ import annotations

import io
import json
import logging
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import pytest

from localcloud.endpoint import AwsEndpoint
from localcloud.http11 import (
    WRITTEN,
    BadRequestError,
    HttpServer,
    Reader,
    Request,
    TruncatedRequestError,
    read_request,
    response_bytes,
)

# -- the reader ---------------------------------------------------------------------------


class _Events:
    """What the reader did, in order: reads of the stream and bytes sent on the socket."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)
        self.log: list[str] = []
        self.sent = b""

    def readline(self, size: int = -1, /) -> bytes:
        return self.stream.readline(size)

    def read(self, size: int = -1, /) -> bytes:
        self.log.append(f"read {size}")
        return self.stream.read(size)

    def sendall(self, data: bytes) -> None:
        self.log.append(f"sent {data!r}")
        self.sent += data


def read(data: bytes, *, max_body: int = 1024, **limits: Any) -> tuple[Request | None, _Events]:
    events = _Events(data)
    sock = cast("socket.socket", events)
    return read_request(cast("Reader", events), sock, max_body=max_body, **limits), events


def read_one(data: bytes, **kwargs: Any) -> Request:
    request, _ = read(data, **kwargs)
    assert request is not None
    return request


def bad_request(data: bytes, **kwargs: Any) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        read(data, **kwargs)
    return caught.value


def test_a_request_with_a_body() -> None:
    request = read_one(
        b"POST /q?x=1 HTTP/1.1\r\nHost: h\r\nX-Amz-Target:  A.B \r\nx-amz-target: C.D\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )

    assert (request.method, request.target, request.version) == ("POST", "/q?x=1", "HTTP/1.1")
    assert request.body == b"hello"
    assert request.headers == [
        ("Host", "h"),
        ("X-Amz-Target", "A.B"),
        ("x-amz-target", "C.D"),
        ("Content-Length", "5"),
    ], "every header, in order, values without surrounding whitespace"
    assert request.header("X-AMZ-TARGET") == "C.D", "the last value, case-insensitively"
    assert request.header("missing") is None
    assert request.keep_alive
    assert not request.too_large


@pytest.mark.parametrize(
    "line",
    [
        b"GET /\r\n",
        b"GET / HTTP/2.0\r\n",
        b"GET / FTP/1.1\r\n",
        b"GET  / HTTP/1.1\r\n",
        b" / HTTP/1.1\r\n",
        b"garbage\r\n",
    ],
)
def test_a_malformed_request_line_is_a_bad_request(line: bytes) -> None:
    error = bad_request(line + b"Host: h\r\n\r\n")

    assert error.status == 400
    assert "malformed request line" in str(error)


def test_a_request_line_over_the_limit_is_414() -> None:
    target = b"/" + b"a" * 200
    assert read_one(b"GET " + target + b" HTTP/1.1\r\n\r\n", max_line=220).target.endswith("a")

    error = bad_request(b"GET " + target + b" HTTP/1.1\r\n\r\n", max_line=100)

    assert error.status == 414


def test_header_limits_are_431() -> None:
    ten = b"".join(b"X-%d: v\r\n" % i for i in range(10))
    assert len(read_one(b"GET / HTTP/1.1\r\n" + ten + b"\r\n", max_headers=10).headers) == 10

    too_many = bad_request(b"GET / HTTP/1.1\r\n" + ten + b"X-11: v\r\n\r\n", max_headers=10)
    too_long = bad_request(b"GET / HTTP/1.1\r\nX: " + b"v" * 100 + b"\r\n\r\n", max_line=50)

    assert (too_many.status, too_long.status) == (431, 431)


@pytest.mark.parametrize(
    "header",
    [b"NoColon\r\n", b": no name\r\n", b"Name : v\r\n", b" folded continuation\r\n"],
    ids=["no colon", "no name", "space before colon", "obs-fold"],
)
def test_a_malformed_header_is_a_bad_request(header: bytes) -> None:
    error = bad_request(b"GET / HTTP/1.1\r\nHost: h\r\n" + header + b"\r\n")

    assert error.status == 400
    assert "malformed header" in str(error)


@pytest.mark.parametrize("length", [b"abc", b"-1", b"", b"1.5"])
def test_a_bad_content_length_is_a_bad_request(length: bytes) -> None:
    error = bad_request(b"POST / HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\nx")

    assert (error.status, str(error)) == (400, "bad Content-Length")


def test_a_body_cut_short_is_a_bad_request() -> None:
    error = bad_request(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort")

    assert "closed inside the body" in str(error)


def test_a_body_over_the_limit_is_not_read_and_ends_the_connection() -> None:
    request, events = read(
        b"POST / HTTP/1.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\nhello world",
        max_body=10,
    )

    assert request is not None
    assert request.too_large
    assert not request.keep_alive
    assert request.body == b""
    assert events.log == [], "neither a 100 Continue nor a read of the body"


def test_chunked_with_extensions_and_trailers_then_the_next_request() -> None:
    stream = (
        b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b"6\r\n world\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Other: def\r\n\r\n"
        b"GET /b HTTP/1.1\r\n\r\n"
    )
    events = _Events(stream)
    rfile = cast("Reader", events)
    sock = cast("socket.socket", events)

    first = read_request(rfile, sock, max_body=1024)
    second = read_request(rfile, sock, max_body=1024)
    end = read_request(rfile, sock, max_body=1024)

    assert first is not None
    assert first.body == b"hello world"
    assert [name for name, _ in first.headers] == ["Transfer-Encoding"], "trailers dropped"
    assert second is not None
    assert (second.method, second.target, second.body) == ("GET", "/b", b"")
    assert end is None


def test_chunked_wins_over_content_length() -> None:
    request = read_one(
        b"POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )

    assert request.body == b"abc"


@pytest.mark.parametrize("size", [b"zz", b"-5", b""])
def test_a_bad_chunk_size_is_a_bad_request(size: bytes) -> None:
    error = bad_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n")

    assert str(error) == "bad chunk size"


def test_chunks_over_the_limit_end_the_connection() -> None:
    request = read_one(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\n123456\r\n6\r\n123456\r\n0\r\n\r\n",
        max_body=10,
    )

    assert request.too_large
    assert not request.keep_alive


def test_expect_100_continue_is_answered_before_the_body_is_read() -> None:
    request, events = read(
        b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc"
    )

    assert request is not None
    assert request.body == b"abc"
    assert events.log == ["sent b'HTTP/1.1 100 Continue\\r\\n\\r\\n'", "read 3"]


def test_expect_100_continue_before_a_chunked_body() -> None:
    request, events = read(
        b"PUT / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )

    assert request is not None
    assert request.body == b"abc"
    assert events.log[0] == "sent b'HTTP/1.1 100 Continue\\r\\n\\r\\n'"


def test_no_100_continue_without_a_body() -> None:
    _, events = read(b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")

    assert events.sent == b""


def test_a_clean_end_of_the_connection_is_none() -> None:
    assert read(b"")[0] is None
    assert read(b"\r\n\r\n")[0] is None, "stray CRLFs and then the end"


def test_the_connection_closed_inside_the_headers_is_a_bad_request() -> None:
    error = bad_request(b"GET / HTTP/1.1\r\nHost: h\r\n")

    assert "closed inside the headers" in str(error)


def test_stray_crlf_between_keep_alive_requests_is_skipped() -> None:
    events = _Events(b"GET /1 HTTP/1.1\r\n\r\n\r\n\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    rfile, sock = cast("Reader", events), cast("socket.socket", events)

    first = read_request(rfile, sock, max_body=0)
    second = read_request(rfile, sock, max_body=0)

    assert first is not None
    assert second is not None
    assert (first.target, second.target) == ("/1", "/2")
    assert read_request(rfile, sock, max_body=0) is None


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "close", False),
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "keep-alive", True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Close", False),
    ],
)
def test_keep_alive_rules(version: str, connection: str | None, keep_alive: bool) -> None:
    header = f"Connection: {connection}\r\n" if connection else ""

    request = read_one(f"GET / {version}\r\n{header}\r\n".encode())

    assert request.keep_alive is keep_alive


# -- the endpoint's front, through raw sockets --------------------------------------------

_ECHO_PREFIX = "/_http11_test/"


def _echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A mounted WSGI app: echoes the method and body; some paths misbehave on purpose."""
    path = environ["PATH_INFO"]
    if path.endswith("/boom"):
        raise RuntimeError("the app failed")
    body = environ["wsgi.input"].read()
    payload = json.dumps({"method": environ["REQUEST_METHOD"], "body": body.decode()}).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            # Hop-by-hop headers from the app are not the front's framing: dropped.
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "identity"),
            ("Keep-Alive", "timeout=5"),
        ],
    )
    return [payload]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[AwsEndpoint]:
    with AwsEndpoint() as served:
        served.mount(lambda path: path.startswith(_ECHO_PREFIX), _echo)
        yield served


class _Conn:
    """A raw client connection that reads responses as a client would."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.rfile = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        status_line = self.rfile.readline()
        assert status_line.startswith(b"HTTP/1.1 "), f"a status line, got {status_line!r}"
        headers: dict[str, str] = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            assert name.lower() not in headers, f"one {name} header"
            headers[name.lower()] = value.strip()
        length = 0 if head else int(headers["content-length"])
        return int(status_line.split()[1]), headers, self.rfile.read(length)

    def closed_by_server(self) -> bool:
        return self.rfile.read(1) == b""

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


@pytest.fixture
def conn(endpoint: AwsEndpoint) -> Iterator[_Conn]:
    opened = _Conn(endpoint.port)
    try:
        yield opened
    finally:
        opened.close()


def _sqs(action: str, body: dict[str, Any], *, extra: str = "") -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.{action}\r\n"
        f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(payload)}\r\n"
        f"{extra}\r\n"
    ).encode() + payload


def test_two_requests_on_one_keep_alive_connection(endpoint: AwsEndpoint, conn: _Conn) -> None:
    name = f"http11-{uuid.uuid4().hex[:8]}"

    conn.send(_sqs("CreateQueue", {"QueueName": name}))
    created = conn.response()
    conn.send(_sqs("GetQueueUrl", {"QueueName": name}))
    found = conn.response()

    assert created[0] == 200, created
    assert found[0] == 200, found
    assert json.loads(found[2])["QueueUrl"] == json.loads(created[2])["QueueUrl"]
    assert "connection" not in found[1], "HTTP/1.1 keep-alive needs no Connection header"
    assert endpoint.sqs.find_queue(json.loads(found[2])["QueueUrl"]) is not None


def test_a_chunked_body_reaches_the_service(endpoint: AwsEndpoint, conn: _Conn) -> None:
    name = f"chunked-{uuid.uuid4().hex[:8]}"
    payload = json.dumps({"QueueName": name}).encode()
    head, tail = payload[:7], payload[7:]

    conn.send(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\n"
        b"Content-Type: application/x-amz-json-1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(head):x}\r\n".encode()
        + head
        + f"\r\n{len(tail):x}\r\n".encode()
        + tail
        + b"\r\n0\r\nX-Trailer: dropped\r\n\r\n"
    )
    status, headers, body = conn.response()
    conn.send(_sqs("GetQueueUrl", {"QueueName": name}))
    found = conn.response()

    assert status == 200, body
    assert "transfer-encoding" not in headers
    assert found[0] == 200, "the connection is still usable after a chunked body"
    assert endpoint.sqs.find_queue(json.loads(body)["QueueUrl"]) is not None


def test_head_keeps_the_content_length_and_sends_no_body(conn: _Conn) -> None:
    # HEAD then GET in one write: a body after the HEAD response would corrupt the GET's.
    conn.send(
        f"HEAD {_ECHO_PREFIX}x HTTP/1.1\r\nHost: h\r\n\r\n"
        f"GET {_ECHO_PREFIX}x HTTP/1.1\r\nHost: h\r\n\r\n".encode()
    )
    head_status, head_headers, head_body = conn.response(head=True)
    get_status, get_headers, get_body = conn.response()

    assert (head_status, get_status) == (200, 200)
    assert head_body == b""
    assert json.loads(get_body) == {"method": "GET", "body": ""}
    expected_length = len(json.dumps({"method": "HEAD", "body": ""}))
    assert head_headers["content-length"] == str(expected_length)
    for headers in (head_headers, get_headers):
        assert "transfer-encoding" not in headers
        assert "keep-alive" not in headers
        assert "connection" not in headers, "the app's Connection header is dropped"


def test_expect_100_continue_through_the_endpoint(conn: _Conn) -> None:
    conn.send(
        f"PUT {_ECHO_PREFIX}x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
        "Content-Length: 4\r\n\r\n".encode()
    )
    interim = conn.rfile.readline() + conn.rfile.readline()
    conn.send(b"ping")
    status, _, body = conn.response()

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", "sent before the client sends the body"
    assert status == 200
    assert json.loads(body) == {"method": "PUT", "body": "ping"}


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"this is not http\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ],
    ids=["request line", "header", "content-length"],
)
def test_a_malformed_request_is_400_and_closes(conn: _Conn, request_bytes: bytes) -> None:
    conn.send(request_bytes)
    status, headers, body = conn.response()

    assert status == 400
    assert body.startswith(b"bad request")
    assert headers["connection"] == "close"
    assert conn.closed_by_server()


def test_connection_close_is_honoured(conn: _Conn) -> None:
    conn.send(_sqs("ListQueues", {}, extra="Connection: close\r\n"))
    status, headers, _ = conn.response()

    assert status == 200
    assert headers["connection"] == "close"
    assert conn.closed_by_server()


def test_http_1_0_closes_unless_asked_to_keep_alive(endpoint: AwsEndpoint) -> None:
    kept, closed = _Conn(endpoint.port), _Conn(endpoint.port)
    try:
        kept.send(f"GET {_ECHO_PREFIX}a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
        kept_status, kept_headers, _ = kept.response()
        kept.send(f"GET {_ECHO_PREFIX}b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
        again = kept.response()
        closed.send(f"GET {_ECHO_PREFIX}a HTTP/1.0\r\n\r\n".encode())
        closed_status, closed_headers, _ = closed.response()

        assert (kept_status, again[0], closed_status) == (200, 200, 200)
        assert kept_headers["connection"] == "keep-alive"
        assert closed_headers["connection"] == "close"
        assert closed.closed_by_server()
    finally:
        kept.close()
        closed.close()


def test_an_exception_in_dispatch_is_500_logged_and_the_connection_lives(
    conn: _Conn, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="localcloud.endpoint"):
        conn.send(f"GET {_ECHO_PREFIX}boom HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        status, headers, body = conn.response()

    conn.send(f"GET {_ECHO_PREFIX}ok HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert conn.response()[0] == 200
    assert (status, body) == (500, b"internal error")
    assert "connection" not in headers
    assert f"local AWS endpoint failed on GET {_ECHO_PREFIX}boom" in caplog.text


def test_an_unsupported_method_is_501(conn: _Conn) -> None:
    conn.send(f"TRACE {_ECHO_PREFIX}x HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    status, _, _ = conn.response()
    conn.send(f"GET {_ECHO_PREFIX}x HTTP/1.1\r\nHost: h\r\n\r\n".encode())

    assert status == 501
    assert conn.response()[0] == 200


def test_a_body_over_the_limit_is_413_and_closes(conn: _Conn) -> None:
    conn.send(
        f"PUT {_ECHO_PREFIX}x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
        f"Content-Length: {6 * 1024**3}\r\n\r\n".encode()
    )
    status, headers, _ = conn.response()

    assert status == 413
    assert headers["connection"] == "close"
    assert conn.closed_by_server()


# -- strict mode (the Lambda Runtime API's policy) ----------------------------------------


def strict(data: bytes, **kwargs: Any) -> Request:
    return read_one(data, strict=True, **kwargs)


def strict_error(data: bytes, **kwargs: Any) -> BadRequestError:
    return bad_request(data, strict=True, **kwargs)


def test_strict_joins_repeated_headers_and_refuses_conflicting_framing() -> None:
    request = strict(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nHost: h\r\nHost: h\r\n\r\n")

    assert request.header("X-A") == "1, 2"
    assert request.header("host") == "h"
    assert "conflicting Host" in str(strict_error(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"))
    both = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"
    assert "both Transfer-Encoding and Content-Length" in str(strict_error(both))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GET http://h/ HTTP/1.1\r\n\r\n", "malformed request line"),
        (b"G(T / HTTP/1.1\r\n\r\n", "malformed request line"),
        (b"GET / HTTP/1.2\r\n\r\n", "unsupported HTTP version"),
        (b"GET / HTTP/1.1\nX: y\r\n\r\n", "malformed request line"),
        (b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", "malformed header line"),
        (b"GET / HTTP/1.1\r\nX(: y\r\n\r\n", "malformed header line"),
        (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", "invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding"),
        (b"GET / HTTP/1.1\r\nHost: h\r\n", "closed in the middle of a request head"),
    ],
)
def test_strict_refuses_what_the_lenient_reader_takes(data: bytes, message: str) -> None:
    error = strict_error(data)

    assert (error.status, type(error)) == (400, BadRequestError)
    assert message in str(error)


def test_strict_limits_the_whole_head() -> None:
    head = b"GET / HTTP/1.1\r\nX: " + b"v" * 100  # 119 bytes without the final CRLFCRLF
    assert strict(head + b"\r\n\r\n", max_head=119).header("x") == "v" * 100

    error = strict_error(head + b"\r\n\r\n", max_head=118)

    assert (error.status, "request head over 118 bytes" in str(error)) == (431, True)


def test_strict_reads_and_drops_a_body_over_the_limit() -> None:
    data = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\n\r\n"
    request, events = read(data, max_body=4, strict=True)

    assert request is not None
    assert (request.body, request.body_size, request.too_large) == (b"", 10, True)
    assert request.keep_alive, "the body was read: the connection stays usable"
    assert read_request(cast("Reader", events), cast("socket.socket", events), max_body=4)


def test_strict_chunked_body_and_truncation() -> None:
    chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    request = strict(chunked + b"2\r\nab\r\n1;x=y\r\nc\r\n0\r\nT: t\r\n\r\n")
    assert (request.body, request.body_size, request.too_large) == (b"abc", 3, False)

    cut = strict_error(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc")
    cut_chunk = strict_error(chunked + b"10\r\nab")

    assert isinstance(cut, TruncatedRequestError)
    assert "after 3 of 9 bytes" in str(cut)
    assert isinstance(cut_chunk, TruncatedRequestError)
    assert "after 2 bytes" in str(cut_chunk)


# -- the response writer ------------------------------------------------------------------


def parsed(response: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers in order, body: split as a client splits a response."""
    head, separator, body = response.partition(b"\r\n\r\n")
    assert separator, f"a complete head, got {response!r}"
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, colon, value = line.partition(":")
        assert colon, f"a header line, got {line!r}"
        headers.append((name, value.strip()))
    return status_line, headers, body


def test_the_writer_frames_the_body_itself() -> None:
    status_line, headers, body = parsed(
        response_bytes(
            200,
            [
                ("X-First", "1"),
                ("content-length", "999"),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "keep-alive"),
                ("Keep-Alive", "timeout=5"),
                ("X-Last", "2"),
            ],
            b"hello",
        )
    )

    assert status_line == "HTTP/1.1 200 OK"
    assert headers == [("X-First", "1"), ("X-Last", "2"), ("Content-Length", "5")]
    assert body == b"hello"


@pytest.mark.parametrize(
    ("status", "line"),
    [(202, "HTTP/1.1 202 Accepted"), (431, "HTTP/1.1 431 Request Header Fields Too Large")],
)
def test_the_writer_says_pythons_reason_phrase(status: int, line: str) -> None:
    assert parsed(response_bytes(status, [], b""))[0] == line
    assert response_bytes(599, [], b"").startswith(b"HTTP/1.1 599 \r\n"), "unknown: empty"


def test_a_cr_or_lf_in_a_header_cannot_split_the_response() -> None:
    response = response_bytes(
        200,
        [
            ("X-Value", "a\r\nSet-Cookie: stolen=1"),
            ("X-Lf", "b\nContent-Length: 0"),
            ("X-Name\r\nInjected", "c"),
        ],
        b"body",
    )
    _, headers, body = parsed(response)

    assert headers == [
        ("X-Value", "a  Set-Cookie: stolen=1"),
        ("X-Lf", "b Content-Length: 0"),
        ("X-Name  Injected", "c"),
        ("Content-Length", "4"),
    ]
    assert body == b"body"


@pytest.mark.parametrize(
    ("declared", "length"),
    [([("Content-Length", "1234")], "1234"), ([], "5"), ([("Content-Length", "x")], "5")],
    ids=["the caller's", "the body's size", "a malformed one ignored"],
)
def test_a_head_response_has_no_body_and_the_length_a_get_would_have(
    declared: list[tuple[str, str]], length: str
) -> None:
    _, headers, body = parsed(response_bytes(200, declared, b"hello", head=True))

    assert body == b""
    assert headers == [("Content-Length", length)]


@pytest.mark.parametrize(
    ("options", "connection"),
    [
        ({}, None),
        ({"close": True}, "close"),
        ({"keep_alive_header": True}, "keep-alive"),
        ({"close": True, "keep_alive_header": True}, "close"),
    ],
    ids=["keep-alive unsaid", "close", "keep-alive said", "close wins"],
)
def test_the_connection_header(options: dict[str, bool], connection: str | None) -> None:
    close, keep_alive_header = options.get("close", False), options.get("keep_alive_header", False)
    _, headers, _ = parsed(
        response_bytes(204, [], b"", close=close, keep_alive_header=keep_alive_header)
    )

    assert [value for name, value in headers if name == "Connection"] == (
        [connection] if connection else []
    )


def test_a_default_content_type_only_when_the_caller_gave_none() -> None:
    _, defaulted, _ = parsed(response_bytes(200, [], b"{}", content_type="application/json"))
    _, given, _ = parsed(
        response_bytes(200, [("content-type", "text/plain")], b"x", content_type="application/json")
    )
    _, none, _ = parsed(response_bytes(200, [], b"x"))

    assert ("Content-Type", "application/json") in defaulted
    assert [name.lower() for name, _ in given].count("content-type") == 1
    assert ("content-type", "text/plain") in given
    assert not any(name.lower() == "content-type" for name, _ in none)


def test_the_head_encoding_and_what_it_cannot_encode() -> None:
    headers = [("Location", "/t\u00e2che"), ("X-Snowman", "\u2603")]

    latin = response_bytes(200, headers, b"")
    utf8 = response_bytes(200, headers, b"", encoding="utf-8")

    assert b"Location: /t\xe2che\r\n" in latin
    assert b"X-Snowman: ?\r\n" in latin, "replaced, never an exception"
    assert b"Location: /t\xc3\xa2che\r\n" in utf8
    assert b"X-Snowman: \xe2\x98\x83\r\n" in utf8


# -- the server: answers and the accept loop ----------------------------------------------


def _serve(respond: Callable[..., bytes | None], **options: Any) -> HttpServer:
    return HttpServer(
        ("127.0.0.1", 0),
        respond,
        bad_request=lambda error: response_bytes(error.status, [], str(error).encode(), close=True),
        max_body=1024,
        **options,
    ).serve_in_thread("http11-test")


@pytest.fixture
def served() -> Iterator[list[HttpServer]]:
    servers: list[HttpServer] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def _answer_by_path(request: Request, sock: socket.socket, _: tuple[str, int]) -> bytes | None:
    """``/self`` writes its own answer, ``/last`` answers then closes, ``/drop`` closes."""
    if request.target == "/drop":
        return None
    if request.target == "/self":
        sock.sendall(response_bytes(200, [], b"self"))
        return WRITTEN
    if request.target == "/last":
        request.keep_alive = False
        return response_bytes(200, [], b"last", close=True)
    return response_bytes(200, [], request.target[1:].encode())


def test_the_answer_contract(served: list[HttpServer]) -> None:
    server = _serve(_answer_by_path)
    served.append(server)
    client = _Conn(server.port)
    try:
        for target in ("/a", "/self", "/b", "/last"):
            client.send(f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
            assert client.response()[2] == target[1:].encode()
        assert client.closed_by_server(), "closed after the answer that said so"
    finally:
        client.close()
    dropped = _Conn(server.port)
    try:
        dropped.send(b"GET /drop HTTP/1.1\r\nHost: h\r\n\r\n")
        assert dropped.closed_by_server(), "None: closed without an answer"
    finally:
        dropped.close()


def test_strict_servers_read_strictly(served: list[HttpServer]) -> None:
    lenient, strict_server = _serve(_answer_by_path), _serve(_answer_by_path, strict=True)
    served += [lenient, strict_server]
    request = b"GET /x HTTP/1.1\r\nX: a\x01b\r\n\r\n"  # a control character in a value

    answers = []
    for server in (lenient, strict_server):
        client = _Conn(server.port)
        try:
            client.send(request)
            answers.append(client.response())
        finally:
            client.close()

    assert answers[0][0] == 200
    assert answers[1][0] == 400
    assert b"malformed header line" in answers[1][2]


def test_close_stops_the_accept_loop_and_drops_idle_connections(served: list[HttpServer]) -> None:
    server = _serve(_answer_by_path)
    port = server.port
    idle = _Conn(port)
    try:
        idle.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
        assert idle.response()[0] == 200
        loop = server._thread
        assert loop is not None
        assert loop.is_alive()

        server.close()

        assert not loop.is_alive(), "close() returns once the accept loop has ended"
        assert idle.closed_by_server()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        server.close()  # idempotent
    finally:
        idle.close()


def test_shutdown_before_the_loop_started_does_not_wait() -> None:
    server = HttpServer(
        ("127.0.0.1", 0), _answer_by_path, bad_request=lambda error: b"", max_body=1
    )
    server.shutdown()  # no loop is running: returns, and a loop started later ends at once
    server.serve_forever()
    server.server_close()
