"""Benchmark of the local Lambda service: warm invoke overhead and cold start time.

Warm overhead compares ``LambdaService.invoke`` (a real ``awslambdaric`` worker process
behind the loopback Runtime API) with a direct in-process call of the same handler, on the
same payload; cold start is a new worker process up to the handler's result. The Runtime
API server's close (what every worker's stop pays for its server) is timed with a client
connection open, as a runtime's is.

    .venv/bin/python benchmarks/lambda_bench.py [--invokes 2000] [--cold 5] [--closes 100]
        [--no-telemetry] [--tracing off|active|sampled]

``--tracing active`` gives the functions active tracing and a local X-Ray daemon (X-Ray's
default rule samples the first invoke each second, then 5 %); ``sampled`` also passes a
sampled trace header with every invoke, so each one records Lambda's two segments. The
handler itself records nothing (what the X-Ray SDK costs in a handler is the same on AWS).
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localcloud.http11 import HttpServer
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.runtime_api import NextEvent, PostedBody, RuntimeApiServer
from localcloud.lambda_service.testing import Endpoint, function_spec, local_endpoint
from localcloud.specs import FunctionSpec
from localcloud.xray import XRayDaemon, moto_segment_sink, new_root

HANDLER_SOURCE = """
def handler(event, context):
    return {"ok": True, "id": event.get("id"), "request_id": context.aws_request_id}
"""
TARGET_OVERHEAD_MS = 0.5  # issue 19 item 4; local_stack_bench.py checks the same target
PAYLOAD = json.dumps({"id": "task-1", "title": "benchmark", "body": "x" * 200}).encode()


class _Context:
    """The bits of a Lambda context the handler touches, for the direct call."""

    aws_request_id = "direct"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:direct"

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def _spec(code_dir: Path, name: str, tracing: str = "off") -> FunctionSpec:
    mode = "PassThrough" if tracing == "off" else "Active"
    return function_spec(
        code_dir, "bench_handler.handler", name=name, timeout_s=30, tracing_mode=mode
    )


def timed_ms(fn: Callable[[], object], n: int) -> list[float]:
    """Wall milliseconds of each of ``n`` calls of ``fn``."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


@contextmanager
def _maybe_endpoint(telemetry: bool) -> Iterator[Endpoint | None]:
    if not telemetry:
        yield None
        return
    with local_endpoint() as endpoint:
        yield endpoint


class _IdleBackend:
    """A Runtime API backend with no runtime and no events: the server alone."""

    process = None

    def next_invocation(self, peer_gone: Callable[[], bool]) -> NextEvent | None:
        return None

    def undelivered(self, request_id: str) -> None:
        pass

    def invocation_response(self, request_id: str, body: PostedBody) -> tuple[int, bytes]:
        return 202, b"{}"

    def invocation_error(
        self, request_id: str, body: PostedBody, error_type: str | None
    ) -> tuple[int, bytes]:
        return 202, b"{}"

    def init_error(self, body: PostedBody, error_type: str | None) -> tuple[int, bytes]:
        return 202, b"{}"


def server_close_ms(n: int, runtime_api: bool = True) -> list[float]:
    """Milliseconds of a server's ``close()`` with one answered keep-alive client open: a
    ``RuntimeApiServer``, or (``runtime_api=False``) a bare ``HttpServer``, the endpoint's and
    the API Gateway front's server."""
    samples = []
    for i in range(n):
        server: RuntimeApiServer | HttpServer
        if runtime_api:
            server = RuntimeApiServer(_IdleBackend(), name=f"close-{i}", body_limit=1024)
        else:
            server = HttpServer(
                ("127.0.0.1", 0),
                lambda *_: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                bad_request=lambda _: b"",
                max_body=1024,
            ).serve_in_thread(f"close-{i}")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
            client.sendall(b"GET /ping HTTP/1.1\r\nHost: h\r\n\r\n")
            assert client.recv(65536).startswith(b"HTTP/1.1 404 "), "the server answers"
            start = time.perf_counter()
            server.close()
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"median {statistics.median(samples):.3f} ms, mean {statistics.fmean(samples):.3f} ms, "
        f"p95 {p95:.3f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=2000, help="warm invokes to time")
    parser.add_argument("--cold", type=int, default=5, help="cold starts to time")
    parser.add_argument("--closes", type=int, default=100, help="Runtime API closes to time")
    parser.add_argument(
        "--no-telemetry",
        action="store_true",
        help="do not ship logs and metrics (no endpoint needed)",
    )
    parser.add_argument(
        "--tracing",
        choices=("off", "active", "sampled"),
        default="off",
        help="X-Ray active tracing of the functions (sampled: every invoke sampled)",
    )
    args = parser.parse_args(argv)
    telemetry = not args.no_telemetry
    tracing: str = args.tracing

    with (
        tempfile.TemporaryDirectory(prefix="lambda-bench-") as tmp,
        _maybe_endpoint(telemetry) as ep,
    ):
        code_dir = Path(tmp)
        (code_dir / "bench_handler.py").write_text(HANDLER_SOURCE)
        sys.path.insert(0, str(code_dir))
        module: Any = importlib.import_module("bench_handler")
        context = _Context()
        event = json.loads(PAYLOAD)

        def direct() -> object:
            # What an in-process caller pays: decode the event, call, encode the result.
            return json.dumps(module.handler(json.loads(PAYLOAD), context)).encode()

        assert module.handler(event, context)["ok"]
        url, region = (ep.url, ep.region) if ep else ("http://127.0.0.1:9", "us-east-1")
        daemon = None
        if tracing != "off":
            sink = moto_segment_sink(region, "123456789012") if ep else (lambda _doc: None)
            daemon = XRayDaemon(sink)
        header = f"Root={new_root()};Sampled=1" if tracing == "sampled" else None
        with LambdaService(
            url, region, publish_logs=telemetry, publish_metrics=telemetry, xray=daemon
        ) as svc:
            name = f"bench-{uuid.uuid4().hex[:6]}"
            svc.add_function(_spec(code_dir, name, tracing))
            first = svc.invoke(name, PAYLOAD)
            assert first.function_error is None, first.payload
            for _ in range(200):  # warm up both paths
                svc.invoke(name, PAYLOAD, trace_header=header)
                direct()
            direct_ms = timed_ms(direct, args.invokes)
            warm_ms = timed_ms(lambda: svc.invoke(name, PAYLOAD, trace_header=header), args.invokes)

            cold_ms: list[float] = []
            init_ms: list[float] = []
            for i in range(args.cold):
                cold_name = f"{name}-cold{i}"
                svc.add_function(_spec(code_dir, cold_name))
                start = time.perf_counter()
                result = svc.invoke(cold_name, PAYLOAD)
                cold_ms.append((time.perf_counter() - start) * 1000)
                assert result.cold_start
                init_ms.append(float(result.extra["InitDurationMs"]))

            threads = 4
            per_thread = max(args.invokes // threads, 1)
            svc.add_function(_spec(code_dir, f"{name}-par"))
            barrier = threading.Barrier(threads)

            def worker() -> None:
                barrier.wait()
                for _ in range(per_thread):
                    svc.invoke(f"{name}-par", PAYLOAD)

            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()  # first pass grows the pool (cold starts): time the second
            pool = [threading.Thread(target=worker) for _ in range(threads)]
            barrier = threading.Barrier(threads)
            start = time.perf_counter()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            parallel_rate = threads * per_thread / (time.perf_counter() - start)
        if daemon is not None:
            daemon.close()
            print(f"X-Ray daemon: {daemon.stats}")
    close_ms = server_close_ms(args.closes)
    http_close_ms = server_close_ms(args.closes, runtime_api=False)

    direct_median = statistics.median(direct_ms)
    warm_median = statistics.median(warm_ms)
    overhead = warm_median - direct_median
    print(f"telemetry (logs + metrics shipped): {'on' if telemetry else 'off'}; tracing: {tracing}")
    print(f"direct in-process call:  {_summary(direct_ms)}")
    print(f"warm invoke (worker):    {_summary(warm_ms)}")
    print(
        f"warm invoke overhead:    {overhead:.3f} ms per invoke (median), "
        f"ratio {warm_median / direct_median:.0f}x the direct call "
        f"({statistics.fmean(warm_ms) - statistics.fmean(direct_ms):.3f} ms on the mean); "
        f"target <= {TARGET_OVERHEAD_MS} ms: "
        f"{'met' if overhead <= TARGET_OVERHEAD_MS else 'MISSED'}"
    )
    print(
        f"cold start (new process to result): {_summary(cold_ms)}; "
        f"init duration median {statistics.median(init_ms):.1f} ms"
    )
    print(f"4 threads on one function: {parallel_rate:.0f} invokes/s")
    print(f"Runtime API server close (a worker's stop): {_summary(close_ms)}")
    print(f"HttpServer close (endpoint, API Gateway front): {_summary(http_close_ms)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
