"""How ``harness mutate`` judges one feature run, from the QA report's ``summary.json``:
a scenario that failed on a stack that never deployed (or stopped answering) proves
nothing, whatever step it failed in. The real runs: tests/local_cloud/
test_mutation_deploy_errors.py and test_mutation_subset.py."""

from __future__ import annotations

from typing import Any

import pytest

from harness.mutate.catalogue import Mutant, Patch
from harness.mutate.runner import classify
from harness.reports.model import NOT_DEPLOYED, UNREACHABLE
from harness.reports.plugin import _message
from harness.target import StackNotDeployedError

REFUSAL = "The provided execution role does not have permissions to call ReceiveMessage on SQS"


def _mutant(refused_at_deploy: str = "") -> Mutant:
    return Mutant(
        name="a-mutant",
        promise="a promise",
        tags="api",
        profile="ephemeral",
        patches=(Patch(file="cdk/stacks.py", old="a", new="b"),),
        refused_at_deploy=refused_at_deploy,
    )


def _scenario(
    name: str,
    outcome: str,
    *,
    failed_step: bool = True,
    cause: str = "",
    message: str = "",
    detail: str = "",
) -> dict[str, Any]:
    steps = [{"status": "passed"}, {"status": "failed" if failed_step else "not run"}]
    return {
        "name": name,
        "feature_file": "features/submission.feature",
        "outcome": outcome,
        "steps": steps if outcome == "failed" else [{"status": outcome}],
        "cause": cause,
        "message": message,
        "detail": detail or message,
    }


def _not_deployed(reason: str) -> dict[str, Any]:
    # What the report writes when the first step asked for a stack that did not deploy:
    # that step failed, like a step that caught a broken promise.
    return _scenario(
        "A valid task is accepted and completed",
        "failed",
        cause=NOT_DEPLOYED,
        message=f"The stack did not deploy: {reason}",
        detail=f"E   harness.target.StackNotDeployedError: {reason}",
    )


def test_a_failed_step_on_a_deployed_stack_kills() -> None:
    summary = {
        "scenarios": [
            _scenario("First", "passed"),
            _scenario("Second", "failed", detail="E   AssertionError: HTTP 503, not 200"),
        ]
    }
    verdict = classify(_mutant(), 1, summary, "1 failed, 1 passed")
    assert (verdict.outcome, verdict.scenario) == ("killed", "Second")
    assert verdict.reason == "AssertionError: HTTP 503, not 200"
    assert verdict.scenarios_run == 2


def test_a_stack_that_did_not_deploy_is_an_error_with_its_reason() -> None:
    reason = "DeployError: stack local-TaskApi: resource Queue:\n  visibility timeout refused"
    verdict = classify(_mutant(), 1, {"scenarios": [_not_deployed(reason)]}, "1 failed")
    assert verdict.outcome == "error"
    assert verdict.scenario == "the stack did not deploy"
    assert verdict.reason == (
        "DeployError: stack local-TaskApi: resource Queue: visibility timeout refused"
    )


@pytest.mark.parametrize("code", [1, 2, -1])
def test_a_deployment_failure_is_an_error_whatever_pytest_exited_with(code: int) -> None:
    verdict = classify(_mutant(), code, {"scenarios": [_not_deployed("Boom: no")]}, "")
    assert (verdict.outcome, verdict.scenario) == ("error", "the stack did not deploy")


def test_a_mutant_refused_at_deploy_is_killed_only_by_that_refusal() -> None:
    refused = {"scenarios": [_not_deployed(f"InvalidParameterValueError: {REFUSAL}")]}
    verdict = classify(_mutant(REFUSAL), 1, refused, "")
    assert verdict.outcome == "killed"
    assert verdict.scenario == "the deployment (refused, as AWS refuses it)"
    assert REFUSAL in verdict.reason
    assert verdict.feature == "features/submission.feature"

    other = {"scenarios": [_not_deployed("TemplateError: unsupported resource type")]}
    verdict = classify(_mutant(REFUSAL), 1, other, "")
    assert (verdict.outcome, verdict.scenario) == ("error", "the stack did not deploy")
    assert verdict.reason == "TemplateError: unsupported resource type"


def test_the_refusal_text_in_a_scenario_s_assertion_is_not_a_deployment_refusal() -> None:
    # Deployed, then a step failed quoting the text: an ordinary kill by that scenario.
    summary = {
        "scenarios": [_scenario("Second", "failed", detail=f"E   AssertionError: {REFUSAL}")]
    }
    verdict = classify(_mutant(REFUSAL), 1, summary, "")
    assert (verdict.outcome, verdict.scenario) == ("killed", "Second")


def test_a_stack_that_stopped_answering_or_a_setup_failure_is_an_error() -> None:
    unreachable = _scenario(
        "First", "failed", cause=UNREACHABLE, message="The stack did not answer: refused"
    )
    verdict = classify(_mutant(), 1, {"scenarios": [unreachable]}, "")
    assert (verdict.outcome, verdict.scenario) == ("error", "the stack stopped answering")

    setup = _scenario("First", "failed", failed_step=False, detail="E   KeyError: 'x'")
    verdict = classify(_mutant(), 1, {"scenarios": [setup]}, "")
    assert verdict.outcome == "error"
    assert verdict.scenario.startswith("no step ran")
    assert verdict.reason == "KeyError: 'x'"


def test_survived_and_nothing_ran() -> None:
    assert classify(_mutant(), 0, {"scenarios": [_scenario("A", "passed")]}, "").outcome == (
        "survived"
    )
    verdict = classify(_mutant(), 5, {}, "no tests ran in 0.5s")
    assert (verdict.outcome, verdict.scenario) == ("error", "no scenario ran")


def test_the_report_marks_a_failure_caused_by_a_stack_that_did_not_deploy() -> None:
    def step() -> None:
        # pytest re-raises a session fixture's error as is; a step may also wrap it.
        try:
            raise StackNotDeployedError("InvalidParameterValueError: refused")
        except StackNotDeployedError as error:
            raise RuntimeError("the step could not get its client") from error

    call = pytest.CallInfo.from_call(step, when="call")
    message, cause = _message(call)
    assert message == "The stack did not deploy: InvalidParameterValueError: refused"
    assert cause == NOT_DEPLOYED

    def assertion() -> None:
        raise AssertionError("HTTP 503, not 200")

    message, cause = _message(pytest.CallInfo.from_call(assertion, when="call"))
    assert (message, cause) == ("AssertionError: HTTP 503, not 200", "")
