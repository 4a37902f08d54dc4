"""Failure causes, the knee, the FIFO quota checks and the index page, on made-up runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.load import analysis, causes
from harness.load.html_report import render
from harness.load.locust_stats import THROTTLED_SUFFIX, LocustStats, RequestFigures
from harness.load.settings import DEFAULT_THRESHOLDS, ShapeParams
from harness.load.thresholds import evaluate, load_thresholds

GATEWAY_BODY = '{"message":"Internal server error"}'


@pytest.mark.parametrize(
    ("status", "error_type", "body", "expected"),
    [
        (429, "TooManyRequestsException", '{"message":"Too Many Requests"}', causes.STAGE_THROTTLE),
        (500, "InternalServerErrorException", GATEWAY_BODY, causes.GATEWAY_500),
        (502, "InternalServerErrorException", GATEWAY_BODY, causes.FUNCTION_ERROR_502),
        (504, None, '{"message":"Endpoint request timed out"}', causes.INTEGRATION_TIMEOUT),
        # The function's own 500 carries its error body, not API Gateway's.
        (500, None, '{"error":"InternalError","message":"x","request_id":"r"}',
         "HTTP 500: API function answered 500"),
        (0, None, None, "no HTTP answer (connection failed)"),
        (404, "NotFound", "{}", "HTTP 404 (NotFound)"),
    ],
)  # fmt: skip
def test_http_causes(status: int, error_type: str | None, body: str | None, expected: str) -> None:
    assert causes.http_cause(status, error_type, body) == expected


def test_gateway_500s_are_named_lambda_throttles_as_far_as_the_metric_counted() -> None:
    events = [causes.FailureEvent(100 + i, "POST /tasks", causes.GATEWAY_500) for i in range(5)]
    events.append(causes.FailureEvent(101, "POST /tasks [throttled]", causes.STAGE_THROTTLE))
    named = causes.attribute_lambda_throttles(events, lambda_throttles=3)
    assert causes.by_cause(named) == {
        causes.LAMBDA_THROTTLE_500: 3,
        causes.GATEWAY_500: 2,
        causes.STAGE_THROTTLE: 1,
    }
    # The earliest 500s are the ones named; the timeline keeps each second.
    assert causes.timeline(named)[causes.LAMBDA_THROTTLE_500] == {100: 1, 101: 1, 102: 1}
    assert causes.by_cause(causes.attribute_lambda_throttles(events, 0))[causes.GATEWAY_500] == 5


def _entry(name: str, per_second: dict[int, int], failures: dict[int, int] | None = None,
           content_per_call: int = 0) -> RequestFigures:  # fmt: skip
    failures = failures or {}
    ok = sum(per_second.values()) - sum(failures.values())
    return RequestFigures(
        method="SQS", name=name, requests=sum(per_second.values()),
        failures=sum(failures.values()), total_response_ms=1.0, max_ms=1.0, min_ms=1.0,
        content_total=ok * content_per_call, start_time=float(min(per_second)),
        last_request_time=float(max(per_second)), per_second=per_second,
        failures_per_second=failures,
    )  # fmt: skip


def test_the_knee_is_the_first_step_where_achieved_stops_following_offered() -> None:
    params = ShapeParams("step", users=30, spawn_rate=30, run_time_s=30, step_users=10,
                         step_time_s=10)  # fmt: skip
    t0 = 1000
    # 10 req/s per user-step: offered 50, 100, 150 req/s; served 50, 98, then capped at 100.
    served = {t0 + s: (50 if s < 10 else 98 if s < 20 else 100) for s in range(30)}
    throttled = {t0 + s: 50 for s in range(20, 30)}
    stats = LocustStats((
        _entry("POST /tasks", served),
        _entry("POST /tasks" + THROTTLED_SUFFIX, throttled, throttled),
    ))  # fmt: skip
    rows = analysis.steps(stats, params, t0=t0, user_rate=5, names=["POST /tasks"])
    assert [(r.users, r.offered_per_s) for r in rows] == [(10, 50), (20, 100), (30, 150)]
    assert [round(r.achieved_per_s) for r in rows] == [50, 98, 100]
    knee = analysis.knee(rows)
    assert knee is not None
    assert knee.index == 3
    assert knee.throttled_per_s == pytest.approx(50)
    assert analysis.knee(rows[:2]) is None


def _sqs_stats(accepted: int, throttled: int, seconds: int = 10) -> LocustStats:
    window = range(1000, 1000 + seconds)
    entries = [
        _entry("SendMessage one-group", dict.fromkeys(window, accepted), content_per_call=1),
        _entry("SendMessageBatch one-group", dict.fromkeys(window, accepted), content_per_call=10),
    ]
    if throttled:
        for name in ("SendMessage one-group", "SendMessageBatch one-group"):
            per = dict.fromkeys(window, throttled)
            entries.append(_entry(name + THROTTLED_SUFFIX, per, per))
    return LocustStats(tuple(entries))


def test_a_queue_held_to_its_quota_and_throttling_above_it_passes() -> None:
    quota = analysis.quota_figures(_sqs_stats(accepted=25, throttled=20), quota=25)
    assert quota["peak_calls_vs_quota"] == 1.0
    assert quota["offered_over_quota"] == ["SendMessage one-group", "SendMessageBatch one-group"]
    assert quota["throttled_over_quota"] is True
    assert quota["batch_factor"] == 10


def test_a_queue_letting_more_than_its_quota_through_fails_the_thresholds() -> None:
    # 45 calls/s accepted and none throttled against a 25/s quota: the queue broke its limit.
    quota = analysis.quota_figures(_sqs_stats(accepted=45, throttled=0), quota=25)
    assert quota["peak_calls_vs_quota"] == 1.8
    assert quota["throttled_over_quota"] is False
    limits = load_thresholds(DEFAULT_THRESHOLDS, "sqs_fifo_limits", target="local", shape="step")
    verdicts = {v.threshold: v.passed for v in evaluate(limits, quota)}
    assert verdicts["max_calls_vs_quota"] is False
    assert verdicts["require_throttled_over_quota"] is False
    assert verdicts["min_batch_factor"] is True


def test_nothing_offered_above_the_quota_cannot_show_throttling() -> None:
    quota = analysis.quota_figures(_sqs_stats(accepted=10, throttled=0), quota=25)
    assert quota["throttled_over_quota"] is None  # not measured: the threshold fails
    limits = {"require_throttled_over_quota": True}
    (verdict,) = evaluate(limits, quota)
    assert not verdict.passed
    assert "not measured" in verdict.message


def _summary(**overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "scenario": "end_to_end", "shape": {"shape": "step", "users": 50},
        "target": {"kind": "local", "api_url": "http://127.0.0.1:1/prod"},
        "run_id": "r", "started_at": "2026-12-06T00:00:00", "wall_time_s": 12.0,
        "user_rate_per_user": 5, "passed": False, "exit_code": 1, "interrupted": False,
        "locust": {"crashed": False, "exit_code": 1, "total": {
            "requests": 100, "failures": 10, "p50_ms": 1, "p95_ms": 2, "p99_ms": 3}},
        "figures": {"lambda_throttles": 4},
        "failures_by_cause": {causes.LAMBDA_THROTTLE_500: 4, "<script>x</script>": 1},
        "limits": {"API stage throttle: 100 req/s (burst 200)": 100},
        "steps": [
            {"index": 1, "users": 5, "offered_per_s": 25, "achieved_per_s": 25,
             "throttled_per_s": 0, "failed_per_s": 0},
            {"index": 2, "users": 10, "offered_per_s": 150, "achieved_per_s": 100,
             "throttled_per_s": 50, "failed_per_s": 0},
        ],
        "knee": {"index": 2, "users": 10, "offered_per_s": 150, "achieved_per_s": 100,
                 "throttled_per_s": 50, "failed_per_s": 0},
        "ledger": {"accepted": 866, "idempotent_retries": 44, "completed": 865,
                   "dead_lettered": 0, "expected_dead_lettered": 0,
                   "unexpected_dead_lettered": 0, "lost": 1, "applied_twice": 0,
                   "duplicate_deliveries": 0, "order_preserved": True, "drain_per_s": 80.0,
                   "accepted_per_s": 81.0, "e2e_p50_ms": 1, "e2e_p95_ms": 2, "e2e_p99_ms": 3,
                   "lost_ids": ["t-1"], "applied_twice_ids": [], "order_violation_ids": []},
        "thresholds": {"file": "loadtest/thresholds.toml", "verdicts": [
            {"threshold": "max_lost", "limit": 0, "actual": 1, "passed": False,
             "message": "lost = 1 > 0"}]},
        "charts": ["throughput.png", "failures.png"],
    }  # fmt: skip
    summary.update(overrides)
    return summary


def test_the_index_page_says_what_was_lost_why_requests_failed_and_where_the_knee_is() -> None:
    page = render(_summary(), ["locust.html", "locust_stats.csv", "summary.json", "failures.png"])
    assert "FAILED (exit code 1)" in page
    assert "LOST 1, applied twice 0" in page
    assert "866 tasks accepted = 865 completed + 0 dead-lettered" in page
    assert "44 idempotent retries" in page
    assert causes.LAMBDA_THROTTLE_500 in page
    assert "Knee at step 2 (10 users): offered 150/s, achieved 100/s" in page
    assert "API stage throttle: 100 req/s" in page
    assert '<img src="failures.png"' in page
    assert '<a href="locust.html">' in page
    assert '<a href="locust_stats.csv">' in page
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;" in page


def test_a_run_without_a_ledger_says_so() -> None:
    page = render(_summary(ledger=None, passed=True, exit_code=0), [])
    assert "PASSED (exit code 0)" in page
    assert "No ledger" in page


def test_charts_draw_limits_marks_and_causes(tmp_path: Path) -> None:
    from harness.load import charts

    stats = _sqs_stats(accepted=25, throttled=5)
    path = charts.failures_chart(
        tmp_path / "failures.png", t0=1000, marks=[3.0],
        causes={causes.SQS_THROTTLE: {1001: 5, 1002: 5}}, lambda_throttles={1001: 2.0},
    )  # fmt: skip
    assert path.read_bytes().startswith(b"\x89PNG")
    sqs = charts.sqs_chart(tmp_path / "sqs.png", t0=1000, stats=stats, quota=25, batch_size=10)
    assert sqs.stat().st_size > 10_000
