"""Real headless locust runs (in subprocesses) of each scenario, bounded to seconds.

The smoke run of each scenario hits the real local stack (``local_stack_outputs``, one
stack for the module); the runs that need a misbehaving system use the stand-in API's
knobs, and the throttling run a lone local SQS endpoint whose quota it lowers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main as harness_main
from harness.load.runner import LoadOptions, LoadResult, run_load
from harness.load.settings import Scenario, ShapeParams
from harness.load.sources import SQS_ROLES
from harness.load.target import load_target
from tests.load.conftest import FakeApiFactory

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMOKE_SECONDS = 3


def smoke(scenario: Scenario, report_dir: Path, **overrides: Any) -> LoadOptions:
    users = 6 if scenario == "sqs_fifo_limits" else 2
    values: dict[str, Any] = {
        "scenario": scenario,
        "shape": ShapeParams("smoke", users=users, spawn_rate=users, run_time_s=SMOKE_SECONDS),
        "report_dir": report_dir,
        "drain_timeout_s": 15,
        "echo": lambda line: None,
    }
    values.update(overrides)
    return LoadOptions(**values)


def verdicts(result: LoadResult) -> dict[str, bool]:
    return {v["threshold"]: v["passed"] for v in result.summary["thresholds"]["verdicts"]}


def test_api_ingest_smoke_passes_and_writes_the_report(
    local_stack_outputs: Path, tmp_path: Path
) -> None:
    result = run_load(smoke("api_ingest", tmp_path / "report"), local_stack_outputs)
    assert result.exit_code == 0, verdicts(result)
    report = result.report_dir
    for name in (
        "locust.html", "locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv",
        "locust_stats.json", "summary.json", "locust.log",
    ):  # fmt: skip
        assert (report / name).stat().st_size > 0, name
    for chart in ("throughput.png", "latency.png", "backlog.png"):
        assert (report / chart).read_bytes().startswith(PNG_SIGNATURE), chart
    summary = json.loads((report / "summary.json").read_text())
    assert summary["passed"]
    assert summary["exit_code"] == 0
    entries = {e["name"]: e for e in summary["locust"]["entries"]}
    assert entries["POST /tasks"]["requests"] > 0
    # Invalid bodies got their 400 with an error body; a retry reused the same task id.
    assert entries["POST /tasks (invalid)"]["failures"] == 0
    assert summary["locust"]["total"]["failures"] == 0
    assert set(verdicts(result)) >= {"max_error_ratio", "max_p95_ms", "min_throughput_rps"}


def test_end_to_end_smoke_accounts_for_every_task(
    local_stack_outputs: Path, tmp_path: Path
) -> None:
    result = run_load(smoke("end_to_end", tmp_path / "report"), local_stack_outputs)
    assert result.exit_code == 0, verdicts(result)
    ledger = result.summary["ledger"]
    assert ledger["accepted"] > 0
    assert ledger["accepted"] == ledger["completed"] + ledger["dead_lettered"]
    assert ledger["lost"] == 0
    assert ledger["applied_twice"] == 0
    assert ledger["order_preserved"]
    assert ledger["e2e_p95_ms"] is not None
    assert result.summary["figures"]["records_complete"]


def test_sqs_fifo_limits_smoke_measures_each_call_type(
    local_stack_outputs: Path, tmp_path: Path
) -> None:
    target = load_target(local_stack_outputs)
    queues_before = sorted(target.sqs().list_queues()["QueueUrls"])
    options = smoke("sqs_fifo_limits", tmp_path / "report", user_rate=10)
    result = run_load(options, local_stack_outputs)
    assert result.exit_code == 0, verdicts(result)
    calls = {row["call"]: row for row in result.summary["sqs"]["calls"]}
    for call in ("SendMessage one-group", "SendMessage many-groups"):
        assert calls[call]["messages"] == calls[call]["calls_ok"] > 0
    for call in ("SendMessageBatch one-group", "SendMessageBatch many-groups"):
        assert calls[call]["messages"] == 10 * calls[call]["calls_ok"] > 0
    assert calls["ReceiveMessage one-group"]["messages"] > 0  # the drain users drained
    assert sorted(result.summary["sqs"]["queues"]) == sorted(SQS_ROLES)
    assert target.task_queue_url not in result.summary["sqs"]["queues"].values()  # scratch
    assert sorted(target.sqs().list_queues()["QueueUrls"]) == queues_before  # cleaned up


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
    options = smoke("end_to_end", tmp_path / "report", drain_timeout_s=2, user_rate=4)
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
