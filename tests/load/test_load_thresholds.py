"""Threshold evaluation: pure functions over locust's stats JSON and the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.load.ledger import Ledger
from harness.load.locust_stats import (
    LocustStats,
    percentile,
    read_history_csv,
    read_stats_json,
)
from harness.load.settings import DEFAULT_THRESHOLDS, SCENARIOS, SHAPES
from harness.load.thresholds import evaluate, exit_code, load_thresholds, run_figures


def entry(
    name: str,
    requests: int,
    failures: int = 0,
    times: dict[str, int] | None = None,
    content: int = 0,
    method: str = "POST",
) -> dict[str, Any]:
    """One stats entry in the exact shape locust's --json-file writes."""
    return {
        "name": name,
        "method": method,
        "last_request_timestamp": 1010.0,
        "start_time": 1000.0,
        "num_requests": requests,
        "num_none_requests": 0,
        "num_failures": failures,
        "total_response_time": float(sum(int(k) * v for k, v in (times or {}).items())),
        "max_response_time": float(max((int(k) for k in times or {"0": 0}), default=0)),
        "min_response_time": float(min((int(k) for k in times or {"0": 0}), default=0)),
        "total_content_length": content,
        "response_times": times or {},
        "num_reqs_per_sec": {"1000": requests},
        "num_fail_per_sec": {"1000": failures} if failures else {},
    }


def stats_of(tmp_path: Path, *entries: dict[str, Any]) -> LocustStats:
    path = tmp_path / "locust_stats.json"
    path.write_text(json.dumps(list(entries)))
    return read_stats_json(path)


def ledger(**overrides: Any) -> Ledger:
    values: dict[str, Any] = dict(
        accepted=10, completed=10, dead_lettered=0, expected_dead_lettered=0,
        unexpected_dead_lettered=0, lost=0, applied_twice=0, duplicate_deliveries=0,
        redelivered=0, order_checked_by_sequence=True, order_violations_sequence=0,
        order_violations_client=0, e2e_p50_ms=50.0, e2e_p95_ms=90.0, e2e_p99_ms=99.0,
        e2e_max_ms=120.0, drain_per_s=5.0, dlq_added=0,
    )  # fmt: skip
    values.update(overrides)
    return Ledger(**values)


def test_percentile_matches_locusts_rule() -> None:
    # 100 samples: 90 at 10 ms, 9 at 100 ms, 1 at 1000 ms. The expected values are what
    # locust.stats.calculate_response_time_percentile returns for this histogram
    # ([10, 100, 1000, 1000]), so the report's percentiles agree with locust's own.
    histogram = {10.0: 90, 100.0: 9, 1000.0: 1}
    assert percentile(histogram, 100, 0.50) == 10
    assert percentile(histogram, 100, 0.95) == 100
    assert percentile(histogram, 100, 0.99) == 1000
    assert percentile(histogram, 100, 1.00) == 1000
    assert percentile({}, 0, 0.95) == 0


def test_figures_from_stats(tmp_path: Path) -> None:
    stats = stats_of(
        tmp_path,
        entry("POST /tasks", 90, failures=1, times={"10": 80, "200": 10}),
        entry("POST /tasks (invalid)", 10, times={"5": 10}),
    )
    figures = run_figures(stats)
    assert figures["requests"] == 100
    assert figures["error_ratio"] == pytest.approx(0.01)
    assert figures["p95_ms"] == 200
    assert figures["throughput_rps"] == pytest.approx(99 / 10)  # successes over 10 s
    assert figures["throughput_msgs"] is None  # no SQS senders in this run


def test_throttles_are_counted_apart_from_errors(tmp_path: Path) -> None:
    stats = stats_of(
        tmp_path,
        entry("SendMessageBatch one-group", 100, times={"20": 100}, content=1000, method="SQS"),
        entry("SendMessageBatch one-group [throttled]", 50, 50, {"2": 50}, method="SQS"),
    )
    figures = run_figures(stats)
    assert figures["error_ratio"] == 0
    assert figures["throttle_ratio"] == pytest.approx(50 / 150)
    assert figures["p99_ms"] == 20  # latency of the calls that got through
    assert figures["throughput_msgs"] == pytest.approx(100.0)  # 1000 messages in 10 s


def test_a_run_violating_a_threshold_fails_and_one_meeting_it_passes(tmp_path: Path) -> None:
    stats = stats_of(tmp_path, entry("POST /tasks", 100, failures=5, times={"10": 95, "900": 5}))
    figures = run_figures(stats)
    strict = evaluate({"max_error_ratio": 0.01, "max_p99_ms": 500}, figures)
    assert [v.passed for v in strict] == [False, False]
    assert exit_code(strict) == 1
    assert "error_ratio = 0.05 > 0.01" in strict[0].message
    lenient = evaluate({"max_error_ratio": 0.1, "max_p99_ms": 1000}, figures)
    assert all(v.passed for v in lenient)
    assert exit_code(lenient) == 0


def test_ledger_thresholds_fail_on_a_lost_task_or_broken_order(tmp_path: Path) -> None:
    stats = stats_of(tmp_path, entry("POST /tasks", 10, times={"10": 10}))
    limits = {
        "max_lost": 0,
        "require_order": True,
        "require_balanced": True,
        "max_applied_twice": 0,
    }
    assert exit_code(evaluate(limits, run_figures(stats, ledger()))) == 0
    lost = evaluate(limits, run_figures(stats, ledger(lost=1, completed=9)))
    assert {v.threshold for v in lost if not v.passed} == {"max_lost", "require_balanced"}
    disorder = evaluate(limits, run_figures(stats, ledger(order_violations_client=1)))
    assert [v.threshold for v in disorder if not v.passed] == ["require_order"]
    twice = evaluate(limits, run_figures(stats, ledger(applied_twice=2)))
    assert [v.threshold for v in twice if not v.passed] == ["max_applied_twice"]


def test_a_threshold_on_an_unmeasured_figure_fails(tmp_path: Path) -> None:
    stats = stats_of(tmp_path, entry("POST /tasks", 10, times={"10": 10}))
    (verdict,) = evaluate({"max_lost": 0}, run_figures(stats))  # no ledger in this run
    assert not verdict.passed
    assert "not measured" in verdict.message
    (nothing,) = evaluate({"min_requests": 1}, run_figures(LocustStats(())))
    assert not nothing.passed  # a run that sent nothing proves nothing


def test_overrides_apply_base_then_target_then_shape(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        "[api_ingest]\nmax_p95_ms = 100\nmax_p99_ms = 200\n"
        "[api_ingest.aws]\nmax_p95_ms = 50\n"
        "[api_ingest.soak]\nmax_p95_ms = 70\nmin_requests = 1000\n"
    )
    assert load_thresholds(path, "api_ingest") == {"max_p95_ms": 100, "max_p99_ms": 200}
    assert load_thresholds(path, "api_ingest", target="aws")["max_p95_ms"] == 50
    soak = load_thresholds(path, "api_ingest", target="aws", shape="soak")
    assert soak == {"max_p95_ms": 70, "max_p99_ms": 200, "min_requests": 1000}


def test_unknown_keys_and_scenarios_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[api_ingest]\nmax_p959_ms = 100\n")
    with pytest.raises(ValueError, match="unknown threshold 'max_p959_ms'"):
        load_thresholds(path, "api_ingest")
    with pytest.raises(ValueError, match=r"no \[end_to_end\] table"):
        load_thresholds(path, "end_to_end")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_checked_in_thresholds_load_for_every_case(scenario: str) -> None:
    for target in ("local", "aws"):
        for shape in SHAPES:
            limits = load_thresholds(DEFAULT_THRESHOLDS, scenario, target=target, shape=shape)
            assert limits["min_requests"] >= 1
    if scenario == "end_to_end":
        assert load_thresholds(DEFAULT_THRESHOLDS, scenario)["max_lost"] == 0


def test_history_csv_parses_na_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    header = (
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,"
        "99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
        "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
        "Total Average Content Size"
    )
    path.write_text(
        header + "\n"
        "1000,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0\n"
        "1001,2,,Aggregated,4.5,0.5,3,3,3,3,4,8,9,36,36,36,36,20,1,3,2.5,1,36,120.5\n"
    )  # fmt: skip
    first, second = read_history_csv(path)
    assert first.percentiles["95%"] is None
    assert (second.user_count, second.rps, second.percentiles["99%"]) == (2, 4.5, 36.0)
    assert second.total_requests == 20
    assert second.total_content_avg == 120.5
