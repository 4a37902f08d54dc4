"""Shared by the load-run tests: smoke-sized run options and the threshold verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.load.runner import LoadOptions, LoadResult
from harness.load.settings import Scenario, ShapeParams

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMOKE_SECONDS = 3


def smoke(scenario: Scenario, report_dir: Path, **overrides: Any) -> LoadOptions:
    """Options for a seconds-long run of ``scenario`` (``overrides`` replace any field)."""
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
    """``{threshold: passed}`` of a run (the assertion message when a run fails)."""
    return {v["threshold"]: v["passed"] for v in result.summary["thresholds"]["verdicts"]}
