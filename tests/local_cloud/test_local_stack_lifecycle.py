"""``harness local up | down | status`` as a user runs them: start, use, stop, nothing left.

The stack is deployed from one synthesized assembly (``--assembly``) so each test pays
for start-up, not for synthesis.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cdk import contract
from cdk.node import env_with_node
from cdk.synth import synthesize
from harness.drivers import TaskApi, TaskStore
from harness.local_stack.cloud import LocalDeployment
from harness.target import Target
from harness.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, "-m", "harness.cli"]


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(
        "ephemeral", tmp_path_factory.mktemp("assembly") / "cdk.out", {"stack_prefix": "lifecycle"}
    )


def _harness(cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``harness ARGS`` as a user would, capturing its output."""
    return subprocess.run(
        [*HARNESS, *args],
        cwd=cwd,
        env=env_with_node(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _status(outputs: dict[str, str]) -> dict[str, Any]:
    url = outputs[contract.AWS_ENDPOINT_URL] + "/_local/status"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return dict(json.loads(response.read()))


def _port_open(url: str) -> bool:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: it holds no port and runs no code.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.fixture
def foreground(assembly: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    outputs = tmp_path / "outputs.json"
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [*HARNESS, "local", "up", "--outputs", str(outputs), "--assembly", str(assembly)],
        cwd=tmp_path,
        env=env_with_node(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: outputs.exists() or process.poll() is not None,
            timeout=120,
            description="harness local up to write its outputs file",
        )
        assert process.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        yield process, outputs
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_ctrl_c_during_a_batch_stops_everything(
    foreground: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    process, outputs_file = foreground
    target = Target.from_outputs_file(outputs_file, "local")
    outputs = target.outputs
    api, store = TaskApi(target), TaskStore(target)
    processor = outputs[contract.PROCESSOR_FUNCTION_NAME]

    # A worker killed from outside: the stack replaces it and loses nothing.
    first = api.submit({"title": "warm up", "description": "d", "priority": "low"}).json
    store.wait_for_status(first["task_id"], {"COMPLETED"}, timeout=60)
    for pid in _status(outputs)["functions"][processor]["worker_pids"]:
        os.kill(pid, signal.SIGKILL)
    after_kill = api.submit({"title": "after kill", "description": "d", "priority": "low"}).json
    assert store.wait_for_status(after_kill["task_id"], {"COMPLETED"}, timeout=60)

    # Ctrl-C while the processor is in the middle of a batch (a task that times out).
    slow = api.submit(
        {"title": "slow", "description": "d", "priority": "low"},
        headers={contract.FAULT_INJECTION_HEADER: "timeout"},
    )
    assert slow.status == 200, slow.describe()
    busy = wait_until(
        lambda: (s := _status(outputs))["functions"][processor]["busy_workers"] >= 1 and s,
        timeout=30,
        interval=0.05,
        description="the processor to be busy with a batch",
    )
    pids = [pid for stats in busy["functions"].values() for pid in stats["worker_pids"]]
    assert pids, busy
    api.close()

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, (tmp_path / "up.log").read_text()[-3000:]
    log = (tmp_path / "up.log").read_text()
    assert "local stack stopped" in log, log[-2000:]
    assert not [pid for pid in pids if _alive(pid)], "worker processes outlived the stack"
    assert not _port_open(outputs[contract.AWS_ENDPOINT_URL]), "the AWS endpoint still listens"
    assert not _port_open(outputs[contract.API_URL]), "the API still listens"
    assert not outputs_file.exists(), "a stopped stack must not leave its outputs file behind"


@pytest.mark.slow
def test_a_second_up_in_the_same_directory_is_refused_with_the_first_ones_pid(
    foreground: tuple[subprocess.Popen[bytes], Path], assembly: Path, tmp_path: Path
) -> None:
    process, outputs_file = foreground
    before = outputs_file.read_text()
    for extra in ((), ("--detach",)):
        second = _harness(
            tmp_path, "local", "up", *extra, "--outputs", str(tmp_path / "second.json"),
            "--assembly", str(assembly), timeout=60,
        )  # fmt: skip
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"already running from this directory (pid {process.pid})" in second.stderr
        assert len(second.stderr.splitlines()) == 1, second.stderr
        assert not (tmp_path / "second.json").exists()
    # The same outputs file from another directory: refused too, the file left alone.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    third = _harness(
        elsewhere, "local", "up", "--outputs", str(outputs_file), "--assembly", str(assembly),
        timeout=60,
    )  # fmt: skip
    assert third.returncode == 3, third.stdout + third.stderr
    assert f"a running local stack (pid {process.pid}) uses {outputs_file}" in third.stderr
    assert outputs_file.read_text() == before
    # status and down from that directory find the foreground stack.
    status = _harness(tmp_path, "local", "status", timeout=60)
    assert status.returncode == 0, status.stderr
    assert f"(pid {process.pid})" in status.stdout
    log = (tmp_path / "up.log").read_text()
    assert "| CREATE_COMPLETE | AWS::" not in log, log  # resource lines only with --verbose
    assert "lifecycle-Queue | CREATE_COMPLETE | 10 resources in" in log
    down = _harness(tmp_path, "local", "down", timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    assert process.wait(timeout=60) == 0
    assert not outputs_file.exists()
    assert not (tmp_path / ".local-stack" / "pid").exists()
    assert "DELETE_COMPLETE" not in (tmp_path / "up.log").read_text()


@pytest.mark.slow
def test_detach_status_down(assembly: Path, tmp_path: Path) -> None:
    outputs_file = tmp_path / "outputs.json"
    up = _harness(
        tmp_path,
        "local",
        "up",
        "--detach",
        "--outputs",
        str(outputs_file),
        "--assembly",
        str(assembly),
        timeout=180,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert "ApiUrl" in up.stdout, up.stdout
    assert "start_after_synth" in up.stdout, up.stdout  # the detached stack's own timings
    pid = int((tmp_path / ".local-stack" / "pid").read_text())
    try:
        again = _harness(
            tmp_path, "local", "up", "--detach", "--outputs", str(outputs_file), timeout=60
        )
        assert again.returncode == 3, again.stdout
        assert f"already running from this directory (pid {pid})" in again.stderr, again.stderr

        # The AWS CLI line `up` printed works as printed, with the pinned AWS CLI (v1),
        # and the same flags reach every service.
        (line,) = [ln.strip() for ln in up.stdout.splitlines() if "aws --endpoint-url" in ln]
        cli_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        for command in (line, line.replace("sqs list-queues", "dynamodb list-tables")):
            aws = subprocess.run(
                ["bash", "-c", command], env=cli_env, capture_output=True, text=True, timeout=60
            )
            assert aws.returncode == 0, command + "\n" + aws.stderr
            assert "lifecycle-" in aws.stdout, aws.stdout

        # The README's lines: export the API client's credentials, then the signed curl
        # line `up` printed creates a task; unsigned, the gateway refuses it.
        (curl,) = [ln.strip() for ln in up.stdout.splitlines() if "curl -s --aws-sigv4" in ln]
        harness = " ".join(shlex.quote(part) for part in HARNESS)
        signed = subprocess.run(
            ["bash", "-c", f'eval "$({harness} local credentials --shell)" && {curl}'],
            cwd=tmp_path, env=env_with_node(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        assert json.loads(signed.stdout)["status"] == "QUEUED", signed.stdout
        unsigned = subprocess.run(
            ["bash", "-c", "curl -s -X POST " + curl.split(" -X POST ", 1)[1]],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert json.loads(unsigned.stdout) == {"message": "Missing Authentication Token"}

        status = _harness(tmp_path, "local", "status", "--outputs", str(outputs_file), timeout=60)
        # Without --outputs, from the same directory: the detached stack's own outputs.
        plain = _harness(tmp_path, "local", "status", timeout=60)
        for report in (status, plain):
            assert report.returncode == 0, report.stderr
            for expected in (
                "lifecycle-tasks.fifo",
                "lifecycle-tasks-dlq.fifo",
                "lifecycle-processor",
                "lifecycle-dlq-messages",
            ):
                assert expected in report.stdout, report.stdout
    finally:
        down = _harness(tmp_path, "local", "down", timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    wait_until(lambda: not _alive(pid), timeout=30, description=f"local stack {pid} to exit")
    assert not (tmp_path / ".local-stack" / "pid").exists()
    assert not (tmp_path / ".local-stack" / "outputs").exists()


def test_status_without_a_stack_is_a_clear_error(tmp_path: Path) -> None:
    result = _harness(
        tmp_path, "local", "status", "--outputs", str(tmp_path / "missing.json"), timeout=60
    )
    assert result.returncode == 1
    assert "is the local stack up?" in result.stderr, result.stderr
    (tmp_path / "broken.json").write_text("{not json")
    broken = _harness(
        tmp_path, "local", "status", "--outputs", str(tmp_path / "broken.json"), timeout=60
    )
    assert broken.returncode == 1
    assert "is not JSON" in broken.stderr, broken.stderr
    (tmp_path / "other.json").write_text('{"Stack": {"ApiUrl": "http://127.0.0.1:1/"}}')
    other = _harness(
        tmp_path, "local", "status", "--outputs", str(tmp_path / "other.json"), timeout=60
    )
    assert other.returncode == 1
    assert "no AwsEndpointUrl" in other.stderr, other.stderr


@pytest.mark.slow
def test_one_process_can_run_local_stacks_one_after_another(assembly: Path) -> None:
    # moto's state lives as long as the process: a stack that left anything behind (a log
    # group recreated by a late log flush, say) would make the next deploy fail.
    for round_ in range(2):
        with LocalDeployment(assembly_dir=assembly) as stack:
            target = Target.from_outputs_file(stack.outputs_file, "local")
            api = TaskApi(target)
            accepted = api.submit(
                {"title": f"round {round_}", "description": "d", "priority": "low"}
            )
            api.close()
            assert accepted.status == 200, accepted.describe()
            TaskStore(target).wait_for_status(accepted.json["task_id"], {"COMPLETED"}, timeout=60)


@pytest.mark.slow
def test_load_keep_stack_leaves_a_detached_stack_to_inspect(tmp_path: Path) -> None:
    # Run from a directory of the user's: a relative report folder lands there, and the
    # repository's thresholds are found.
    report = tmp_path / "report"
    run = _harness(
        tmp_path, "load", "--scenario", "api_ingest", "--run-time", "2s", "--keep-stack",
        "--report-dir", "report", timeout=300,
    )  # fmt: skip
    pid_file = tmp_path / ".local-stack" / "pid"
    try:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr
        assert "harness local down" in run.stdout
        assert json.loads((report / "summary.json").read_text())["passed"], run.stdout[-3000:]
        assert (report / "index.html").exists()
        pid = int(pid_file.read_text())
        assert _alive(pid)
        status = _harness(tmp_path, "local", "status", timeout=60)
        assert status.returncode == 0, status.stderr
        assert f"(pid {pid})" in status.stdout
        # The run's tasks are still there to look at.
        assert "local-tasks.fifo" in status.stdout
    finally:
        down = _harness(tmp_path, "local", "down", timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    wait_until(lambda: not _alive(pid), timeout=30, description=f"local stack {pid} to exit")
    assert not pid_file.exists()
