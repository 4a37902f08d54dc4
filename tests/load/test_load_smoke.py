"""The smoke run of each scenario against the real local stack (bounded to seconds).

One local stack for the module (``local_stack_outputs`` in ``conftest.py``, started by the
seam ``harness load --target local`` uses); it stops when the module is done.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main as harness_main
from harness.load import causes
from harness.load.runner import run_load
from harness.load.settings import ShapeParams
from harness.load.sources import SQS_ROLES
from harness.load.target import load_target
from tests.load.runs import PNG_SIGNATURE, SMOKE_SECONDS, smoke, verdicts


def test_api_ingest_smoke_passes_and_writes_the_report(
    local_stack_outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `harness load` with the default --target local, its stack start swapped for the
    # module's stack (started by the same seam, see conftest.py) to start only one.
    from harness.load import cli

    seam_calls: list[str] = []

    @contextlib.contextmanager
    def shared_stack(**options: object) -> Iterator[Path]:
        seam_calls.append("started")
        assert options == {"verbose": False, "fifo_quota": None}
        yield local_stack_outputs

    monkeypatch.setattr(cli, "local_stack_outputs", shared_stack)
    report = tmp_path / "report"
    code = harness_main([
        "load", "--scenario", "api_ingest", "--shape", "smoke",
        "--run-time", f"{SMOKE_SECONDS}s", "--report-dir", str(report),
    ])  # fmt: skip
    assert seam_calls == ["started"]
    summary = json.loads((report / "summary.json").read_text())
    assert code == 0, summary["thresholds"]["verdicts"]
    for name in (
        "locust.html", "locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv",
        "locust_stats.json", "summary.json", "locust.log", "index.html",
    ):  # fmt: skip
        assert (report / name).stat().st_size > 0, name
    for chart in ("throughput.png", "latency.png", "backlog.png", "failures.png"):
        assert (report / chart).read_bytes().startswith(PNG_SIGNATURE), chart
    assert summary["target"]["kind"] == "local"
    assert summary["warm_up"]["accepted"] == 2  # the two smoke users' API workers
    assert summary["passed"]
    assert summary["exit_code"] == 0
    entries = {e["name"]: e for e in summary["locust"]["entries"]}
    assert entries["POST /tasks"]["requests"] > 0
    # Invalid bodies got their 400 with an error body; a retry reused the same task id.
    assert entries["POST /tasks (invalid)"]["failures"] == 0
    assert summary["locust"]["total"]["failures"] == 0
    checked = {v["threshold"] for v in summary["thresholds"]["verdicts"]}
    assert checked >= {"max_error_ratio", "max_p95_ms", "min_throughput_rps"}


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


def test_a_throttled_api_function_is_named_as_such_in_the_report(
    local_stack: tuple[Path, Any], tmp_path: Path
) -> None:
    outputs, stack = local_stack
    function_name = load_target(outputs).api_function_name
    assert function_name is not None
    # A function without reserved concurrency is capped at 16 workers locally, and API
    # Gateway answers a throttled invocation with a bare 500. The local Lambda service has
    # no PutFunctionConcurrency, so lower the cap of the API function directly: 4 users
    # then collide on 1 worker as 60 users collided on 16.
    function = stack.lambdas._functions[function_name]
    saved, function.limit = function.limit, 1
    try:
        shape = ShapeParams("smoke", users=4, spawn_rate=4, run_time_s=SMOKE_SECONDS)
        options = smoke("api_ingest", tmp_path / "report", shape=shape, user_rate=10, warm_up=0)
        result = run_load(options, outputs)
    finally:
        function.limit = saved
    by_cause = result.summary["failures_by_cause"]
    named = by_cause.get(causes.LAMBDA_THROTTLE_500, 0)
    assert named > 0, by_cause
    assert causes.GATEWAY_500 not in by_cause, by_cause  # every 500 matched to a throttle
    assert result.summary["figures"]["lambda_throttles"] >= named
    assert result.summary["figures"]["lambda_throttled_500s"] == named
    # Counted as throttles, not errors, and held to their own limit (5 % locally).
    assert result.exit_code == 1
    checked = verdicts(result)
    assert checked["max_error_ratio"], result.summary["thresholds"]["verdicts"]
    assert not checked["max_lambda_throttle_ratio"]
    assert (
        result.summary["figures"]["throttle_ratio"] >= named / result.summary["figures"]["requests"]
    )
    page = (result.report_dir / "index.html").read_text()
    assert causes.LAMBDA_THROTTLE_500 in page
    assert "failures.png" in result.summary["charts"]
