"""The ``harness`` command line: one entry point, one module per command group.

Each module in ``_COMMAND_MODULES`` exposes ``register(subparsers)`` that adds its
sub-commands with ``set_defaults(func=...)``; ``func(args)`` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

_COMMAND_MODULES: tuple[str, ...] = (
    "harness.verify",
    "harness.stack.cli",
    "harness.load.cli",
    "harness.local.cli",
    "harness.mutate.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Run, test and load the Task API: local stack, features, load, CI stacks.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
