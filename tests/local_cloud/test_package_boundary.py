"""The local cloud is a package of its own: it imports nothing of the project, and the
project reaches it through its public API only (no ``localcloud._private`` reach-ins)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import localcloud

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "localcloud"
PROJECT_PACKAGES = frozenset({"handlers", "cdk", "features", "harness", "tests", "loadtest"})
USERS = ("harness", "features", "tests", "benchmarks", "cdk", "loadtest", "conftest.py")


def _python_files(*names: str) -> Iterator[Path]:
    for name in names:
        path = ROOT / name
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def imported_modules(path: Path) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """``(line, module, names)`` of every import in a file, those inside functions and
    ``importlib.import_module("...")`` calls with a literal name included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module, tuple(alias.name for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value, ()


def test_the_package_imports_nothing_of_the_project() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _python_files("localcloud")
        for line, module, _ in imported_modules(path)
        if module.split(".", 1)[0] in PROJECT_PACKAGES
    ]
    assert not offending, "localcloud imports project code:\n" + "\n".join(offending)


def test_the_walk_sees_imports_inside_functions_and_import_module(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import importlib\n"
        "def f():\n"
        "    from harness.waiting import wait_until\n"
        "    return importlib.import_module('cdk.contract')\n",
        encoding="utf-8",
    )
    assert {module for _, module, _ in imported_modules(sample)} == {
        "importlib",
        "harness.waiting",
        "cdk.contract",
    }


def test_nothing_outside_the_package_reaches_into_its_private_names() -> None:
    offending = []
    for path in _python_files(*USERS):
        for line, module, names in imported_modules(path):
            if module.split(".", 1)[0] != "localcloud":
                continue
            private = [part for part in (*module.split("."), *names) if part.startswith("_")]
            if private:
                offending.append(f"{path.relative_to(ROOT)}:{line}: {module} {private}")
    assert not offending, "private localcloud names used outside it:\n" + "\n".join(offending)


def test_every_exported_name_resolves() -> None:
    missing = [name for name in localcloud.__all__ if not hasattr(localcloud, name)]
    assert not missing, f"localcloud.__all__ names that do not resolve: {missing}"
    assert localcloud.__version__ == "0.1.0"
