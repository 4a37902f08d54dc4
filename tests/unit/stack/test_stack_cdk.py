"""Which CDK command runs, and with which arguments."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.stack import cdk as cdk_module
from harness.stack.cdk import Cdk, resolve_cdk_command


def test_explicit_command_wins_over_the_environment() -> None:
    env = {"HARNESS_CDK": "python fake.py"}
    assert resolve_cdk_command("my-cdk --verbose", env) == ("my-cdk", "--verbose")
    assert resolve_cdk_command(None, env) == ("python", "fake.py")


def test_default_is_the_pinned_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pinned = tmp_path / "node_modules" / ".bin" / "cdk"
    monkeypatch.setattr(cdk_module, "PINNED_CDK", pinned)
    with pytest.raises(ValueError, match="harness stack install-cdk"):
        resolve_cdk_command(None, {})
    pinned.parent.mkdir(parents=True)
    pinned.write_text("#!/bin/sh\n")
    assert resolve_cdk_command(None, {}) == (str(pinned),)


def test_empty_command_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty CDK command"):
        resolve_cdk_command("  ", {})


def test_argv_for_deploy_and_destroy() -> None:
    cdk = Cdk(command=("cdk",), extra_context={"visibility_timeout": "8"})
    deploy = cdk.deploy_argv(
        "ci-x-1-1", Path("/tmp/o.json"), {"expires_at": "2030-01-01T00:00:00Z"}
    )
    assert deploy == [
        "cdk", "deploy", "--all", "--require-approval", "never", "--progress", "events",
        "--outputs-file", "/tmp/o.json",
        "-c", "profile=ephemeral", "-c", "stack_prefix=ci-x-1-1",
        "-c", "visibility_timeout=8", "-c", "expires_at=2030-01-01T00:00:00Z",
    ]  # fmt: skip
    destroy = cdk.destroy_argv("ci-x-1-1")
    assert destroy == [
        "cdk", "destroy", "--all", "--force",
        "-c", "profile=ephemeral", "-c", "stack_prefix=ci-x-1-1", "-c", "visibility_timeout=8",
    ]  # fmt: skip


def test_run_streams_output_and_returns_the_exit_code(capfd: pytest.CaptureFixture[str]) -> None:
    cdk = Cdk(command=(sys.executable, "-c", "import sys; print('progress line'); sys.exit(7)"))
    assert cdk.run([*cdk.command]) == 7
    out = capfd.readouterr().out
    assert out.startswith("$ ")
    assert "progress line" in out
