"""The pytest plugin behind the QA report of the Gherkin suite.

Registered by the root ``conftest.py`` when features run. It knows every selected
scenario from the start (so those a stopped run never reached are listed as "not run"),
records each scenario's steps, outcome, the message that explains a failure and the calls
it made to the stack (:mod:`harness.reports.recording`), reads the run's environment and
the deployed settings from the target, and writes ``features.html`` and ``summary.json``
beside pytest-bdd's cucumber JSON.

The page is rewritten when the session starts (saying the run is under way, so a run
killed outright never leaves the previous run's page behind) and when it ends, however
it ends: a run that stopped early says why in plain words (the stack was unreachable, the
outputs file was missing, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import platform
import socket
import subprocess
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pytest_bdd.reporting import test_report_context_registry
from pytest_bdd.scenario import scenario_wrapper_template_registry

from harness.reports import page
from harness.reports.model import (
    NOT_DEPLOYED,
    NOT_DEPLOYED_MESSAGE,
    UNREACHABLE,
    RunInfo,
    ScenarioResult,
    StepResult,
    counts,
)
from harness.reports.recording import CallLog, hooks_installed, paused, recording, redact_text
from harness.target import StackNotDeployedError

_PROBE_TIMEOUT_S = 2.0


class FeatureReport:
    """The pytest plugin that gathers scenario results and writes the reports."""

    def __init__(self, report_dir: Path, target_name: str) -> None:
        self.report_dir = report_dir
        self.run = RunInfo(target=target_name, started_at=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
        self.scenarios: list[ScenarioResult] = []
        self.selected: dict[str, ScenarioResult] = {}
        self.first_start: float | None = None
        self.last_stop = 0.0
        self.session_started = time.monotonic()
        self._logs: dict[str, CallLog] = {}
        self._target_read = False
        self._hooks = contextlib.ExitStack()

    # --- session -------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        config = session.config
        self.run.command = "pytest " + " ".join(config.invocation_params.args)
        self.run.environment.update(_environment(Path(str(config.rootpath))))
        self._hooks.enter_context(hooks_installed())
        self.write()  # status "running": the previous run's page is gone from now on

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.run.collection_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            result = _static_result(item)
            if result is not None:
                self.selected[item.nodeid] = result

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        exc = excinfo.value
        if isinstance(exc, pytest.exit.Exception):
            self.run.reason = f"the run was stopped: {exc.msg}"
        elif isinstance(exc, pytest.Session.Interrupted):
            self.run.reason = f"the run was stopped: {exc}"
        else:
            self.run.reason = "the run was interrupted (Ctrl-C) before it ended"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session | None = None) -> None:
        self.run.wall_time_s = time.monotonic() - self.session_started
        self.run.scenarios_s = self.wall_s
        if session is not None and not self.run.reason:
            stop = session.shouldstop or session.shouldfail
            if stop:
                self.run.reason = f"the run was stopped early: {stop}"
        if self.run.collection_errors and not self.run.reason:
            self.run.reason = (
                f"{len(self.run.collection_errors)} feature module(s) could not be collected"
            )
        self.run.status = "incomplete" if self.run.reason or self.not_run() else "complete"
        if self.not_run() and not self.run.reason:
            self.run.reason = f"{len(self.not_run())} selected scenario(s) did not run"
        self.write()
        self._hooks.close()

    def pytest_unconfigure(self) -> None:
        self._hooks.close()

    # --- target --------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, Any, Any]:
        # A session's or module's fixtures (the local stack's deployment) are no scenario's.
        with contextlib.nullcontext() if fixturedef.scope == "function" else paused():
            value = yield
        if (
            fixturedef.argname == "target"
            and not self._target_read
            and self._scenarios_see(fixturedef.baseid)
        ):
            self._target_read = True
            self._read_target(value)
        return value

    def _scenarios_see(self, baseid: str) -> bool:
        """Whether a fixture of conftest ``baseid`` is the scenarios' own (other test
        folders may have a fixture of the same name)."""
        return any(node.startswith(baseid) for node in self.selected)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        # The last scenario's teardown also stops the session's stack: not its calls.
        with contextlib.nullcontext() if nextitem is not None else paused():
            return (yield)

    def _read_target(self, target: Any) -> None:
        env = self.run.environment
        env["Profile"] = str(getattr(target, "profile", ""))
        outputs: dict[str, str] = getattr(target, "outputs", {})
        for key, label in (("ApiUrl", "API"), ("AwsEndpointUrl", "AWS endpoint")):
            if outputs.get(key):
                env[label] = outputs[key]
        env["Region"] = outputs.get("Region") or "from the AWS configuration"
        if getattr(target, "outputs_file", None):
            env["Outputs file"] = str(target.outputs_file)
        try:
            with paused():
                settings = target.settings
        except Exception as exc:  # the stack may already be unreachable: say so, go on
            self.run.settings_error = f"{type(exc).__name__}: {exc}"[:500]
            return
        self.run.settings = {
            "SQS visibility timeout": f"{settings.visibility_timeout_s} s",
            "Receives before the DLQ (maxReceiveCount)": str(settings.max_receive_count),
            "Processor timeout": f"{settings.processor_timeout_s} s",
            "Processor batch size": str(settings.batch_size),
            "Processor attempts per task": str(settings.attempt_budget),
            "Longest wait for 3 deliveries": f"{settings.redelivery_budget_s(3):.0f} s",
        }

    # --- scenarios -----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        if item.nodeid not in self.selected:
            return (yield)
        with recording() as log:
            self._logs[item.nodeid] = log
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if item.nodeid in self.selected:
            self._record(item, call, report)
        return report

    def _record(self, item: pytest.Item, call: pytest.CallInfo[None], report: Any) -> None:
        self.first_start = min(self.first_start or report.start, report.start)
        self.last_stop = max(self.last_stop, report.stop)
        result = self.selected[item.nodeid]
        if report.when == "teardown":
            if report.failed:
                result.outcome = "failed"
                result.detail += "\n[teardown]\n" + _longrepr(report)
                result.message = result.message or _message(call)[0]
            return
        if report.when == "setup" and report.passed:
            return
        context = test_report_context_registry.get(report)
        ran = context.scenario["steps"] if context is not None else []
        result.steps = _steps(result.steps, ran, skipped=report.skipped)
        result.outcome = report.outcome
        result.duration_s = report.duration
        log = self._logs.get(item.nodeid)
        if log is not None:
            result.calls = log.calls  # the same list: teardown's calls still land in it
            result.calls_omitted = log.omitted
        if report.skipped:
            result.detail = result.message = _skip_reason(report)
        elif report.failed:
            result.detail = _longrepr(report)
            result.message, result.cause = _message(call)
            if result.cause == UNREACHABLE:
                _stop_if_down(item.session, call)
            elif result.cause == NOT_DEPLOYED:
                # Every later scenario would fail the same way (pytest re-raises the
                # session fixture's error): stop, as for a stack that is down.
                item.session.shouldstop = (
                    "the stack did not deploy, so the remaining scenarios were not run"
                )
        self.scenarios.append(result)

    def not_run(self) -> list[ScenarioResult]:
        """The selected scenarios that have no outcome (the run stopped before them)."""
        return [r for r in self.selected.values() if r.outcome == "not run"]

    # --- output --------------------------------------------------------------------------

    @property
    def wall_s(self) -> float:
        """Seconds from the first scenario's start to the last scenario's end."""
        return self.last_stop - self.first_start if self.first_start is not None else 0.0

    def all_results(self) -> list[ScenarioResult]:
        """Every scenario the page shows: those that ran, then those that did not."""
        return [*self.scenarios, *(r for r in self.not_run() if r not in self.scenarios)]

    def write(self) -> None:
        """Write ``features.html`` and ``summary.json`` as the run stands now."""
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "features.html").write_text(self.render_html(), encoding="utf-8")
        (self.report_dir / "summary.json").write_text(
            json.dumps(self.summary(), indent=2), encoding="utf-8"
        )

    def render_html(self) -> str:
        """The whole report as one HTML document (inline CSS, no scripts, all text escaped)."""
        return page.render(self.run, self.all_results())

    def summary(self) -> dict[str, Any]:
        """``summary.json``: how the run ended, counts per feature and overall, each scenario.

        ``scenarios`` holds those that ran; ``not_run`` names the others.
        """
        grouped = page.by_feature(self.all_results())
        return {
            "status": self.run.status,
            "reason": self.run.reason,
            "target": self.run.target,
            "started_at": self.run.started_at,
            "command": self.run.command,
            "environment": self.run.environment,
            "settings": self.run.settings,
            "settings_error": self.run.settings_error,
            "collection_errors": self.run.collection_errors,
            "scenarios_s": round(self.wall_s, 2),
            "wall_time_s": round(self.run.wall_time_s, 2),
            "totals": counts(self.all_results()),
            "features": {name: counts(results) for name, results in grouped.items()},
            "scenarios": [_as_dict(result) for result in self.scenarios],
            "not_run": [f"{r.feature_file}: {r.title}" for r in self.not_run()],
        }

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write = terminalreporter.write_line
        terminalreporter.section("Task API guarantees")
        if self.run.reason:
            write(f"  RUN DID NOT COMPLETE: {self.run.reason}", red=True, bold=True)
        for feature, results in page.by_feature(self.all_results()).items():
            tally = counts(results)
            mark = "FAIL" if tally["failed"] else ("ok  " if not tally["not run"] else "--  ")
            write(
                f"  {mark} {feature}: {tally['passed']} passed, {tally['failed']} failed"
                + (f", {tally['skipped']} skipped" if tally["skipped"] else "")
                + (f", {tally['not run']} not run" if tally["not run"] else "")
            )
            for result in results:
                if result.outcome == "failed":
                    first = (result.message.strip().splitlines() or [""])[0]
                    write(f"         x {result.title}")
                    write(f"           {first[:300]}")
        totals = counts(self.all_results())
        write(
            f"  target: {self.run.target}; scenarios: {totals['passed']} passed, "
            f"{totals['failed']} failed, {totals['skipped']} skipped"
            + (f", {totals['not run']} not run" if totals["not run"] else "")
            + f"; scenarios {self.wall_s:.1f}s, wall time {self.run.wall_time_s:.1f}s "
            "(stack start-up included)"
        )
        write(f"  reports: {self.report_dir / 'features.html'} (also cucumber.json, summary.json)")


# --- helpers -----------------------------------------------------------------------------


def _static_result(item: pytest.Item) -> ScenarioResult | None:
    """The scenario an item runs, as far as it is known before it runs: outcome "not run"."""
    function = getattr(item, "obj", None)
    template = scenario_wrapper_template_registry.get(function) if function else None
    if template is None:
        return None
    callspec = getattr(item, "callspec", None)
    example = dict(callspec.params.get("_pytest_bdd_example") or {}) if callspec else {}
    scenario = template.render(example)
    feature = template.feature
    tags = {*template.tags, *feature.tags}
    return ScenarioResult(
        feature=feature.name or feature.rel_filename,
        feature_description=feature.description or "",
        feature_file=feature.rel_filename,
        name=scenario.name,
        tags=sorted(tags),
        outcome="not run",
        duration_s=0.0,
        steps=[StepResult(s.keyword.strip(), s.name, "not run", 0.0) for s in scenario.steps],
        examples={str(k): str(v) for k, v in example.items()},
        node_id=item.nodeid,
    )


def _steps(
    planned: list[StepResult], ran: Sequence[Mapping[str, Any]], *, skipped: bool
) -> list[StepResult]:
    """Each planned step's status from pytest-bdd's step reports.

    pytest-bdd marks every step after a failed one "failed" too, with no duration: only
    the first failed step failed; those after it never ran.
    """
    steps: list[StepResult] = []
    failed_seen = False
    for index, step in enumerate(planned):
        report = ran[index] if index < len(ran) else None
        duration = float(report.get("duration") or 0.0) if report else 0.0
        if report is None or failed_seen:
            status = "skipped" if skipped else "not run"
        elif report.get("failed"):
            status, failed_seen = "failed", True
        elif skipped and not duration:
            status = "skipped"  # the step that called pytest.skip() never finished
        else:
            status = "passed"
        steps.append(StepResult(step.keyword, step.name, status, duration))
    return steps


def _message(call: pytest.CallInfo[None]) -> tuple[str, str]:
    """The failure's first words for a reader, and its cause (:data:`UNREACHABLE`,
    :data:`NOT_DEPLOYED` or "")."""
    excinfo = call.excinfo
    if excinfo is None:
        return "", ""
    not_deployed = _not_deployed(excinfo.value)
    if not_deployed is not None:
        return redact_text(NOT_DEPLOYED_MESSAGE + not_deployed.reason[:4000]), NOT_DEPLOYED
    unreachable = _unreachable_url(excinfo.value)
    if unreachable is not None:
        url, why = unreachable
        return (
            f"The stack did not answer: nothing accepted a connection at {url} ({why}). "
            "It is not running, or it stopped during the run.",
            UNREACHABLE,
        )
    text = excinfo.exconly().strip()
    lines = text.splitlines()
    # "AssertionError: <the step's message>" then pytest's introspection ("assert 400 ==
    # 404", "+ where ..."): the message is what a reader needs; the rest is in the trace.
    cut = next((i for i, line in enumerate(lines[1:], 1) if line.startswith("assert ")), None)
    if cut is not None and not lines[0].startswith("AssertionError: assert "):
        text = "\n".join(lines[:cut])
    return redact_text(text[:4000]), ""


def _not_deployed(exc: BaseException) -> StackNotDeployedError | None:
    """The :class:`StackNotDeployedError` that is ``exc`` or caused it, if any (a fixture
    built on the stack re-raises it; a step may wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StackNotDeployedError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _unreachable_url(exc: BaseException) -> tuple[str, str] | None:
    """(URL, why) when ``exc`` (or what caused it) is a connection that was never made."""
    import botocore.exceptions
    import requests

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.exceptions.ConnectionError) and not isinstance(
            current, requests.exceptions.ReadTimeout
        ):
            request = getattr(current, "request", None)
            url = getattr(request, "url", None) or "the API"
            return str(url), _why(str(current))
        if isinstance(
            current,
            botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError,
        ):
            return str(current.kwargs.get("endpoint_url", "the AWS endpoint")), _why(str(current))
        current = current.__cause__ or current.__context__
    return None


def _why(text: str) -> str:
    lowered = text.lower()
    for marker, words in (
        ("connection refused", "connection refused"),
        ("timed out", "connection timed out"),
        ("name or service not known", "unknown host"),
        ("failed to resolve", "unknown host"),
    ):
        if marker in lowered:
            return words
    return "no connection"


def _stop_if_down(session: pytest.Session, call: pytest.CallInfo[None]) -> None:
    """End the run when the stack's endpoint refuses connections: nothing else can pass."""
    unreachable = _unreachable_url(call.excinfo.value) if call.excinfo else None
    if unreachable is None:
        return
    parts = urlsplit(unreachable[0])
    if not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=_PROBE_TIMEOUT_S):
            return  # it answers again: a one-off, let the run go on
    except OSError:
        session.shouldstop = (
            f"the stack is unreachable ({parts.hostname}:{port} refuses connections), "
            "so the remaining scenarios were not run"
        )


def _longrepr(report: pytest.TestReport) -> str:
    return redact_text(report.longreprtext[-6000:])


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def _as_dict(result: ScenarioResult) -> dict[str, Any]:
    data = asdict(result)
    data["title"] = result.title
    data["calls"] = [{**asdict(call)} for call in result.calls]
    return data


def _environment(root: Path) -> dict[str, str]:
    return {
        "Commit": _commit(root),
        "Python": platform.python_version(),
        "pytest / pytest-bdd": f"{pytest.__version__} / {version('pytest-bdd')}",
        "Host": platform.node(),
    }


def _commit(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        described = git("log", "-1", "--format=%h %<(72,trunc)%s").rstrip()
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return described + (" (with uncommitted changes)" if dirty else "")
