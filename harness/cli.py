"""The ``harness`` command line: one entry point, one module per command group.

Each module in ``_COMMAND_MODULES`` exposes ``register(subparsers)`` that adds its
sub-commands with ``set_defaults(func=...)``; ``func(args)`` returns the exit code.
Every parser is a :class:`~harness.cliargs.HarnessParser`: a usage error is one line,
and an argument no command knows is named as unknown (argparse alone would first
complain that a required sub-command is missing).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from harness.cliargs import HarnessParser, adopt, subparsers_of

_COMMAND_MODULES: tuple[str, ...] = (
    "harness.verify",
    "harness.stack.cli",
    "harness.load.cli",
    "harness.local_stack.cli",
    "harness.mutate.cli",
    "harness.dlq.cli",
)
_PARSER_KEY = "_harness_parser"  # the deepest parser that parsed (for its error messages)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every command group registered."""
    parser = HarnessParser(
        prog="harness",
        description="Run, test and load the Task API: local stack, features, load, CI stacks.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    adopt(parser)
    _mark(parser)
    return parser


def _mark(parser: argparse.ArgumentParser) -> None:
    # Sub-command groups are optional for argparse so that an unknown argument is
    # reported as such; main() then asks for the missing sub-command itself.
    parser.set_defaults(**{_PARSER_KEY: parser})
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            action.required = False
    for child in subparsers_of(parser):
        _mark(child)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; exits 2 with one line on any usage error."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    owner: argparse.ArgumentParser = getattr(args, _PARSER_KEY, parser)
    if unknown:
        noun = "argument" if len(unknown) == 1 else "arguments"
        owner.error(f"unknown {noun}: {' '.join(unknown)}")
    if getattr(args, "func", None) is None:
        commands = [
            name
            for action in owner._actions
            if isinstance(action, argparse._SubParsersAction)
            for name in action.choices
        ]
        owner.error(f"choose a command: {', '.join(commands)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    args = parse(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`harness local status | head`): nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
