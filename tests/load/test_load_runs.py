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
from tests.load.runs import smoke, verdicts


def test_a_fifo_queue_is_held_to_its_quota_and_throttles_above_it(
    sqs_outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine cannot offer 300 calls/s per queue, so lower the local endpoint's FIFO
    # quota (it runs in this process) as `harness load` does for a stack it starts; the
    # step offers 4 then 8 calls/s per call type against 5.
    set_fifo_quota = pytest.importorskip("localcloud").set_fifo_quota
    engine = pytest.importorskip("localcloud.sqs.engine")
    monkeypatch.setattr(engine, "FIFO_TRANSACTIONS_PER_SECOND", engine.FIFO_TRANSACTIONS_PER_SECOND)
    set_fifo_quota(5)
    shape = ShapeParams("step", users=4, spawn_rate=4, run_time_s=12, step_users=2, step_time_s=6)
    options = smoke(
        "sqs_fifo_limits", tmp_path / "report", user_rate=4, shape=shape, sqs_quota=5,
        user_classes=["SendOneGroup", "BatchOneGroup"],
    )  # fmt: skip
    result = run_load(options, sqs_outputs)
    assert result.exit_code == 0, verdicts(result)  # throttling is not an error
    checked = verdicts(result)
    for name in ("max_calls_vs_quota", "require_throttled_over_quota", "min_batch_factor"):
        assert checked[name], result.summary["thresholds"]["verdicts"]
    calls = {row["call"]: row for row in result.summary["sqs"]["calls"]}
    for call in ("SendMessage one-group", "SendMessageBatch one-group"):
        assert calls[call]["throttled"] > 0, calls[call]
        assert calls[call]["errors"] == 0
    quota = result.summary["sqs"]["quota"]
    assert quota["peak_calls_vs_quota"] <= 1.2
    assert quota["batch_factor"] == 10
    assert result.summary["figures"]["throttle_ratio"] > 0
    # Each call type's knee: accepted stopped following offered in the second step.
    knees = result.summary["call_knees"]
    assert knees["SendMessage one-group"]["index"] == 2, knees
    assert "sqs.png" in result.summary["charts"]
    causes_seen = result.summary["failures_by_cause"]
    assert list(causes_seen) == ["SQS ThrottlingException (FIFO quota)"], causes_seen


def test_a_queue_accepting_more_than_the_checked_quota_fails_the_run(
    sqs_outputs: Path, tmp_path: Path
) -> None:
    # The endpoint keeps AWS's 300/s while the run checks against 2/s: the check must see
    # a queue that let more through than its quota, and nothing throttled above it.
    shape = ShapeParams("step", users=2, spawn_rate=2, run_time_s=8, step_users=2, step_time_s=8)
    options = smoke(
        "sqs_fifo_limits", tmp_path / "report", user_rate=8, shape=shape, sqs_quota=2,
        user_classes=["SendOneGroup", "BatchOneGroup"],
    )  # fmt: skip
    result = run_load(options, sqs_outputs)
    assert result.exit_code == 1
    checked = verdicts(result)
    assert not checked["max_calls_vs_quota"]
    assert not checked["require_throttled_over_quota"]


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

    monkeypatch.setitem(sys.modules, "harness.local_stack.cloud", None)  # import now fails
    with pytest.raises(cli.LocalStackUnavailable, match="pass --outputs FILE"):  # noqa: SIM117
        with cli.target_outputs("local", None):
            pass
