"""Bad input to ``harness``, run as a user runs it: one line on stderr, exit 2, and
nothing started (no stack, no locust, no report folder, no outputs file, no cloud call).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.cliargs import subparsers_of

HARNESS = [sys.executable, "-m", "harness.cli"]
ROOT = Path(__file__).resolve().parents[3]


def _run(
    cwd: Path, *args: str, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` in ``cwd``; ``env`` entries set to None are removed."""
    merged = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environ = {k: v for k, v in merged.items() if v is not None}
    return subprocess.run(
        [*HARNESS, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


BAD_INPUT = [
    (("--frobnicate",), "harness: error: unknown argument: --frobnicate"),
    (("local", "up", "--frobnicate"), "harness local up: error: unknown argument: --frobnicate"),
    (("local",), "harness local: error: choose a command: services, up, down, status, credentials"),
    (("load", "--scenario", "api_ingest", "--users", "-3"), "argument --users: must be >= 1"),
    (("load", "--scenario", "api_ingest", "--users", "2.5"), "expected a whole number"),
    (("load", "--scenario", "api_ingest", "--spawn-rate", "0"), "--spawn-rate: must be > 0"),
    (("load", "--scenario", "api_ingest", "--run-time", "0s"), "--run-time: must be longer"),
    (("load", "--scenario", "api_ingest", "--run-time", "soon"), "not a duration: 'soon'"),
    (("load", "--scenario", "api_ingest", "--user-rate", "nan"), "expected a finite number"),
    (("load", "--scenario", "api_ingest", "--workers", "-1"), "--workers: must be from 0"),
    (("load", "--scenario", "api_ingest", "--outputs", "missing.json"), "no such file"),
    (("load", "--scenario", "api_ingest", "--thresholds", "none.toml"), "no such file"),
    (("load", "--scenario", "sqs_fifo_limits", "--sqs-quota", "0"), "--sqs-quota: must be >= 1"),
    (("load", "--scenario", "api_ingest", "--master-bind-host", "x"), "not an IP address"),
    (("load", "--scenario", "nope"), "argument --scenario: invalid choice: 'nope'"),
    (("local", "up", "--outputs", "/nonexistent/dir/out.json"), "directory /nonexistent/dir"),
    (("local", "up", "--outputs", "."), "is a directory"),
    (("local", "up", "--port", "70000"), "--port: must be from 0 to 65535"),
    (("local", "up", "--assembly", "no-such-cdk.out"), "no such directory: no-such-cdk.out"),
    (("local", "up", "--fifo-quota", "-1"), "--fifo-quota: must be >= 1"),
    (("local", "up", "--watch", "--assembly", "."), "--watch watches the tree the assembly is"),
    (("local", "up", "--no-cache", "--assembly", "."), "--no-cache is about synthesizing"),
    (("local", "services", "--port", "-1"), "--port: must be from 0 to 65535"),
    (("stack", "deploy", "--ephemeral", "--ttl-hours", "-1"), "--ttl-hours: must be > 0"),
    (("stack", "destroy", "x", "--timeout", "0"), "--timeout: must be > 0"),
    (("stack", "reap", "--older-than", "soon"), "is not a duration"),
    (("stack", "verify", "--outputs", "/nonexistent/o.json"), "directory /nonexistent"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_and_starts_nothing(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    result = _run(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    # Nothing was started or written where the user stands.
    assert list(tmp_path.iterdir()) == []
    assert not Path("/nonexistent").exists()


def test_a_bad_load_variable_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    result = _run(tmp_path, "load", "--scenario", "api_ingest", env={"LOAD_USERS": "-3"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "harness load: error: LOAD_USERS='-3' must not be negative (see `harness load --help`)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_broken_thresholds_file_is_refused_before_the_stack_starts(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text("[api_ingest]\nmax_everything = 1\n")
    result = _run(tmp_path, "load", "--scenario", "api_ingest", "--thresholds", "t.toml")
    assert result.returncode == 2
    assert "unknown threshold 'max_everything'" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.toml"]


def test_verify_on_aws_without_credentials_says_so_before_looking_for_the_cdk_cli(
    tmp_path: Path,
) -> None:
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookup off this machine
        "HARNESS_CDK": None,
        "HARNESS_ALLOWED_ACCOUNTS": "111111111111",
    }
    result = _run(tmp_path, "verify", "--target", "aws", "--stack-name", "pr-1", env=env)
    assert result.returncode != 0
    assert "credentials" in result.stderr.lower(), result.stderr
    assert "CDK CLI" not in result.stderr


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for child in subparsers_of(parser):
        found += _parsers(child)
    return found


def test_every_option_with_a_default_shows_it_in_help() -> None:
    missing = []
    for parser in _parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            default = action.default
            if not action.option_strings or default in (None, argparse.SUPPRESS, [], False):
                continue
            if default is not False and "default" not in (action.help or "").lower():
                shown = f"(default: {default})"
                if shown not in text:
                    missing.append(f"{parser.prog} {action.option_strings[0]}")
            if action.help is None:
                missing.append(f"{parser.prog} {action.option_strings[0]} (no help)")
    assert not missing, missing


def test_load_help_names_each_shapes_defaults() -> None:
    load = next(p for p in _parsers(build_parser()) if p.prog == "harness load")
    text = " ".join(load.format_help().split())
    assert "default: smoke 2 (sqs_fifo_limits 6); step 50 (sqs_fifo_limits 60)" in text
    assert "step shape: api_ingest 5" in text


def test_local_credentials_prints_the_api_keys_of_the_outputs(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    api = {
        "ApiUrl": "http://127.0.0.1:4567/ephemeral/",
        "Region": "us-east-1",
        "AwsEndpointUrl": "http://127.0.0.1:4566",
        "ApiAccessKeyId": "AKIAINVOKER",
        "ApiSecretAccessKey": "secret with space",
        "ApiNoInvokeAccessKeyId": "AKIANOINVOKE",
        "ApiNoInvokeSecretAccessKey": "other",
    }
    outputs.write_text(json.dumps({"local-Api": api}))
    shell = _run(tmp_path, "local", "credentials", "--outputs", str(outputs), "--shell")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines() == [
        "export AWS_ACCESS_KEY_ID=AKIAINVOKER",
        "export AWS_SECRET_ACCESS_KEY='secret with space'",
        "export AWS_DEFAULT_REGION=us-east-1",
        "export TASK_API_URL=http://127.0.0.1:4567/ephemeral/",
    ]
    other = _run(tmp_path, "local", "credentials", "--outputs", str(outputs), "--no-invoke")
    assert json.loads(other.stdout)["AWS_ACCESS_KEY_ID"] == "AKIANOINVOKE"
    del api["ApiAccessKeyId"]
    outputs.write_text(json.dumps({"local-Api": api}))
    missing = _run(tmp_path, "local", "credentials", "--outputs", str(outputs))
    assert missing.returncode == 1
    assert "no ApiAccessKeyId/ApiSecretAccessKey" in missing.stderr
    absent = _run(tmp_path, "local", "credentials", "--outputs", str(tmp_path / "none.json"))
    assert absent.returncode == 1
    assert "does not exist" in absent.stderr
