"""Powertools' re-exporting packages, loaded by the name asked for instead of all at once.

``aws_lambda_powertools.event_handler`` and ``aws_lambda_powertools.utilities.data_classes``
are ``__init__`` files of re-exports only: importing any module under them (the REST
resolver, the SQS record) first runs the package's ``__init__``, which imports every
sibling: the AppSync, Bedrock, VPC Lattice and Function URL resolvers (and with them
``asyncio``), and some 30 event classes. A cold start pays for all of them and uses two.

:func:`install` puts a module for each of these packages into ``sys.modules`` before they
are first imported, with the real package's ``__path__`` (so its submodules import as
usual, the same modules and classes) and a ``__getattr__`` that imports a re-exported name
from the submodule the real ``__init__`` takes it from, read off that ``__init__``'s own
``from .x import name`` lines. A name the ``__init__`` does not re-export that way (or a
star import) runs the real ``__init__`` in the package's namespace, so nothing it defines
goes missing. It must run before the first import of the packages, so ``handlers/__init__.py``
calls it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any, Final

PACKAGES: Final = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
)


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` re-exports are imported one name at a time."""

    _exports: dict[str, tuple[str, str]]
    _init_source: Path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name != "__all__":
            raise AttributeError(name)
        found = self._exports.get(name)
        if found is None and self._has_submodule(name):
            return importlib.import_module(f"{self.__name__}.{name}")
        if found is None:
            self._run_init()
            return self.__dict__[name] if name in self.__dict__ else _missing(self, name)
        module, attribute = found
        value = getattr(importlib.import_module(module), attribute)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds each imported submodule on its package. Where the real
        # ``__init__`` re-exports a same-named object from it (``from .event_source import
        # event_source``), that object is what the package's name means: keep it so.
        found = self.__dict__.get("_exports", {}).get(name)
        if (
            found is not None
            and isinstance(value, types.ModuleType)
            and value.__name__ == found[0]
            and found[1] == name
            and hasattr(value, name)
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def _has_submodule(self, name: str) -> bool:
        return any(
            (Path(entry) / f"{name}.py").is_file() or (Path(entry) / name / "__init__.py").is_file()
            for entry in self.__path__
        )

    def _run_init(self) -> None:
        """Run the real ``__init__`` here, once: every name it defines, as if eager."""
        if self.__dict__.get("_initialized"):
            return
        self.__dict__["_initialized"] = True
        code = compile(self._init_source.read_bytes(), str(self._init_source), "exec")
        exec(code, self.__dict__)  # noqa: S102 - the installed package's own __init__


def _missing(package: types.ModuleType, name: str) -> Any:
    raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")


def _exports(package: str, init: Path) -> dict[str, tuple[str, str]] | None:
    """``name -> (module, attribute)`` for each ``from .x import name`` of ``init``; None
    if it does anything else (then it is left alone)."""
    exports: dict[str, tuple[str, str]] = {}
    for node in ast.parse(init.read_bytes()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level in (0, 1):
            module = f"{package}.{node.module}" if node.level == 1 else node.module
            if not module.startswith(package + "."):
                return None
            for alias in node.names:
                if alias.name == "*":
                    return None
                exports[alias.asname or alias.name] = (module, alias.name)
        elif isinstance(node, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            continue
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        else:
            return None
    return exports


def install(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Make each of ``packages`` lazy if it is not imported yet and its ``__init__`` only
    re-exports; returns those made lazy."""
    done = []
    for name in packages:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None or not spec.submodule_search_locations:
            continue
        init = Path(spec.origin)
        exports = _exports(name, init)
        if exports is None:
            continue
        module = _LazyPackage(name)
        module.__spec__ = spec
        module.__file__ = spec.origin
        module.__path__ = list(spec.submodule_search_locations)
        module.__package__ = name
        module.__loader__ = spec.loader
        module._exports = exports
        module._init_source = init
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)
        done.append(name)
    return done
