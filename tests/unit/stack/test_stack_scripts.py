"""The CI entry points in ``scripts/`` and the example GitHub Actions workflow."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import PROJECT_ROOT, Cli

SCRIPTS = PROJECT_ROOT / "scripts"
WORKFLOW = SCRIPTS / "github-actions-example.yml"
BOUND_S = 120


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    """The example workflow, parsed."""
    document: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def _step(job: dict[str, Any], needle: str) -> dict[str, Any]:
    matches = [s for s in _steps(job) if needle in s.get("run", "") or needle in s.get("uses", "")]
    assert len(matches) == 1, f"expected one step with {needle!r}, found {len(matches)}"
    return matches[0]


def test_workflow_triggers_and_jobs(workflow: dict[str, Any]) -> None:
    assert {"pull_request", "schedule"} <= set(workflow["on"])
    assert workflow["on"]["schedule"][0]["cron"]
    assert set(workflow["jobs"]) == {"verify-aws", "reap"}


@pytest.mark.parametrize("job_name", ["verify-aws", "reap"])
def test_jobs_assume_a_role_through_oidc(workflow: dict[str, Any], job_name: str) -> None:
    job = workflow["jobs"][job_name]
    assert job["permissions"]["id-token"] == "write"
    credentials = _step(job, "aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"].startswith("${{ vars.")
    assert "aws-access-key-id" not in credentials["with"], "OIDC, not stored keys"


def test_verify_job_deploys_tests_uploads_and_always_tears_down(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["verify-aws"]
    steps = _steps(job)
    _step(job, "actions/setup-python@")
    assert "make install" in _step(job, "make install")["run"]
    install_cdk = _step(job, "harness stack install-cdk")
    deploy = _step(job, "scripts/ci_deploy.sh")
    assert deploy["id"] == "deploy"
    features = _step(job, "pytest features --target aws")
    assert "--outputs" in features["run"]
    assert "--report-dir reports/features" in features["run"]
    upload = _step(job, "actions/upload-artifact@")
    assert upload["if"] == "always()"
    assert upload["with"]["path"].startswith("reports/features")
    load = _step(job, "harness load --scenario api_ingest --shape smoke --target aws")
    assert "--outputs" in load["run"]
    teardown = _step(job, "scripts/ci_teardown.sh")
    assert teardown["if"] == "always()"
    assert "steps.deploy.outputs.stack-prefix" in teardown["run"]
    assert steps[-1] is teardown, "teardown is the last step"
    assert (
        steps.index(install_cdk)
        < steps.index(deploy)
        < steps.index(features)
        < steps.index(load)
        < steps.index(teardown)
    )


def test_reaper_runs_on_schedule_one_at_a_time(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["reap"]
    assert "schedule" in job["if"]
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["concurrency"]["group"]
    _step(job, "scripts/ci_reap.sh")


def test_scripts_the_workflow_runs_exist_and_are_executable(workflow: dict[str, Any]) -> None:
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    referenced = {word for run in runs for word in run.split() if word.startswith("scripts/")}
    assert referenced == {"scripts/ci_deploy.sh", "scripts/ci_teardown.sh", "scripts/ci_reap.sh"}
    for script in referenced:
        path = PROJECT_ROOT / script
        assert os.access(path, os.X_OK), f"{script} must be executable"
        subprocess.run(["bash", "-n", str(path)], check=True, timeout=BOUND_S)


def _script(cli: Cli, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        env={**cli.env, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        check=False,
    )


def test_scripts_deploy_teardown_and_reap_end_to_end(cli: Cli, tmp_path: Path) -> None:
    ci = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_REF": "refs/pull/9/merge"}
    stacks = {"ci-pr9-4242-1-Queue", "ci-pr9-4242-1-Api", "ci-pr9-4242-1-Monitoring"}
    github_output = tmp_path / "github-output"
    deployed = _script(
        cli,
        "ci_deploy.sh",
        GITHUB_OUTPUT=str(github_output),
        OUTPUTS_FILE=str(tmp_path / "out.json"),
        **ci,
    )
    assert deployed.returncode == 0, deployed.stderr
    assert stacks <= cli.stack_names()
    assert "stack-prefix=ci-pr9-4242-1" in github_output.read_text()
    assert (tmp_path / "out.json").exists()

    reaped = _script(cli, "ci_reap.sh", "--dry-run")
    assert reaped.returncode == 0, reaped.stderr
    assert "ci-pr9-4242-1-Queue" in reaped.stdout
    assert "(dry run: nothing deleted)" in reaped.stdout

    # No argument: the teardown step derives the same name from the same run.
    torn = _script(cli, "ci_teardown.sh", "", "--poll-interval", "0.05", **ci)
    assert torn.returncode == 0, torn.stderr
    assert not stacks & cli.stack_names()


def test_teardown_outside_ci_needs_a_name(cli: Cli) -> None:
    result = _script(cli, "ci_teardown.sh")
    assert result.returncode == 2
    assert "give the stack prefix" in result.stderr
