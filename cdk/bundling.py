"""The Lambda code asset, built without Docker and cached.

One directory holds the ``handlers`` package and its third-party dependencies, installed by
pip for the Lambda platform (CPython 3.12, manylinux2014 x86_64) whatever machine synthesizes.
Both functions use it. Two cache levels under ``build/lambda-assets``:

- ``deps/<hash of requirements>``: the pip install, rerun only when the requirements change;
- ``<hash of requirements + handler sources>``: deps plus handlers, the directory CDK stages.

An unchanged handler therefore rebuilds nothing, and a changed handler only recopies it.
Directories appear by atomic rename, so concurrent synths never see half a build.

Bytecode: ``/var/task`` is read-only on Lambda, so a package shipped without ``.pyc`` files is
compiled from source at every cold start (about 0.3 s of each function's init, see
docs/benchmarks/cold-start.md). When a CPython 3.12 is found on this machine
(:func:`find_lambda_python`), both levels are compiled with it into
``__pycache__/*.cpython-312.pyc`` in ``unchecked-hash`` mode (never compared with the
source: the asset is immutable) with ``/var/task`` as their path; without one the asset
ships sources only, as before, and its hash says which it is.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
HANDLERS_DIR: Final = PROJECT_ROOT / "handlers"
REQUIREMENTS_FILE: Final = HANDLERS_DIR / "requirements.txt"
CACHE_DIR: Final = PROJECT_ROOT / "build" / "lambda-assets"

LAMBDA_PYTHON_VERSION: Final = "3.12"
LAMBDA_PLATFORM: Final = "manylinux2014_x86_64"
# The Lambda Python runtime ships these; bundling them would only shadow its copies.
RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer")
# Bump when the layout of a built asset changes, so old caches are not reused.
_BUNDLE_FORMAT: Final = "2"
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "tests", ".pytest_cache", ".mypy_cache"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo")
_SKIPPED_FILES: Final = frozenset({"requirements.txt"})
# Where the Lambda runtime puts the code: the path compiled into the bytecode (tracebacks).
LAMBDA_TASK_ROOT: Final = "/var/task"
LAMBDA_PYTHON_ENV: Final = "LAMBDA_PYTHON"
"""Names the interpreter that compiles the bundle (a CPython 3.12), or ``none`` to ship
sources only."""
# Where else to look for it: on PATH, and pyenv's versions (the machine image has one).
_PYTHON_CANDIDATES: Final = ("python3.12",)
_PYENV_GLOB: Final = "versions/3.12*/bin/python3.12"

PipRunner = Callable[[Path, Path], None]
"""Installs ``requirements`` (first argument) into the empty directory ``target`` (second)."""


class BundlingError(RuntimeError):
    """Building the Lambda asset failed; the message carries pip's output."""


@dataclass(frozen=True)
class LambdaAsset:
    """A built asset: the directory to hand to ``Code.from_asset`` and its content hash."""

    path: Path
    asset_hash: str


def pip_install(requirements: Path, target: Path) -> None:
    """Install ``requirements`` into ``target`` as Lambda's Python 3.12 on x86_64 needs them."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        LAMBDA_PLATFORM,
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(
            f"pip could not build the Lambda dependencies from {requirements} "
            f"(exit {result.returncode}):\n{result.stderr or result.stdout}"
        )


def _is_lambda_python(candidate: str) -> bool:
    try:
        result = subprocess.run(
            [candidate, "-c", "import sys; print(sys.implementation.name, *sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.split() == [
        "cpython",
        *LAMBDA_PYTHON_VERSION.split("."),
    ]


_found: dict[str, Path | None] = {}


def find_lambda_python() -> Path | None:
    """A CPython of the Lambda runtime's version (3.12), to compile the bundle's bytecode.

    ``$LAMBDA_PYTHON`` if set (``none``: do not compile; anything else must be a 3.12),
    else ``python3.12`` on ``PATH``, else one of pyenv's 3.12 builds; ``None`` when there is
    none. Looked up once per process.
    """
    configured = os.environ.get(LAMBDA_PYTHON_ENV, "").strip()
    if configured.lower() == "none":
        return None
    if configured:
        if not _is_lambda_python(configured):
            raise BundlingError(
                f"${LAMBDA_PYTHON_ENV}={configured} is not a CPython {LAMBDA_PYTHON_VERSION} "
                f"(set it to one, or to 'none' to ship the bundle without bytecode)"
            )
        return Path(configured)
    if "auto" not in _found:
        # pyenv's shims are skipped: each is a shell script around pyenv (0.1-0.6 s a call
        # here), and the interpreters it would pick are among pyenv's versions anyway.
        on_path = [shutil.which(name) for name in _PYTHON_CANDIDATES]
        candidates = [c for c in on_path if c is not None and "/shims/" not in c]
        pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
        candidates += sorted(glob.glob(os.path.join(pyenv_root, _PYENV_GLOB)), reverse=True)
        _found["auto"] = next((Path(c) for c in candidates if _is_lambda_python(c)), None)
    return _found["auto"]


def compile_bytecode(python: Path, root: Path, directory: Path | None = None) -> None:
    """Compile every module under ``directory`` (default: ``root``, the asset's top) with
    ``python`` as Lambda will load it: ``unchecked-hash`` pycs (no source timestamp to
    compare: the code is read-only) recording their path as ``/var/task/<path under
    root>``. Deterministic: the same sources give the same bytes."""
    directory = directory or root
    command = [
        str(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(root),
        "-p",
        LAMBDA_TASK_ROOT,
        str(directory),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    # compileall exits 1 when a file does not compile (a package's Python 2 leftovers or
    # templates, which nothing imports); only a failure to run at all is an error here.
    if result.returncode not in (0, 1) or not any(directory.rglob("*.pyc")):
        raise BundlingError(
            f"{python} could not compile the Lambda bytecode in {directory} "
            f"(exit {result.returncode}):\n{result.stderr or result.stdout}"
        )


def build_lambda_asset(
    *,
    handlers_dir: Path | None = None,
    requirements: Path | None = None,
    cache_dir: Path | None = None,
    pip_runner: PipRunner | None = None,
    lambda_python: Path | Literal["auto"] | None = "auto",
) -> LambdaAsset:
    """Return the asset directory for the current handlers, building only what changed.

    Defaults: this project's ``handlers/``, ``handlers/requirements.txt``,
    ``build/lambda-assets``, :func:`pip_install` and :func:`find_lambda_python` to compile
    the bytecode (``None``: sources only).
    """
    handlers_dir = handlers_dir or HANDLERS_DIR
    requirements = requirements or REQUIREMENTS_FILE
    cache_dir = cache_dir or CACHE_DIR
    pip_runner = pip_runner or pip_install
    python = find_lambda_python() if lambda_python == "auto" else lambda_python
    if not requirements.is_file():
        raise BundlingError(f"{requirements} is missing: it pins the handlers' runtime deps")
    if not handlers_dir.is_dir():
        raise BundlingError(f"{handlers_dir} is missing: it is the Lambda handler package")
    requirements_bytes = requirements.read_bytes()
    bytecode = f"pyc-cp{LAMBDA_PYTHON_VERSION}" if python is not None else "sources-only"
    deps_hash = _digest(
        [
            b"deps",
            _BUNDLE_FORMAT.encode(),
            _target().encode(),
            bytecode.encode(),
            requirements_bytes,
        ]
    )
    sources = sorted(_handler_files(handlers_dir))
    asset_hash = _digest(
        [deps_hash.encode()]
        + [part for rel, path in sources for part in (rel.encode(), path.read_bytes())]
    )
    asset_dir = cache_dir / asset_hash[:24]
    if asset_dir.is_dir():
        return LambdaAsset(asset_dir, asset_hash)

    deps_dir = _build_deps(cache_dir / "deps" / deps_hash[:24], requirements, pip_runner, python)
    with _staging(cache_dir) as staging:
        shutil.copytree(deps_dir, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
        package = staging / handlers_dir.name
        for rel, path in sources:
            destination = package / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        if python is not None:
            compile_bytecode(python, staging, package)
        _publish(staging, asset_dir)
    return LambdaAsset(asset_dir, asset_hash)


def _build_deps(
    deps_dir: Path, requirements: Path, pip_runner: PipRunner, python: Path | None
) -> Path:
    if deps_dir.is_dir():
        return deps_dir
    with _staging(deps_dir.parent) as staging:
        pip_runner(requirements, staging)
        _remove_runtime_provided(staging)
        if python is not None and any(staging.rglob("*.py")):
            compile_bytecode(python, staging)
        _publish(staging, deps_dir)
    return deps_dir


def _remove_runtime_provided(target: Path) -> None:
    for entry in target.iterdir():
        name = entry.name.lower()
        stem = name.split("-", 1)[0] if name.endswith(".dist-info") else name
        if stem in RUNTIME_PROVIDED:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    # Console scripts pip writes for the removed packages (and others) are useless in Lambda.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _handler_files(handlers_dir: Path) -> Iterator[tuple[str, Path]]:
    for directory, dirnames, filenames in os.walk(handlers_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        for filename in filenames:
            if filename.endswith(_SKIPPED_SUFFIXES) or filename in _SKIPPED_FILES:
                continue
            path = Path(directory) / filename
            yield path.relative_to(handlers_dir).as_posix(), path


@contextmanager
def _staging(parent: Path) -> Iterator[Path]:
    """A temporary directory beside its destination; gone afterwards unless published."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".building-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _publish(staging: Path, destination: Path) -> None:
    # mkdtemp creates 0700; Lambda and CDK only need the owner, but keep it readable.
    staging.chmod(0o755)
    try:
        os.rename(staging, destination)
    except OSError:
        # Another process published the same content first: theirs is as good as ours.
        if not destination.is_dir():
            raise


def _link_or_copy(source: str, destination: str) -> None:
    # Hard links make the per-handler copy of the deps nearly free; fall back across devices.
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _target() -> str:
    return f"{LAMBDA_PLATFORM}/cp{LAMBDA_PYTHON_VERSION}"


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
