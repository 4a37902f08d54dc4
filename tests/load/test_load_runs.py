"""Real headless locust runs (in subprocesses) that need a misbehaving or tuned target.

The smoke runs against the local stack are in ``test_load_smoke.py``. Here the stand-in
API's knobs lose or reorder tasks, and a lone local SQS endpoint gets a lowered quota.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main as harness_main
from harness.load.runner import run_load
from harness.load.settings import ShapeParams
from tests.load.conftest import FakeApiFactory
from tests.load.runs import SMOKE_SECONDS, smoke, verdicts


def test_throttles_are_seen_and_not_counted_as_errors(
    sqs_outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine cannot offer 300 calls/s per queue, so lower the local endpoint's FIFO
    # quota (it runs in this process) to make the same code path throttle at a few calls/s.
    engine = pytest.importorskip("harness.local.sqs.engine", reason="needs the local SQS")
    monkeypatch.setattr(engine, "FIFO_TRANSACTIONS_PER_SECOND", 1.0)
    # At 1 call/s the checked-in minimum throughput cannot hold; errors are the point here.
    thresholds = tmp_path / "errors-only.toml"
    thresholds.write_text("[sqs_fifo_limits]\nmin_requests = 1\nmax_error_ratio = 0\n")
    options = smoke(
        "sqs_fifo_limits", tmp_path / "report", user_rate=20, thresholds=thresholds,
        user_classes=["SendOneGroup", "BatchOneGroup"],
        shape=ShapeParams("smoke", users=2, spawn_rate=2, run_time_s=SMOKE_SECONDS),
    )  # fmt: skip
    result = run_load(options, sqs_outputs)
    assert result.exit_code == 0, verdicts(result)  # throttling is not an error
    calls = {row["call"]: row for row in result.summary["sqs"]["calls"]}
    for call in ("SendMessage one-group", "SendMessageBatch one-group"):
        assert calls[call]["throttled"] > 0, calls[call]
        assert calls[call]["errors"] == 0
        # A 1-per-second bucket (1 to start with) lets about one call a second through.
        assert calls[call]["calls_ok"] <= SMOKE_SECONDS + 3
    assert result.summary["figures"]["throttle_ratio"] > 0


def test_a_run_violating_its_thresholds_exits_1(fake_api: FakeApiFactory, tmp_path: Path) -> None:
    outputs, _ = fake_api()
    strict = tmp_path / "strict.toml"
    strict.write_text("[api_ingest]\nmax_error_ratio = 0.01\nmin_throughput_rps = 100000\n")
    report = tmp_path / "report"
    code = harness_main([
        "load", "--scenario", "api_ingest", "--shape", "smoke", "--outputs", str(outputs),
        "--report-dir", str(report), "--run-time", "2s", "--thresholds", str(strict),
    ])  # fmt: skip
    assert code == 1
    summary = json.loads((report / "summary.json").read_text())
    by_name = {v["threshold"]: v for v in summary["thresholds"]["verdicts"]}
    assert by_name["max_error_ratio"]["passed"]
    assert not by_name["min_throughput_rps"]["passed"]
    assert "< 100000" in by_name["min_throughput_rps"]["message"]
    assert not summary["passed"]


def test_a_lost_or_reordered_task_fails_the_run(fake_api: FakeApiFactory, tmp_path: Path) -> None:
    # Every third accepted task is never processed, and the rest are processed pairwise
    # swapped: the ledger must see both, and the run must fail on both.
    outputs, api = fake_api(lose_every=3, reorder=True)
    options = smoke("end_to_end", tmp_path / "report", drain_timeout_s=2, user_rate=4, warm_up=0)
    result = run_load(options, outputs)
    assert result.exit_code == 1
    ledger = result.summary["ledger"]
    assert ledger["lost"] >= 1
    assert not ledger["balanced"]
    assert set(ledger["lost_ids"]) <= set(api.tasks)
    assert ledger["order_violations_sequence"] > 0
    assert not ledger["order_preserved"]
    failed = {name for name, passed in verdicts(result).items() if not passed}
    assert {"max_lost", "require_balanced", "require_order"} <= failed


def test_distributed_run_with_local_workers(fake_api: FakeApiFactory, tmp_path: Path) -> None:
    outputs, _ = fake_api()
    result = run_load(smoke("end_to_end", tmp_path / "report", workers=2), outputs)
    assert result.exit_code == 0, verdicts(result)
    report = result.report_dir
    assert (report / "worker-1.log").exists()
    assert (report / "worker-2.log").exists()
    assert "2 workers connected" in (report / "locust.log").read_text()
    # The workers' accepted tasks reached the master's record file: none missing.
    assert result.summary["figures"]["records_complete"]
    assert result.summary["ledger"]["accepted"] > 0


def test_aws_target_without_outputs_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert harness_main(["load", "--scenario", "api_ingest", "--target", "aws"]) == 2
    assert "--target aws needs --outputs FILE" in capsys.readouterr().err


def test_local_stack_seam_says_clearly_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from harness.load import cli

    monkeypatch.setitem(sys.modules, "harness.local.cloud", None)  # import now fails
    with pytest.raises(cli.LocalStackUnavailable, match="pass --outputs FILE"):  # noqa: SIM117
        with cli.target_outputs("local", None):
            pass
