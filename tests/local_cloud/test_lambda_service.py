"""The local Lambda service behaves like Lambda: results, errors, timeouts, crashes, init
errors, cold and warm starts, reserved concurrency, environment and payload limits."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.lambda_service import LambdaService, LambdaServiceClosedError
from localcloud.lambda_service.testing import (
    Endpoint,
    boto_client,
    child_pids,
    function_spec,
    local_endpoint,
    pid_alive,
)
from localcloud.specs import FunctionSpec, InvokeResult

FUNCTIONS = Path(__file__).parent / "functions"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    with local_endpoint() as ep:
        yield ep


@pytest.fixture
def service(endpoint: Endpoint) -> Iterator[LambdaService]:
    with LambdaService(
        endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
    ) as svc:
        yield svc


def make_spec(
    code_dir: Path = FUNCTIONS, handler: str = "lambda_probe.handler", **kwargs: Any
) -> FunctionSpec:
    return function_spec(code_dir, handler, **kwargs)


def call(service: LambdaService, spec: FunctionSpec, **event: Any) -> InvokeResult:
    return service.invoke(spec.function_name, json.dumps(event).encode())


def test_invoke_returns_the_handler_result_with_a_lambda_context(service: LambdaService) -> None:
    spec = make_spec(timeout_s=7)
    service.add_function(spec)

    result = call(service, spec, action="echo", value=[1, "two"])

    assert result.status_code == 200
    assert result.function_error is None
    body = json.loads(result.payload)
    assert body["event"] == {"action": "echo", "value": [1, "two"]}
    assert body["request_id"] == result.extra["RequestId"]
    assert body["function_arn"] == spec.arn
    assert 5_000 < body["remaining_ms"] <= 7_000
    assert Path(body["cwd"]) == FUNCTIONS
    assert "START RequestId" in result.log_tail
    assert "REPORT RequestId" in result.log_tail


def test_client_context_cognito_identity_and_trace_header_reach_the_context(
    service: LambdaService,
) -> None:
    spec = make_spec()
    service.add_function(spec)

    result = service.invoke(
        spec.function_name,
        b'{"action": "echo"}',
        client_context=json.dumps({"custom": {"tenant": "t-1"}, "env": {}, "client": {}}),
        cognito_identity=json.dumps(
            {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        ),
    )

    body = json.loads(result.payload)
    assert body["client_context"] == {"tenant": "t-1"}
    assert body["identity_pool"] == "pool-1"
    assert re.fullmatch(
        r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", body["trace_id"]
    )


def test_handler_exception_is_an_unhandled_function_error(service: LambdaService) -> None:
    spec = make_spec()
    service.add_function(spec)

    result = call(service, spec, action="raise", message="it broke")

    assert result.status_code == 200
    assert result.function_error == "Unhandled"
    assert result.error_type == "ValueError"
    body = json.loads(result.payload)
    assert body["errorMessage"] == "it broke"
    assert body["errorType"] == "ValueError"
    assert any("lambda_probe.py" in frame for frame in body["stackTrace"])
    # The environment survives a handled error: the next invoke is warm.
    assert not call(service, spec, action="echo").cold_start


def test_timeout_kills_the_worker_and_reports_task_timed_out(service: LambdaService) -> None:
    spec = make_spec(timeout_s=1)
    service.add_function(spec)
    pid = json.loads(call(service, spec, action="echo").payload)["pid"]

    started = time.monotonic()
    result = call(service, spec, action="sleep", seconds=30)
    elapsed = time.monotonic() - started

    assert result.function_error == "Unhandled"
    assert result.error_type == "Sandbox.Timedout"
    message = json.loads(result.payload)["errorMessage"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f-]{36} Task timed out after 1\.00 seconds",
        message,
    ), message
    assert 1.0 <= elapsed < 5.0
    wait_until(
        lambda: not pid_alive(pid), timeout=5, description=f"timed-out worker {pid} to be gone"
    )
    after = call(service, spec, action="echo")
    assert after.cold_start
    assert json.loads(after.payload)["pid"] != pid
    stats = service.stats()[spec.function_name]
    assert (stats.timeouts, stats.errors, stats.cold_starts) == (1, 1, 2)


def test_process_exit_mid_invoke_is_runtime_exit_error(service: LambdaService) -> None:
    spec = make_spec()
    service.add_function(spec)
    call(service, spec, action="echo")

    result = call(service, spec, action="exit", code=3)

    assert result.function_error == "Unhandled"
    assert result.error_type == "Runtime.ExitError"
    message = json.loads(result.payload)["errorMessage"]
    assert (
        message
        == f"RequestId: {result.extra['RequestId']} Error: Runtime exited with error: exit status 3"
    )
    after = call(service, spec, action="echo")
    assert after.function_error is None
    assert after.cold_start
    assert service.stats()[spec.function_name].crashes == 1


def test_import_error_is_reported_as_an_init_error(service: LambdaService) -> None:
    spec = make_spec(handler="lambda_init_fails.handler")
    service.add_function(spec)

    result = call(service, spec)

    assert result.function_error == "Unhandled"
    assert result.error_type == "Runtime.ImportModuleError"
    body = json.loads(result.payload)
    assert body["errorMessage"].startswith("Unable to import module 'lambda_init_fails'")
    assert "a_module_that_is_not_installed_anywhere" in body["errorMessage"]
    stats = service.stats()[spec.function_name]
    assert (stats.init_errors, stats.warm_workers) == (1, 0)
    wait_until(
        lambda: not service.worker_pids(spec.function_name),
        timeout=5,
        description="the failed worker to exit",
    )


def test_missing_handler_function_is_an_init_error(service: LambdaService) -> None:
    spec = make_spec(handler="lambda_probe.no_such_function")
    service.add_function(spec)

    result = call(service, spec)

    assert result.error_type == "Runtime.HandlerNotFound"


def test_cold_start_then_warm_reuse_of_the_same_process(service: LambdaService) -> None:
    spec = make_spec()
    service.add_function(spec)

    first = call(service, spec, action="echo")
    second = call(service, spec, action="echo")

    assert first.cold_start
    assert not second.cold_start
    assert json.loads(first.payload)["pid"] == json.loads(second.payload)["pid"]
    assert first.extra["InitDurationMs"] > 0
    assert second.extra["InitDurationMs"] is None
    assert "Init Duration:" in first.log_tail
    assert "Init Duration:" not in second.log_tail
    stats = service.stats()[spec.function_name]
    assert (stats.cold_starts, stats.invocations, stats.warm_workers) == (1, 2, 1)


def test_pool_grows_with_concurrency_and_keeps_idle_workers(service: LambdaService) -> None:
    # A generous timeout: three cold starts at once on a busy machine are slow, and this
    # test is about the pool, not about timeouts.
    spec = make_spec(reserved_concurrency=3, timeout_s=30)
    service.add_function(spec)
    barrier = threading.Barrier(3)

    def slow(_: int) -> InvokeResult:
        barrier.wait(timeout=10)
        return call(service, spec, action="sleep", seconds=1.0)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(slow, range(3)))

    errors = [(r.function_error, r.payload[:300]) for r in results if r.function_error]
    assert not errors, errors
    assert len({json.loads(r.payload)["pid"] for r in results}) == 3
    stats = service.stats()[spec.function_name]
    assert (stats.cold_starts, stats.warm_workers, stats.max_concurrency) == (3, 3, 3)
    again = call(service, spec, action="echo")
    assert not again.cold_start


def test_reserved_concurrency_throttles_beyond_the_limit_at_once(service: LambdaService) -> None:
    spec = make_spec(reserved_concurrency=2, timeout_s=10)
    service.add_function(spec)
    barrier = threading.Barrier(6)

    def timed(_: int) -> tuple[InvokeResult, float]:
        barrier.wait(timeout=10)
        started = time.monotonic()
        result = call(service, spec, action="sleep", seconds=1.5)
        return result, time.monotonic() - started

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(timed, range(6)))

    ran = [r for r, _ in outcomes if r.status_code == 200]
    throttled = [(r, t) for r, t in outcomes if r.status_code == 429]
    assert len(ran) == 2
    assert len(throttled) == 4
    for result, elapsed in throttled:
        assert result.error_type == "TooManyRequestsException"
        assert json.loads(result.payload)["errorType"] == "TooManyRequestsException"
        assert elapsed < 1.0, "a throttle must not wait for a free slot (the others take 1.5 s)"
    stats = service.stats()[spec.function_name]
    assert (stats.throttles, stats.max_concurrency, stats.invocations) == (4, 2, 2)


def test_reserved_concurrency_zero_throttles_everything(service: LambdaService) -> None:
    spec = make_spec(reserved_concurrency=0)
    service.add_function(spec)

    results = [call(service, spec, action="echo") for _ in range(3)]

    assert [r.status_code for r in results] == [429, 429, 429]
    assert service.worker_pids(spec.function_name) == []
    assert service.stats()[spec.function_name].throttles == 3


def test_worker_environment_is_the_function_environment_plus_lambda_variables(
    service: LambdaService, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK_CHECK_FROM_PARENT", "must-not-reach-the-function")
    spec = make_spec(
        memory_mb=512, environment={"TABLE_NAME": "tasks", "POWERTOOLS_SERVICE_NAME": "probe"}
    )
    service.add_function(spec)

    env = json.loads(call(service, spec, action="env").payload)["env"]

    assert env["TABLE_NAME"] == "tasks"
    assert env["POWERTOOLS_SERVICE_NAME"] == "probe"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == spec.function_name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{spec.function_name}"
    assert re.fullmatch(
        r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == endpoint.region
    assert env["LAMBDA_TASK_ROOT"] == str(FUNCTIONS)
    assert env["_HANDLER"] == "lambda_probe.handler"
    assert env["AWS_ENDPOINT_URL"] == endpoint.url
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_XRAY_SDK_ENABLED"] == "false"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "LEAK_CHECK_FROM_PARENT" not in env


def test_runtime_polls_next_in_its_main_thread_without_a_thread_per_invoke(
    service: LambdaService,
) -> None:
    # awslambdaric starts a thread per /next for AWS_Lambda_python3.12+; the local worker
    # turns that off (sitecustomize: ~200 us of the runtime's CPU per warm invoke) while the
    # function still sees Lambda's AWS_EXECUTION_ENV and runs in the main thread.
    spec = make_spec()
    service.add_function(spec)

    for _ in range(3):  # cold, then warm: the same on every invoke
        seen = json.loads(call(service, spec, action="runtime").payload)

        assert seen == {
            "thread_polling": False,
            "execution_env": "AWS_Lambda_python3.12",
            "main_thread": True,
            "threads": 1,
        }


def test_boto3_inside_a_handler_reaches_the_local_cloud(
    service: LambdaService, endpoint: Endpoint
) -> None:
    queue_url = boto_client(endpoint, "sqs").create_queue(
        QueueName=f"seen-by-handler-{uuid.uuid4().hex[:8]}"
    )["QueueUrl"]
    spec = make_spec()
    service.add_function(spec)

    result = call(service, spec, action="sqs_list_queues")

    assert result.function_error is None, result.payload
    assert queue_url in json.loads(result.payload)


def test_third_party_packages_come_from_the_venv_and_first_party_code_from_the_asset(
    service: LambdaService, tmp_path: Path
) -> None:
    # An asset bundled for Lambda: our own package plus third-party packages whose copies
    # here cannot load on this Python (like pydantic_core's cp312 binary wheel).
    asset = tmp_path / "asset"
    (asset / "handlers").mkdir(parents=True)
    (asset / "handlers" / "__init__.py").write_text("")
    (asset / "handlers" / "probe.py").write_text(
        "import pydantic, pydantic_core, only_in_asset, handlers\n"
        "def handler(event, context):\n"
        "    modules = (pydantic, pydantic_core, only_in_asset, handlers)\n"
        "    return {m.__name__: m.__file__ for m in modules}\n"
    )
    for package in ("pydantic_core", "pydantic"):
        (asset / package).mkdir()
        (asset / package / "__init__.py").write_text(
            f"raise ImportError('bundled {package} is a cp312 Linux wheel: not loadable here')\n"
        )
    (asset / "only_in_asset").mkdir()
    (asset / "only_in_asset" / "__init__.py").write_text("")
    spec = make_spec(code_dir=asset, handler="handlers.probe.handler")
    service.add_function(spec)

    result = call(service, spec)

    assert result.function_error is None, result.payload
    files = json.loads(result.payload)
    venv = Path(sys.prefix)
    assert Path(files["pydantic_core"]).is_relative_to(venv)
    assert Path(files["pydantic"]).is_relative_to(venv)
    assert Path(files["handlers"]).is_relative_to(asset)
    assert Path(files["only_in_asset"]).is_relative_to(asset)


def test_response_over_6_mb_is_function_response_size_too_large(service: LambdaService) -> None:
    spec = make_spec(timeout_s=10)
    service.add_function(spec)

    result = call(service, spec, action="big_response", size=7 * 1024 * 1024)

    assert result.function_error == "Unhandled"
    assert result.error_type == "Function.ResponseSizeTooLarge"
    assert len(result.payload) < 1024
    assert "exceeded maximum allowed payload size" in json.loads(result.payload)["errorMessage"]
    assert call(service, spec, action="echo").function_error is None


def test_request_over_6_mb_is_rejected_before_running(service: LambdaService) -> None:
    spec = make_spec()
    service.add_function(spec)

    result = service.invoke(spec.function_name, b'"' + b"z" * (6 * 1024 * 1024) + b'"')

    assert result.status_code == 413
    assert result.error_type == "RequestEntityTooLargeException"
    assert service.stats()[spec.function_name].cold_starts == 0


def test_unknown_function_is_resource_not_found(service: LambdaService) -> None:
    result = service.invoke("no-such-function", b"{}")

    assert result.status_code == 404
    assert result.error_type == "ResourceNotFoundException"


def test_close_stops_every_worker_and_leaves_no_process(endpoint: Endpoint) -> None:
    before = child_pids()
    service = LambdaService(
        endpoint.url, endpoint.region, publish_logs=False, publish_metrics=False
    )
    spec = make_spec(reserved_concurrency=3)
    service.add_function(spec)
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: call(service, spec, action="sleep", seconds=0.5), range(3)))
    pids = service.worker_pids()
    assert len(pids) == 3
    assert all(pid_alive(p) for p in pids)
    # One invoke still running when close() is called.
    in_flight = threading.Thread(
        target=call, args=(service, spec), kwargs={"action": "sleep", "seconds": 30}
    )
    in_flight.start()
    wait_until(
        lambda: service.stats()[spec.function_name].busy_workers == 1,
        timeout=5,
        description="the long invoke to be running",
    )

    started = time.monotonic()
    service.close()
    service.close()  # idempotent

    assert time.monotonic() - started < 5
    in_flight.join(timeout=5)
    assert not in_flight.is_alive()
    assert not any(pid_alive(p) for p in pids)
    assert child_pids() - before == set()
    with pytest.raises(LambdaServiceClosedError):
        call(service, spec, action="echo")


def test_worker_killed_while_idle_is_replaced_transparently(service: LambdaService) -> None:
    spec = make_spec()
    service.add_function(spec)
    pid = json.loads(call(service, spec, action="echo").payload)["pid"]

    os.kill(pid, signal.SIGKILL)
    # Wait for the service to see the exit, not just for the main thread to be a zombie:
    # the runtime's polling thread may still hold its socket for a moment after that, and an
    # event handed over in that window is lost with the process (Runtime.ExitError), as in AWS.
    wait_until(
        lambda: pid not in service.worker_pids(), timeout=5, description=f"worker {pid} to be gone"
    )
    result = call(service, spec, action="echo")

    assert result.function_error is None
    assert result.cold_start
    assert json.loads(result.payload)["pid"] != pid
    assert service.stats()[spec.function_name].crashes == 0
