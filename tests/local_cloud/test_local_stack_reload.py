"""A local stack started from the synthesis cache, and edits brought into a running one.

- ``harness local up`` on an unchanged tree reuses the cached cloud assembly and says so
  (``--no-cache`` synthesizes);
- ``--watch``: a handler edited in a copy of the tree (the real ``handlers/`` is never
  touched) is swapped in while a call is in flight: before the edit the API answers with
  the old behaviour, after the reload line with the new one, the call in flight
  completes on the old code, and no worker of the old code is left;
- a ``cdk/`` edit the running stack can take (a function's environment) is redeployed,
  one it cannot (a queue's visibility timeout) is named as needing a restart;
- Ctrl-C stops a watching stack and everything it started.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from cdk import contract
from cdk.node import env_with_node
from harness.drivers import ApiResponse, TaskApi
from harness.local_stack.cloud import LocalDeployment
from harness.synth_cache import INPUT_DIRS, INPUT_FILES
from harness.target import Target
from harness.waiting import wait_until
from harness.watch import Reloader
from localcloud.lambda_service.runtime_api import PostedBody
from localcloud.lambda_service.testing import pid_alive
from localcloud.lambda_service.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness.cli"]
TASK = {"title": "reload", "description": "d", "priority": "low"}


def _up(cwd: Path, *args: str) -> tuple[subprocess.Popen[str], Path, Path]:
    outputs, log = cwd / "outputs.json", cwd / "up.log"
    process = subprocess.Popen(
        [*HARNESS, "local", "up", "--outputs", str(outputs), *args],
        cwd=cwd,
        env=env_with_node(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, outputs, log


def _until_up(process: subprocess.Popen[str], outputs: Path, log: Path) -> None:
    wait_until(
        lambda: outputs.exists() or process.poll() is not None,
        timeout=180,
        description="harness local up to write its outputs file",
    )
    assert process.poll() is None, log.read_text()[-3000:]


def _stop(process: subprocess.Popen[str], log: Path) -> str:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.terminate()  # its own handler stops the workers; then nothing is left
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        raise AssertionError(
            f"Ctrl-C did not stop `harness local up` within 60 s:\n{log.read_text()[-3000:]}"
        ) from None
    text = log.read_text()
    assert process.returncode == 0, text[-3000:]
    return text


@pytest.mark.slow
def test_up_on_an_unchanged_tree_reuses_the_cached_assembly(tmp_path: Path) -> None:
    runs = []
    for name, args in (("first", ()), ("second", ()), ("no-cache", ("--no-cache",))):
        cwd = tmp_path / name
        cwd.mkdir()
        process, outputs, log = _up(cwd, *args)
        try:
            _until_up(process, outputs, log)
            api = TaskApi(Target.from_outputs_file(outputs, "local"))
            accepted = api.submit(TASK)
            api.close()
            assert accepted.status == 200, accepted.describe()
        finally:
            runs.append(_stop(process, log))
    second, no_cache = runs[1], runs[2]
    assert re.search(
        r"^reusing the cloud assembly synthesized at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
        r"\(inputs unchanged\): build/cdk-assemblies/[0-9a-f]{24}$",
        second,
        re.MULTILINE,
    ), second
    assert "synthesiz" not in second.replace("synthesized at", "")
    assert "timings: cache_lookup" in second
    assert "synthesized the cloud assembly (--no-cache); not cached" in no_cache
    assert "reusing" not in no_cache


# --- --watch on a copy of the tree ------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what synthesis reads, sharing this checkout's build/ caches (content-
    addressed: the copy's identical inputs reuse its assembly, and no pip run is needed)."""
    copy = tmp_path / "tree"
    for name in INPUT_DIRS:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in INPUT_FILES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    (ROOT / "build").mkdir(exist_ok=True)
    (copy / "build").symlink_to(ROOT / "build")
    return copy


@pytest.fixture
def watched(tree: Path, tmp_path: Path) -> Iterator[tuple[LocalDeployment, queue.Queue[str]]]:
    lines: queue.Queue[str] = queue.Queue()
    with (
        LocalDeployment(project_root=tree, work_dir=tmp_path / "work") as stack,
        Reloader(stack, on_line=lines.put, interval=0.1),
    ):
        yield stack, lines
        workers = stack.lambdas.worker_pids()
    left = [pid for pid in workers if pid_alive(pid)]
    assert left == [], f"the stack's workers {left} outlived it"


def _file_holding(root: Path, text: str) -> Path:
    holders = [p for p in (root / "handlers").rglob("*.py") if text in p.read_text()]
    assert len(holders) == 1, f"expected one handler file holding {text!r}, found {holders}"
    return holders[0]


def _next_line(lines: queue.Queue[str], timeout: float = 120) -> str:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no reload line within {timeout}s") from None


def _held_response(
    stack: LocalDeployment, function_name: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Event, threading.Event]:
    """Hold the first response ``function_name``'s runtime posts until ``release`` is set:
    the handler has run on the code it started with, and its invocation stays in flight,
    its worker busy. (Holding one of the handler's own AWS calls instead would end in its
    SDK client's 1 s read timeout and a 503, not in a call held across the swap.)"""
    respond = Worker.invocation_response
    entered, release = threading.Event(), threading.Event()

    def held(worker: Worker, request_id: str, body: PostedBody) -> tuple[int, bytes]:
        ours = worker.process is not None and worker.process.pid in set(
            stack.lambdas.worker_pids(function_name)
        )
        if ours and not entered.is_set():
            entered.set()
            release.wait(120)
        return respond(worker, request_id, body)

    monkeypatch.setattr(Worker, "invocation_response", held)
    return entered, release


@pytest.mark.slow
def test_a_handler_edit_is_swapped_in_while_a_call_is_in_flight(
    watched: tuple[LocalDeployment, queue.Queue[str]],
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack, lines = watched
    target = Target.from_outputs_file(stack.outputs_file, "local")
    api_function = target.output(contract.API_FUNCTION_NAME)
    processor = target.output(contract.PROCESSOR_FUNCTION_NAME)
    api = TaskApi(target)
    before = api.submit(TASK)
    assert before.status == 200, before.describe()
    old_message = before.json["message"]
    new_message = old_message + " (edited)"

    entered, release = _held_response(stack, api_function, monkeypatch)
    with ThreadPoolExecutor(max_workers=1) as pool:

        def submit() -> ApiResponse:
            other = TaskApi(target)  # its own connection, from its own thread
            try:
                return other.submit(TASK)
            finally:
                other.close()

        in_flight: Future[ApiResponse] = pool.submit(submit)
        wait_until(entered.is_set, timeout=30, description="an API call to post its response")
        old_workers = set(stack.lambdas.worker_pids(api_function)) | set(
            stack.lambdas.worker_pids(processor)
        )
        assert old_workers, "no worker of the old code was running"

        holder = _file_holding(tree, old_message)
        holder.write_text(holder.read_text().replace(old_message, new_message))
        line = _next_line(lines)

        assert line.startswith(
            f"reload: {holder.relative_to(tree).as_posix()} changed: code swapped in "
        )
        assert f"{api_function} (code)" in line
        assert f"{processor} (code)" in line
        assert not in_flight.done(), "the call in flight ended before it was released"
        after = api.submit(TASK)
        assert after.status == 200, after.describe()
        assert after.json["message"] == new_message, "the API still answers with the old code"

        release.set()
        held = in_flight.result(timeout=60)
    api.close()
    assert held.status == 200, held.describe()
    assert held.json["message"] == old_message, "the call in flight did not finish on its code"
    # The processes end first; the service forgets them once its watchers have reaped them.
    wait_until(
        lambda: (
            not any(pid_alive(pid) for pid in old_workers)
            and not old_workers & set(stack.lambdas.worker_pids(api_function))
        ),
        timeout=30,
        description=f"the workers of the old code ({sorted(old_workers)}) to be retired",
    )
    assert not old_workers & set(stack.lambdas.worker_pids(api_function))
    assert (ROOT / "handlers").is_dir()
    assert new_message not in _file_holding(ROOT, old_message).read_text()


def _replace_in(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text()
    edited, count = re.subn(pattern, replacement, text, count=1)
    assert count == 1, f"{pattern!r} not found in {path}"
    path.write_text(edited)


def _environment(stack: LocalDeployment, name: str) -> dict[str, str]:
    return dict(stack.lambdas.function_spec(name).environment)


@pytest.mark.slow
def test_a_cdk_edit_is_redeployed_or_named_as_needing_a_restart(
    watched: tuple[LocalDeployment, queue.Queue[str]], tree: Path
) -> None:
    stack, lines = watched
    target = Target.from_outputs_file(stack.outputs_file, "local")
    api_function = target.output(contract.API_FUNCTION_NAME)
    stacks = tree / "cdk" / "stacks.py"
    outputs_before = json.loads(stack.outputs_file.read_text())

    # An environment variable of the API function: applied in place.
    _replace_in(
        stacks,
        r'"PENDING_WINDOW_SECONDS": str\(config\.pending_window_s\)',
        '"PENDING_WINDOW_SECONDS": "21"',
    )
    line = _next_line(lines)
    assert re.match(
        r"reload: cdk/stacks\.py changed: (synthesized again|assembly taken from the cache) in ",
        line,
    ), line
    assert f"{api_function} (Environment)" in line
    assert _environment(stack, api_function)["PENDING_WINDOW_SECONDS"] == "21"
    api = TaskApi(target)
    accepted = api.submit(TASK)
    api.close()
    assert accepted.status == 200, accepted.describe()

    # The queue's visibility timeout: the engine cannot change a queue in place.
    config = tree / "cdk" / "config.py"
    _replace_in(config, r"visibility_timeout_s=4,", "visibility_timeout_s=5,")
    line = _next_line(lines)
    assert "need a restart (nothing was applied)" in line, line
    assert "AWS::SQS::Queue): VisibilityTimeout changed" in line, line
    assert json.loads(stack.outputs_file.read_text()) == outputs_before


@pytest.mark.slow
def test_ctrl_c_stops_a_watching_stack_and_everything_it_started(tmp_path: Path) -> None:
    process, outputs, log = _up(tmp_path, "--watch")
    try:
        _until_up(process, outputs, log)
        api = TaskApi(Target.from_outputs_file(outputs, "local"))
        assert api.submit(TASK).status == 200
        api.close()
        status = json.loads(
            subprocess.run(
                [*HARNESS, "local", "status", "--json"],
                cwd=tmp_path,
                env=env_with_node(),
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        )
        workers = [
            pid for function in status["functions"].values() for pid in function["worker_pids"]
        ]
        assert workers, "no worker ran"
    finally:
        text = _stop(process, log)
    assert "watching " in text
    assert "local stack stopped" in text
    for pid in [*workers, process.pid]:
        assert not pid_alive(pid), f"process {pid} outlived the stack"
    assert not outputs.exists()
    assert not (tmp_path / ".local-stack" / "pid").exists()
