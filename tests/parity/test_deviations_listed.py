"""The listed deviations are listed where people read them (docs/local-cloud/parity.md)."""

from __future__ import annotations

from pathlib import Path

from tests.parity.deviations import DEVIATIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "local-cloud" / "parity.md"


def test_every_deviation_is_in_the_parity_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [name for name in DEVIATIONS if f"**`{name}`**" not in text]
    assert not missing, f"deviations not listed in {DOC}: {missing}"
