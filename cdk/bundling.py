"""The Lambda code asset, built without Docker and cached.

One directory holds the ``handlers`` package and its third-party dependencies, installed by
pip for the Lambda platform (CPython 3.12, manylinux2014 x86_64) whatever machine synthesizes.
Both functions use it. Two cache levels under ``build/lambda-assets``:

- ``deps/<hash of requirements>``: the pip install, rerun only when the requirements change;
- ``<hash of requirements + handler sources>``: deps plus handlers, the directory CDK stages.

An unchanged handler therefore rebuilds nothing, and a changed handler only recopies it.
Directories appear by atomic rename, so concurrent synths never see half a build.
"""

from __future__ import annotations

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
from typing import Final

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
HANDLERS_DIR: Final = PROJECT_ROOT / "handlers"
REQUIREMENTS_FILE: Final = HANDLERS_DIR / "requirements.txt"
CACHE_DIR: Final = PROJECT_ROOT / "build" / "lambda-assets"

LAMBDA_PYTHON_VERSION: Final = "3.12"
LAMBDA_PLATFORM: Final = "manylinux2014_x86_64"
# The Lambda Python runtime ships these; bundling them would only shadow its copies.
RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer")
# Bump when the layout of a built asset changes, so old caches are not reused.
_BUNDLE_FORMAT: Final = "1"
_SKIPPED_DIRS: Final = frozenset({"__pycache__", "tests", ".pytest_cache", ".mypy_cache"})
_SKIPPED_SUFFIXES: Final = (".pyc", ".pyo")
_SKIPPED_FILES: Final = frozenset({"requirements.txt"})

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


def build_lambda_asset(
    *,
    handlers_dir: Path | None = None,
    requirements: Path | None = None,
    cache_dir: Path | None = None,
    pip_runner: PipRunner | None = None,
) -> LambdaAsset:
    """Return the asset directory for the current handlers, building only what changed.

    Defaults: this project's ``handlers/``, ``handlers/requirements.txt``,
    ``build/lambda-assets`` and :func:`pip_install`.
    """
    handlers_dir = handlers_dir or HANDLERS_DIR
    requirements = requirements or REQUIREMENTS_FILE
    cache_dir = cache_dir or CACHE_DIR
    pip_runner = pip_runner or pip_install
    if not requirements.is_file():
        raise BundlingError(f"{requirements} is missing: it pins the handlers' runtime deps")
    if not handlers_dir.is_dir():
        raise BundlingError(f"{handlers_dir} is missing: it is the Lambda handler package")
    requirements_bytes = requirements.read_bytes()
    deps_hash = _digest([b"deps", _BUNDLE_FORMAT.encode(), _target().encode(), requirements_bytes])
    sources = sorted(_handler_files(handlers_dir))
    asset_hash = _digest(
        [deps_hash.encode()]
        + [part for rel, path in sources for part in (rel.encode(), path.read_bytes())]
    )
    asset_dir = cache_dir / asset_hash[:24]
    if asset_dir.is_dir():
        return LambdaAsset(asset_dir, asset_hash)

    deps_dir = _build_deps(cache_dir / "deps" / deps_hash[:24], requirements, pip_runner)
    with _staging(cache_dir) as staging:
        shutil.copytree(deps_dir, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
        package = staging / handlers_dir.name
        for rel, path in sources:
            destination = package / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        _publish(staging, asset_dir)
    return LambdaAsset(asset_dir, asset_hash)


def _build_deps(deps_dir: Path, requirements: Path, pip_runner: PipRunner) -> Path:
    if deps_dir.is_dir():
        return deps_dir
    with _staging(deps_dir.parent) as staging:
        pip_runner(requirements, staging)
        _remove_runtime_provided(staging)
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
