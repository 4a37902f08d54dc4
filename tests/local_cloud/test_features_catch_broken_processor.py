"""The ordering features must fail, clearly, against a processor that breaks ordering.

The stack is the real synthesized assembly with one change to the processor's asset: it
handles every batch newest first. A feature suite that still passed would prove nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cdk.synth import synthesize
from harness.local.cloud import LocalStack
from harness.node import env_with_node

ROOT = Path(__file__).resolve().parents[2]
BROKEN_PROCESSOR = '''

_correct_handler = handler


def handler(event, context):  # type: ignore[no-untyped-def]  # deliberately broken
    """Process each batch newest first: the bug the ordering features must catch."""
    event = {**event, "Records": list(reversed(event.get("Records", [])))}
    return _correct_handler(event, context)
'''


def _processor_asset(assembly: Path) -> Path:
    """The asset directory of the function whose handler is the processor."""
    for template in assembly.glob("*.template.json"):
        resources = json.loads(template.read_text())["Resources"]
        for resource in resources.values():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::Lambda::Function" and props.get("Handler") == (
                "handlers.processor.handler"
            ):
                asset = resource.get("Metadata", {}).get("aws:asset:path")
                if asset:
                    return assembly / str(asset)
                key = props["Code"]["S3Key"].removesuffix(".zip")
                return assembly / f"asset.{key}"
    raise AssertionError(f"no processor function in {assembly}")


@pytest.mark.slow
def test_ordering_features_fail_against_a_processor_that_reorders(tmp_path: Path) -> None:
    assembly = synthesize("ephemeral", tmp_path / "cdk.out", {"stack_prefix": "broken"})
    broken = tmp_path / "broken.out"
    shutil.copytree(assembly, broken, symlinks=True)
    asset = _processor_asset(broken)
    processor = asset / "handlers" / "processor.py"
    # Break a copy, never the synthesized asset the cache may share.
    processor.unlink()
    processor.write_text((ROOT / "handlers" / "processor.py").read_text() + BROKEN_PROCESSOR)

    with LocalStack(work_dir=tmp_path / "stack", assembly_dir=broken) as stack:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "features",
                "-p",
                "no:cacheprovider",
                "-q",
                "--outputs",
                str(stack.outputs_file),
                "--report-dir",
                str(tmp_path / "report"),
                "-k",
                "submitted_in_sequence or order_holds_across_batches",
            ],
            cwd=ROOT,
            env=env_with_node(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "tasks were not processed in submission order" in output, output[-3000:]
