"""``harness load``: run one locust scenario headless and write its report folder.

    harness load --scenario api_ingest --shape smoke              # starts the local stack
    harness load --scenario api_ingest --shape step               # 25 -> 250 req/s: the knee
    harness load --scenario end_to_end --shape step --target aws --outputs cdk-outputs.json
    harness load --scenario sqs_fifo_limits --shape step          # past a lowered FIFO quota

Every option is checked before anything starts. The report folder's index.html has the
verdict, thresholds, ledger and charts. Exit code: 0 when every threshold in
``loadtest/thresholds.toml`` holds, 1 when one does not, 2 when locust itself failed or
the command was misused.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.cliargs import duration, existing_file, fail, int_at_least, positive_float, report_dir
from harness.load.settings import (
    DEFAULT_THRESHOLDS,
    DEFAULT_USER_RATE,
    ENV_RUN_TIME,
    ENV_SPAWN_RATE,
    ENV_SPIKE_TIME,
    ENV_SPIKE_USERS,
    ENV_STEP_TIME,
    ENV_STEP_USERS,
    ENV_USER_RATE,
    ENV_USERS,
    EXIT_CRASHED,
    FIFO_QUOTA_CALLS_PER_S,
    LOCAL_SQS_QUOTA,
    REPO_ROOT,
    SCENARIOS,
    SHAPES,
    STEP_USER_RATE,
    ShapeName,
    default_shape_params,
    env_float,
    scenario_name,
    shape_params_from_env,
)

PROG = "harness load"


class LocalStackUnavailable(RuntimeError):
    """The local stack cannot be started (its module is not there yet, or it failed)."""


def ip_address(text: str) -> str:
    """An IP address to bind (the master's interface)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


# --------------------------------------------------------------------------------------
# SEAM (local stack): the only place `harness load` starts a stack. It imports the local
# stack lazily so this command works (with --outputs) before and without it.
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def local_stack_outputs(
    *,
    verbose: bool = False,
    fifo_quota: float | None = None,
    on_started: Callable[[Any], None] | None = None,
) -> Iterator[Path]:
    """Start the local stack for the duration of the run and yield its outputs file.

    ``on_started`` gets the running :class:`~harness.local_stack.cloud.LocalDeployment`
    (tests use it to reach the stack's services).
    """
    try:
        from harness.local_stack.cloud import LocalDeployment
        from harness.local_stack.lifecycle import progress_printer
        from localcloud import set_fifo_quota
    except ImportError as error:
        raise LocalStackUnavailable(
            "the local stack (harness.local_stack.cloud.LocalDeployment) is not available: "
            f"{error}. Start a stack yourself and pass --outputs FILE."
        ) from error
    if fifo_quota is not None:
        set_fifo_quota(fifo_quota)
    with contextlib.ExitStack() as resources:
        try:
            stack = resources.enter_context(
                LocalDeployment(on_progress=progress_printer(verbose, prefix="[local] "))
            )
        except Exception as error:  # a start-up failure is the stack's, not the run's
            raise LocalStackUnavailable(f"the local stack did not start: {error}") from error
        if on_started is not None:
            on_started(stack)
        yield Path(stack.outputs_file)


def kept_local_stack(*, verbose: bool, fifo_quota: float | None) -> Path:
    """Start a detached local stack from this directory (as ``harness local up --detach``)
    that outlives the run; returns its outputs file."""
    from harness.local_stack.lifecycle import DEFAULT_OUTPUTS, refusal, start_detached

    outputs = DEFAULT_OUTPUTS.resolve()
    reason = refusal(outputs)
    if reason:
        raise LocalStackUnavailable(f"{reason}; or load it with --outputs {DEFAULT_OUTPUTS}")
    try:
        start_detached(outputs, fifo_quota=fifo_quota, verbose=verbose)
    except RuntimeError as error:
        raise LocalStackUnavailable(f"the local stack did not start: {error}") from error
    return outputs


@contextlib.contextmanager
def target_outputs(
    target: str,
    outputs: Path | None,
    *,
    keep_stack: bool = False,
    verbose: bool = False,
    fifo_quota: float | None = None,
) -> Iterator[Path]:
    """The outputs file to load: the one given, or a local stack started for this run."""
    if outputs is not None:
        yield outputs
    elif target == "aws":
        raise LocalStackUnavailable(
            "--target aws needs --outputs FILE (the file `cdk deploy --outputs-file` wrote)"
        )
    elif keep_stack:
        yield kept_local_stack(verbose=verbose, fifo_quota=fifo_quota)
    else:
        with local_stack_outputs(verbose=verbose, fifo_quota=fifo_quota) as path:
            yield path


def _shape_default(option: str) -> str:
    """The per-shape defaults of a shape option, for its ``--help``."""
    parts = []
    for shape in SHAPES:
        if option.startswith(("step", "spike")) and not option.startswith(shape):
            continue
        values = {
            scenario: float(getattr(default_shape_params(shape, scenario), option))  # type: ignore[arg-type]
            for scenario in SCENARIOS
        }
        common = values["api_ingest"]
        others = [f"{s} {v:g}" for s, v in values.items() if v != common]
        parts.append(f"{shape} {common:g}" + (f" ({', '.join(others)})" if others else ""))
    return "default: " + "; ".join(parts)


def _rate_default() -> str:
    rates = ", ".join(f"{s} {DEFAULT_USER_RATE[s]:g}" for s in SCENARIOS)
    steps = ", ".join(f"{s} {STEP_USER_RATE[s]:g}" for s in SCENARIOS)
    return f"default: {rates}; step shape: {steps}"


def register(subparsers: Any) -> None:
    """Add the ``load`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "load",
        help="run a locust load scenario headless and write a report folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--scenario", required=True, choices=SCENARIOS, help="what the users do")
    add(
        "--shape",
        default=os.environ.get("LOAD_SHAPE", "smoke"),
        choices=SHAPES,
        help="how many users run when ($LOAD_SHAPE)",
    )
    add(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="local: start the local stack unless --outputs is given; aws: needs --outputs",
    )
    add("--outputs", type=existing_file, help="stack outputs JSON ({Stack: {Key: value}})")
    add(
        "--report-dir",
        type=report_dir,
        help="report folder (default: reports/load/<scenario>-<shape>-<time>)",
    )
    add(
        "--keep-stack",
        action="store_true",
        help="local target without --outputs: start the local stack detached from this "
        "directory and leave it running after the run, to inspect it (`harness local "
        "status`, the AWS CLI); `harness local down` stops it",
    )
    add("--verbose", action="store_true", help="print the local stack's resource-by-resource lines")

    shape = parser.add_argument_group("load shape (each also from its LOAD_* environment variable)")
    shape.add_argument(
        "--users",
        type=int_at_least(1),
        help=f"users: steady, final step, or spike baseline ({ENV_USERS}; "
        f"{_shape_default('users')})",
    )
    shape.add_argument(
        "--spawn-rate",
        type=positive_float,
        help=f"users started per second ({ENV_SPAWN_RATE}; {_shape_default('spawn_rate')})",
    )
    shape.add_argument(
        "--run-time",
        type=duration,
        help=f"e.g. 30s, 5m, 1h ({ENV_RUN_TIME}; seconds, {_shape_default('run_time_s')}; "
        "step: one step per increment up to --users)",
    )
    shape.add_argument(
        "--step-users",
        type=int_at_least(1),
        help=f"step: users added per step ({ENV_STEP_USERS}; {_shape_default('step_users')})",
    )
    shape.add_argument(
        "--step-time",
        type=duration,
        help=f"step: time per step ({ENV_STEP_TIME}; seconds, {_shape_default('step_time_s')})",
    )
    shape.add_argument(
        "--spike-users",
        type=int_at_least(1),
        help=f"spike: users during the spike ({ENV_SPIKE_USERS}; {_shape_default('spike_users')})",
    )
    shape.add_argument(
        "--spike-time",
        type=duration,
        help=f"spike: spike length ({ENV_SPIKE_TIME}; seconds, {_shape_default('spike_time_s')})",
    )
    shape.add_argument(
        "--user-rate",
        type=positive_float,
        help=f"requests/s per user, the offered load ({ENV_USER_RATE}; {_rate_default()})",
    )

    dist = parser.add_argument_group("distributed mode")
    dist.add_argument(
        "--workers",
        type=int_at_least(0, 64),
        default=0,
        help="local worker processes (0: one standalone locust process)",
    )
    dist.add_argument(
        "--remote-workers",
        type=int_at_least(0, 1000),
        default=0,
        help="also wait for this many workers started on other machines",
    )
    dist.add_argument(
        "--master-bind-host",
        type=ip_address,
        default="127.0.0.1",
        help="interface the master listens on (0.0.0.0 for remote workers)",
    )

    more = parser.add_argument_group("scenario options")
    more.add_argument(
        "--thresholds",
        type=existing_file,
        default=DEFAULT_THRESHOLDS,
        help="pass/fail thresholds, TOML (default: the repository's "
        f"{DEFAULT_THRESHOLDS.relative_to(REPO_ROOT)})",
    )
    more.add_argument(
        "--drain-timeout",
        type=duration,
        default=120.0,
        help="end_to_end: seconds to wait for accepted tasks to settle",
    )
    more.add_argument(
        "--ledger-source",
        choices=("auto", "table", "api"),
        default="auto",
        help="end_to_end: task states from the tasks table or GET /tasks/{id}",
    )
    more.add_argument(
        "--sqs-queues",
        choices=("scratch", "task"),
        default="scratch",
        help="sqs_fifo_limits: cloned scratch queues, or the task queue itself",
    )
    more.add_argument(
        "--sqs-groups",
        type=int_at_least(2),
        help="sqs_fifo_limits: message groups of the many-group users (default: 50)",
    )
    more.add_argument(
        "--sqs-quota",
        type=int_at_least(1),
        metavar="CALLS_PER_S",
        help="sqs_fifo_limits: the FIFO quota per action per queue the run checks against; "
        "a local stack this command starts enforces it (default: "
        f"{LOCAL_SQS_QUOTA:g} on a local stack started for the run, so that this machine can "
        f"offer more than it; else AWS's {FIFO_QUOTA_CALLS_PER_S:g})",
    )
    more.add_argument(
        "--warm-up",
        type=int_at_least(0),
        metavar="N",
        help="API scenarios: N concurrent requests (and their processing) before the run "
        "to start Lambda workers; default: the shape's users, at most 8, on the local "
        "stack, none with --target aws; 0 for none",
    )
    more.add_argument(
        "--user-class",
        action="append",
        default=[],
        dest="user_classes",
        help="run only these locust user classes (repeatable; default: all)",
    )
    parser.set_defaults(func=run)


def _shape_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment with the command-line options laid over it (options win)."""
    env = dict(os.environ)
    env["LOAD_SHAPE"] = args.shape
    for option, name in (
        ("users", ENV_USERS),
        ("spawn_rate", ENV_SPAWN_RATE),
        ("run_time", ENV_RUN_TIME),
        ("step_users", ENV_STEP_USERS),
        ("step_time", ENV_STEP_TIME),
        ("spike_users", ENV_SPIKE_USERS),
        ("spike_time", ENV_SPIKE_TIME),
    ):
        value = getattr(args, option)
        if value is not None:
            env[name] = f"{value:g}" if isinstance(value, float) else str(value)
    return env


def _sqs_quota(args: argparse.Namespace) -> tuple[float | None, float]:
    """``(quota to set on a stack this command starts, quota the run checks against)``."""
    starts_stack = args.target == "local" and args.outputs is None
    if args.scenario != "sqs_fifo_limits":
        return None, FIFO_QUOTA_CALLS_PER_S
    if args.sqs_quota is not None:
        if not starts_stack and args.sqs_quota != FIFO_QUOTA_CALLS_PER_S:
            print(
                f"[load] --sqs-quota {args.sqs_quota}: checked against, but not set on the "
                "stack of --outputs (start it with `harness local up --fifo-quota "
                f"{args.sqs_quota}` for a local stack)"
            )
        return (args.sqs_quota if starts_stack else None), float(args.sqs_quota)
    if starts_stack:
        return LOCAL_SQS_QUOTA, LOCAL_SQS_QUOTA
    return None, FIFO_QUOTA_CALLS_PER_S


def run(args: argparse.Namespace) -> int:
    """Run ``harness load`` with parsed arguments; returns the exit code.

    Everything that can be checked is checked before a stack or locust starts: the
    shape (options and ``LOAD_*`` variables), the thresholds file and the outputs file.
    """
    from harness.load.target import load_target
    from harness.load.thresholds import load_thresholds

    scenario = scenario_name(args.scenario)
    shape_name: ShapeName = args.shape
    if args.target == "aws" and args.outputs is None:
        return fail(PROG, "--target aws needs --outputs FILE (the file `cdk deploy` wrote)")
    if args.keep_stack and (args.outputs is not None or args.target != "local"):
        return fail(PROG, "--keep-stack keeps a local stack this command starts: drop --outputs")
    try:
        params = shape_params_from_env(_shape_env(args), scenario)
        user_rate = (
            args.user_rate if args.user_rate is not None else env_float(ENV_USER_RATE, 0.0) or None
        )
        if user_rate is not None and user_rate <= 0:
            raise ValueError(f"{ENV_USER_RATE} must be > 0")
        load_thresholds(args.thresholds, scenario, target=args.target, shape=shape_name)
        if args.outputs is not None:
            load_target(args.outputs, scenario)
    except (ValueError, OSError) as error:
        return fail(PROG, str(error))
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = args.report_dir or Path("reports") / "load" / f"{scenario}-{shape_name}-{stamp}"
    set_quota, quota = _sqs_quota(args)
    if set_quota is not None:
        print(
            f"[load] the local stack's SQS FIFO quota is lowered to {set_quota:g} calls/s per "
            f"action (AWS: {FIFO_QUOTA_CALLS_PER_S:g}) so that this machine can offer more "
            "than it; --sqs-quota changes it"
        )
    # Imported here: the runner pulls in boto3, and every `harness` command builds this parser.
    from harness.load.runner import LoadOptions, run_load

    options = LoadOptions(
        scenario=scenario,
        shape=params,
        report_dir=folder,
        target_kind=args.target,
        user_rate=user_rate,
        workers=args.workers,
        remote_workers=args.remote_workers,
        master_bind_host=args.master_bind_host,
        thresholds=args.thresholds,
        drain_timeout_s=args.drain_timeout,
        ledger_source=args.ledger_source,
        sqs_queues=args.sqs_queues,
        sqs_groups=args.sqs_groups,
        sqs_quota=quota,
        user_classes=args.user_classes,
        warm_up=args.warm_up,
    )
    try:
        with (
            _sigterm_unwinds(),
            target_outputs(
                args.target,
                args.outputs,
                keep_stack=args.keep_stack,
                verbose=args.verbose,
                fifo_quota=set_quota,
            ) as outputs,
        ):
            code = run_load(options, outputs).exit_code
    except (LocalStackUnavailable, FileNotFoundError, ValueError) as error:
        print(f"harness load: {error}", file=sys.stderr)
        return EXIT_CRASHED
    if args.keep_stack:
        print(
            "[load] the local stack keeps running for inspection: `harness local status`, "
            "outputs in cdk-outputs.local.json; `harness local down` stops it"
        )
    return code


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM (a cancelled CI job) into SystemExit(143) so every cleanup runs:
    locust processes stopped, scratch queues deleted, the local stack torn down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
