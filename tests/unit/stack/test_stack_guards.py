"""Guard rails: refuse production names, protected accounts and stacks that are not ours."""

from __future__ import annotations

import json

import boto3
import pytest

from harness.cli import main
from harness.stack import EXIT_REFUSED
from harness.stack.guards import GuardError, check_account, check_profile, production_reason

from .conftest import ACCOUNT, REGION, Cli

TEMPLATE = json.dumps({"Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}})


@pytest.mark.parametrize(
    "prefix",
    ["TaskApi", "taskapi", "prod", "Prod-eu", "taskapi-prod", "production", "live-1", "eu-prd"],
)
def test_production_looking_prefixes_are_recognised(prefix: str) -> None:
    assert production_reason(prefix, {}) is not None


@pytest.mark.parametrize(
    "prefix", ["ci-pr42-123-1", "ci-fix-prod-alarm-123-1", "local-jane-abc123", "TaskApiX"]
)
def test_ephemeral_prefixes_pass(prefix: str) -> None:
    assert production_reason(prefix, {}) is None


def test_extra_production_patterns_from_the_environment() -> None:
    env = {"HARNESS_PRODUCTION_PATTERNS": "billing-*, *-main"}
    assert production_reason("Billing-eu", env) is not None
    assert production_reason("ci-main", env) is not None
    assert production_reason("ci-pr1-1-1", env) is None


def test_production_profile_is_refused() -> None:
    with pytest.raises(GuardError, match="AWS_PROFILE='company-prod'"):
        check_profile({"AWS_PROFILE": "company-prod"})
    with pytest.raises(GuardError, match="AWS_DEFAULT_PROFILE"):
        check_profile({"AWS_DEFAULT_PROFILE": "Production"})
    check_profile({"AWS_PROFILE": "ci-sandbox"})


def test_protected_and_allowed_accounts() -> None:
    with pytest.raises(GuardError, match=r"111111111111.*HARNESS_PROTECTED_ACCOUNTS"):
        check_account("111111111111", {"HARNESS_PROTECTED_ACCOUNTS": "222222222222, 111111111111"})
    with pytest.raises(GuardError, match="not in HARNESS_ALLOWED_ACCOUNTS"):
        check_account("333333333333", {"HARNESS_ALLOWED_ACCOUNTS": "444444444444"})
    check_account(
        "444444444444",
        {"HARNESS_ALLOWED_ACCOUNTS": "444444444444", "HARNESS_PROTECTED_ACCOUNTS": "1"},
    )


# --- the commands refuse before doing anything (moto server + stand-in cdk) -------------


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    assert main(argv) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "refused:" in err
    assert expected in err


def test_deploy_refuses_the_production_prefix(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(
        capsys, ["stack", "deploy", "--ephemeral", "--name", "TaskApi"], "production stack prefix"
    )
    assert cli.commands() == [], "cdk must not run"


def test_deploy_refuses_a_protected_account(
    cli: Cli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto's STS answers GetCallerIdentity with its default account.
    monkeypatch.setenv("HARNESS_PROTECTED_ACCOUNTS", ACCOUNT)
    _refused(
        capsys, ["stack", "deploy", "--ephemeral", "--name", "ci-pr1-1-1"], f"account {ACCOUNT}"
    )
    assert cli.commands() == []


def test_deploy_refuses_a_production_profile(
    cli: Cli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "prod")
    _refused(
        capsys,
        ["stack", "deploy", "--ephemeral", "--name", "ci-pr1-1-1"],
        "profile name says production",
    )
    assert cli.commands() == []


def test_deploy_refuses_to_overwrite_a_stack_without_the_ephemeral_tag(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.cfn().create_stack(StackName="shared-Api", TemplateBody=TEMPLATE)
    _refused(
        capsys,
        ["stack", "deploy", "--ephemeral", "--name", "shared"],
        "shared-Api exist without the ephemeral=true tag",
    )
    assert cli.commands() == []


def test_destroy_refuses_untagged_and_protected_stacks(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    cfn = cli.cfn()
    cfn.create_stack(StackName="team-Queue", TemplateBody=TEMPLATE)
    _refused(
        capsys, ["stack", "destroy", "team"], "team-Queue exist without the ephemeral=true tag"
    )
    cfn.create_stack(
        StackName="kept-Queue",
        TemplateBody=TEMPLATE,
        Tags=[{"Key": "ephemeral", "Value": "true"}],
        EnableTerminationProtection=True,
    )
    _refused(capsys, ["stack", "destroy", "kept"], "termination protection")
    assert {"team-Queue", "kept-Queue"} <= cli.stack_names()
    assert cli.commands() == []


def test_reap_refuses_a_protected_account(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName="ci-old-Queue",
        TemplateBody=TEMPLATE,
        Tags=[
            {"Key": "ephemeral", "Value": "true"},
            {"Key": "expires-at", "Value": "2000-01-01T00:00:00Z"},
        ],
    )
    monkeypatch.setenv("HARNESS_PROTECTED_ACCOUNTS", ACCOUNT)
    _refused(capsys, ["stack", "reap", "--older-than", "1h"], "HARNESS_PROTECTED_ACCOUNTS")
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["ci-old-Queue"]


def test_deploy_without_ephemeral_is_a_usage_error(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "deploy", "--name", "ci-x-1-1"]) == 2
    assert "only `deploy --ephemeral`" in capsys.readouterr().err
    assert cli.commands() == []
