"""Powertools' re-exporting packages made lazy (:mod:`handlers.lazy_packages`): the same
objects by the same names, only the submodules asked for loaded."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.lazy_packages import install


def _from(module: str, name: str) -> Any:
    """``from module import name``, as the import statement does it (``fromlist``)."""
    return getattr(__import__(module, fromlist=[name]), name)


@pytest.fixture
def packages(tmp_path: Path) -> Iterator[Path]:
    """``reexports`` (an ``__init__`` of re-exports only, a docstring and ``__all__``) and
    ``busy`` (an ``__init__`` that also runs code), importable from ``tmp_path``."""
    reexports = tmp_path / "reexports"
    reexports.mkdir()
    (reexports / "__init__.py").write_text(
        '"""Re-exports."""\n\n'
        "from .light import Light\n"
        "from .heavy import (\n    Heavy,\n    helper as renamed,\n)\n"
        "from .same import same\n"
        '__all__ = ["Light", "Heavy", "renamed"]\n'
    )
    (reexports / "light.py").write_text("class Light: ...\n")
    (reexports / "heavy.py").write_text("class Heavy: ...\n\ndef helper(): return 1\n")
    (reexports / "plain.py").write_text("VALUE = 1\n")
    # A function re-exported under its own module's name (Powertools' ``event_source``).
    (reexports / "same.py").write_text("def same(): return 2\n")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "__init__.py").write_text("from .part import Part\nSTARTED = True\n")
    (busy / "part.py").write_text("class Part: ...\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] in {"reexports", "busy"}]:
            del sys.modules[name]


def test_a_reexported_name_loads_only_its_submodule(packages: Path) -> None:
    assert install(("reexports", "busy")) == ["reexports"], "busy's __init__ runs code"
    Light = _from("reexports", "Light")

    assert "reexports.light" in sys.modules
    assert "reexports.heavy" not in sys.modules
    assert Light is sys.modules["reexports.light"].Light
    renamed = _from("reexports", "renamed")

    assert renamed() == 1


def test_submodules_import_as_usual(packages: Path) -> None:
    install(("reexports",))
    plain = _from("reexports", "plain")
    Heavy = _from("reexports.heavy", "Heavy")

    assert plain.VALUE == 1
    assert "reexports.light" not in sys.modules
    reexports = importlib.import_module("reexports")
    assert reexports.Heavy is Heavy


def test_any_other_name_runs_the_real_init(packages: Path) -> None:
    install(("reexports",))
    reexports = importlib.import_module("reexports")
    assert reexports.__all__ == ["Light", "Heavy", "renamed"]
    assert reexports.same() == 2
    assert "reexports.heavy" in sys.modules
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        _ = reexports.missing


def test_an_imported_package_is_left_alone(packages: Path) -> None:
    reexports = importlib.import_module("reexports")
    assert install(("reexports",)) == []
    assert sys.modules["reexports"] is reexports


def test_a_name_shared_with_its_submodule_means_the_reexported_object(packages: Path) -> None:
    install(("reexports",))
    module = importlib.import_module("reexports.same")  # binds the submodule on the package
    reexports = importlib.import_module("reexports")
    assert reexports.same is module.same
    assert _from("reexports", "same")() == 2
