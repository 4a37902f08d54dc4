"""QA reports for the Gherkin suite: a self-contained HTML page and a terminal summary.

A pytest plugin (registered by the root ``conftest.py`` when features run) collects each
scenario's steps and outcome from pytest-bdd, then writes ``features.html`` (one file, no
external assets, every value HTML-escaped so task text can never become markup) and
``summary.json`` beside pytest-bdd's cucumber JSON.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd.reporting import test_report_context_registry


@dataclass
class StepResult:
    keyword: str
    name: str
    status: str  # passed | failed | skipped | not run
    duration_s: float


@dataclass
class ScenarioResult:
    feature: str
    feature_description: str
    feature_file: str
    name: str
    tags: list[str]
    outcome: str  # passed | failed | skipped
    duration_s: float
    steps: list[StepResult] = field(default_factory=list)
    detail: str = ""


class FeatureReport:
    """The pytest plugin that gathers scenario results and writes the reports."""

    def __init__(self, report_dir: Path, target_name: str) -> None:
        self.report_dir = report_dir
        self.target_name = target_name
        self.scenarios: list[ScenarioResult] = []
        self.first_start: float | None = None
        self.last_stop = 0.0
        self.session_started = time.monotonic()
        self.session_wall_s = 0.0

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        try:
            context = test_report_context_registry[report]
        except KeyError:
            return  # not a scenario
        scenario = context.scenario
        # The scenarios' own span; the session's (stack start-up included) is kept apart.
        self.first_start = min(self.first_start or report.start, report.start)
        self.last_stop = max(self.last_stop, report.stop)
        is_setup_problem = report.when == "setup" and not report.passed
        is_teardown_failure = report.when == "teardown" and report.failed
        if report.when != "call" and not is_setup_problem and not is_teardown_failure:
            return
        if is_teardown_failure and self.scenarios and self.scenarios[-1].name == scenario["name"]:
            self.scenarios[-1].outcome = "failed"
            self.scenarios[-1].detail += "\n[teardown]\n" + _longrepr(report)
            return
        steps = []
        failed_seen = False
        for step in scenario["steps"]:
            if report.skipped:
                status = "skipped"
            elif step.get("failed"):
                status, failed_seen = "failed", True
            elif failed_seen or (report.failed and not step.get("duration")):
                status = "not run"
            else:
                status = "passed"
            steps.append(
                StepResult(
                    step["keyword"], step["name"], status, float(step.get("duration") or 0.0)
                )
            )
        if report.skipped:
            detail = _skip_reason(report)
        elif report.failed:
            detail = _longrepr(report)
        else:
            detail = ""
        feature = scenario["feature"]
        self.scenarios.append(
            ScenarioResult(
                feature=feature["name"] or feature["rel_filename"],
                feature_description=feature.get("description") or "",
                feature_file=feature["rel_filename"],
                name=scenario["name"],
                tags=sorted(scenario.get("tags") or []),
                outcome=report.outcome,
                duration_s=report.duration,
                steps=steps,
                detail=detail,
            )
        )

    @property
    def wall_s(self) -> float:
        """Seconds from the first scenario's start to the last scenario's end."""
        return self.last_stop - self.first_start if self.first_start is not None else 0.0

    def pytest_sessionfinish(self) -> None:
        self.session_wall_s = time.monotonic() - self.session_started
        if not self.scenarios:
            return
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "features.html").write_text(self.render_html(), encoding="utf-8")
        (self.report_dir / "summary.json").write_text(
            json.dumps(self.summary(), indent=2), encoding="utf-8"
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.scenarios:
            return
        write = terminalreporter.write_line
        terminalreporter.section("Task API guarantees")
        for feature, results in self._by_feature().items():
            counts = _counts(results)
            mark = "FAIL" if counts["failed"] else "ok  "
            write(
                f"  {mark} {feature}: {counts['passed']} passed, {counts['failed']} failed"
                + (f", {counts['skipped']} skipped" if counts["skipped"] else "")
            )
            for result in results:
                if result.outcome == "failed":
                    first = result.detail.strip().splitlines()[-1:] or [""]
                    write(f"         x {result.name}: {first[0][:160]}")
        totals = _counts(self.scenarios)
        write(
            f"  target: {self.target_name}; scenarios: {totals['passed']} passed, "
            f"{totals['failed']} failed, {totals['skipped']} skipped; "
            f"scenarios {self.wall_s:.1f}s, wall time {self.session_wall_s:.1f}s "
            "(stack start-up included)"
        )
        write(f"  reports: {self.report_dir / 'features.html'} (also cucumber.json, summary.json)")

    def summary(self) -> dict[str, Any]:
        """Counts per feature and overall, with the wall time: ``summary.json``."""
        return {
            "target": self.target_name,
            "scenarios_s": round(self.wall_s, 2),
            "wall_time_s": round(self.session_wall_s, 2),
            "totals": _counts(self.scenarios),
            "features": {name: _counts(results) for name, results in self._by_feature().items()},
            "scenarios": [asdict(result) for result in self.scenarios],
        }

    def _by_feature(self) -> dict[str, list[ScenarioResult]]:
        grouped: dict[str, list[ScenarioResult]] = {}
        for result in self.scenarios:
            grouped.setdefault(result.feature, []).append(result)
        return grouped

    def render_html(self) -> str:
        """The whole report as one HTML document (inline CSS, no scripts, all text escaped)."""
        e = html.escape
        totals = _counts(self.scenarios)
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">",
            "<title>Task API guarantees</title><style>",
            _CSS,
            "</style></head><body>",
            "<h1>Task API guarantees</h1>",
            f"<p class='meta'>Target: <b>{e(self.target_name)}</b> &middot; "
            f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped "
            f"&middot; scenarios {self.wall_s:.1f} s, wall time {self.session_wall_s:.1f} s "
            "&middot; "
            f"{e(time.strftime('%Y-%m-%d %H:%M:%S %Z'))}</p>",
        ]
        for feature, results in self._by_feature().items():
            counts = _counts(results)
            state = "failed" if counts["failed"] else "passed"
            parts.append(
                f"<section class='feature {state}'><h2>{e(feature)} "
                f"<small>{e(results[0].feature_file)} &middot; {counts['passed']}/"
                f"{len(results)} passed</small></h2>"
            )
            if results[0].feature_description:
                parts.append(f"<p class='desc'>{e(results[0].feature_description)}</p>")
            for result in results:
                tags = " ".join(f"<span class='tag'>@{e(tag)}</span>" for tag in result.tags)
                opened = " open" if result.outcome == "failed" else ""
                parts.append(
                    f"<details class='scenario {e(result.outcome)}'{opened}><summary>"
                    f"<span class='badge'>{e(result.outcome)}</span> {e(result.name)} "
                    f"<small>{result.duration_s:.2f} s</small> {tags}</summary><ol>"
                )
                for step in result.steps:
                    parts.append(
                        f"<li class='{e(step.status.replace(' ', '-'))}'><b>{e(step.keyword)}</b>"
                        f" {e(step.name)} <small>{e(step.status)} &middot; "
                        f"{step.duration_s:.2f} s</small></li>"
                    )
                parts.append("</ol>")
                if result.detail:
                    parts.append(f"<pre>{e(result.detail)}</pre>")
                parts.append("</details>")
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)


def _counts(results: list[ScenarioResult]) -> dict[str, int]:
    return {
        outcome: sum(1 for r in results if r.outcome == outcome)
        for outcome in ("passed", "failed", "skipped")
    }


def _longrepr(report: pytest.TestReport) -> str:
    text = str(report.longrepr or "")
    return text[-6000:]


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em}.meta{color:#555}
section.feature{border-left:6px solid #2e7d32;padding:.2em 1em;margin:1.5em 0;background:#fafafa}
section.feature.failed{border-color:#c62828}
h2 small,summary small{color:#777;font-weight:normal;font-size:.8em}
.desc{white-space:pre-wrap;color:#444}
details.scenario{margin:.4em 0;padding:.3em .6em;background:#fff;border:1px solid #ddd}
summary{cursor:pointer}.badge{display:inline-block;min-width:4.5em;text-align:center;
border-radius:3px;padding:0 .3em;color:#fff;background:#2e7d32;font-size:.85em}
.failed>summary .badge{background:#c62828}.skipped>summary .badge{background:#9e9e9e}
.tag{color:#6a1b9a;font-size:.8em}li.failed{color:#c62828}li.not-run,li.skipped{color:#999}
pre{white-space:pre-wrap;background:#fff3f3;border:1px solid #f3c2c2;padding:.6em;
font-size:.85em;overflow:auto}
"""
