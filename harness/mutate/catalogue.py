"""The guarantee-mutation catalogue: named small patches, each breaking one promise.

The catalogue is one TOML file (``features/mutants.toml``, beside the features QA reads)::

    [[mutant]]
    name = "fifo-carry-on-after-failure"          # kebab-case, unique
    promise = "a failed task holds back the tasks behind it"
    tags = "ordering"                             # pytest -m expression of feature tags
    profile = "ephemeral"                         # or "production"; default ephemeral
    refused_at_deploy = "..."                     # optional: see Mutant.refused_at_deploy

    [[mutant.patch]]                              # one or more, applied in order
    file = "handlers/processor.py"
    old = '''batch = SqsFifoPartialProcessor()'''       # exact text, found exactly once
    new = '''batch = BatchProcessor(EventType.SQS)'''

A patch whose ``old`` text is missing or found more than once is an error naming the
mutant, the file and the count: code that moved makes the catalogue fail loudly instead
of running an unmutated stack.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

Profile = Literal["ephemeral", "production"]
PROFILES: Final[tuple[Profile, ...]] = ("ephemeral", "production")
_NAME: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Words of a pytest -m expression that are not tags.
_OPERATORS: Final = frozenset({"and", "or", "not"})
_TAG: Final = re.compile(r"(?<![\w@])@([A-Za-z_][\w]*)")


class CatalogueError(ValueError):
    """The catalogue is malformed, or a mutant no longer applies to the tree."""


@dataclass(frozen=True)
class Patch:
    """Replace the one occurrence of ``old`` in ``file`` (relative to the tree) by ``new``."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    """One named way to break one promise, and the scenarios that must catch it."""

    name: str
    promise: str
    tags: str
    profile: Profile
    patches: tuple[Patch, ...]
    refused_at_deploy: str = ""
    """Text of the error with which AWS (and the local cloud) refuses to deploy the mutated
    stack, when that is how the promise is kept (a role without the permissions its event
    source mapping needs): the mutant is killed when the stack does not start with it."""

    @property
    def files(self) -> tuple[str, ...]:
        """The files the mutant changes, in patch order, each once."""
        return tuple(dict.fromkeys(patch.file for patch in self.patches))

    @property
    def touches_infrastructure(self) -> bool:
        """Whether the mutant changes the CDK app (so the stack must be synthesized again)."""
        return any(not file.startswith("handlers/") for file in self.files)

    def mutated(self, root: Path) -> dict[str, str]:
        """The new text of each file the mutant changes; raises if a patch does not apply."""
        texts: dict[str, str] = {}
        for patch in self.patches:
            path = root / patch.file
            if patch.file not in texts:
                if not path.is_file():
                    raise CatalogueError(f"mutant {self.name}: {patch.file} does not exist")
                texts[patch.file] = path.read_text(encoding="utf-8")
            count = texts[patch.file].count(patch.old)
            if count != 1:
                where = "is not" if count == 0 else f"is found {count} times"
                raise CatalogueError(
                    f"mutant {self.name}: the text to replace {where} in {patch.file} "
                    f"(it must be there exactly once; did the code move?):\n{patch.old}"
                )
            texts[patch.file] = texts[patch.file].replace(patch.old, patch.new)
        for file, text in texts.items():
            if file.endswith(".py"):
                try:
                    ast.parse(text, filename=file)
                except SyntaxError as error:
                    raise CatalogueError(
                        f"mutant {self.name}: {file} is no longer valid Python: {error}"
                    ) from None
        return texts

    def apply_to(self, root: Path) -> None:
        """Patch the copy of the tree at ``root`` (never the working tree itself)."""
        for file, text in self.mutated(root).items():
            target = root / file
            # A new inode: the copy may share the original's through a hard link.
            target.unlink()
            target.write_text(text, encoding="utf-8")


def load_catalogue(path: Path) -> list[Mutant]:
    """Read and validate the catalogue (names, promises, tags, profiles, patch fields)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogueError(f"cannot read the mutant catalogue {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{path} is not valid TOML: {error}") from None
    entries = raw.get("mutant")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{path} declares no [[mutant]]")
    mutants = [_mutant(entry, index, path) for index, entry in enumerate(entries, 1)]
    seen: set[str] = set()
    for mutant in mutants:
        if mutant.name in seen:
            raise CatalogueError(f"{path}: two mutants are named {mutant.name}")
        seen.add(mutant.name)
    return mutants


def select(mutants: Sequence[Mutant], names: Iterable[str]) -> list[Mutant]:
    """The mutants with these names, in catalogue order; an unknown name is an error."""
    wanted = list(names)
    known = {mutant.name for mutant in mutants}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise CatalogueError(f"no mutant named {', '.join(unknown)}")
    return [mutant for mutant in mutants if mutant.name in wanted]


def feature_tags(features_dir: Path) -> set[str]:
    """Every ``@tag`` used in the feature files."""
    tags: set[str] = set()
    for feature in features_dir.glob("*.feature"):
        for line in feature.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("@"):
                tags.update(_TAG.findall(line))
    return tags


def check_tags(mutants: Sequence[Mutant], known: set[str]) -> None:
    """Every word of each mutant's tag expression is a tag some feature carries."""
    for mutant in mutants:
        words = set(re.findall(r"[A-Za-z_]\w*", mutant.tags)) - _OPERATORS
        missing = sorted(words - known)
        if missing:
            raise CatalogueError(
                f"mutant {mutant.name}: no feature is tagged {', '.join(missing)} "
                f"(known tags: {', '.join(sorted(known))})"
            )


def _mutant(entry: Any, index: int, path: Path) -> Mutant:
    where = f"{path}, mutant #{index}"
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"{where} is not a table")
    unknown = set(entry) - {"name", "promise", "tags", "profile", "patch", "refused_at_deploy"}
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}")
    name = _text(entry, "name", where)
    where = f"{path}, mutant {name}"
    if not _NAME.match(name):
        raise CatalogueError(f"{where}: the name must be kebab-case (a-z, 0-9, -)")
    profile = entry.get("profile", "ephemeral")
    if profile not in PROFILES:
        raise CatalogueError(f"{where}: profile must be one of {', '.join(PROFILES)}")
    patches = entry.get("patch")
    if not isinstance(patches, list) or not patches:
        raise CatalogueError(f"{where}: needs at least one [[mutant.patch]]")
    return Mutant(
        name=name,
        promise=_text(entry, "promise", where),
        tags=_text(entry, "tags", where),
        profile=profile,
        patches=tuple(_patch(patch, where) for patch in patches),
        refused_at_deploy=(
            _text(entry, "refused_at_deploy", where) if "refused_at_deploy" in entry else ""
        ),
    )


def _patch(entry: Any, where: str) -> Patch:
    if not isinstance(entry, Mapping) or set(entry) != {"file", "old", "new"}:
        raise CatalogueError(f"{where}: each patch has exactly the keys file, old and new")
    file, old, new = (entry[key] for key in ("file", "old", "new"))
    if not all(isinstance(value, str) for value in (file, old, new)):
        raise CatalogueError(f"{where}: file, old and new must be strings")
    if not old or old == new:
        raise CatalogueError(f"{where}: a patch must change some text ({file})")
    if Path(file).is_absolute() or ".." in Path(file).parts:
        raise CatalogueError(f"{where}: {file} must be a path inside the tree")
    return Patch(file=file, old=old, new=new)


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: {key} must be a non-empty string")
    return value.strip()
