"""``harness verify``'s two runs and ``harness mutate``'s reports, without a stack."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from harness import verify
from harness.mutate.catalogue import Mutant, Patch
from harness.mutate.cli import markdown_table
from harness.mutate.runner import MutantResult, _reason, baseline_tags, describe
from harness.reports.model import IAM_REFUSED


def _summary(report_dir: Path, passed: int, failed: int, skipped: int) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    totals = {"passed": passed, "failed": failed, "skipped": skipped}
    (report_dir / "summary.json").write_text(json.dumps({"totals": totals, "wall_time_s": 12.0}))


@pytest.mark.parametrize(
    ("ephemeral_code", "production_code", "expected"), [(0, 0, 0), (0, 1, 1), (1, 0, 1)]
)
def test_verify_runs_every_feature_then_spec_on_production(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ephemeral_code: int,
    production_code: int,
    expected: int,
) -> None:
    calls: list[tuple[str, Path]] = []

    def run_features(**kwargs: Any) -> int:
        calls.append(("ephemeral", kwargs["report_dir"]))
        _summary(kwargs["report_dir"], 70, ephemeral_code, 4)
        return ephemeral_code

    def run_spec(report_dir: Path, extra_args: list[str] | None = None) -> int:
        calls.append(("production", report_dir))
        _summary(report_dir, 7, production_code, 3)
        return production_code

    monkeypatch.setattr(verify, "run_features", run_features)
    monkeypatch.setattr(verify, "run_spec_on_production", run_spec)
    args = argparse.Namespace(
        target="local", report_dir=tmp_path, outputs=None, pytest_args=[], skip_production=False
    )

    assert verify._run(args) == expected

    assert calls == [("ephemeral", tmp_path), ("production", tmp_path / "production")]
    out = capsys.readouterr().out
    assert "every feature, ephemeral profile: 70 passed" in out
    assert "@spec scenarios, production profile: 7 passed" in out


def _mutant(name: str, tags: str, profile: str = "ephemeral") -> Mutant:
    return Mutant(
        name=name,
        promise=f"promise of {name}",
        tags=tags,
        profile=profile,  # type: ignore[arg-type]
        patches=(Patch("handlers/x.py", "a", "b"),),
    )


def test_the_baseline_selects_every_mutants_scenarios_per_profile() -> None:
    mutants = [
        _mutant("a", "ordering"),
        _mutant("b", "api and validation"),
        _mutant("c", "ordering"),
        _mutant("d", "spec", "production"),
    ]
    assert baseline_tags(mutants) == {
        "ephemeral": "(ordering) or (api and validation)",
        "production": "(spec)",
    }


def test_the_kill_table_names_the_killing_scenario_and_flags_the_rest() -> None:
    mutants = [_mutant("killed-one", "api"), _mutant("survivor", "api")]
    results = [
        MutantResult(
            "killed-one",
            "promise of killed-one",
            "ephemeral",
            "killed",
            7.2,
            scenario="A | scenario",
            feature="features/x.feature",
            reason="AssertionError: x",
        ),
        MutantResult(
            "survivor", "promise of survivor", "ephemeral", "survived", 9.0, scenarios_run=3
        ),
    ]

    table = markdown_table(results, mutants, wall_s=90.0)

    assert "1 of 2 killed, wall time 1.5 min" in table
    assert (
        "| `killed-one` | promise of killed-one | ephemeral | killed "
        "| A \\| scenario (features/x.feature) | 7 s |" in table
    )
    assert "| `survivor` | promise of survivor | ephemeral | SURVIVED | - | 9 s |" in table
    assert "KILLED in 7.2s by 'A | scenario'" in describe(results[0])
    assert "SURVIVED" in describe(results[1])


def test_verify_says_why_a_run_did_not_complete_and_stops_after_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(**kwargs: Any) -> int:
        summary = {
            "status": "incomplete",
            "reason": "the run was interrupted (Ctrl-C) before it ended",
            "totals": {"passed": 3, "failed": 0, "skipped": 0, "not run": 51},
            "wall_time_s": 9.0,
        }
        (kwargs["report_dir"] / "summary.json").write_text(json.dumps(summary))
        return verify.INTERRUPTED

    def production(report_dir: Path, extra_args: list[str] | None = None) -> int:
        raise AssertionError("no production run after Ctrl-C")

    monkeypatch.setattr(verify, "run_features", interrupted)
    monkeypatch.setattr(verify, "run_spec_on_production", production)
    args = argparse.Namespace(
        target="local", report_dir=tmp_path, outputs=None, pytest_args=[], skip_production=False
    )

    assert verify._run(args) == verify.INTERRUPTED

    out = capsys.readouterr().out
    assert "INCOMPLETE every feature, ephemeral profile: 3 passed, 0 failed, 0 skipped, " in out
    assert "51 not run" in out
    assert "the run was interrupted (Ctrl-C) before it ended" in out


def test_a_kill_reason_names_the_calls_iam_refused() -> None:
    detail = "\n".join(
        [
            "    def step(): ...",
            "E   AssertionError: expected the task to be accepted, got HTTP 503",
            "",
            f"{IAM_REFUSED} sqs:SendMessage on arn:aws:sqs:us-east-1:1:q.fifo (role api-role)",
        ]
    )
    assert _reason(detail) == (
        "AssertionError: expected the task to be accepted, got HTTP 503 "
        f"[{IAM_REFUSED} sqs:SendMessage on arn:aws:sqs:us-east-1:1:q.fifo (role api-role)]"
    )
    assert _reason("E   AssertionError: x") == "AssertionError: x"
