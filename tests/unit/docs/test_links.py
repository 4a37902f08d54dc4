"""Every relative link in the README, CONTRIBUTING and docs/ resolves to a file or folder
in the repository (anchors are not checked; external links are left to the reader)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")],
    key=str,
)
# [text](target) and [text](target "title"), not images' remote sources; code spans and
# fenced blocks are removed first so a `[x](y)` inside code is not taken for a link.
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    """The link targets of a Markdown text, outside code."""
    text = _CODE.sub("", _FENCE.sub("", text))
    return _LINK.findall(text)


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` that name no existing file or folder."""
    broken = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http(s):, mailto:, ... and anchors within the page
        relative = target.split("#", 1)[0]
        if not (path.parent / relative).exists():
            broken.append(target)
    return broken


def test_the_docs_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in DOCS}
    assert {"README.md", "CONTRIBUTING.md", "docs/README.md"} <= names, names


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    assert path.exists(), f"{path} does not exist"
    assert broken_links(path) == [], f"{path.relative_to(ROOT)} links to missing files"


def test_a_broken_link_is_found_and_code_is_not_a_link(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok too](there.md#part) [web](https://example.com) [self](#top)\n"
        "[missing](gone.md) `[code](not-a-link.md)`\n```\n[fenced](also-not.md)\n```\n"
    )
    assert broken_links(page) == ["gone.md"]
