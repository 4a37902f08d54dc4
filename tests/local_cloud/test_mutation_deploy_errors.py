"""A mutant whose stack does not synthesize or deploy is an error, never a kill: through
the real runner, synthesis and local stack. Only a mutant AWS refuses to deploy, refused
with the text it declares (``refused_at_deploy``), is killed by its deployment.

The local stack is deployed when the first step needs it, so without the report's
``stack not deployed`` cause such a failure looked like a failed step: a kill
(docs/mutation.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.mutate.catalogue import load_catalogue, select
from harness.mutate.cli import DEFAULT_CATALOGUE, ROOT, load_checked
from harness.mutate.runner import MutationRunner, describe, run_catalogue

BROKEN = Path(__file__).with_name("mutants_that_do_not_deploy.toml")
REFUSED = "processor-role-cannot-consume-task-queue"


@pytest.mark.slow
def test_a_stack_that_does_not_deploy_is_an_error_unless_aws_refuses_it_so(
    tmp_path: Path,
) -> None:
    broken = load_catalogue(BROKEN)
    for mutant in broken:
        mutant.mutated(ROOT)  # each still applies: else this test proves nothing
    refused = select(load_checked(DEFAULT_CATALOGUE), [REFUSED])
    lines: list[str] = []
    runner = MutationRunner(ROOT, tmp_path, on_progress=lines.append, run_timeout_s=240)

    results = {r.name: r for r in run_catalogue([*broken, *refused], runner)}
    said = {name: describe(result) for name, result in results.items()}

    in_config = results["processor-outlives-visibility-in-config"]
    assert in_config.outcome == "error", (in_config, lines)
    assert in_config.scenario == "the stack did not build", in_config
    assert "visibility_timeout (4 s) must be >= processor_timeout (5 s)" in in_config.reason

    at_deploy = results["processor-outlives-visibility-at-deploy"]
    assert at_deploy.outcome == "error", (at_deploy, lines)
    assert at_deploy.scenario == "the stack did not deploy", at_deploy
    assert (
        "Queue visibility timeout: 4 seconds is less than Function timeout: 5 seconds"
        in at_deploy.reason
    ), at_deploy
    # What the terminal shows: the resource the local cloud refused, and why.
    line = said["processor-outlives-visibility-at-deploy"]
    assert line.startswith("    ERROR after "), line
    assert ": the stack did not deploy: DeployError: stack local-Queue, resource " in line
    assert (
        "(EventSourceMapping): the local cloud refused it: InvalidParameterValueError: "
        "Queue visibility timeout: 4 seconds is less than Function timeout: 5 seconds"
    ) in line

    kept = results[REFUSED]
    assert kept.outcome == "killed", (kept, lines)
    assert kept.scenario == "the deployment (refused, as AWS refuses it)", kept
    assert refused[0].refused_at_deploy in kept.reason, kept
    assert said[REFUSED].startswith("    KILLED in "), said[REFUSED]
    assert refused[0].refused_at_deploy in said[REFUSED]
