"""The Lambda asset: built for Lambda without Docker, and cached."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def _build(
    project: tuple[Path, Path, Path], pip: FakePip, lambda_python: Path | None = None
) -> LambdaAsset:
    """Sources only unless ``lambda_python`` is given (bytecode has tests of its own)."""
    handlers, requirements, cache = project
    return build_lambda_asset(
        handlers_dir=handlers,
        requirements=requirements,
        cache_dir=cache,
        pip_runner=pip,
        lambda_python=lambda_python,
    )


LAMBDA_PYTHON = bundling.find_lambda_python()
needs_lambda_python = pytest.mark.skipif(
    LAMBDA_PYTHON is None, reason="no CPython 3.12 on this machine to compile the bytecode with"
)


def _pyc_facts(python: Path, pyc: Path) -> tuple[int, str]:
    """The pyc's flags word (1: hash-based, unchecked) and the path its code records."""
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    filename = subprocess.run(
        [str(python), "-c", "import marshal, sys; "
         "print(marshal.loads(open(sys.argv[1], 'rb').read()[16:]).co_filename)", str(pyc)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return flags, filename


@needs_lambda_python
def test_bytecode_is_compiled_for_lambda_unchecked_under_var_task(
    project: tuple[Path, Path, Path],
) -> None:
    assert LAMBDA_PYTHON is not None
    asset = _build(project, FakePip(), LAMBDA_PYTHON)
    handler_pyc = asset.path / "handlers" / "__pycache__" / "api.cpython-312.pyc"
    dep_pyc = asset.path / "pydantic" / "__pycache__" / "__init__.cpython-312.pyc"
    assert handler_pyc.is_file()
    assert dep_pyc.is_file()
    assert _pyc_facts(LAMBDA_PYTHON, handler_pyc) == (1, "/var/task/handlers/api.py")
    assert _pyc_facts(LAMBDA_PYTHON, dep_pyc) == (1, "/var/task/pydantic/__init__.py")
    # Built again from scratch elsewhere: the same bytes, so the asset stays reproducible.
    handlers, requirements, cache = project
    again = build_lambda_asset(
        handlers_dir=handlers,
        requirements=requirements,
        cache_dir=cache.parent / "other-cache",
        pip_runner=FakePip(),
        lambda_python=LAMBDA_PYTHON,
    )
    assert (again.path / "handlers/__pycache__/api.cpython-312.pyc").read_bytes() == (
        handler_pyc.read_bytes()
    )
    sources_only = _build(project, FakePip(), None)
    assert sources_only.asset_hash != asset.asset_hash, "the hash must say which it is"
    assert not list(sources_only.path.rglob("*.pyc"))


def test_lambda_python_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bundling.LAMBDA_PYTHON_ENV, "none")
    assert bundling.find_lambda_python() is None
    monkeypatch.setenv(bundling.LAMBDA_PYTHON_ENV, sys.executable)  # the dev venv's 3.11
    with pytest.raises(BundlingError, match=r"is not a CPython 3\.12"):
        bundling.find_lambda_python()


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
    compiled = sorted({p.name.split(".", 1)[1] for p in root.rglob("*.pyc")})
    if LAMBDA_PYTHON is None:  # sources only: every cold start compiles them
        assert compiled == []
    else:
        assert compiled == ["cpython-312.pyc"]
        assert (root / "handlers" / "__pycache__" / "api.cpython-312.pyc").is_file()
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
