"""The Lambda asset: built for Lambda without Docker, and cached."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

import cdk.bundling as bundling
from cdk.bundling import BundlingError, LambdaAsset, build_lambda_asset


class FakePip:
    """Counts installs and writes what a real one would, including runtime-provided packages."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, Path]] = []

    def __call__(self, requirements: Path, target: Path) -> None:
        self.calls.append((requirements, target))
        for package in ("pydantic", "boto3", "botocore", "s3transfer"):
            (target / package).mkdir()
            (target / package / "__init__.py").write_text(f"# {package}\n")
        for dist in (
            "pydantic-2.14.3.dist-info",
            "boto3-1.40.0.dist-info",
            "botocore-1.40.0.dist-info",
        ):
            (target / dist).mkdir()
        (target / "bin").mkdir()
        (target / "bin" / "some-script").write_text("#!/bin/sh\n")


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path, Path]:
    handlers = tmp_path / "handlers"
    (handlers / "domain").mkdir(parents=True)
    (handlers / "__init__.py").write_text("")
    (handlers / "api.py").write_text("def handler(event, context):\n    return {}\n")
    (handlers / "domain" / "__init__.py").write_text("")
    (handlers / "__pycache__").mkdir()
    (handlers / "__pycache__" / "api.cpython-312.pyc").write_bytes(b"\0")
    (handlers / "tests").mkdir()
    (handlers / "tests" / "test_api.py").write_text("")
    (handlers / "stray.pyc").write_bytes(b"\0")
    requirements = handlers / "requirements.txt"
    requirements.write_text("pydantic==2.14.3\n")
    return handlers, requirements, tmp_path / "cache"


def _build(project: tuple[Path, Path, Path], pip: FakePip) -> LambdaAsset:
    handlers, requirements, cache = project
    return build_lambda_asset(
        handlers_dir=handlers, requirements=requirements, cache_dir=cache, pip_runner=pip
    )


def test_asset_holds_handlers_and_deps_without_runtime_packages(
    project: tuple[Path, Path, Path],
) -> None:
    asset = _build(project, FakePip())
    files = sorted(
        p.relative_to(asset.path).as_posix() for p in asset.path.rglob("*") if p.is_file()
    )
    assert files == [
        "handlers/__init__.py",
        "handlers/api.py",
        "handlers/domain/__init__.py",
        "pydantic/__init__.py",
    ]
    assert (asset.path / "pydantic-2.14.3.dist-info").is_dir()
    assert len(asset.asset_hash) == 64


def test_unchanged_handlers_do_not_rebuild(project: tuple[Path, Path, Path]) -> None:
    pip = FakePip()
    first = _build(project, pip)
    marker = first.path / "handlers" / "api.py"
    mtime = marker.stat().st_mtime_ns
    second = _build(project, pip)
    assert len(pip.calls) == 1
    assert second == first
    assert marker.stat().st_mtime_ns == mtime, "the cached asset directory was rewritten"


def test_changed_handler_recopies_sources_but_reuses_deps(project: tuple[Path, Path, Path]) -> None:
    handlers, _, _ = project
    pip = FakePip()
    first = _build(project, pip)
    (handlers / "api.py").write_text("def handler(event, context):\n    return {'v': 2}\n")
    second = _build(project, pip)
    assert len(pip.calls) == 1, "deps are cached by the requirements hash alone"
    assert second.path != first.path
    assert second.asset_hash != first.asset_hash
    assert "'v': 2" in (second.path / "handlers" / "api.py").read_text()
    assert "'v'" not in (first.path / "handlers" / "api.py").read_text()


def test_changed_requirements_reinstall(project: tuple[Path, Path, Path]) -> None:
    _, requirements, _ = project
    pip = FakePip()
    first = _build(project, pip)
    requirements.write_text("pydantic==2.14.3\nwrapt==2.5.2\n")
    second = _build(project, pip)
    assert len(pip.calls) == 2
    assert second.asset_hash != first.asset_hash


def test_ignored_files_do_not_change_the_hash(project: tuple[Path, Path, Path]) -> None:
    handlers, _, _ = project
    pip = FakePip()
    first = _build(project, pip)
    (handlers / "__pycache__" / "other.cpython-312.pyc").write_bytes(b"\1")
    (handlers / "tests" / "test_more.py").write_text("x = 1\n")
    assert _build(project, pip) == first


def test_failed_install_leaves_no_cache_entry(project: tuple[Path, Path, Path]) -> None:
    _, _, cache = project

    def failing(_requirements: Path, target: Path) -> None:
        (target / "half").mkdir()
        raise BundlingError("pip said no")

    with pytest.raises(BundlingError, match="pip said no"):
        _build(project, failing)  # type: ignore[arg-type]
    leftovers = [p for p in cache.rglob("*") if p.is_dir()]
    assert leftovers == [cache / "deps"], "no half-built directory may remain"


def test_pip_error_carries_pips_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(command: list[str], **_kwargs: object) -> subprocess.CompletedProcess[str]:
        assert command[3:] == [
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            "manylinux2014_x86_64",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--target",
            str(tmp_path),
            "-r",
            "reqs.txt",
        ]
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(BundlingError, match="No matching distribution"):
        bundling.pip_install(Path("reqs.txt"), tmp_path)


def test_missing_requirements_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundlingError, match=r"requirements.txt is missing"):
        build_lambda_asset(
            handlers_dir=tmp_path, requirements=tmp_path / "requirements.txt", cache_dir=tmp_path
        )


def test_real_asset_is_built_for_lambda_python_312(lambda_asset: LambdaAsset) -> None:
    root = lambda_asset.path
    assert (root / "handlers" / "__init__.py").is_file()
    assert not list(root.rglob("__pycache__"))
    for provided in ("boto3", "botocore", "s3transfer"):
        assert not (root / provided).exists(), f"{provided} ships with the Lambda runtime"
    extensions = [p.name for p in (root / "pydantic_core").glob("*.so")]
    assert extensions, "pydantic_core's compiled extension is missing"
    assert all("cpython-312-x86_64-linux-gnu" in name for name in extensions), extensions
    assert (root / "aws_lambda_powertools").is_dir()


def test_handlers_are_self_contained() -> None:
    """The asset holds only ``handlers/`` and its requirements: no handler may import the
    project's other packages (they are not in the Lambda package)."""
    offenders = []
    for path in bundling.HANDLERS_DIR.rglob("*.py"):
        if "tests" in path.relative_to(bundling.HANDLERS_DIR).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in {"cdk", "harness"}]
    assert offenders == []


@pytest.mark.parametrize("entry_point", ["handlers.api.handler", "handlers.processor.handler"])
def test_handler_entry_points_exist_in_the_asset(
    lambda_asset: LambdaAsset, entry_point: str
) -> None:
    """The templates name these handlers; the asset must define them at module level."""
    from cdk.stacks import API_HANDLER, PROCESSOR_HANDLER

    assert entry_point in {API_HANDLER, PROCESSOR_HANDLER}
    *package, module, function = entry_point.split(".")
    source = lambda_asset.path.joinpath(*package, f"{module}.py")
    assert source.is_file(), f"{source} is missing from the asset"
    tree = ast.parse(source.read_text())
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert function in defined, f"{entry_point}: no module-level {function!r} in {source}"
