"""Swapping a function's code while it runs (``LambdaService.update_function``).

What Lambda does on ``UpdateFunctionCode``, and what ``harness local up --watch`` relies on:
a call in flight finishes on the code it started on, the next calls cold-start on the new
code, an idle worker of the old code is stopped at once and a busy one once its call is
over, so no old worker is left running.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.waiting import wait_until
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.testing import (
    Endpoint,
    function_spec,
    local_endpoint,
    pid_alive,
)
from localcloud.specs import FunctionSpec, InvokeResult

# The handler waits for the file the event names, so the test decides when a call ends.
HANDLER = """
import os
import time

VERSION = {version!r}


def handler(event, context):
    release = event.get("release")
    while release and not os.path.exists(release):
        time.sleep(0.01)
    return {{"version": VERSION, "pid": os.getpid()}}
"""


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


def _code(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "swap_probe.py").write_text(HANDLER.format(version=version))
    return directory


def _call(service: LambdaService, spec: FunctionSpec, **event: str) -> InvokeResult:
    return service.invoke(spec.function_name, json.dumps(event).encode())


def _answer(result: InvokeResult) -> dict[str, object]:
    assert result.function_error is None, result.payload
    return dict(json.loads(result.payload))


def _busy(service: LambdaService, name: str) -> int:
    return service.stats()[name].busy_workers


def test_a_call_in_flight_finishes_on_the_old_code_and_no_old_worker_is_left(
    service: LambdaService, tmp_path: Path
) -> None:
    spec = function_spec(_code(tmp_path / "v1", "v1"), "swap_probe.handler", timeout_s=60)
    service.add_function(spec)
    name = spec.function_name
    release = tmp_path / "release"
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Two old workers: one held in a call, one idle after its call.
        held: Future[InvokeResult] = pool.submit(_call, service, spec, release=str(release))
        wait_until(
            lambda: _busy(service, name) == 1, timeout=30, description="the held call to start"
        )
        idle = _answer(_call(service, spec))
        assert idle["version"] == "v1"
        idle_pid = int(str(idle["pid"]))
        (held_pid,) = set(service.worker_pids(name)) - {idle_pid}
        assert pid_alive(held_pid)
        assert pid_alive(idle_pid)

        retired = service.update_function(
            dataclasses.replace(spec, code_dir=_code(tmp_path / "v2", "v2"))
        )

        assert retired == 2
        wait_until(
            lambda: not pid_alive(idle_pid),
            timeout=10,
            description=f"the idle worker of the old code (pid {idle_pid}) to be stopped",
        )
        assert pid_alive(held_pid), "the worker of the call in flight was stopped"
        new = _call(service, spec)
        assert _answer(new)["version"] == "v2"
        assert new.cold_start, "the first call after the swap must start a new worker"
        assert not held.done(), "the call in flight ended before it was released"

        release.touch()
        old = held.result(timeout=30)

    assert _answer(old)["version"] == "v1", "the call in flight did not finish on its code"
    # The process ends first; the service forgets it once its watcher has reaped it.
    wait_until(
        lambda: not pid_alive(held_pid) and held_pid not in service.worker_pids(name),
        timeout=10,
        description=f"the worker of the old code (pid {held_pid}) to be retired and reaped",
    )
    assert service.worker_pids(name) == [_answer(new)["pid"]]
    again = _call(service, spec)
    assert _answer(again)["version"] == "v2"
    assert not again.cold_start, "the new code's worker is reused like any warm worker"
    assert service.function_spec(name).code_dir == (tmp_path / "v2").resolve()


def test_an_update_also_changes_the_configuration(service: LambdaService, tmp_path: Path) -> None:
    spec = function_spec(
        _code(tmp_path / "v1", "v1"), "swap_probe.handler", timeout_s=60, environment={"A": "1"}
    )
    service.add_function(spec)
    _answer(_call(service, spec))

    service.update_function(dataclasses.replace(spec, timeout_s=1, reserved_concurrency=0))

    throttled = _call(service, spec)
    assert throttled.status_code == 429, "the new reserved concurrency (0) is not applied"
    service.update_function(dataclasses.replace(spec, timeout_s=1, reserved_concurrency=1))
    release = tmp_path / "never"
    timed_out = _call(service, spec, release=str(release))
    assert timed_out.error_type == "Sandbox.Timedout", "the new timeout (1 s) is not applied"


def test_updating_an_unknown_function_or_a_missing_directory_is_refused(
    service: LambdaService, tmp_path: Path
) -> None:
    spec = function_spec(_code(tmp_path / "v1", "v1"), "swap_probe.handler")
    with pytest.raises(KeyError, match=spec.function_name):
        service.update_function(spec)
    service.add_function(spec)
    with pytest.raises(FileNotFoundError, match="code directory"):
        service.update_function(dataclasses.replace(spec, code_dir=tmp_path / "nowhere"))
    assert _answer(_call(service, spec))["version"] == "v1"
