"""``harness mutate``: prove the features catch each broken promise of the catalogue.

Applies each mutant of the catalogue (``features/mutants.toml``) to a temporary copy of the
tree, runs the features tagged for it against a fresh local stack (production profile for
mutants of production values) and prints killed/survived with the scenario that killed
it. Exit 0 when every mutant is killed, 1 when any survived, 2 when the catalogue does
not apply or a run broke: the stack did not build, deploy or start, or nothing ran (so
nothing was proven for that mutant; a deployment refused as the mutant's
``refused_at_deploy`` says is a kill).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from harness.mutate.catalogue import (
    CatalogueError,
    Mutant,
    check_tags,
    feature_tags,
    load_catalogue,
    select,
)
from harness.mutate.runner import (
    MutantResult,
    MutationRunner,
    baseline_tags,
    describe,
    run_catalogue,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOGUE = ROOT / "features" / "mutants.toml"


def load_checked(path: Path, root: Path = ROOT) -> list[Mutant]:
    """The catalogue, with every mutant checked to apply exactly once to ``root``."""
    mutants = load_catalogue(path)
    check_tags(mutants, feature_tags(root / "features"))
    for mutant in mutants:
        mutant.mutated(root)
    return mutants


def markdown_table(results: list[MutantResult], mutants: list[Mutant], wall_s: float) -> str:
    """The kill table for ``docs/mutation.md``, with its date and machine."""
    by_name = {mutant.name: mutant for mutant in mutants}
    killed = sum(1 for result in results if result.outcome == "killed")
    lines = [
        f"Run finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {_cores()} cores, Python {platform.python_version()}): "
        f"{killed} of {len(results)} killed, wall time {wall_s / 60:.1f} min.",
        "",
        "| Mutant | Promise it breaks | Profile | Verdict | Killed by (feature) | Time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        verdict = result.outcome.upper() if result.outcome != "killed" else "killed"
        where = (
            f"{result.scenario} ({result.feature})"
            if result.outcome == "killed"
            else result.scenario or "-"
        )
        lines.append(
            f"| `{result.name}` | {by_name[result.name].promise} | {result.profile} | "
            f"{verdict} | {_cell(where)} | {result.seconds:.0f} s |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _cores() -> int:
    return os.cpu_count() or 1


def _run(args: argparse.Namespace) -> int:
    try:
        mutants = load_checked(args.catalogue)
        if args.only:
            mutants = select(mutants, args.only)
    except CatalogueError as error:
        print(f"harness mutate: {error}", file=sys.stderr)
        return 2
    if args.list or args.check:
        for mutant in mutants:
            print(f"{mutant.name:40} {mutant.profile:10} -m {mutant.tags:28} {mutant.promise}")
        if args.check:
            print(f"{len(mutants)} mutants, each applies exactly once to {ROOT}")
        return 0
    work_dir = Path(tempfile.mkdtemp(prefix="task-api-mutants-"))
    started = time.monotonic()
    try:
        runner = MutationRunner(ROOT, work_dir, run_timeout_s=args.timeout)
        if not args.no_baseline and not _baseline_passes(runner, mutants):
            return 2
        results = run_catalogue(
            mutants,
            runner,
            on_result=lambda index, mutant, result: print(describe(result), flush=True),
        )
    except KeyboardInterrupt:
        print("interrupted: the running mutant's stack was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    wall = time.monotonic() - started
    table = markdown_table(results, mutants, wall)
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")
    counts = {
        kind: sum(1 for r in results if r.outcome == kind)
        for kind in ("killed", "survived", "error")
    }
    print(
        f"==> {counts['killed']} killed, {counts['survived']} survived, {counts['error']} "
        f"errors, of {len(results)} mutants in {wall / 60:.1f} min"
    )
    for result in results:
        if result.outcome != "killed":
            print(f"    {result.outcome.upper()}: {result.name} ({result.promise})")
    if counts["survived"]:
        return 1
    return 2 if counts["error"] else 0


def _baseline_passes(runner: MutationRunner, mutants: list[Mutant]) -> bool:
    """The unmutated stack passes every scenario the mutants will run (else a kill proves
    nothing: the scenario would fail anyway)."""
    for profile, tags in baseline_tags(mutants).items():
        print(f"[baseline] the unmutated tree ({profile}; -m {tags})", flush=True)
        result = runner.run_baseline(profile, tags)
        if result.outcome != "survived":
            failure = f"{result.scenario} ({result.feature}): {result.reason}"
            print(
                f"    the unmutated stack FAILS: {failure}\n"
                "    fix that first: no mutant's verdict would mean anything",
                file=sys.stderr,
            )
            return False
        print(
            f"    passes: {result.scenarios_run} scenario(s) in {result.seconds:.1f}s", flush=True
        )
    return True


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``mutate`` command."""
    parser = subparsers.add_parser(
        "mutate",
        help="run the guarantee-mutation catalogue: every mutant must be killed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        help=f"the mutant catalogue (default {DEFAULT_CATALOGUE.relative_to(ROOT)})",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument(
        "--check",
        action="store_true",
        help="check that every mutant applies exactly once, run nothing",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds one mutant's feature run may take (default 900)",
    )
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the kill table (Markdown) here"
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the first run of the same scenarios against the unmutated tree",
    )
    parser.set_defaults(func=_run)
