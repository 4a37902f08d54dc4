"""Every moto internal the local cloud relies on is listed in one place and still exists.

On a moto upgrade, this is the checklist: each failure names the internal that moved or
disappeared and what relies on it (``localcloud/moto_compat.py``).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from localcloud import moto_compat

ROOT = Path(__file__).resolve().parents[2]
# moto's public API: used directly, not listed.
PUBLIC = frozenset({"moto", "moto.server"})


@pytest.mark.parametrize("name", sorted(moto_compat.INTERNALS))
def test_the_internal_still_exists(name: str) -> None:
    internal = moto_compat.INTERNALS[name]
    module = importlib.import_module(internal.module)
    assert hasattr(module, internal.attribute), (
        f"moto internal {internal.qualified_name} is gone; relied on for: {internal.why}"
    )
    assert moto_compat.resolve(name) is getattr(module, internal.attribute)


def test_a_missing_internal_is_named_with_its_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        moto_compat.INTERNALS,
        "Gone",
        moto_compat.Internal("moto.core.utils", "no_such_function", "a test's own listing"),
    )
    with pytest.raises(ImportError, match=r"moto\.core\.utils\.no_such_function.*a test's own"):
        moto_compat.resolve("Gone")


def _type_checking_imports() -> dict[str, str]:
    """``{name: "module.attribute"}`` of the ``if TYPE_CHECKING:`` imports mypy sees."""
    tree = ast.parse((ROOT / "localcloud" / "moto_compat.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                for alias in statement.names:
                    found[alias.asname or alias.name] = f"{statement.module}.{alias.name}"
    return found


def test_what_mypy_sees_is_what_is_listed() -> None:
    listed = {name: i.qualified_name for name, i in moto_compat.INTERNALS.items()}
    assert _type_checking_imports() == listed
    assert set(moto_compat.INTERNALS) <= set(moto_compat.__all__)


def test_nothing_else_imports_moto_internals() -> None:
    offending = []
    for folder in ("localcloud", "tests/local_cloud", "tests/parity", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "moto_compat.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                modules = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                offending += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {module}"
                    for module in modules
                    if module.split(".")[0] == "moto" and module not in PUBLIC
                ]
    assert not offending, "import these through localcloud.moto_compat:\n" + "\n".join(offending)


def test_the_patch_adds_describe_alarm_history_to_moto() -> None:
    assert moto_compat.install_describe_alarm_history()
    assert moto_compat.install_describe_alarm_history()  # idempotent
    assert hasattr(moto_compat.resolve("CloudWatchResponse"), "describe_alarm_history")
