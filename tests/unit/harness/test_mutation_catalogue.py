"""The mutant catalogue: every mutant still applies exactly once, and a broken entry is a
loud, specific error (never a silently unmutated stack)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.mutate.catalogue import (
    CatalogueError,
    check_tags,
    feature_tags,
    load_catalogue,
    select,
)
from harness.mutate.cli import DEFAULT_CATALOGUE, ROOT, load_checked

# The floor, and the kinds of promise the catalogue must cover.
MIN_MUTANTS = 25


def test_every_catalogue_mutant_applies_exactly_once_to_the_tree() -> None:
    mutants = load_checked(DEFAULT_CATALOGUE)
    assert len(mutants) >= MIN_MUTANTS
    for mutant in mutants:
        texts = mutant.mutated(ROOT)
        for file, text in texts.items():
            assert text != (ROOT / file).read_text(encoding="utf-8"), mutant.name


def test_the_catalogue_covers_both_profiles_and_code_and_infrastructure() -> None:
    mutants = load_catalogue(DEFAULT_CATALOGUE)
    assert {m.profile for m in mutants} == {"ephemeral", "production"}
    assert any(m.touches_infrastructure for m in mutants)
    assert any(not m.touches_infrastructure for m in mutants)


def _catalogue(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mutants.toml"
    path.write_text(body, encoding="utf-8")
    return path


MUTANT = """
[[mutant]]
name = "{name}"
promise = "a promise"
tags = "{tags}"
[[mutant.patch]]
file = "{file}"
old = '''{old}'''
new = '''{new}'''
"""


def _one(**fields: str) -> str:
    values = {
        "name": "a-mutant",
        "tags": "api",
        "file": "handlers/domain/constants.py",
        "old": "TITLE_MAX_CHARS: Final = 200",
        "new": "TITLE_MAX_CHARS: Final = 201",
    }
    values.update(fields)
    return MUTANT.format(**values)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"old": "TITLE_MAX_CHARS: Final = 999"}, "is not in handlers/domain/constants.py"),
        ({"old": "Final"}, "is found"),
        ({"new": "TITLE_MAX_CHARS: Final = ("}, "no longer valid Python"),
        ({"file": "handlers/nowhere.py"}, "does not exist"),
    ],
)
def test_a_mutant_that_does_not_apply_is_a_loud_error(
    tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    (mutant,) = load_catalogue(_catalogue(tmp_path, _one(**fields)))
    with pytest.raises(CatalogueError, match=message):
        mutant.mutated(ROOT)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_one(name="Not_Kebab"), "kebab-case"),
        (_one() + _one(), "two mutants are named a-mutant"),
        (_one(file="../outside.py"), "inside the tree"),
        (_one(new="TITLE_MAX_CHARS: Final = 200"), "must change some text"),
        (_one().replace('tags = "api"', 'tags = ""'), "tags must be a non-empty string"),
        (_one().replace('promise = "a promise"', 'promise = "p"\nowner = "x"'), "unknown keys"),
        ("[[mutant]]\nname = 'x'\npromise = 'p'\ntags = 'api'\n", "at least one"),
        ("title = 'no mutants'\n", "declares no"),
        ("[[mutant]\n", "not valid TOML"),
    ],
)
def test_a_malformed_catalogue_is_refused(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_catalogue(tmp_path, body))


def test_tags_must_be_feature_tags_and_names_must_exist(tmp_path: Path) -> None:
    mutants = load_catalogue(_catalogue(tmp_path, _one(tags="api and not nonesuch")))
    with pytest.raises(CatalogueError, match="no feature is tagged nonesuch"):
        check_tags(mutants, feature_tags(ROOT / "features"))
    with pytest.raises(CatalogueError, match="no mutant named other"):
        select(mutants, ["other"])


def test_applying_changes_the_copy_only(tmp_path: Path) -> None:
    (mutant,) = load_catalogue(_catalogue(tmp_path, _one()))
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "handlers", copy / "handlers")
    original = (ROOT / "handlers/domain/constants.py").read_text(encoding="utf-8")

    mutant.apply_to(copy)

    assert "TITLE_MAX_CHARS: Final = 201" in (copy / "handlers/domain/constants.py").read_text()
    assert (ROOT / "handlers/domain/constants.py").read_text(encoding="utf-8") == original


# Statements of the functions' roles no feature can miss, and why (docs/mutation.md).
# None since the local X-Ray daemon uploads traces with the role (XRayTracing is killed).
UNKILLABLE_STATEMENTS: dict[str, str] = {}


def test_every_statement_of_the_functions_roles_has_a_mutant() -> None:
    sids = set()
    for source in ("cdk/stacks.py", "cdk/components/function.py"):
        text = (ROOT / source).read_text(encoding="utf-8")
        sids |= set(re.findall(r'sid="(\w+)"', text))
    mutated = {
        sid
        for mutant in load_catalogue(DEFAULT_CATALOGUE)
        for patch in mutant.patches
        for sid in re.findall(r'sid="(\w+)"', patch.old)
        if patch.file.startswith("cdk/")
    }
    assert sids, "no statement found: did the statements move?"
    assert sids - set(UNKILLABLE_STATEMENTS) <= mutated, sorted(sids - mutated)


def test_a_mutant_refused_at_deploy_names_the_refusal(tmp_path: Path) -> None:
    body = _one().replace('tags = "api"', 'tags = "api"\nrefused_at_deploy = "has no right"')
    (mutant,) = load_catalogue(_catalogue(tmp_path, body))
    assert mutant.refused_at_deploy == "has no right"
    (plain,) = load_catalogue(_catalogue(tmp_path, _one()))
    assert plain.refused_at_deploy == ""
