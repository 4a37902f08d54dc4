"""``harness verify``: prove the guarantees against a stack and report.

``--target local`` (the default, what ``make verify`` runs) synthesizes the stack, brings
up the local stack, runs every feature against it, prints the summary, writes the reports
and tears down: the features' own session fixture owns the local stack, so a failure or
Ctrl-C still stops everything. ``--target aws`` deploys an ephemeral stack, runs the same
features and always destroys it (``harness.stack.verify``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.node import env_with_node

DEFAULT_REPORT_DIR = Path("reports/features")


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
    try:
        code = subprocess.call(command, env=env_with_node())
    except KeyboardInterrupt:
        # pytest got the same SIGINT and tears its stack down itself; report and stop.
        print("interrupted: the features' local stack is torn down by pytest", file=sys.stderr)
        return 130
    print(
        f"==> features finished in {time.monotonic() - started:.1f}s with exit code {code}; "
        f"report: {report_dir / 'features.html'}",
        flush=True,
    )
    return code


def _run(args: argparse.Namespace) -> int:
    if args.target == "aws":
        from harness.stack.verify import verify_aws

        return int(verify_aws(args))
    return run_features(
        target="local",
        report_dir=args.report_dir,
        outputs=args.outputs,
        extra_args=args.pytest_args,
    )


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
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    try:
        from harness.stack.verify import add_aws_verify_arguments
    except ImportError:
        pass
    else:
        add_aws_verify_arguments(parser)
    parser.set_defaults(func=_run)
