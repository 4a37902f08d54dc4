"""The mutation machinery on real mutants, so it cannot rot: three catalogue mutants are
killed by an ordering, a dead-letter and a validation scenario, and a harmless change
survives (the runner does not call everything killed).

The full catalogue runs with ``make mutants`` (``harness mutate``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.mutate.catalogue import Mutant, Patch
from harness.mutate.cli import DEFAULT_CATALOGUE, ROOT, load_checked
from harness.mutate.runner import MutationRunner, run_catalogue

# Mutant name -> the feature whose scenario must kill it.
SUBSET = {
    "fifo-carry-on-after-failure": "features/ordering.feature",
    "poison-forwarded-and-retried": "features/dead_letter.feature",
    "title-limit-201": "features/submission.feature",
}
HARMLESS = Mutant(
    name="harmless-comment",
    promise="none: only a comment changes",
    tags="configuration",
    profile="ephemeral",
    patches=(
        Patch(
            file="handlers/domain/constants.py",
            old="# --- API limits ---",
            new="# --- API limits (reworded) ---",
        ),
    ),
)


@pytest.mark.slow
def test_catalogue_mutants_are_killed_and_a_harmless_change_survives(tmp_path: Path) -> None:
    chosen = [m for m in load_checked(DEFAULT_CATALOGUE) if m.name in SUBSET]
    assert [m.name for m in chosen] == list(SUBSET)
    lines: list[str] = []
    runner = MutationRunner(ROOT, tmp_path, on_progress=lines.append, run_timeout_s=240)

    results = {r.name: r for r in run_catalogue([*chosen, HARMLESS], runner)}

    for name, feature in SUBSET.items():
        result = results[name]
        assert result.outcome == "killed", (result, lines)
        assert result.feature == feature, result
        assert result.reason, result
    harmless = results["harmless-comment"]
    assert harmless.outcome == "survived", (harmless, lines)
    assert harmless.scenarios_run >= 3, harmless
    assert not (ROOT / "handlers/domain/constants.py").read_text().count("(reworded)")
