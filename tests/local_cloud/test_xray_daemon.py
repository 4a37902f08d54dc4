"""The local X-Ray daemon: segments land in X-Ray with the function's role, a role without
the right loses them (recorded as refused), malformed datagrams are dropped with a log line;
and the Lambda service traces functions with active tracing as Lambda does."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.drivers import traced_function
from harness.waiting import wait_until
from localcloud.clients import local_client
from localcloud.endpoint import AwsEndpoint
from localcloud.identity import Call, Principal
from localcloud.lambda_service import LambdaService, lambda_environment
from localcloud.lambda_service.testing import function_role, function_spec
from localcloud.xray import (
    DATAGRAM_HEADER,
    PUT_TRACE_SEGMENTS,
    Sampler,
    TraceHeader,
    XRayDaemon,
    moto_segment_sink,
    new_root,
    new_segment_id,
)

HARNESS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
XRAY_STATEMENT = {
    "Effect": "Allow",
    "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
    "Resource": "*",
}
LOGS_STATEMENT = {"Effect": "Allow", "Action": "logs:*", "Resource": "*"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[AwsEndpoint]:
    with AwsEndpoint(throttling=False) as ep:
        yield ep


def _client(endpoint: AwsEndpoint, service: str) -> Any:
    return local_client(service, endpoint.url, endpoint.region, config=None, credentials=HARNESS)


def _role(endpoint: AwsEndpoint, *statements: dict[str, Any]) -> str:
    """A function role with these statements (none: no rights at all)."""
    return function_role(_client(endpoint, "iam"), f"traced-{uuid.uuid4().hex[:8]}", *statements)


@pytest.fixture
def daemon(endpoint: AwsEndpoint) -> Iterator[XRayDaemon]:
    with XRayDaemon(
        moto_segment_sink(endpoint.region, endpoint.access.account_id), access=endpoint.access
    ) as xray:
        yield xray


def _segment(trace_id: str, name: str = "work", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "id": new_segment_id(),
        "trace_id": trace_id,
        "start_time": 1_700_000_000.0,
        "end_time": 1_700_000_000.5,
        **fields,
    }


def _send(address: str, datagram: bytes) -> None:
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(datagram, (host, int(port)))


def _sdk_datagram(segment: dict[str, Any]) -> bytes:
    return DATAGRAM_HEADER + b"\n" + json.dumps(segment).encode()


def _documents(endpoint: AwsEndpoint, trace_id: str) -> list[dict[str, Any]]:
    answer = _client(endpoint, "xray").batch_get_traces(TraceIds=[trace_id])
    return [json.loads(s["Document"]) for t in answer["Traces"] for s in t["Segments"]]


def _wait_handled(daemon: XRayDaemon, count: int) -> None:
    wait_until(
        lambda: daemon.stats.received >= count,
        timeout=5,
        description=f"the daemon to receive {count} datagrams",
    )


def test_a_segment_sent_by_a_function_lands_in_xray(
    endpoint: AwsEndpoint, daemon: XRayDaemon
) -> None:
    principal = Principal("fn-ok", _role(endpoint, XRAY_STATEMENT))
    trace_id = new_root()
    segment = _segment(trace_id, "DynamoDB", namespace="aws", aws={"operation": "PutItem"})

    _send(daemon.address_for(principal), _sdk_datagram(segment))

    documents = wait_until(
        lambda: _documents(endpoint, trace_id),
        timeout=5,
        description=f"trace {trace_id} in the local X-Ray",
    )
    assert documents == [segment]
    assert Call(principal.role_arn, PUT_TRACE_SEGMENTS, "*") in endpoint.access.calls()
    assert daemon.address_for(principal) == daemon.address_for(principal)  # stable per function


def test_a_role_without_the_right_loses_its_traces_and_the_refusal_is_recorded(
    endpoint: AwsEndpoint, daemon: XRayDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    principal = Principal("fn-no-xray", _role(endpoint, LOGS_STATEMENT))
    trace_id = new_root()
    before = endpoint.access.refusal_count

    with caplog.at_level(logging.WARNING, logger="localcloud.xray"):
        _send(daemon.address_for(principal), _sdk_datagram(_segment(trace_id)))
        _wait_handled(daemon, 1)

    assert daemon.stats.refused == 1
    assert daemon.stats.stored == 0
    refused = Call(principal.role_arn, PUT_TRACE_SEGMENTS, "*")
    assert refused in endpoint.access.denied(principal.role_arn)
    assert endpoint.access.refusals_since(before) == [refused]
    assert _documents(endpoint, trace_id) == []
    assert "traces of fn-no-xray dropped" in caplog.text


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"no header line",
        b'{"format": "json", "version": 1}\nnot json',
        b'{"format": "json", "version": 1}\n[1, 2]',
        b'{"format": "text", "version": 1}\n{"name": "x"}',
        b"\xff\xfe\n\xff",
        # JSON, but not a segment X-Ray takes (no id, no start_time)
        b'{"format": "json", "version": 1}\n{"name": "x", "trace_id": "1-5f000000-0"}',
    ],
)
def test_a_malformed_datagram_is_dropped_with_a_log_line_and_the_daemon_goes_on(
    endpoint: AwsEndpoint,
    daemon: XRayDaemon,
    caplog: pytest.LogCaptureFixture,
    datagram: bytes,
) -> None:
    principal = Principal("fn-malformed", _role(endpoint, XRAY_STATEMENT))
    address = daemon.address_for(principal)
    trace_id = new_root()

    with caplog.at_level(logging.WARNING, logger="localcloud.xray"):
        _send(address, datagram)
        _send(address, _sdk_datagram(_segment(trace_id)))
        _wait_handled(daemon, 2)

    assert daemon.stats.malformed == 1
    assert daemon.stats.stored == 1
    assert "X-Ray daemon: " in caplog.text
    assert len(_documents(endpoint, trace_id)) == 1


def test_the_daemon_releases_its_ports_when_closed(endpoint: AwsEndpoint) -> None:
    daemon = XRayDaemon(lambda document: None)
    address = daemon.address_for(Principal("fn", "arn:aws:iam::123456789012:role/r"))
    daemon.close()
    daemon.close()  # idempotent
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, int(port)))  # free again
    with pytest.raises(RuntimeError, match="closed"):
        daemon.address_for(Principal("fn2", "arn:aws:iam::123456789012:role/r"))


# --- trace headers and sampling -------------------------------------------------------------


def test_trace_headers_are_parsed_and_written_as_aws_writes_them() -> None:
    root = new_root(0x5F000000)
    assert root.startswith("1-5f000000-")
    assert len(root) == 35
    parsed = TraceHeader.parse(f"Root={root}; Parent=53995c3f42cd8ad8;Sampled=1")
    assert parsed == TraceHeader(root, "53995c3f42cd8ad8", True)
    assert str(parsed) == f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1"
    assert TraceHeader.parse(f"Root={root}") == TraceHeader(root, None, None)
    assert TraceHeader.parse(f"Root={root};Sampled=?") == TraceHeader(root, None, None)
    for bad in (None, "", "Root=", "Root=2-5f000000-abc", "Sampled=1", "Root=1-xyz-abc"):
        assert TraceHeader.parse(bad) is None, bad


def test_the_default_rule_samples_the_first_request_each_second_then_five_percent() -> None:
    now = [100.2]
    draws = iter([0.5, 0.04, 0.9])
    sampler = Sampler(clock=lambda: now[0], rand=lambda: next(draws))
    assert sampler.sample()  # the reservoir
    assert not sampler.sample()  # 0.5 >= 5 %
    assert sampler.sample()  # 0.04 < 5 %
    now[0] = 101.0
    assert sampler.sample()  # a new second: the reservoir again
    assert not sampler.sample()


# --- the Lambda service with active tracing ---------------------------------------------------

TRACED_HANDLER = """
import os

from aws_xray_sdk.core import xray_recorder


def handler(event, context):
    with xray_recorder.in_subsegment("work") as subsegment:
        subsegment.put_annotation("step", "one")
    return {
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "daemon": os.environ.get("AWS_XRAY_DAEMON_ADDRESS"),
        "sdk": os.environ.get("AWS_XRAY_SDK_ENABLED"),
    }
"""


@pytest.fixture
def traced_code(tmp_path: Path) -> Path:
    (tmp_path / "traced.py").write_text(TRACED_HANDLER, encoding="utf-8")
    return tmp_path


def _service(endpoint: AwsEndpoint, daemon: XRayDaemon) -> LambdaService:
    return LambdaService(
        endpoint.url,
        endpoint.region,
        publish_logs=False,
        publish_metrics=False,
        identities=endpoint.identities,
        access=endpoint.access,
        xray=daemon,
    )


def _invoke(service: LambdaService, name: str, trace_header: str | None) -> dict[str, Any]:
    result = service.invoke(name, b"{}", trace_header=trace_header)
    assert result.status_code == 200, result.payload
    assert result.function_error is None, result.payload
    body: dict[str, Any] = json.loads(result.payload)
    return body


def test_a_sampled_invocation_leaves_lambdas_segments_and_the_sdks_subsegment(
    endpoint: AwsEndpoint, daemon: XRayDaemon, traced_code: Path
) -> None:
    role = _role(endpoint, XRAY_STATEMENT)
    spec = function_spec(traced_code, "traced.handler", role_arn=role, tracing_mode="Active")
    root, upstream = new_root(), new_segment_id()
    with _service(endpoint, daemon) as service:
        service.add_function(spec)
        body = _invoke(service, spec.function_name, f"Root={root};Parent={upstream};Sampled=1")

        header = TraceHeader.parse(body["trace"])
        assert header is not None
        assert header.root == root
        assert header.sampled is True
        assert body["daemon"] == daemon.address_for(LambdaService.principal_of(spec))
        assert body["sdk"] is None  # the SDK is on

        def complete() -> list[dict[str, Any]] | None:
            documents = _documents(endpoint, root)
            traced = traced_function(documents, spec.function_name)
            return documents if traced.segment is not None and len(documents) >= 3 else None

        documents = wait_until(complete, timeout=10, description=f"trace {root}'s 3 documents")
    by_origin = {d.get("origin") or d.get("type"): d for d in documents}
    service_segment, function_segment = by_origin["AWS::Lambda"], by_origin["AWS::Lambda::Function"]
    assert service_segment["parent_id"] == upstream  # the caller's trace, continued
    assert function_segment["parent_id"] == service_segment["id"]
    assert function_segment["id"] == header.parent  # what the SDK hangs its work under
    work = by_origin["subsegment"]
    assert work["name"] == "work"
    assert work["parent_id"] == function_segment["id"]
    assert work["annotations"] == {"step": "one"}
    assert [s["name"] for s in function_segment["subsegments"]] == [
        "Initialization",
        "Invocation",
    ]


def test_an_unsampled_invocation_sends_nothing_and_a_role_without_xray_loses_only_traces(
    endpoint: AwsEndpoint, daemon: XRayDaemon, traced_code: Path
) -> None:
    allowed = function_spec(
        traced_code,
        "traced.handler",
        role_arn=_role(endpoint, XRAY_STATEMENT),
        tracing_mode="Active",
    )
    refused = function_spec(
        traced_code,
        "traced.handler",
        role_arn=_role(endpoint, LOGS_STATEMENT),
        tracing_mode="Active",
    )
    unsampled, sampled = new_root(), new_root()
    with _service(endpoint, daemon) as service:
        service.add_function(allowed)
        service.add_function(refused)
        _invoke(service, allowed.function_name, f"Root={unsampled};Sampled=0")
        body = _invoke(service, refused.function_name, f"Root={sampled};Sampled=1")
        assert body["trace"].startswith(f"Root={sampled};")  # the function ran as usual

        refusal = Call(refused.role_arn, PUT_TRACE_SEGMENTS, "*")
        wait_until(
            lambda: refusal in endpoint.access.denied(),
            timeout=10,
            description="the daemon's upload with the role without X-Ray to be refused",
        )
        # Lambda's own segment still arrives (the service's rights); nothing of the function.
        documents = wait_until(
            lambda: _documents(endpoint, sampled),
            timeout=10,
            description=f"Lambda's segment of trace {sampled}",
        )
    assert [d.get("origin") for d in documents] == ["AWS::Lambda"]
    assert traced_function(documents, refused.function_name).segment is None
    assert _documents(endpoint, unsampled) == []


def test_only_active_tracing_with_a_daemon_turns_the_sdk_on(tmp_path: Path) -> None:
    def env(mode: str, daemon: str | None) -> dict[str, str]:
        spec = function_spec(tmp_path, "x.handler", tracing_mode=mode)
        return lambda_environment(
            spec,
            endpoint_url="http://127.0.0.1:1",
            region="us-east-1",
            log_group="/aws/lambda/x",
            xray_daemon_address=daemon,
        )

    active = env("Active", "127.0.0.1:2000")
    assert active["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:2000"
    assert (active["_AWS_XRAY_DAEMON_ADDRESS"], active["_AWS_XRAY_DAEMON_PORT"]) == (
        "127.0.0.1",
        "2000",
    )
    assert active["AWS_XRAY_CONTEXT_MISSING"] == "LOG_ERROR"
    assert "AWS_XRAY_SDK_ENABLED" not in active
    assert "POWERTOOLS_TRACE_DISABLED" not in active
    for off in (env("PassThrough", "127.0.0.1:2000"), env("Active", None)):
        assert off["AWS_XRAY_SDK_ENABLED"] == "false"
        assert off["POWERTOOLS_TRACE_DISABLED"] == "true"
        assert "AWS_XRAY_DAEMON_ADDRESS" not in off
