"""``harness stack deploy`` / ``destroy`` end to end: stand-in cdk + a moto server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdk.contract import REQUIRED_OUTPUTS, flatten
from harness.cli import main
from harness.stack import EXIT_FAILED, EXIT_OK
from harness.stack.cloud import Cloud
from harness.stack.destroy import log_group_matcher
from harness.stack.outputs import StackOutputsError, write_outputs_for_prefix

from .conftest import CfnFaults, Cli

PREFIX = "ci-test-1-1"
STACKS = {f"{PREFIX}-Queue", f"{PREFIX}-Api", f"{PREFIX}-Monitoring"}
FAST = ["--poll-interval", "0.02", "--timeout", "20"]


def _deploy(tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "stack",
            "deploy",
            "--ephemeral",
            "--name",
            PREFIX,
            "--outputs",
            str(tmp_path / "out.json"),
            *extra,
        ]
    )


def test_deploy_runs_cdk_with_the_ephemeral_context_and_writes_outputs(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    github_output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    assert (
        _deploy(
            tmp_path,
            "--ttl-hours",
            "2",
            "--owner",
            "qa@example",
            "--context",
            "visibility_timeout=8",
        )
        == EXIT_OK
    )

    (call,) = cli.calls()
    argv = call["argv"]
    assert argv[:8] == [
        "deploy",
        "--all",
        "--require-approval",
        "never",
        "--progress",
        "events",
        "--outputs-file",
        str(tmp_path / "out.json"),
    ]
    context = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-c")
    assert context["profile"] == "ephemeral"
    assert context["stack_prefix"] == PREFIX
    assert context["owner"] == "qa@example"
    assert context["visibility_timeout"] == "8"
    assert "ttl_hours" not in context, "the app takes expires_at or ttl_hours, never both"

    cloud = Cloud()
    for name in STACKS:
        stack = cloud.get_stack(name)
        assert stack is not None
        assert stack.is_ephemeral
        assert stack.tags["owner"] == "qa@example"
        assert stack.tags["expires-at"] == context["expires_at"]
        hours = (stack.expires_at() - stack.created).total_seconds() / 3600  # type: ignore[operator]
        assert 1.9 < hours <= 2.0
    outputs = flatten(json.loads((tmp_path / "out.json").read_text()))
    assert set(REQUIRED_OUTPUTS) <= set(outputs)
    assert (
        github_output.read_text()
        == f"stack-prefix={PREFIX}\noutputs-file={tmp_path / 'out.json'}\n"
    )


def test_deploy_derives_the_name_from_the_ci_context(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_RUN_ID", "777")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/12/merge")
    assert (
        main(["stack", "deploy", "--ephemeral", "--outputs", str(tmp_path / "o.json")]) == EXIT_OK
    )
    assert {
        "ci-pr12-777-1-Queue",
        "ci-pr12-777-1-Api",
        "ci-pr12-777-1-Monitoring",
    } <= cli.stack_names()


def test_deploy_failure_prints_the_failed_resources(
    cli: Cli, tmp_path: Path, cfn_faults: CfnFaults, capfd: pytest.CaptureFixture[str]
) -> None:
    cfn_faults.fail_create(
        f"{PREFIX}-Api",
        "ApiHandler",
        "AWS::Lambda::Function",
        "Resource handler returned message: 'Code too large'",
    )
    assert _deploy(tmp_path) == EXIT_FAILED
    err = capfd.readouterr().err
    assert f"cdk deploy failed (exit 1) for stack prefix {PREFIX}" in err
    failed_line = next(line for line in err.splitlines() if "ApiHandler" in line)
    assert f"{PREFIX}-Api" in failed_line
    assert "AWS::Lambda::Function" in failed_line
    assert "CREATE_FAILED: Resource handler returned message: 'Code too large'" in failed_line
    assert "Queue" not in err.split("failed resources")[1], (
        "only the failing stack's events are shown"
    )


def test_deploy_failure_before_cloudformation_says_so(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_CDK_FAIL", "deploy")
    (tmp_path / "out.json").write_text('{"stale": {"ApiUrl": "http://old"}}')
    assert _deploy(tmp_path) == EXIT_FAILED
    assert "the failure came before CloudFormation" in capfd.readouterr().err
    assert not (tmp_path / "out.json").exists(), (
        "a stale outputs file must not survive a failed deploy"
    )


def test_destroy_waits_until_the_stacks_are_gone_and_cleans_tagged_log_groups(
    cli: Cli, tmp_path: Path, cfn_faults: CfnFaults, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _deploy(tmp_path) == EXIT_OK
    logs = cli.logs()
    logs.create_log_group(
        logGroupName=f"/aws/lambda/{PREFIX}-Api-Handler", tags={"ephemeral": "true"}
    )
    logs.create_log_group(logGroupName=f"/aws/lambda/{PREFIX}-Queue-Untagged")
    logs.create_log_group(
        logGroupName=f"/aws/lambda/{PREFIX}-Api-Foreign",
        tags={"ephemeral": "true", "aws:cloudformation:stack-name": "other-Api"},
    )
    logs.create_log_group(logGroupName=f"/aws/lambda/{PREFIX}0-Api", tags={"ephemeral": "true"})
    # CloudFormation takes a few polls to delete the Queue stack.
    cfn_faults.slow_delete(f"{PREFIX}-Queue", polls=4)
    capfd.readouterr()

    assert main(["stack", "destroy", PREFIX, *FAST]) == EXIT_OK
    out = capfd.readouterr().out
    assert cli.commands() == ["deploy", "destroy"]
    destroy_argv = cli.calls()[-1]["argv"]
    assert destroy_argv[:3] == ["destroy", "--all", "--force"]
    assert f"stack_prefix={PREFIX}" in destroy_argv
    assert not STACKS & cli.stack_names()
    assert f"{PREFIX}-Queue: DELETE_IN_PROGRESS" in out, "progress is shown while waiting"
    assert f"{PREFIX}-Queue: deleted" in out
    remaining = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert remaining == {
        f"/aws/lambda/{PREFIX}-Queue-Untagged",  # no ephemeral tag: left alone
        f"/aws/lambda/{PREFIX}-Api-Foreign",  # CloudFormation says it belongs to another stack
        f"/aws/lambda/{PREFIX}0-Api",  # another prefix that merely starts with ours
    }
    assert f"left log group /aws/lambda/{PREFIX}-Queue-Untagged: no ephemeral=true tag" in out


def test_destroy_gives_up_after_its_timeout(
    cli: Cli, tmp_path: Path, cfn_faults: CfnFaults, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _deploy(tmp_path) == EXIT_OK
    cfn_faults.slow_delete(f"{PREFIX}-Queue", polls=10**6)
    assert (
        main(["stack", "destroy", PREFIX, "--poll-interval", "0.02", "--timeout", "0.3"])
        == EXIT_FAILED
    )
    err = capfd.readouterr().err
    assert "timed out after 0.3s waiting for the stacks of ci-test-1-1 to finish deleting" in err
    assert f"'{PREFIX}-Queue': 'DELETE_IN_PROGRESS'" in err


def test_delete_failed_names_the_resources_and_reasons(
    cli: Cli, tmp_path: Path, cfn_faults: CfnFaults, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _deploy(tmp_path) == EXIT_OK
    cli.logs().create_log_group(
        logGroupName=f"/aws/lambda/{PREFIX}-Api-Handler", tags={"ephemeral": "true"}
    )
    cfn_faults.fail_delete(
        f"{PREFIX}-Queue",
        "ArchiveBucket",
        "AWS::S3::Bucket",
        "The bucket you tried to delete is not empty",
    )
    assert main(["stack", "destroy", PREFIX, *FAST]) == EXIT_FAILED
    err = capfd.readouterr().err
    assert f"stack {PREFIX}-Queue is DELETE_FAILED" in err
    assert "- ArchiveBucket (AWS::S3::Bucket): The bucket you tried to delete is not empty" in err
    assert f"re-run `harness stack destroy {PREFIX}`" in err
    assert cli.stack_names() & STACKS == {f"{PREFIX}-Queue"}
    groups = {g["logGroupName"] for g in cli.logs().describe_log_groups()["logGroups"]}
    assert f"/aws/lambda/{PREFIX}-Api-Handler" in groups, "no cleanup while a stack remains"


def test_destroy_falls_back_to_cloudformation_when_cdk_cannot_run(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _deploy(tmp_path) == EXIT_OK
    monkeypatch.setenv("FAKE_CDK_FAIL", "destroy")  # e.g. the app of this commit cannot synth
    assert main(["stack", "destroy", PREFIX, *FAST]) == EXIT_OK
    assert not STACKS & cli.stack_names()
    out = capfd.readouterr().out
    order = [line.split()[1] for line in out.splitlines() if line.startswith("deleting ")]
    assert order == [f"{PREFIX}-Monitoring", f"{PREFIX}-Api", f"{PREFIX}-Queue"]


def test_destroy_of_nothing_is_fine(cli: Cli) -> None:
    assert main(["stack", "destroy", "ci-never-deployed", *FAST]) == EXIT_OK
    assert cli.commands() == [], "no stacks: no cdk run"


def test_outputs_are_rebuilt_from_cloudformation(cli: Cli, tmp_path: Path) -> None:
    assert _deploy(tmp_path) == EXIT_OK
    rebuilt = write_outputs_for_prefix(PREFIX, tmp_path / "again.json")
    assert json.loads(rebuilt.read_text()) == json.loads((tmp_path / "out.json").read_text())
    with pytest.raises(StackOutputsError, match="ci-nope-Queue"):
        write_outputs_for_prefix("ci-nope", tmp_path / "nope.json")
    assert main(["stack", "outputs", PREFIX, "--outputs", str(tmp_path / "cli.json")]) == EXIT_OK
    assert (tmp_path / "cli.json").exists()


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        (f"/aws/lambda/{PREFIX}-Api-Fn", True),
        (f"{PREFIX}/access-logs", True),
        (f"/aws/lambda/{PREFIX}", True),
        (f"/aws/lambda/{PREFIX}0-Api", False),
        (f"/aws/lambda/x{PREFIX}-Api", False),
    ],
)
def test_log_group_names_match_the_prefix_as_a_whole(name: str, matches: bool) -> None:
    assert bool(log_group_matcher(PREFIX).search(name)) is matches


def test_destroy_removes_a_stack_left_in_review_by_an_interrupted_deploy(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cdk deploy` starts with a change set; interrupted before executing it, the stack
    # stays REVIEW_IN_PROGRESS (not busy: nothing will change it by itself).
    cli.cfn().create_change_set(
        StackName=f"{PREFIX}-Queue",
        ChangeSetName="cdk-deploy-change-set",
        TemplateBody=json.dumps({"Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}}),
        ChangeSetType="CREATE",
        Tags=[{"Key": "ephemeral", "Value": "true"}],
    )
    monkeypatch.setenv("FAKE_CDK_FAIL", "destroy")
    assert main(["stack", "destroy", PREFIX, *FAST]) == EXIT_OK
    assert f"{PREFIX}-Queue" not in cli.stack_names()


def test_destroy_waits_for_a_busy_stack_then_deletes_it(
    cli: Cli, tmp_path: Path, cfn_faults: CfnFaults, capfd: pytest.CaptureFixture[str]
) -> None:
    # A cancelled deploy can leave a stack updating; CloudFormation refuses DeleteStack
    # until the update ends, so cdk destroy fails on it.
    assert _deploy(tmp_path) == EXIT_OK
    cfn_faults.busy(f"{PREFIX}-Api", polls=10)
    assert main(["stack", "destroy", PREFIX, *FAST]) == EXIT_OK
    assert not STACKS & cli.stack_names()
    out = capfd.readouterr().out
    assert f"{PREFIX}-Api: UPDATE_IN_PROGRESS" in out
    assert "deleting the stacks still there" in out
