"""``harness verify``: prove the guarantees against a stack and report.

``--target local`` (the default, what ``make verify`` runs) synthesizes the stack, brings
up the local stack, runs every feature against it, prints the summary, writes the reports
and tears down: the features' own session fixture owns the local stack, so a failure or
Ctrl-C still stops everything. It then runs the ``@spec`` scenarios (the spec's numbers,
as literals in the feature files) a second time, against a local stack deployed with the
**production** profile, so the production values are checked on a running stack on
every commit; the summary shows both runs. ``--target aws`` deploys an ephemeral stack,
runs the same features and always destroys it (``harness.stack.verify``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cdk.node import env_with_node

DEFAULT_REPORT_DIR = Path("reports/features")
SPEC_MARKER = "spec"
PRODUCTION_REPORT_SUBDIR = "production"
INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C


def run_features(
    *,
    target: str,
    report_dir: Path,
    outputs: Path | None = None,
    extra_args: list[str] | None = None,
) -> int:
    """Run the Gherkin suite in a pytest subprocess; returns pytest's exit code."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "features",
        "--target",
        target,
        "--report-dir",
        str(report_dir),
        "-p",
        "no:cacheprovider",
    ]
    if outputs is not None:
        command += ["--outputs", str(outputs)]
    command += extra_args or []
    print(
        f"==> running the features against the {target} target: {' '.join(command[2:])}", flush=True
    )
    started = time.monotonic()
    process = subprocess.Popen(command, env=env_with_node())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # pytest got the same SIGINT, tears its stack down and writes a report that says it
        # was interrupted; wait for that rather than leave it half done.
        print(
            "interrupted (Ctrl-C): waiting for pytest to stop the stack and write the report",
            file=sys.stderr,
        )
        with contextlib.suppress(KeyboardInterrupt):
            process.wait()
        print(f"interrupted; report: {report_dir / 'features.html'}", file=sys.stderr)
        return INTERRUPTED
    print(
        f"==> features finished in {time.monotonic() - started:.1f}s with exit code {code}; "
        f"report: {report_dir / 'features.html'}",
        flush=True,
    )
    return code


def run_spec_on_production(report_dir: Path, extra_args: list[str] | None = None) -> int:
    """The ``@spec`` scenarios against a fresh local stack of the production profile."""
    from cdk.synth import synthesize
    from harness.local_stack.cloud import LOCAL_STACK_PREFIX

    with tempfile.TemporaryDirectory(prefix="task-api-production-") as tmp:
        print("==> synthesizing the production profile for the @spec scenarios", flush=True)
        assembly = synthesize(
            "production", Path(tmp) / "cdk.out", {"stack_prefix": LOCAL_STACK_PREFIX}
        )
        return run_features(
            target="local",
            report_dir=report_dir,
            extra_args=[*(extra_args or []), "--assembly", str(assembly), "-m", SPEC_MARKER],
        )


def print_runs_summary(runs: list[tuple[str, Path, int]]) -> None:
    """One line per run: its scenarios' counts (from ``summary.json``) and exit code."""
    print("==> summary", flush=True)
    for name, report_dir, code in runs:
        try:
            summary = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"    {name}: exit code {code}, no summary in {report_dir}")
            continue
        totals = summary["totals"]
        complete = summary.get("status", "complete") == "complete"
        verdict = "ok" if code == 0 and complete else ("FAILED" if complete else "INCOMPLETE")
        not_run = totals.get("not run", 0)
        print(
            f"    {verdict:10} {name}: {totals['passed']} passed, {totals['failed']} failed, "
            f"{totals['skipped']} skipped"
            + (f", {not_run} not run" if not_run else "")
            + f" in {summary['wall_time_s']:.0f}s (report: {report_dir / 'features.html'})"
        )
        if not complete:
            print(f"               {summary.get('reason') or 'the run did not finish'}")


def _run(args: argparse.Namespace) -> int:
    if args.target == "aws":
        from harness.stack.verify import verify_aws

        return int(verify_aws(args))
    runs = [
        (
            "every feature, ephemeral profile",
            args.report_dir,
            run_features(
                target="local",
                report_dir=args.report_dir,
                outputs=args.outputs,
                extra_args=args.pytest_args,
            ),
        )
    ]
    interrupted = runs[0][2] == INTERRUPTED
    if not args.skip_production and not interrupted:
        production_dir = args.report_dir / PRODUCTION_REPORT_SUBDIR
        runs.append(
            (
                "@spec scenarios, production profile",
                production_dir,
                run_spec_on_production(production_dir, args.pytest_args),
            )
        )
    print_runs_summary(runs)
    return next((code for _, _, code in runs if code != 0), 0)


def register(subparsers: Any) -> None:
    """Add the ``verify`` command."""
    parser = subparsers.add_parser(
        "verify",
        help="run every feature against a stack and write the reports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="a fresh local stack (default) or an ephemeral AWS stack deployed for the run",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=DEFAULT_REPORT_DIR,
        help=f"where features.html, cucumber.json, summary.json go (default {DEFAULT_REPORT_DIR})",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="local: use a running stack's outputs file instead of starting one; "
        "aws: where the deployed stack's outputs file is written",
    )
    parser.add_argument(
        "--skip-production",
        action="store_true",
        help="local: do not run the @spec scenarios on a production-profile local stack",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    try:
        from harness.stack.verify import add_aws_verify_arguments
    except ImportError:
        pass
    else:
        add_aws_verify_arguments(parser)
    parser.set_defaults(func=_run)
