"""One load run end to end: locust in subprocesses, the drain and ledger, the report folder.

:func:`run_load` is what ``harness load`` calls once it has an outputs file. It runs
locust headless (alone, or as a master with N local workers), streams its progress,
then (end_to_end) waits for every accepted task to settle and computes the ledger,
evaluates the thresholds and writes the report folder:

- ``locust.html``, ``locust_stats.csv``, ``locust_stats_history.csv``,
  ``locust_failures.csv``, ``locust_exceptions.csv``, ``locust_stats.json`` (locust's own);
- ``index.html``: the page to open (verdict, thresholds, ledger, causes, knee, charts);
- ``summary.json`` (figures, ledger, threshold verdicts), ``backlog.csv``;
- ``throughput.png``, ``latency.png``, ``backlog.png``, ``failures.png`` (``sqs.png``);
- ``locust.log`` (and ``worker-N.log``), ``accepted-tasks.jsonl`` (end_to_end),
  ``failures.jsonl`` (every failed or throttled request with its cause).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from harness.load import analysis, causes
from harness.load.ledger import (
    AcceptedTask,
    Ledger,
    TaskState,
    compute_ledger,
    oldest_age_series,
    read_records,
)
from harness.load.locust_stats import (
    THROTTLED_SUFFIX,
    LocustStats,
    read_history_csv,
    read_stats_json,
)
from harness.load.settings import (
    DEFAULT_THRESHOLDS,
    ENV_FAILURES_FILE,
    ENV_OUTPUTS,
    ENV_RECORD_FILE,
    ENV_RUN_ID,
    ENV_SCENARIO,
    ENV_SQS_GROUPS,
    ENV_SQS_QUEUES,
    ENV_USER_RATE,
    EXIT_CRASHED,
    FIFO_BATCH_SIZE,
    FIFO_QUOTA_CALLS_PER_S,
    LOCUSTFILES,
    REPO_ROOT,
    Scenario,
    ShapeParams,
    default_user_rate,
)
from harness.load.sources import (
    BacklogSampler,
    lambda_metric,
    queue_depth,
    read_backlog_csv,
    scratch_queues,
    settle,
    state_source,
)
from harness.load.target import Target, load_target
from harness.load.thresholds import Verdict, evaluate, exit_code, load_thresholds, run_figures
from harness.load.warmup import MAX_WARM_UP, warm_up
from harness.waiting import wait_until

METRIC_WAIT_S = 5.0  # bound on waiting for the stack's last metrics to be published
STOP_TIMEOUT_S = 10  # let users finish the request in hand, so accepted tasks get recorded
EXIT_INTERRUPTED = 130


@dataclass
class LoadOptions:
    """Everything one run needs besides the outputs file."""

    scenario: Scenario
    shape: ShapeParams
    report_dir: Path
    target_kind: str = "local"
    user_rate: float | None = None
    workers: int = 0
    remote_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    thresholds: Path = DEFAULT_THRESHOLDS
    drain_timeout_s: float = 120.0
    ledger_source: str = "auto"
    sqs_queues: str = "scratch"  # "scratch": cloned queues; "task": the task queue itself
    sqs_groups: int | None = None
    sqs_quota: float = FIFO_QUOTA_CALLS_PER_S  # calls/s per action the run checks against
    user_classes: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Concurrent warm-up requests before the run (see harness.load.warmup); None: as many
    # as the shape's users (at most MAX_WARM_UP) against the local stack, none on AWS.
    warm_up: int | None = None
    echo: Callable[[str], None] = print

    def __post_init__(self) -> None:
        # Locust runs in the repository root: a relative folder would land there.
        self.report_dir = self.report_dir.resolve()

    @property
    def rate(self) -> float:
        if self.user_rate is not None:
            return self.user_rate
        return default_user_rate(self.scenario, self.shape.shape)

    @property
    def warm_up_requests(self) -> int:
        """How many concurrent warm-up requests to send (0: none)."""
        if self.scenario == "sqs_fifo_limits":
            return 0  # it calls SQS only: nothing to warm
        if self.warm_up is not None:
            return max(self.warm_up, 0)
        if self.target_kind != "local":
            return 0
        peak = max(self.shape.users, self.shape.spike_users)
        return min(peak, MAX_WARM_UP)


@dataclass(frozen=True)
class LoadResult:
    """The outcome: the process exit code and the summary written to ``summary.json``."""

    exit_code: int
    summary: dict[str, Any]
    report_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tee(stream: IO[str], log: IO[str], echo: Callable[[str], None] | None) -> None:
    for line in stream:
        log.write(line)
        log.flush()
        if echo is not None:
            echo(line.rstrip("\n"))


def _stop(process: subprocess.Popen[str]) -> None:
    """Terminate one child we started (SIGTERM lets locust write its reports), then kill."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def locust_commands(
    options: LoadOptions, *, csv_prefix: Path, master_port: int | None
) -> tuple[list[str], list[list[str]]]:
    """The master (or standalone) command line and one command line per local worker."""
    locustfile = str(LOCUSTFILES / f"{options.scenario}.py")
    base = [sys.executable, "-m", "locust", "-f", locustfile]
    main = [
        *base,
        "--headless",
        "--csv", str(csv_prefix),
        "--csv-full-history",
        "--html", str(options.report_dir / "locust.html"),
        "--json-file", str(csv_prefix.with_name(csv_prefix.name + "_stats")),
        "--stop-timeout", str(STOP_TIMEOUT_S),
        "--loglevel", "INFO",
    ]  # fmt: skip
    workers: list[list[str]] = []
    if master_port is not None:
        main += [
            "--master",
            "--master-bind-host", options.master_bind_host,
            "--master-bind-port", str(master_port),
            "--expect-workers", str(options.workers + options.remote_workers),
            "--expect-workers-max-wait", "120",
        ]  # fmt: skip
        worker = [
            *base,
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(master_port),
        ]
        workers = [list(worker) for _ in range(options.workers)]
    main += options.user_classes
    return main, workers


def _locust_env(
    options: LoadOptions, outputs: Path, run_id: str, sqs: dict[str, str]
) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(options.shape.to_env())
    env.update(
        {
            ENV_OUTPUTS: str(outputs.resolve()),
            ENV_SCENARIO: options.scenario,
            ENV_RUN_ID: run_id,
            ENV_USER_RATE: f"{options.rate:g}",
            ENV_RECORD_FILE: str((options.report_dir / "accepted-tasks.jsonl").resolve()),
            ENV_FAILURES_FILE: str((options.report_dir / "failures.jsonl").resolve()),
        }
    )
    if sqs:
        env[ENV_SQS_QUEUES] = json.dumps(sqs)
    if options.sqs_groups is not None:
        env[ENV_SQS_GROUPS] = str(options.sqs_groups)
    env.update(options.extra_env)
    return env


def run_locust(options: LoadOptions, env: dict[str, str], csv_prefix: Path) -> tuple[int, bool]:
    """Run locust to completion (bounded): ``(exit code or -1 if it hung, interrupted)``.

    Ctrl-C stops the run but not the report: locust (which got the Ctrl-C too) is given
    time to write its files, and the caller goes on to evaluate what was measured.
    """
    distributed = options.workers + options.remote_workers > 0
    port = _free_port() if distributed else None
    main_cmd, worker_cmds = locust_commands(options, csv_prefix=csv_prefix, master_port=port)
    if options.remote_workers:
        options.echo(
            f"[load] waiting for {options.remote_workers} remote worker(s); on each machine run:\n"
            f"  LOAD_OUTPUTS=<outputs.json> python -m locust -f loadtest/{options.scenario}.py "
            f"--worker --master-host <this host> --master-port {port}"
        )
    # Shape run time + graceful stop + worker start-up: past that, locust is stuck.
    hard_limit = options.shape.run_time_s + STOP_TIMEOUT_S + 180
    processes: list[subprocess.Popen[str]] = []
    logs: list[IO[str]] = []
    threads: list[threading.Thread] = []
    try:
        master_log = (options.report_dir / "locust.log").open("w", encoding="utf-8")
        logs.append(master_log)
        master = subprocess.Popen(
            main_cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )  # fmt: skip
        processes.append(master)
        tee = threading.Thread(target=_tee, args=(master.stdout, master_log, options.echo))
        tee.start()
        threads.append(tee)
        for index, command in enumerate(worker_cmds, start=1):
            log = (options.report_dir / f"worker-{index}.log").open("w", encoding="utf-8")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
                )
            )
        try:
            return master.wait(timeout=hard_limit), False
        except subprocess.TimeoutExpired:
            options.echo(f"[load] locust still running after {hard_limit:g}s: stopping it")
            return -1, False
        except KeyboardInterrupt:
            options.echo("[load] interrupted: stopping locust, then writing the report")
            with contextlib.suppress(subprocess.TimeoutExpired):
                master.wait(timeout=STOP_TIMEOUT_S + 10)
            return master.poll() or 0, True
    finally:
        for process in processes:
            _stop(process)
        for thread in threads:
            thread.join(timeout=10)
        for handle in logs:
            handle.close()


def sqs_figures(stats: LocustStats) -> list[dict[str, Any]]:
    """Per SQS call type: calls that went through, throttles, messages and their rates."""
    duration = stats.total.duration_s if stats.total.requests else 0.0
    rows = []
    for entry in stats.entries:
        if entry.name.endswith(THROTTLED_SUFFIX):
            continue
        throttled = stats.by_name(entry.name + THROTTLED_SUFFIX)
        throttles = throttled.requests if throttled else 0
        ok = entry.requests - entry.failures
        rows.append(
            {
                "call": entry.name,
                "calls_ok": ok,
                "errors": entry.failures,
                "throttled": throttles,
                "messages": entry.content_total,
                "calls_per_s": round(ok / duration, 2) if duration else None,
                "attempted_calls_per_s": round((entry.requests + throttles) / duration, 2)
                if duration
                else None,
                "messages_per_s": round(entry.content_total / duration, 2) if duration else None,
                # For ReceiveMessage: how full a receive came back (10 at most).
                "messages_per_call": round(entry.content_total / ok, 2) if ok else None,
                "p50_ms": entry.pct(0.5),
                "p99_ms": entry.pct(0.99),
            }
        )
    return rows


@contextlib.contextmanager
def _sqs_queues(options: LoadOptions, target: Target, run_id: str) -> Iterator[dict[str, str]]:
    if options.scenario == "sqs_fifo_limits" and options.sqs_queues == "scratch":
        with scratch_queues(target, run_id) as queues:
            options.echo(f"[load] scratch FIFO queues (deleted afterwards): {', '.join(queues)}")
            yield queues
    else:
        yield {}


def _sampled_queues(options: LoadOptions, target: Target, sqs: dict[str, str]) -> dict[str, str]:
    if sqs:
        return dict(sqs)
    queues = {}
    if target.task_queue_url:
        queues["task queue"] = target.task_queue_url
    if target.dead_letter_queue_url and options.scenario == "end_to_end":
        queues["dead-letter queue"] = target.dead_letter_queue_url
    return queues


def _dlq_visible(target: Target) -> int | None:
    if not target.dead_letter_queue_url:
        return None
    try:
        depth = queue_depth(target, target.dead_letter_queue_url)
    except Exception:  # the ledger reports "unknown" rather than failing the run
        return None
    return depth["visible"] + depth["in_flight"]


def run_load(options: LoadOptions, outputs: Path) -> LoadResult:
    """Run one scenario against the target described by ``outputs``; write the report."""
    report = options.report_dir
    report.mkdir(parents=True, exist_ok=True)
    for stale in ("accepted-tasks.jsonl", "failures.jsonl", "locust_stats.json", "index.html"):
        (report / stale).unlink(missing_ok=True)
    target = load_target(outputs, options.scenario)
    limits = load_thresholds(
        options.thresholds, options.scenario, target=options.target_kind, shape=options.shape.shape
    )
    run_id = uuid.uuid4().hex[:12]
    csv_prefix = report / "locust"
    started = time.time()
    ledger: Ledger | None = None
    records: list[AcceptedTask] = []
    states: dict[str, TaskState] = {}
    warmed = warm_up(target, options.warm_up_requests, echo=options.echo)
    if warmed.accepted:
        options.echo(
            f"[load] warm-up: {warmed.accepted} tasks accepted, {warmed.settled} settled "
            f"in {warmed.seconds:.1f}s (not part of the run)"
        )
    with _sqs_queues(options, target, run_id) as sqs:
        env = _locust_env(options, outputs, run_id, sqs)
        dlq_before = _dlq_visible(target) if options.scenario == "end_to_end" else None
        sampled = _sampled_queues(options, target, sqs)
        with BacklogSampler(target, sampled, report / "backlog.csv") as sampler:
            options.echo(
                f"[load] {options.scenario} / {options.shape.shape}: {options.shape.users} users, "
                f"{options.rate:g} req/s each, {options.shape.run_time_s:g}s; report in {report}"
            )
            locust_rc, interrupted = run_locust(options, env, csv_prefix)
            if options.scenario == "end_to_end":
                records = read_records(report / "accepted-tasks.jsonl")
                source = state_source(target, options.ledger_source)
                drain_timeout = options.drain_timeout_s
                if interrupted:  # after a Ctrl-C, count what settles quickly, do not wait long
                    drain_timeout = min(drain_timeout, 10.0)
                options.echo(
                    f"[load] waiting up to {drain_timeout:g}s for "
                    f"{len({r.task_id for r in records})} accepted tasks to settle "
                    f"(via the {source.name})"
                )
                states = settle(
                    source,
                    [r.task_id for r in records],
                    timeout=drain_timeout,
                    progress=options.echo,
                )
                dlq_after = _dlq_visible(target)
                dlq_added = (
                    dlq_after - dlq_before
                    if dlq_after is not None and dlq_before is not None
                    else None
                )
                ledger = compute_ledger(records, states, dlq_added=dlq_added)
        sampling_errors = sampler.errors[:5]
    finished = time.time()

    stats_file = report / "locust_stats.json"
    crashed = locust_rc not in (0, 1) or not stats_file.exists()
    stats = read_stats_json(stats_file) if stats_file.exists() else LocustStats(())
    t0 = min([started, *(e.start_time for e in stats.entries if e.requests)])
    # The shape's clock starts with locust's first request; step boundaries follow it.
    shape_t0 = stats.total.start_time if stats.total.requests else started
    failures, api_throttles = _failure_causes(options, target, report, started, finished)
    lambda_throttled = sum(1 for e in failures if e.cause == causes.LAMBDA_THROTTLE_500)
    figures = run_figures(stats, ledger, lambda_throttled=lambda_throttled)
    figures["lambda_throttles"] = sum(api_throttles.values()) if api_throttles is not None else None
    figures["lambda_throttled_500s"] = lambda_throttled
    step_rows: list[analysis.StepFigures] = []
    quota: dict[str, Any] | None = None
    call_knees: dict[str, Any] = {}
    if options.scenario == "sqs_fifo_limits":
        quota = analysis.quota_figures(stats, options.sqs_quota)
        figures.update(
            peak_calls_vs_quota=quota["peak_calls_vs_quota"],
            throttled_over_quota=quota["throttled_over_quota"],
            batch_factor=quota["batch_factor"],
        )
        # One user class per sender/receiver call type; each gets an equal share of users.
        offered = [e.name for e in stats.entries if e.name.startswith(("Send", "Receive"))
                   and not e.name.endswith(THROTTLED_SUFFIX)]  # fmt: skip
        for name in offered if options.shape.shape == "step" else []:
            rows = analysis.steps(
                stats, options.shape, t0=shape_t0, user_rate=options.rate / len(offered),
                names=[name],
            )  # fmt: skip
            found = analysis.knee(rows)
            call_knees[name] = found.to_json() if found else None
    elif options.shape.shape == "step":
        names = [e.name for e in stats.entries if not e.name.endswith(THROTTLED_SUFFIX)]
        step_rows = analysis.steps(
            stats, options.shape, t0=shape_t0, user_rate=options.rate, names=names
        )
    knee = analysis.knee(step_rows)
    if options.scenario == "end_to_end":
        # Every accepted POST must be in the record file, or the ledger could miss a loss.
        accepted_by_locust = sum(
            e.requests - e.failures for e in stats.entries if e.name.startswith("POST /tasks")
        )
        figures["records_complete"] = len(records) == accepted_by_locust
        figures["accepted_by_locust"] = accepted_by_locust
    verdicts = evaluate(limits, figures)
    if options.scenario == "end_to_end" and not figures["records_complete"]:
        message = (
            f"{len(records)} accepted answers recorded, but locust counted "
            f"{figures['accepted_by_locust']}"
        )
        verdicts.append(
            Verdict("records_complete", "records_complete", True, False, False, message)
        )
    from harness.load import charts  # matplotlib takes seconds to import: only when drawing

    history = read_history_csv(report / "locust_stats_history.csv")
    backlog = read_backlog_csv(report / "backlog.csv")
    completions = [
        s.processed_at for s in states.values() if s.processed_at and s.status == "COMPLETED"
    ]
    sample_times = sorted({s.timestamp for s in backlog}) or [
        t0 + i for i in range(int(finished - t0) + 1)
    ]
    marks = [shape_t0 - t0 + moment for moment in options.shape.step_starts()]
    limits_drawn = stage_limits(target) if options.scenario != "sqs_fifo_limits" else []
    chart_files = [
        charts.throughput_chart(
            report / "throughput.png", t0=t0, stats=stats, history=history, user_rate=options.rate,
            completions=completions, limits=limits_drawn, marks=marks,
        ),
        charts.latency_chart(report / "latency.png", t0=t0, history=history, marks=marks),
        charts.failures_chart(
            report / "failures.png", t0=t0, causes=causes.timeline(failures),
            lambda_throttles=api_throttles, marks=marks,
        ),
        charts.backlog_chart(
            report / "backlog.png", t0=t0, backlog=backlog,
            oldest_age=oldest_age_series(records, states, sample_times) if records else (),
        ),
    ]  # fmt: skip
    if quota is not None:
        chart_files.append(
            charts.sqs_chart(
                report / "sqs.png",
                t0=t0,
                stats=stats,
                quota=options.sqs_quota,
                batch_size=FIFO_BATCH_SIZE,
                marks=marks,
            )
        )
    code = EXIT_INTERRUPTED if interrupted else EXIT_CRASHED if crashed else exit_code(verdicts)
    summary: dict[str, Any] = {
        "scenario": options.scenario,
        "shape": asdict(options.shape),
        "target": {
            "kind": options.target_kind,
            "outputs_file": str(outputs),
            "api_url": target.api_url,
            "aws_endpoint_url": target.endpoint_url,
        },
        "run_id": run_id,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "finished_at": datetime.fromtimestamp(finished, UTC).isoformat(),
        "wall_time_s": round(finished - started, 3),
        "user_rate_per_user": options.rate,
        "warm_up": asdict(warmed),
        "workers": {"local": options.workers, "remote": options.remote_workers},
        "locust": {
            "exit_code": locust_rc,
            "crashed": crashed,
            "total": stats.total.summary(),
            "entries": [e.summary() for e in stats.entries],
        },
        "figures": figures,
        "failures_by_cause": causes.by_cause(failures),
        "limits": {label: value for value, label in limits_drawn},
        "steps": [row.to_json() for row in step_rows],
        "knee": knee.to_json() if knee else None,
        "call_knees": call_knees,
        "ledger": ledger.to_json() if ledger else None,
        "thresholds": {
            "file": str(options.thresholds),
            "limits": limits,
            "verdicts": [v.to_json() for v in verdicts],
        },
        "interrupted": interrupted,
        "passed": code == 0,
        "exit_code": code,
        "charts": [p.name for p in chart_files],
    }
    if options.scenario == "sqs_fifo_limits":
        summary["sqs"] = {
            "queues": sqs or {"all": target.task_queue_url},
            "calls": sqs_figures(stats),
            "quota": quota,
        }
    if sampling_errors:
        summary["backlog_sampling_errors"] = sampling_errors
    from harness.load.html_report import write_index

    summary["files"] = sorted({p.name for p in report.iterdir() if p.is_file()}
                              | {"summary.json", "index.html"})  # fmt: skip
    (report / "summary.json").write_text(
        json.dumps(summary, indent=2, default=str), encoding="utf-8"
    )
    write_index(report, summary)
    _print_verdicts(options.echo, summary, verdicts, report)
    return LoadResult(code, summary, report)


def stage_limits(target: Target) -> list[tuple[float, str]]:
    """The API stage throttle as a reference line (the stack's profile setting)."""
    if not target.api_url:
        return []
    from cdk.config import PRODUCTION  # both profiles throttle the stage alike

    rate = PRODUCTION.throttling_rate_limit
    return [
        (rate, f"API stage throttle: {rate:g} req/s (burst {PRODUCTION.throttling_burst_limit})")
    ]


def _failure_causes(
    options: LoadOptions, target: Target, report: Path, started: float, finished: float
) -> tuple[list[causes.FailureEvent], dict[int, float] | None]:
    """Every failed request with its cause, gateway 500s matched to the API function's
    Lambda throttles (``None`` when the metric could not be read)."""
    events = causes.read_failures(report / "failures.jsonl")
    throttles: dict[int, float] | None = None
    gateway_500s = sum(1 for e in events if e.cause == causes.GATEWAY_500)
    if target.api_function_name and options.scenario != "sqs_fifo_limits":
        function = target.api_function_name

        def read() -> bool:
            nonlocal throttles
            throttles = lambda_metric(target, function, "Throttles", start=started, end=finished)
            return sum(throttles.values()) >= gateway_500s

        try:
            # Throttles are stamped with the second they happened in, so the run's window
            # holds every one, but they are published later (locally within about a
            # second, on AWS within minutes): wait until they account for every gateway
            # 500, or for METRIC_WAIT_S.
            wait_until(read, timeout=METRIC_WAIT_S, interval=0.5, description="Lambda Throttles")
        except TimeoutError:  # the 500s not covered keep the gateway's name
            counted = int(sum(throttles.values())) if throttles is not None else 0
            options.echo(
                f"[load] after {METRIC_WAIT_S:g}s the API function's Throttles metric counts "
                f"{counted} throttles for {gateway_500s} gateway 500s"
            )
        except Exception as error:  # the report says "unknown" rather than failing the run
            options.echo(f"[load] could not read the API function's Throttles metric: {error}")
    if throttles:
        events = causes.attribute_lambda_throttles(events, int(sum(throttles.values())))
    return events, throttles


def _print_verdicts(
    echo: Callable[[str], None], summary: dict[str, Any], verdicts: list[Verdict], report: Path
) -> None:
    echo("")
    echo(f"[load] {summary['scenario']} / {summary['shape']['shape']}: thresholds")
    for verdict in verdicts:
        echo(f"  {'PASS' if verdict.passed else 'FAIL'}  {verdict.threshold:<30} {verdict.message}")
    if summary.get("ledger"):
        ledger = summary["ledger"]
        echo(
            f"[load] ledger: {ledger['accepted']} tasks accepted (+{ledger['idempotent_retries']} "
            f"idempotent retries answered with their first task) = completed "
            f"{ledger['completed']} + dead-lettered {ledger['dead_lettered']}; lost "
            f"{ledger['lost']}; applied twice {ledger['applied_twice']}; order preserved "
            f"{ledger['order_preserved']}"
        )
    for cause, count in summary.get("failures_by_cause", {}).items():
        echo(f"[load] {count:>7} x {cause}")
    if summary.get("knee"):
        knee = summary["knee"]
        echo(
            f"[load] knee at step {knee['index']} ({knee['users']} users): offered "
            f"{knee['offered_per_s']:g}/s, achieved {knee['achieved_per_s']:g}/s"
            + "".join(f"; {label}" for label in summary.get("limits", {}))
        )
    quota = (summary.get("sqs") or {}).get("quota") or {}
    for name, found in summary.get("call_knees", {}).items():
        where = (
            f"knee at step {found['index']}: offered {found['offered_per_s']:g} calls/s, "
            f"accepted {found['achieved_per_s']:g}"
            if found
            else "no knee"
        )
        echo(f"[load] {name:<32} {where}; quota {quota.get('quota_calls_per_s', 0):g} calls/s")
    for row in summary.get("sqs", {}).get("calls", []):
        echo(
            f"[load] {row['call']:<32} {row['messages_per_s']} msg/s, "
            f"{row['calls_per_s']} calls/s, {row['throttled']} throttled"
        )
    if summary["locust"]["crashed"]:
        code = summary["locust"]["exit_code"]
        echo(f"[load] locust did not finish cleanly (exit code {code}); see locust.log")
    verdict_word = "PASSED" if summary["passed"] else "FAILED"
    echo(
        f"[load] {verdict_word} (exit code {summary['exit_code']}); report: {report / 'index.html'}"
    )
