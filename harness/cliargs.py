"""Argument types, the parser class and the help formatter every ``harness`` command uses.

Every numeric and path option is checked by its ``type=`` here, while argparse parses,
so bad input stops the command with one line before anything starts (no stack, no
locust, no cloud call). :class:`HarnessParser` prints that one line; the help formatter
adds each option's default to its ``--help`` text.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from harness.load.settings import parse_duration


class HarnessParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what was wrong and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _with_defaults(text: str | None, action: argparse.Action) -> str | None:
    default = action.default
    if (
        text is None
        or text == argparse.SUPPRESS
        or "default" in text.lower()
        or default is None
        or default is False
        or default == argparse.SUPPRESS
        or not action.option_strings
        or default == []
    ):
        return text
    shown = default if not isinstance(default, Path) else str(default)
    return f"{text} (default: {shown})"


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to every option that has a default and does not name it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return _with_defaults(action.help, action)


class RawDescriptionDefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """:class:`DefaultsHelpFormatter` for parsers whose description is laid out by hand."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return _with_defaults(action.help, action)


def adopt(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every sub-parser the defaults-showing help formatter."""
    if parser.formatter_class is argparse.RawDescriptionHelpFormatter:
        parser.formatter_class = RawDescriptionDefaultsHelpFormatter
    elif parser.formatter_class is argparse.HelpFormatter:
        parser.formatter_class = DefaultsHelpFormatter
    for child in subparsers_of(parser):
        adopt(child)


def subparsers_of(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of ``parser``'s sub-commands (one level down)."""
    children: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children.extend(dict.fromkeys(action.choices.values()))
    return children


# ---------------------------------------------------------------------------- numbers


def _number(text: str, *, integer: bool) -> float:
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An integer option in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        value = int(_number(text, integer=True))
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = "integer"  # argparse names the type in "invalid <name> value"
    return parse


def positive_float(text: str) -> float:
    """A number > 0."""
    value = _number(text, integer=False)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def duration(text: str) -> float:
    """A positive duration: ``90``, ``90s``, ``5m``, ``1h30m``."""
    try:
        value = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than 0 s, got {text!r}")
    return value


PORT = int_at_least(0, 65535)


# ------------------------------------------------------------------------------ paths


def existing_file(text: str) -> Path:
    """A path to a readable file that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {text}")
    return path


def existing_dir(text: str) -> Path:
    """A path to a directory that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"no such directory: {text}" if not path.exists() else f"not a directory: {text}"
        )
    return path


def new_file(text: str) -> Path:
    """A file the command will write: its directory must exist and be writable.

    The directory is not created: a typo in it is far more likely than a wish for a new
    directory tree, and creating one silently hides the typo.
    """
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {parent} does not exist (for {text})")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {parent} (for {text})")
    return path


def report_dir(text: str) -> Path:
    """A folder the command fills: created if missing, so it must not be a file and its
    nearest existing ancestor must be a writable directory."""
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{ancestor} is not a directory (for {text})")
    if not os.access(ancestor, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {ancestor} (for {text})")
    return path


def fail(prog: str, message: str) -> int:
    """Print a one-line usage error the way :class:`HarnessParser` does; returns 2."""
    print(f"{prog}: error: {message} (see `{prog} --help`)", file=sys.stderr)
    return 2
