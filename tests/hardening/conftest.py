"""Fixtures for the hardening tests: one synthesis per session, one local stack per module.

Synthesis (~10 s) is shared; each module deploys the assembly on its own local stack
(~5 s), so what one module leaves behind (poison in the DLQ, fuzzed tasks) cannot
change what another module sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.local_stack.cloud import LOCAL_STACK_PREFIX, LocalDeployment
from harness.target import Target


@pytest.fixture(scope="session")
def hardening_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ephemeral profile synthesized once for every hardening module."""
    from cdk.synth import synthesize

    outdir = tmp_path_factory.mktemp("hardening-synth") / "cdk.out"
    return Path(synthesize("ephemeral", outdir, {"stack_prefix": LOCAL_STACK_PREFIX}))


@pytest.fixture(scope="module")
def local_stack(
    hardening_assembly: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalDeployment]:
    """A local stack of the module's own, stopped when the module's tests are done."""
    work_dir = tmp_path_factory.mktemp("hardening-stack")
    with LocalDeployment(work_dir=work_dir, assembly_dir=hardening_assembly) as stack:
        yield stack


@pytest.fixture(scope="module")
def target(local_stack: LocalDeployment) -> Target:
    """The module's local stack as a harness target (drivers take it)."""
    return Target.from_outputs_file(local_stack.outputs_file, "local")
