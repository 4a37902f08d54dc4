"""Synthesize the CDK app in a subprocess, as the CDK CLI does, without the CLI.

The local stack and the CI commands call :func:`synthesize`; the result is a cloud assembly
directory: ``manifest.json`` (authoritative list of stacks and their files), one
``<stack>.template.json`` and ``<stack>.assets.json`` per stack, and the staged Lambda code
directory ``asset.<hash>`` that each asset manifest's ``source.path`` names (relative to the
assembly directory).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cdk.node import env_with_node

PROJECT_ROOT: Final = Path(__file__).resolve().parents[1]
_STALE_PATTERNS: Final = (
    "manifest.json",
    "tree.json",
    "*.template.json",
    "*.assets.json",
    "*.metadata.json",
    "validation-report.json",
    "cdk.out",
)


class SynthError(RuntimeError):
    """The CDK app failed to synthesize; the message carries its stderr."""


def synthesize(
    profile: str,
    outdir: Path,
    context: Mapping[str, str] | None = None,
    *,
    validate: bool = False,
    timeout: float = 600.0,
    project_root: Path = PROJECT_ROOT,
) -> Path:
    """Run ``python -m cdk.app`` for ``profile`` into ``outdir`` and return that directory.

    ``context`` is CDK context, as ``-c key=value`` would give it (e.g. ``{"stack_prefix":
    "local"}``). The first synth on a machine also builds the Lambda dependencies with pip
    (cached under ``build/lambda-assets``). Needs no AWS credentials and no CDK CLI.
    CDK's built-in CloudFormation validation (schema and CDK's default rules) is off unless
    ``validate=True``: it costs about 4 s of CPU, changes nothing in the output, and already
    runs on both profiles in ``tests/infra`` and in every ``cdk synth``/``cdk deploy``.
    ``project_root`` is the tree whose ``cdk/`` app runs (``python -m`` imports it from there).
    """
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    # Files of an earlier synth (another prefix, say) must not pass for this one's; staged
    # asset directories stay, so an unchanged asset is not copied again.
    for pattern in _STALE_PATTERNS:
        for stale in outdir.glob(pattern):
            stale.unlink()
    env = env_with_node()
    env["CDK_OUTDIR"] = str(outdir)
    env["CDK_CONTEXT_JSON"] = json.dumps({**(context or {}), "profile": profile})
    env["CDK_VALIDATION"] = "true" if validate else "false"  # aws-cdk-lib's switch for it
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cdk.app"],
            cwd=project_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise SynthError(f"CDK synth ({profile}) did not finish within {timeout}s") from error
    if result.returncode != 0:
        raise SynthError(
            f"CDK synth ({profile}, context {dict(context or {})}) failed with exit code "
            f"{result.returncode}:\n{result.stderr.strip() or result.stdout.strip()}"
        )
    if not (outdir / "manifest.json").is_file():
        raise SynthError(f"CDK synth ({profile}) wrote no manifest.json into {outdir}")
    return outdir
