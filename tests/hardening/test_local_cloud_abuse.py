"""The local cloud under abuse: malformed SQS requests at the local AWS endpoint, and
malformed Lambda Runtime API requests at a worker while a real function is being invoked.
Each gets an AWS-shaped error, and the service keeps serving without losing or doubling an
invocation. Then functions that flood their output or never return: the invocation ends as
Lambda's would, the logs are cut as CloudWatch's are, and memory and processes stay bounded."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.waiting import wait_until
from localcloud.clients import client_factory
from localcloud.endpoint import AwsEndpoint
from localcloud.inprocess import InProcessLogsClient
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.testing import function_spec, pid_alive
from localcloud.specs import FunctionSpec, InvokeResult
from localcloud.telemetry import MAX_LOG_EVENT_BYTES

JSON_10 = "application/x-amz-json-1.0"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[AwsEndpoint]:
    """A bare local AWS endpoint (no stack needed for SQS abuse)."""
    with AwsEndpoint() as running:
        yield running


def _post(endpoint: AwsEndpoint, action: str, body: bytes) -> requests.Response:
    headers = {"Content-Type": JSON_10, "X-Amz-Target": f"AmazonSQS.{action}"}
    return requests.post(endpoint.url + "/", headers=headers, data=body, timeout=30)


@pytest.fixture(scope="module")
def queue_url(endpoint: AwsEndpoint) -> str:
    body = b'{"QueueName": "abuse.fifo", "Attributes": {"FifoQueue": "true"}}'
    answer = _post(endpoint, "CreateQueue", body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["QueueUrl"])


@pytest.mark.parametrize(
    ("action", "body", "error_type"),
    [
        ("SendMessage", b"{not json", "SerializationException"),
        ("SendMessage", b"[1, 2]", "SerializationException"),
        ("Explode", b"{}", "UnknownOperationException"),
    ],
)
def test_malformed_requests_get_aws_shaped_errors(
    endpoint: AwsEndpoint, action: str, body: bytes, error_type: str
) -> None:
    answer = _post(endpoint, action, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["__type"].endswith(f"#{error_type}"), answer.text
    assert answer.headers["x-amzn-query-error"].endswith(";Sender")
    assert _post(endpoint, "ListQueues", b"{}").status_code == 200, "the endpoint stopped serving"


def test_a_huge_message_is_refused_and_the_endpoint_keeps_serving(
    endpoint: AwsEndpoint, queue_url: str
) -> None:
    huge = (
        b'{"QueueUrl": "%s", "MessageBody": "%s", "MessageGroupId": "g", '
        % (
            queue_url.encode(),
            b"a" * (3 * 1024 * 1024),
        )
        + b'"MessageDeduplicationId": "d"}'
    )
    answer = _post(endpoint, "SendMessage", huge)
    assert answer.status_code == 400, answer.text[:300]
    # AWS's answer to a body over the 1 MiB message limit (__type as AWS recorded it:
    # tests/parity, test_send_oversized_message).
    assert answer.json()["__type"].endswith("#InvalidParameterValueException"), answer.text[:300]
    assert answer.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    small = (
        b'{"QueueUrl": "%s", "MessageBody": "ok", "MessageGroupId": "g", ' % (queue_url.encode())
        + b'"MessageDeduplicationId": "d2"}'
    )
    sent = _post(endpoint, "SendMessage", small)
    assert sent.status_code == 200, sent.text


# -- the Lambda Runtime API -------------------------------------------------------------------

RUNTIME = "/2018-06-01/runtime"
MIB = 1024 * 1024
# Deployed from a temporary directory. Besides echoing, it answers its own invocation through
# the Runtime API (it runs inside the worker, so it is allowed to), reports to the test over
# a loopback socket, then waits for the test's word: meanwhile its invocation is in flight.
PROBE_SOURCE = r"""
import http.client
import json
import os
import socket

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
INVOCATION = "/2018-06-01/runtime/invocation/"


def _post_own(request_id, body):
    host, port = API.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    conn.request("POST", INVOCATION + request_id + "/response", body=body)
    answer = conn.getresponse()
    return {"status": answer.status, "body": json.loads(answer.read())}


def _truncated_own(request_id):
    host, port = API.split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        head = f"POST {INVOCATION}{request_id}/response HTTP/1.1\r\nHost: x\r\n"
        sock.sendall(head.encode() + b"Content-Length: 100\r\n\r\n" + b'{"cut": ')
        sock.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return {"status": answer.status, "body": json.loads(answer.read())}


def handler(event, context):
    rid = context.aws_request_id
    report = {"request_id": rid, "api": API, "pid": os.getpid()}
    action = event.get("action", "echo")
    if action == "echo":
        return report
    if action == "raise_big":
        raise ValueError("e" * int(event["size"]))
    if action == "answer_twice":
        first = _post_own(rid, b'{"answer": "first"}')
        report["answers"] = [first, _post_own(rid, b'{"answer": "second"}')]
    elif action == "answer_huge":
        report["answers"] = [_post_own(rid, b'"' + b"z" * int(event["size"]) + b'"')]
    elif action == "answer_truncated":
        report["answers"] = [_truncated_own(rid)]
    with socket.create_connection(("127.0.0.1", int(event["port"])), timeout=20) as conn:
        conn.sendall(json.dumps(report).encode() + b"\n")
        conn.recv(1)
    return {"request_id": rid, "answer": "returned"}
"""


@dataclass
class _Ledger:
    """Invocations this module started, to compare with the service's own count."""

    issued: int = 0
    errors: int = 0


@dataclass
class _Probe:
    service: LambdaService
    name: str
    listener: socket.socket
    ledger: _Ledger

    def invoke(self, **event: Any) -> InvokeResult:
        self.ledger.issued += 1
        return self.service.invoke(self.name, json.dumps(event).encode())

    def assert_serving(self) -> InvokeResult:
        """A normal invoke still works and every invocation was counted exactly once."""
        result = self.invoke(action="echo")
        assert result.function_error is None, result.payload
        assert json.loads(result.payload)["request_id"] == result.extra["RequestId"]
        stats = self.service.stats()[self.name]
        assert (stats.invocations, stats.errors) == (self.ledger.issued, self.ledger.errors)
        assert stats.busy_workers == 0
        return result


@pytest.fixture(scope="module")
def probe(endpoint: AwsEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Probe]:
    """A deployed function with two execution environments, and a socket its handler calls."""
    code_dir = tmp_path_factory.mktemp("runtime-abuse")
    (code_dir / "abuse_probe.py").write_text(PROBE_SOURCE)
    spec = function_spec(
        Path(code_dir),
        "abuse_probe.handler",
        prefix="abuse",
        region=endpoint.region,
        timeout_s=30,
        reserved_concurrency=2,
    )
    with (
        LambdaService(
            endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
        ) as service,
        socket.create_server(("127.0.0.1", 0)) as listener,
    ):
        service.add_function(spec)
        yield _Probe(service, spec.function_name, listener, _Ledger())


@dataclass
class _Held:
    """An invocation in flight: what its handler reported, then (after release) its result."""

    report: dict[str, Any]
    result: InvokeResult | None = None

    @property
    def api(self) -> str:
        return str(self.report["api"])

    @property
    def request_id(self) -> str:
        return str(self.report["request_id"])

    def assert_returned(self) -> InvokeResult:
        """The invocation ended with its handler's own answer; returns its result."""
        assert self.result is not None
        assert self.result.function_error is None, self.result.payload
        assert json.loads(self.result.payload) == {
            "request_id": self.request_id,
            "answer": "returned",
        }
        return self.result


def _accept_handler(listener: socket.socket, invoke: Future[InvokeResult]) -> socket.socket:
    """The handler's call-back connection; fails at once if the invoke ends without it."""
    deadline = time.monotonic() + 30
    listener.settimeout(0.2)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if invoke.done():
                raise AssertionError(
                    f"invoke ended before its handler called back: {invoke.result()!r}"
                ) from None
            if time.monotonic() > deadline:
                raise TimeoutError("timed out after 30s waiting for the handler") from None
            continue
        conn.settimeout(30)
        return conn


@contextlib.contextmanager
def _in_flight(probe: _Probe, action: str = "hold", **event: Any) -> Iterator[_Held]:
    """Invoke ``action`` and hold the invocation in flight until the block ends."""
    port = probe.listener.getsockname()[1]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(probe.invoke, action=action, port=port, **event)
        conn = _accept_handler(probe.listener, future)
        try:
            held = _Held(json.loads(conn.makefile("rb").readline()))
            yield held
        finally:
            with contextlib.suppress(OSError):
                conn.sendall(b"!")  # the handler's word to return
            conn.close()
        held.result = future.result(timeout=30)


def _request(
    method: str,
    path: str,
    body: bytes | None = None,
    headers: tuple[str, ...] = (),
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    framed = any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers)
    if body is not None and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _raw(api: str, data: bytes, *, half_close: bool = False) -> tuple[int, dict[str, Any]]:
    """Send ``data`` as is on a new connection; the status and JSON body of the answer."""
    host, port = api.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        body = answer.read()
    return answer.status, json.loads(body)


def _unknown_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class _Case:
    """A malformed request (built from the in-flight request id) and RAPID's kind of answer."""

    build: Callable[[str], bytes]
    status: int
    error_type: str
    message: str  # a fragment of the errorMessage: the request was refused for this reason
    half_close: bool = False  # end our side after sending (a truncated request)


def _post_in_flight(kind: str, body: bytes | None, *headers: str) -> Callable[[str], bytes]:
    """A POST to ``/invocation/<in-flight id>/<kind>``."""
    return lambda rid: _request("POST", f"{RUNTIME}/invocation/{rid}/{kind}", body, headers)


def _post_unknown(kind: str, body: bytes) -> Callable[[str], bytes]:
    """A POST to ``/invocation/<an id nobody handed out>/<kind>``."""
    return lambda _: _request("POST", f"{RUNTIME}/invocation/{uuid.uuid4()}/{kind}", body)


def _next(*headers: str) -> Callable[[str], bytes]:
    return lambda _: _request("GET", f"{RUNTIME}/invocation/next", None, headers)


INVALID_ID = (400, "InvalidRequestID", "Invalid request ID")
STRANGER = (403, "Forbidden", "is not a process of this worker's runtime")
MALFORMED: dict[str, _Case] = {
    "unknown path": _Case(
        lambda _: _request("GET", f"{RUNTIME}/invocation/nope"), 404, "NotFound", "unknown path"
    ),
    "path outside the API": _Case(
        lambda _: _request("GET", "/admin"), 404, "NotFound", "unknown path /admin"
    ),
    "DELETE on next": _Case(
        lambda _: _request("DELETE", f"{RUNTIME}/invocation/next"),
        405,
        "MethodNotAllowed",
        "DELETE is not allowed",
    ),
    "GET on response": _Case(
        lambda rid: _request("GET", f"{RUNTIME}/invocation/{rid}/response"),
        405,
        "MethodNotAllowed",
        "GET is not allowed",
    ),
    "response for an unknown id": _Case(_post_unknown("response", b"{}"), *INVALID_ID),
    "error for an unknown id": _Case(_post_unknown("error", b"{}"), *INVALID_ID),
    "non-JSON response for an unknown id": _Case(
        _post_unknown("response", b"\x00\xff{not json"), *INVALID_ID
    ),
    "7 MiB response for an unknown id": _Case(
        _post_unknown("response", b"z" * (7 * MIB)), *INVALID_ID
    ),
    "body without Content-Length": _Case(
        lambda _: (
            _request("POST", f"{RUNTIME}/invocation/{uuid.uuid4()}/response")
            + b'{"answer": "smuggled"}'
        ),
        *INVALID_ID,
    ),
    "response for the in-flight id from a stranger": _Case(
        _post_in_flight("response", b'"stolen"'), *STRANGER
    ),
    "non-JSON error for the in-flight id from a stranger": _Case(
        _post_in_flight("error", b"\x00not json"), *STRANGER
    ),
    "7 MiB response for the in-flight id from a stranger": _Case(
        _post_in_flight("response", b"z" * (7 * MIB)), *STRANGER
    ),
    "next from a stranger": _Case(_next(), *STRANGER),
    "init error after init": _Case(
        lambda _: _request("POST", f"{RUNTIME}/init/error", b"not json"),
        403,
        "InvalidStateTransition",
        "to InitError failed for runtime",
    ),
    "Content-Length not a number": _Case(
        _post_in_flight("response", b"{}", "Content-Length: two"),
        400,
        "InvalidRequest",
        "invalid Content-Length",
    ),
    "negative Content-Length": _Case(
        _post_in_flight("response", b"{}", "Content-Length: -2"),
        400,
        "InvalidRequest",
        "invalid Content-Length",
    ),
    "Content-Length with an underscore": _Case(
        _post_in_flight("response", b"{}", "Content-Length: 0_2"),
        400,
        "InvalidRequest",
        "invalid Content-Length",
    ),
    "conflicting Content-Lengths": _Case(
        _post_in_flight("response", b"{}", "Content-Length: 2", "Content-Length: 1"),
        400,
        "InvalidRequest",
        "conflicting Content-Length",
    ),
    "Content-Length and chunked": _Case(
        _post_in_flight(
            "response", b"2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked", "Content-Length: 12"
        ),
        400,
        "InvalidRequest",
        "both Transfer-Encoding and Content-Length",
    ),
    "bad chunk size": _Case(
        _post_in_flight("response", b"-2\r\n{}\r\n0\r\n\r\n", "Transfer-Encoding: chunked"),
        400,
        "InvalidRequest",
        "bad chunk size",
    ),
    "unsupported Transfer-Encoding": _Case(
        _post_in_flight("response", None, "Transfer-Encoding: gzip"),
        400,
        "InvalidRequest",
        "unsupported Transfer-Encoding",
    ),
    "truncated body": _Case(
        _post_in_flight("response", b'{"cut": ', "Content-Length: 100"),
        400,
        "TruncatedHTTPRequest",
        "after 8 of 100 bytes",
        half_close=True,
    ),
    "truncated chunked body": _Case(
        _post_in_flight("response", b"10\r\n{}", "Transfer-Encoding: chunked"),
        400,
        "TruncatedHTTPRequest",
        "after 2 bytes",
        half_close=True,
    ),
    "garbage header line": _Case(
        _next("this is garbage"), 400, "InvalidRequest", "malformed header line"
    ),
    "space before the colon": _Case(
        _next("Bad Name : x"), 400, "InvalidRequest", "malformed header line"
    ),
    "control character in a header": _Case(
        _next("X-A: b\x00c"), 400, "InvalidRequest", "malformed header line"
    ),
    "garbage request line": _Case(
        lambda _: b"HELLO\r\n\r\n", 400, "InvalidRequest", "malformed request line"
    ),
    "TLS handshake on the plain port": _Case(
        lambda _: bytes.fromhex("160301020001000200fc0303") + b"\x00" * 64,
        400,
        "InvalidRequest",
        "closed in the middle of a request head",
        half_close=True,
    ),
    "unsupported HTTP version": _Case(
        lambda _: f"GET {RUNTIME}/invocation/next HTTP/2.0\r\n\r\n".encode(),
        400,
        "InvalidRequest",
        "unsupported HTTP version",
    ),
    "absolute-form target": _Case(
        lambda _: f"GET http://127.0.0.1{RUNTIME}/invocation/next HTTP/1.1\r\n\r\n".encode(),
        400,
        "InvalidRequest",
        "malformed request line",
    ),
    "head over 1 MiB": _Case(
        _next("X-Big: " + "b" * (MIB + 8192)), 431, "InvalidRequest", "request head over"
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_runtime_api_requests_get_clear_4xx_and_the_invocation_is_untouched(
    probe: _Probe, case: str
) -> None:
    abuse = MALFORMED[case]
    with _in_flight(probe) as held:
        status, body = _raw(held.api, abuse.build(held.request_id), half_close=abuse.half_close)

        assert (status, body.get("errorType")) == (abuse.status, abuse.error_type), body
        assert abuse.message in body["errorMessage"], body
        # Still serving on a new connection.
        assert _raw(held.api, _request("GET", "/"))[0] == 404

    # The invocation got its handler's own answer, once, whatever the stranger sent.
    assert held.assert_returned().extra["RequestId"] == held.request_id
    probe.assert_serving()


def test_an_answer_for_another_invocations_id_is_refused(probe: _Probe) -> None:
    with _in_flight(probe) as first, _in_flight(probe) as second:
        assert first.api != second.api, "two invocations at once run in two environments"
        for api, other in ((first.api, second.request_id), (second.api, first.request_id)):
            for kind in ("response", "error"):
                path = f"{RUNTIME}/invocation/{other}/{kind}"
                status, body = _raw(api, _request("POST", path, b'{"answer": "crossed"}'))
                assert (status, body) == (
                    400,
                    {"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"},
                )

    for held in (first, second):
        held.assert_returned()
    probe.assert_serving()


def test_next_from_a_stranger_cannot_take_an_idle_workers_event(probe: _Probe) -> None:
    with _in_flight(probe) as held:
        pass
    # The runtime is back in its own /next poll; a second poller must not compete with it.
    status, body = _raw(held.api, _request("GET", f"{RUNTIME}/invocation/next"))

    assert (status, body["errorType"]) == (403, "Forbidden"), body
    after = probe.assert_serving()
    assert not after.cold_start
    assert json.loads(after.payload)["pid"] == held.report["pid"], "served by the same runtime"


def test_connections_without_a_request_leave_the_worker_serving(probe: _Probe) -> None:
    with _in_flight(probe) as held:
        host, port = held.api.rsplit(":", 1)
        for half_request in (b"", b"", b"GET /2018-06-01/runt", b"POST /x HTTP/1.1\r\n"):
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(half_request)

    assert held.result is not None
    assert json.loads(held.result.payload)["request_id"] == held.request_id
    after = probe.assert_serving()
    assert json.loads(after.payload)["pid"] == held.report["pid"], "the runtime survived"


def test_a_second_answer_from_the_runtime_is_refused_and_the_first_one_counts(
    probe: _Probe,
) -> None:
    with _in_flight(probe, "answer_twice") as held:
        first, second = held.report["answers"]

    assert first == {"status": 202, "body": {"status": "OK"}}
    assert second["status"] == 403
    assert second["body"]["errorType"] == "InvalidStateTransition"
    assert held.result is not None
    assert held.result.function_error is None
    assert json.loads(held.result.payload) == {"answer": "first"}
    # The runtime's own answer after the handler returned is refused the same way; the
    # runtime then exits (as it would in Lambda), and the next invoke runs elsewhere.
    probe.assert_serving()


def test_an_answer_over_6_mb_fails_the_invoke_like_lambda(probe: _Probe) -> None:
    started = time.monotonic()
    with _in_flight(probe, "answer_huge", size=7 * MIB) as held:
        (answer,) = held.report["answers"]
    probe.ledger.errors += 1

    assert answer["status"] == 413
    assert answer["body"]["errorType"] == "RequestEntityTooLarge"
    assert held.result is not None
    assert held.result.error_type == "Function.ResponseSizeTooLarge"
    message = json.loads(held.result.payload)["errorMessage"]
    assert "exceeded maximum allowed payload size" in message
    assert time.monotonic() - started < 15, "an oversized answer must fail fast, not hang"
    probe.assert_serving()


def test_a_truncated_answer_from_the_runtime_does_not_answer_the_invocation(
    probe: _Probe,
) -> None:
    with _in_flight(probe, "answer_truncated") as held:
        (answer,) = held.report["answers"]

    assert answer["status"] == 400
    assert answer["body"]["errorType"] == "TruncatedHTTPRequest"
    held.assert_returned()
    probe.assert_serving()


def test_a_handler_error_with_a_200_kb_message_reaches_the_caller(probe: _Probe) -> None:
    # awslambdaric posts the error with its X-Ray cause (message included) as a header of up
    # to 1 MiB; a smaller head limit would crash the runtime instead (Runtime.ExitError).
    result = probe.invoke(action="raise_big", size=200_000)
    probe.ledger.errors += 1

    assert result.error_type == "ValueError", result.payload[:300]
    assert json.loads(result.payload)["errorMessage"] == "e" * 200_000
    after = probe.assert_serving()
    assert not after.cold_start, "the runtime survived its error report"


# -- a handler with huge output, a handler that never returns --------------------------------

# Deployed from a temporary directory next to the probe. Lambda captures stdout and stderr
# into one log; a line longer than a CloudWatch event is cut, never split or dropped whole.
UNRULY_SOURCE = r"""
import os
import signal
import subprocess
import sys


def handler(event, context):
    action = event["action"]
    if action == "flood":
        for name in ("stdout", "stderr"):
            out, line_bytes = getattr(sys, name).buffer, event[name + "_line"]
            line = name[3:4].encode() * (line_bytes - 1) + b"\n"
            for _ in range(event["per_stream"] // line_bytes):
                out.write(line)
            out.flush()
        sys.stdout.buffer.write(b"L" * event["big_line"] + b"\n")
        sys.stdout.buffer.write(b"after the flood\n")
        sys.stdout.flush()
    elif action == "never_return":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deaf to a polite stop
        child = subprocess.Popen(["sleep", "600"])  # and not alone in its process group
        with open(event["child_pid_file"], "w") as pid_file:
            pid_file.write(str(child.pid))
        while True:  # pure Python, holding the GIL: no cooperation with the runtime
            pass
    return {"pid": os.getpid()}
"""
FLOOD_PER_STREAM = 16 * MIB
FLOOD_STDOUT_LINE = 1024  # 16,384 log events
FLOOD_STDERR_LINE = 64 * 1024  # 256 log events, each under the event limit
FLOOD_BIG_LINE = MIB  # one line four times the event limit
FLOOD_BYTES = 2 * FLOOD_PER_STREAM + FLOOD_BIG_LINE
CLOUDWATCH_EVENT_BYTES = 256 * 1024  # per event, message bytes + 26 bytes of overhead
NEVER_RETURN_TIMEOUT_S = 2


@dataclass
class _Unruly:
    """The service running the two unruly functions, and where to read their logs."""

    service: LambdaService
    flood: str  # timeout 30 s: room for the flood on a busy machine
    never_return: str  # timeout NEVER_RETURN_TIMEOUT_S
    log_client: Any
    work_dir: Path

    def invoke(self, name: str, **event: Any) -> InvokeResult:
        return self.service.invoke(name, json.dumps(event).encode())


def _unruly_spec(code_dir: Path, region: str, timeout_s: int) -> FunctionSpec:
    return function_spec(
        code_dir, "unruly.handler", prefix="unruly", region=region, timeout_s=timeout_s
    )


@pytest.fixture(scope="module")
def unruly(endpoint: AwsEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Unruly]:
    """Two functions of the same code; their logs go to CloudWatch as the local stack's do."""
    code_dir = tmp_path_factory.mktemp("unruly-code")
    (code_dir / "unruly.py").write_text(UNRULY_SOURCE)
    flood = _unruly_spec(code_dir, endpoint.region, timeout_s=30)
    never_return = _unruly_spec(code_dir, endpoint.region, timeout_s=NEVER_RETURN_TIMEOUT_S)
    with LambdaService(
        endpoint.url,
        endpoint.region,
        publish_metrics=False,
        log_flush_interval=0.1,
        logs_client=InProcessLogsClient(endpoint.region),
    ) as service:
        service.add_function(flood)
        service.add_function(never_return)
        yield _Unruly(
            service,
            flood.function_name,
            never_return.function_name,
            client_factory(endpoint.url, endpoint.region)("logs"),
            tmp_path_factory.mktemp("unruly-work"),
        )


def _rss_bytes() -> int:
    """This process's resident memory (the harness: service, endpoint and CloudWatch)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _log_messages(log_client: Any, group: str) -> list[str]:
    """Every event of every stream of ``group``, oldest first within each stream."""
    messages: list[str] = []
    for stream in log_client.describe_log_streams(logGroupName=group)["logStreams"]:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream["logStreamName"],
            "startFromHead": True,
        }
        for _page in range(1000):  # bounded: ~40 MiB at 1 MB a page is ~40 pages
            page = log_client.get_log_events(**kwargs)
            if not page["events"]:
                break
            messages.extend(event["message"] for event in page["events"])
            kwargs["nextToken"] = page["nextForwardToken"]
    return messages


def _flood(unruly: _Unruly) -> InvokeResult:
    return unruly.invoke(
        unruly.flood,
        action="flood",
        per_stream=FLOOD_PER_STREAM,
        stdout_line=FLOOD_STDOUT_LINE,
        stderr_line=FLOOD_STDERR_LINE,
        big_line=FLOOD_BIG_LINE,
    )


def test_huge_output_succeeds_and_reaches_cloudwatch_cut_at_256_kib(
    unruly: _Unruly, endpoint: AwsEndpoint
) -> None:
    warm = unruly.invoke(unruly.flood, action="echo")
    pid = json.loads(warm.payload)["pid"]
    unruly.service.flush_telemetry()
    before = _rss_bytes()
    started = time.monotonic()

    result = _flood(unruly)
    elapsed = time.monotonic() - started
    assert result.function_error is None, result.payload[:300]
    assert json.loads(result.payload) == {"pid": pid}, "the flood ran in another environment"
    assert len(result.log_tail) <= 4096, "the invocation kept more than Lambda's 4 KiB tail"
    unruly.service.flush_telemetry(timeout=60)
    grown = _rss_bytes() - before
    # What may grow is the log group CloudWatch (moto, in this process) now holds, about
    # the output's size; the service itself keeps a 4 KiB tail per invocation and at most
    # one partial line per worker, so one more copy of the output would break this bound.
    assert grown <= 2 * FLOOD_BYTES, f"RSS grew {grown / MIB:.0f} MiB for {FLOOD_BYTES / MIB} MiB"

    # The service and the endpoint keep serving; the worker survived its flood (warm).
    after = unruly.invoke(unruly.flood, action="echo")
    assert json.loads(after.payload) == {"pid": pid}
    assert not after.cold_start
    assert _post(endpoint, "ListQueues", b"{}").status_code == 200

    rid = result.extra["RequestId"]
    messages = _log_messages(unruly.log_client, f"/aws/lambda/{unruly.flood}")
    start = messages.index(f"START RequestId: {rid} Version: $LATEST\n")
    end = messages.index(f"END RequestId: {rid}\n")
    logged = messages[start + 1 : end]
    # Every line is one event, in order, none lost; each event fits CloudWatch's limit.
    assert MAX_LOG_EVENT_BYTES + 26 == CLOUDWATCH_EVENT_BYTES
    oversized = [len(m.encode()) for m in messages if len(m.encode()) + 26 > CLOUDWATCH_EVENT_BYTES]
    assert not oversized, f"events over 256 KiB: {oversized[:3]}"
    stdout_line = "o" * (FLOOD_STDOUT_LINE - 1) + "\n"
    stderr_line = "e" * (FLOOD_STDERR_LINE - 1) + "\n"
    stdout_lines = FLOOD_PER_STREAM // FLOOD_STDOUT_LINE
    stderr_lines = FLOOD_PER_STREAM // FLOOD_STDERR_LINE
    assert logged[:stdout_lines] == [stdout_line] * stdout_lines
    assert logged[stdout_lines : stdout_lines + stderr_lines] == [stderr_line] * stderr_lines
    big, marker = logged[stdout_lines + stderr_lines :]
    # The 1 MiB line is one event cut to the limit and marked, as Lambda does.
    assert len(big.encode()) + 26 == CLOUDWATCH_EVENT_BYTES
    assert big.startswith("L" * 1000)
    assert big.endswith(" [truncated]\n")
    assert marker == "after the flood\n"
    print(
        f"\nhuge output: {FLOOD_BYTES / MIB:.0f} MiB in {elapsed:.2f}s, "
        f"{len(logged)} log events, RSS +{grown / MIB:.0f} MiB"
    )


def test_a_handler_that_never_returns_is_killed_at_its_timeout_with_its_children(
    unruly: _Unruly, endpoint: AwsEndpoint
) -> None:
    # Warm first: the timeout then runs from the pickup of a warm worker, no init in it.
    pid = json.loads(unruly.invoke(unruly.never_return, action="echo").payload)["pid"]
    child_pid_file = unruly.work_dir / "child.pid"
    started = time.monotonic()
    result = unruly.invoke(
        unruly.never_return, action="never_return", child_pid_file=str(child_pid_file)
    )
    elapsed = time.monotonic() - started

    assert result.error_type == "Sandbox.Timedout", result.payload[:300]
    message = json.loads(result.payload)["errorMessage"]
    assert message.endswith(f"Task timed out after {NEVER_RETURN_TIMEOUT_S:.2f} seconds"), message
    assert NEVER_RETURN_TIMEOUT_S <= elapsed < NEVER_RETURN_TIMEOUT_S + 3, elapsed
    # The runtime ignored SIGTERM and had a child: the whole process group is gone.
    assert result.extra["WorkerPid"] == pid, "the invocation ran on another worker"
    child = int(child_pid_file.read_text())
    wait_until(
        lambda: not pid_alive(pid) and not pid_alive(child),
        timeout=5,
        description=f"timed-out worker {pid} and its child {child} to be gone",
    )
    assert pid not in unruly.service.worker_pids(unruly.never_return)

    # The next invoke runs on a fresh worker; the service and the endpoint keep serving.
    after = unruly.invoke(unruly.never_return, action="echo")
    assert after.function_error is None, after.payload[:300]
    assert after.cold_start
    assert json.loads(after.payload)["pid"] not in {pid, child}
    stats = unruly.service.stats()[unruly.never_return]
    counts = (stats.invocations, stats.timeouts, stats.cold_starts, stats.busy_workers)
    assert counts == (3, 1, 2, 0), stats
    assert _post(endpoint, "ListQueues", b"{}").status_code == 200

    rid = result.extra["RequestId"]
    unruly.service.flush_telemetry()
    messages = _log_messages(unruly.log_client, f"/aws/lambda/{unruly.never_return}")
    assert f"{message}\n" in messages, "the timeout is not in the function's log"
    assert any(
        m.startswith(f"REPORT RequestId: {rid}\t") and "Status: timeout" in m for m in messages
    )
