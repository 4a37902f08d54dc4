"""The AWS verification flow as a subprocess: always tears down, also on SIGINT/SIGTERM.

The harness runs as ``python -m harness.cli ...`` against a moto server in this process,
with the stand-in cdk and a stand-in for the features/load runs (``fake_runner.py``).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.waiting import wait_until

from .conftest import PROJECT_ROOT, CfnFaults, Cli

PREFIX = "ci-verify-1-1"
STACKS = {f"{PREFIX}-Queue", f"{PREFIX}-Api", f"{PREFIX}-Monitoring"}
RUNNER = Path(__file__).parent / "fake_cdk" / "fake_runner.py"
BOUND_S = 120  # no subprocess in this module may run longer


@dataclass
class Run:
    """A harness subprocess with its output in files (no pipe can fill up and block it)."""

    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    runner_log: Path

    def wait(self) -> int:
        """Exit code, bounded."""
        return self.proc.wait(timeout=BOUND_S)

    def stdout(self) -> str:
        """Everything written to stdout so far."""
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        """Everything written to stderr so far."""
        return self.err.read_text(errors="replace")

    def runner_calls(self) -> list[dict[str, Any]]:
        """What the features/load stand-in recorded."""
        if not self.runner_log.exists():
            return []
        return [json.loads(line) for line in self.runner_log.read_text().splitlines() if line]


@pytest.fixture
def harness(cli: Cli, tmp_path: Path) -> Iterator[Any]:
    """Start ``python -m harness.cli ARGS`` with the stand-ins; kill it if a test fails early."""
    started: list[Run] = []

    def start(*args: str, **env: str) -> Run:
        index = len(started)
        out, err = tmp_path / f"out{index}.txt", tmp_path / f"err{index}.txt"
        runner_log = tmp_path / "runner.jsonl"
        full_env = {
            **cli.env,
            "HARNESS_FEATURES_COMMAND": f"{sys.executable} {RUNNER} features",
            "HARNESS_LOAD_COMMAND": f"{sys.executable} {RUNNER} load",
            "FAKE_RUNNER_LOG": str(runner_log),
            "FAKE_RUNNER_HANG_FILE": str(tmp_path / "runner.hanging"),
            **env,
        }
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.cli", *args],
                cwd=PROJECT_ROOT,
                env=full_env,
                stdout=stdout,
                stderr=stderr,
            )
        run = Run(proc, out, err, runner_log)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(timeout=BOUND_S)


def _verify_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "stack",
        "verify",
        "--stack-name",
        PREFIX,
        "--outputs",
        str(tmp_path / "outputs.json"),
        "--report-dir",
        str(tmp_path / "reports"),
        "--poll-interval",
        "0.05",
        "--destroy-timeout",
        "60",
        *extra,
    ]


def _wait_for_file(path: Path, run: Run) -> int:
    """The pid a hanging stand-in wrote; fails fast if the harness exited instead."""

    def probe() -> int | None:
        if run.proc.poll() is not None:
            raise AssertionError(
                f"harness exited {run.proc.returncode} early:\n{run.stdout()}\n{run.stderr()}"
            )
        return int(path.read_text()) if path.exists() and path.read_text() else None

    return wait_until(
        probe, timeout=60, interval=0.05, description=f"a stand-in to write {path.name}"
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_success_deploys_runs_features_and_load_then_destroys(
    cli: Cli, harness: Any, tmp_path: Path
) -> None:
    run = harness(*_verify_args(tmp_path, "--load-smoke"))
    assert run.wait() == 0, run.stderr()
    assert cli.commands() == ["deploy", "destroy"]
    features, load = run.runner_calls()
    outputs, reports = str(tmp_path / "outputs.json"), str(tmp_path / "reports")
    assert features["role"] == "features"
    assert features["argv"] == ["--target", "aws", "--outputs", outputs, "--report-dir", reports]
    assert load["argv"] == [
        "--scenario",
        "api_ingest",
        "--shape",
        "smoke",
        "--target",
        "aws",
        "--outputs",
        outputs,
    ]
    assert (tmp_path / "reports" / "features.html").exists()
    assert not STACKS & cli.stack_names()
    summary = run.stdout().split("AWS verification summary")[1]
    assert "features     ok" in summary
    assert "teardown     ok" in summary


def test_failed_features_still_tear_down(cli: Cli, harness: Any, tmp_path: Path) -> None:
    run = harness(*_verify_args(tmp_path, "--load-smoke"), FAKE_FEATURES_EXIT="1")
    assert run.wait() == 1
    assert cli.commands() == ["deploy", "destroy"]
    assert [c["role"] for c in run.runner_calls()] == ["features"], (
        "no load smoke after failed features"
    )
    assert not STACKS & cli.stack_names()
    assert "load smoke   skipped (features failed)" in run.stdout()


def test_keep_on_failure_keeps_the_stack_and_prints_a_working_destroy_command(
    cli: Cli, harness: Any, tmp_path: Path
) -> None:
    run = harness(*_verify_args(tmp_path, "--keep-on-failure"), FAKE_FEATURES_EXIT="1")
    assert run.wait() == 1
    assert cli.commands() == ["deploy"]
    assert cli.stack_names() >= STACKS
    lines = run.stdout().splitlines()
    command = lines[lines.index("Remove them now with:") + 1].strip()
    assert command == f"harness stack destroy {PREFIX}"
    cleanup = harness(*shlex.split(command)[1:])
    assert cleanup.wait() == 0, cleanup.stderr()
    assert not STACKS & cli.stack_names()


def test_a_failed_deploy_is_explained_and_torn_down(
    cli: Cli, harness: Any, tmp_path: Path, cfn_faults: CfnFaults
) -> None:
    cfn_faults.fail_create(f"{PREFIX}-Api", "ApiHandler", "AWS::Lambda::Function", "Rate exceeded")
    run = harness(*_verify_args(tmp_path))
    assert run.wait() == 1
    assert "ApiHandler (AWS::Lambda::Function)  CREATE_FAILED: Rate exceeded" in run.stderr()
    assert run.runner_calls() == [], "no features against a failed deploy"
    assert cli.commands() == ["deploy", "destroy"]
    assert not STACKS & cli.stack_names()


def test_sigint_while_cdk_deploys_tears_down_and_exits_130(
    cli: Cli, harness: Any, tmp_path: Path
) -> None:
    # Through the main CLI's `harness verify --target aws`, as CI runs it.
    args = _verify_args(tmp_path)[2:]
    run = harness("verify", "--target", "aws", *args, FAKE_CDK_HANG="deploy")
    cdk_pid = _wait_for_file(tmp_path / "fake-cdk.hanging", run)
    assert cli.stack_names() >= STACKS, "the stand-in created the stacks before hanging"

    run.proc.send_signal(signal.SIGINT)
    assert run.wait() == 130, run.stderr()
    signals = [c for c in cli.calls() if "signal" in c]
    assert signals == [{"signal": "SIGINT", "command": "deploy", "pid": cdk_pid}], (
        "SIGINT forwarded to cdk"
    )
    assert _gone(cdk_pid)
    assert cli.commands() == ["deploy", "destroy"]
    assert not STACKS & cli.stack_names()
    assert run.runner_calls() == []
    assert "tearing down the stacks of ci-verify-1-1" in run.stderr()


def test_sigterm_during_features_tears_down_and_exits_143(
    cli: Cli, harness: Any, tmp_path: Path
) -> None:
    run = harness(*_verify_args(tmp_path), FAKE_RUNNER_HANG="features")
    runner_pid = _wait_for_file(tmp_path / "runner.hanging", run)

    run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 143, run.stderr()
    assert {"signal": "SIGTERM", "role": "features"} in run.runner_calls()
    assert _gone(runner_pid)
    assert cli.commands() == ["deploy", "destroy"]
    assert not STACKS & cli.stack_names()


def test_a_second_signal_does_not_abandon_the_teardown(
    cli: Cli, harness: Any, tmp_path: Path, cfn_faults: CfnFaults
) -> None:
    cfn_faults.slow_delete(f"{PREFIX}-Queue", polls=10**9)  # until finish_delete below
    run = harness(*_verify_args(tmp_path), FAKE_RUNNER_HANG="features")
    _wait_for_file(tmp_path / "runner.hanging", run)
    run.proc.send_signal(signal.SIGINT)
    wait_until(
        lambda: f"{PREFIX}-Queue: DELETE_IN_PROGRESS" in run.stdout(),
        timeout=60,
        description="the teardown to be waiting for the Queue stack",
    )
    run.proc.send_signal(signal.SIGINT)
    wait_until(
        lambda: "received SIGINT during teardown; finishing the teardown first" in run.stderr(),
        timeout=60,
        description="the harness to acknowledge the second SIGINT",
    )
    assert run.proc.poll() is None, "the second signal must not end the teardown"
    cfn_faults.finish_delete(f"{PREFIX}-Queue")
    assert run.wait() == 130, run.stderr()
    assert not STACKS & cli.stack_names()


def test_a_protected_account_is_refused_before_anything_runs(
    cli: Cli, harness: Any, tmp_path: Path
) -> None:
    run = harness(*_verify_args(tmp_path), HARNESS_PROTECTED_ACCOUNTS="123456789012")
    assert run.wait() == 3
    assert "refused: refusing to act in AWS account 123456789012" in run.stderr()
    assert cli.commands() == [], "neither deploy nor destroy may run"
