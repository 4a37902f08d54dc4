"""Single-group drain of two versions of ``handlers/``, run alternately on the same machine.

    .venv/bin/python benchmarks/drain_ab.py --before <git revision> [--runs 3] [--tasks 2000]

A change to what the processor does per message is judged by the drain rate, which on a
shared 2-core machine moves with whatever else runs: so the two versions take turns, each
run a fresh local stack from a copy of this tree whose ``handlers/`` is either the working
tree's ("after") or the one of ``--before`` ("before"). Each run is
:func:`local_stack_bench.ingest_and_drain`: ``--tasks`` tasks ingested through the API
with the processor's mapping disabled, then the clock runs from enabling it to an empty
queue. Printed per run, then the medians: messages per second and the processor's CPU per
message (the function's own cost, which the load on the machine moves far less).
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.local_stack_bench import (  # noqa: E402
    BENCH_CONTEXT,
    _tree_copy,
    _work_dir,
    ingest_and_drain,
)
from cdk.node import put_node_on_path  # noqa: E402
from harness.local_stack.cloud import LocalDeployment  # noqa: E402


def _handlers_at(revision: str, tree: Path) -> None:
    """Replace ``tree/handlers`` with the handlers of ``revision``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "handlers"],
        capture_output=True,
        check=True,
    ).stdout
    shutil.rmtree(tree / "handlers")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")


def main(argv: list[str] | None = None) -> int:
    """Run the versions alternately and print each run and the medians."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' handlers")
    parser.add_argument("--runs", type=int, default=3, help="runs of each version")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks to ingest and drain")
    parser.add_argument("--threads", type=int, default=8, help="concurrent API clients")
    args = parser.parse_args(argv)
    put_node_on_path()
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with _work_dir() as work:
        for run in range(args.runs):
            for version in ("before", "after"):
                run_dir = work / f"{version}-{run}"
                tree = _tree_copy(run_dir)
                if version == "before":
                    _handlers_at(args.before, tree)
                with LocalDeployment(
                    project_root=tree, work_dir=run_dir / "stack", context=BENCH_CONTEXT
                ) as stack:
                    figures = ingest_and_drain(stack, args.tasks, args.threads)
                results[version].append(figures)
                print(
                    f"{version} (run {run + 1}): drain {figures['drain_per_s']:.0f} msg/s "
                    f"({figures['backlog']} messages in {figures['drain_s']:.2f} s, "
                    f"{figures['completed']} COMPLETED), processor CPU "
                    f"{figures['processor_cpu_ms']:.2f} ms/message, local cloud "
                    f"{figures['drain_cloud_cpu_ms']:.2f} ms/message; cores "
                    f"{figures['drain_machine']}",
                    flush=True,
                )
    for version, runs in results.items():
        rates = [run["drain_per_s"] for run in runs]
        cpu = [run["processor_cpu_ms"] for run in runs]
        print(
            f"{version}: drain median {statistics.median(rates):.0f} msg/s "
            f"({min(rates):.0f}-{max(rates):.0f}), processor CPU median "
            f"{statistics.median(cpu):.2f} ms/message; runs >= 300 msg/s: "
            f"{sum(rate >= 300 for rate in rates)} of {len(rates)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
