"""``harness load``: run one locust scenario headless and write its report folder.

    harness load --scenario api_ingest --shape smoke              # starts the local stack
    harness load --scenario end_to_end --shape step --target aws --outputs cdk-outputs.json
    harness load --scenario sqs_fifo_limits --shape smoke --workers 2

Exit code: 0 when every threshold in ``loadtest/thresholds.toml`` holds, 1 when one
does not, 2 when locust itself failed or the command was misused.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.load.settings import (
    DEFAULT_THRESHOLDS,
    ENV_RUN_TIME,
    ENV_SPAWN_RATE,
    ENV_SPIKE_TIME,
    ENV_SPIKE_USERS,
    ENV_STEP_TIME,
    ENV_STEP_USERS,
    ENV_USER_RATE,
    ENV_USERS,
    EXIT_CRASHED,
    SCENARIOS,
    SHAPES,
    ShapeName,
    env_float,
    parse_duration,
    scenario_name,
    shape_params_from_env,
)


class LocalStackUnavailable(RuntimeError):
    """The local stack cannot be started (its module is not there yet, or it failed)."""


# --------------------------------------------------------------------------------------
# SEAM (local stack): the only place `harness load` starts a stack. It imports the local
# stack lazily so this command works (with --outputs) before and without it.
# --------------------------------------------------------------------------------------
@contextlib.contextmanager
def local_stack_outputs() -> Iterator[Path]:
    """Start the local stack for the duration of the run and yield its outputs file."""
    try:
        from harness.local.cloud import LocalStack
    except ImportError as error:
        raise LocalStackUnavailable(
            "the local stack (harness.local.cloud.LocalStack) is not available: "
            f"{error}. Start a stack yourself and pass --outputs FILE."
        ) from error
    with contextlib.ExitStack() as resources:
        try:
            stack = resources.enter_context(
                LocalStack(on_progress=lambda message: print(f"[local] {message}"))
            )
        except Exception as error:  # a start-up failure is the stack's, not the run's
            raise LocalStackUnavailable(f"the local stack did not start: {error}") from error
        yield Path(stack.outputs_file)


@contextlib.contextmanager
def target_outputs(target: str, outputs: Path | None) -> Iterator[Path]:
    """The outputs file to load: the one given, or a local stack started for this run."""
    if outputs is not None:
        yield outputs
    elif target == "aws":
        raise LocalStackUnavailable(
            "--target aws needs --outputs FILE (the file `cdk deploy --outputs-file` wrote)"
        )
    else:
        with local_stack_outputs() as path:
            yield path


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def register(subparsers: Any) -> None:
    """Add the ``load`` command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "load",
        help="run a locust load scenario headless and write a report folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--scenario", required=True, choices=SCENARIOS)
    add("--shape", default=os.environ.get("LOAD_SHAPE", "smoke"), choices=SHAPES)
    add(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="local (default): start the local stack unless --outputs is given",
    )
    add("--outputs", type=Path, help="stack outputs JSON ({Stack: {Key: value}})")
    add(
        "--report-dir",
        type=Path,
        help="report folder (default reports/load/<scenario>-<shape>-<time>)",
    )

    shape = parser.add_argument_group("load shape (each also from its LOAD_* environment variable)")
    shape.add_argument(
        "--users", type=int, help=f"users: steady, final step, or spike baseline ({ENV_USERS})"
    )
    shape.add_argument(
        "--spawn-rate", type=_positive_float, help=f"users started per second ({ENV_SPAWN_RATE})"
    )
    shape.add_argument("--run-time", type=_duration, help=f"e.g. 30s, 5m, 1h ({ENV_RUN_TIME})")
    shape.add_argument(
        "--step-users", type=int, help=f"step: users added per step ({ENV_STEP_USERS})"
    )
    shape.add_argument("--step-time", type=_duration, help=f"step: time per step ({ENV_STEP_TIME})")
    shape.add_argument(
        "--spike-users", type=int, help=f"spike: users during the spike ({ENV_SPIKE_USERS})"
    )
    shape.add_argument(
        "--spike-time", type=_duration, help=f"spike: spike length ({ENV_SPIKE_TIME})"
    )
    shape.add_argument(
        "--user-rate",
        type=_positive_float,
        help=f"requests/s per user, the offered load ({ENV_USER_RATE})",
    )

    dist = parser.add_argument_group("distributed mode")
    dist.add_argument(
        "--workers",
        type=int,
        default=0,
        help="local worker processes (0: one standalone locust process)",
    )
    dist.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        help="also wait for this many workers started on other machines",
    )
    dist.add_argument(
        "--master-bind-host",
        default="127.0.0.1",
        help="interface the master listens on (0.0.0.0 for remote workers)",
    )

    more = parser.add_argument_group("scenario options")
    more.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    more.add_argument(
        "--drain-timeout",
        type=_duration,
        default=120.0,
        help="end_to_end: how long to wait for accepted tasks to settle",
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
        help="sqs_fifo_limits: cloned scratch queues (default) or the task queue",
    )
    more.add_argument(
        "--sqs-groups", type=int, help="sqs_fifo_limits: message groups of the many-group users"
    )
    more.add_argument(
        "--warm-up",
        type=int,
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
        help="run only these locust user classes (repeatable)",
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


def run(args: argparse.Namespace) -> int:
    """Run ``harness load`` with parsed arguments; returns the exit code."""
    scenario = scenario_name(args.scenario)
    shape_name: ShapeName = args.shape
    try:
        params = shape_params_from_env(_shape_env(args), scenario)
    except ValueError as error:
        print(f"harness load: {error}", file=sys.stderr)
        return EXIT_CRASHED
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report_dir = args.report_dir or Path("reports") / "load" / f"{scenario}-{shape_name}-{stamp}"
    user_rate = (
        args.user_rate if args.user_rate is not None else env_float(ENV_USER_RATE, 0.0) or None
    )
    # Imported here: the runner pulls in boto3, and every `harness` command builds this parser.
    from harness.load.runner import LoadOptions, run_load

    options = LoadOptions(
        scenario=scenario,
        shape=params,
        report_dir=report_dir,
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
        user_classes=args.user_classes,
        warm_up=args.warm_up,
    )
    try:
        with _sigterm_unwinds(), target_outputs(args.target, args.outputs) as outputs:
            return run_load(options, outputs).exit_code
    except (LocalStackUnavailable, FileNotFoundError, ValueError) as error:
        print(f"harness load: {error}", file=sys.stderr)
        return EXIT_CRASHED


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
