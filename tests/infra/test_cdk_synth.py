"""Synthesis as the local stack and the CDK CLI run it: in a subprocess, offline."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cdk.node import env_with_node
from cdk.synth import PROJECT_ROOT, SynthError, synthesize


@pytest.fixture(scope="module")
def local_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the local stack does: ``synthesize("ephemeral", outdir, {"stack_prefix": "local"})``."""
    outdir = tmp_path_factory.mktemp("assembly")
    (outdir / "old-Queue.template.json").write_text("{}")  # an earlier synth's leftovers
    started = time.monotonic()
    result = synthesize("ephemeral", outdir, {"stack_prefix": "local"})
    print(f"synthesize('ephemeral') took {time.monotonic() - started:.1f} s")
    assert result == outdir.resolve()
    return outdir


def test_synthesize_writes_an_assembly_the_local_stack_can_read(local_assembly: Path) -> None:
    outdir = local_assembly
    assert not (outdir / "old-Queue.template.json").exists()
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        name: artifact
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert sorted(stacks) == ["local-Api", "local-Monitoring", "local-Queue"]
    for name, artifact in stacks.items():
        template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
        assert template["Outputs"]
        assert artifact["properties"]["tags"]["ephemeral"] == "true"
        assets = json.loads((outdir / f"{name}.assets.json").read_text())
        for asset in assets["files"].values():
            source = outdir / asset["source"]["path"]
            if asset["source"].get("packaging") == "zip":
                assert (source / "handlers" / "__init__.py").is_file()
            else:
                assert source.is_file()
    queue_template = json.loads((outdir / "local-Queue.template.json").read_text())
    assert queue_template["Outputs"]["Profile"]["Value"] == "ephemeral"


@pytest.mark.parametrize(
    ("profile", "context", "message"),
    [
        (
            "ephemeral",
            {"stack_prefix": "9-lives"},
            "stack prefix '9-lives' must start with a letter",
        ),
        ("qa", {}, "unknown profile 'qa'; choose one of production, ephemeral"),
        ("production", {"visibility_timeout": "30"}, "production values are fixed by the spec"),
    ],
)
def test_synthesize_reports_the_apps_error(
    tmp_path: Path, profile: str, context: dict[str, str], message: str
) -> None:
    with pytest.raises(SynthError) as raised:
        synthesize(profile, tmp_path, context)
    text = str(raised.value)
    assert "failed with exit code 2" in text
    assert "error: " in text
    assert message in text


def test_cli_is_pinned_exactly() -> None:
    package = json.loads((PROJECT_ROOT / "package.json").read_text())
    version = package["devDependencies"]["aws-cdk"]
    assert version.replace(".", "").isdigit(), f"aws-cdk must be pinned exactly, got {version!r}"
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == version
    cdk_json = json.loads((PROJECT_ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == ".venv/bin/python -m cdk.app"


CLI = PROJECT_ROOT / "node_modules" / "aws-cdk" / "bin" / "cdk"


@pytest.mark.skipif(not CLI.is_file(), reason="pinned CDK CLI not installed (run `npm ci`)")
def test_pinned_cli_reads_the_assembly(local_assembly: Path) -> None:
    """The pinned CLI accepts what aws-cdk-lib writes (cloud-assembly schema version)."""
    node = shutil.which("node", path=env_with_node()["PATH"])
    assert node is not None
    result = subprocess.run(
        [node, str(CLI), "synth", "--no-notices", "--app", str(local_assembly), "local-Api"],
        cwd=local_assembly,
        env=env_with_node(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "AWS::ApiGateway::RestApi" in result.stdout
