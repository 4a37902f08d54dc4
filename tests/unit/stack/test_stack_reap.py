"""The reaper's decisions against stacks created in moto (in-process ``mock_aws``).

moto creates every stack ``CREATE_COMPLETE`` at the current time. Two states are made in
its backend, where CloudFormation's own state lives: an old creation time (moto has no
clock control) and ``UPDATE_IN_PROGRESS``/``DELETE_IN_PROGRESS`` (moto's operations
complete synchronously). ``REVIEW_IN_PROGRESS`` is real moto behaviour: a stack created
by a CREATE change set that was not executed yet, which is also how ``cdk deploy`` begins.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from harness.cli import main
from harness.stack import EXIT_FAILED, EXIT_OK
from harness.stack.cloud import Cloud, StackInfo
from harness.stack.reap import decide, parse_duration, plan, reap

from .conftest import REGION, CfnFaults, moto_stack

TEMPLATE = json.dumps({"Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}})
PAST = "2000-01-01T00:00:00Z"
FUTURE = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tags(**tags: str) -> list[dict[str, str]]:
    return [{"Key": k.replace("_", "-"), "Value": v} for k, v in tags.items()]


def _eph(expires_at: str | None = None, **more: str) -> list[dict[str, str]]:
    tags = {"ephemeral": "true", **more}
    if expires_at is not None:
        tags["expires_at"] = expires_at
    return _tags(**tags)


@pytest.fixture
def cfn(aws: None) -> Any:
    """CloudFormation on in-process moto."""
    return boto3.client("cloudformation", region_name=REGION)


def _create(cfn: Any, name: str, tags: list[dict[str, str]], **kwargs: Any) -> None:
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE, Tags=tags, **kwargs)


def _live(cfn: Any) -> set[str]:
    return {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}


@pytest.fixture
def zoo(cfn: Any) -> dict[str, str]:
    """One stack per rule; returns stack name -> the action the reaper must choose."""
    _create(cfn, "ci-expired-Queue", _eph(PAST))
    _create(cfn, "ci-fresh-Queue", _eph(FUTURE))
    _create(cfn, "ci-untagged-Queue", _tags(expires_at=PAST))
    _create(cfn, "ci-protected-Queue", _eph(PAST), EnableTerminationProtection=True)
    _create(cfn, "TaskApi-Queue", _eph(PAST))
    _create(cfn, "someone-elses-stack", _eph(PAST))
    _create(cfn, "ci-old-Queue", _eph())  # no expires-at: only the age rule applies
    moto_stack("ci-old-Queue").creation_time = datetime.now(UTC) - timedelta(days=3)
    _create(cfn, "ci-garbled-Queue", _eph("soon"))
    _create(cfn, "billing-service", _tags(team="billing"))
    # A CREATE change set not yet executed: REVIEW_IN_PROGRESS, as moto really reports it.
    cfn.create_change_set(
        StackName="ci-review-Queue",
        ChangeSetName="cdk-deploy-change-set",
        TemplateBody=TEMPLATE,
        ChangeSetType="CREATE",
        Tags=_eph(PAST),
    )
    return {
        "ci-expired-Queue": "delete",
        "ci-fresh-Queue": "keep",
        "ci-untagged-Queue": "skip",
        "ci-protected-Queue": "skip",
        "TaskApi-Queue": "skip",
        "someone-elses-stack": "skip",
        "ci-old-Queue": "delete",
        "ci-garbled-Queue": "keep",
        "ci-review-Queue": "skip",
        "billing-service": "skip",
    }


def test_decisions_for_every_kind_of_stack(zoo: dict[str, str]) -> None:
    decisions = plan(
        Cloud().list_stacks(), now=datetime.now(UTC), older_than=timedelta(days=1), env={}
    )
    assert {d.stack.name: d.action for d in decisions} == zoo
    reasons = {d.stack.name: d.reason for d in decisions}
    assert reasons["ci-expired-Queue"].startswith("expired ")
    assert "older than 1d0h" in reasons["ci-old-Queue"]
    assert reasons["ci-untagged-Queue"] == "no ephemeral=true tag"
    assert reasons["ci-protected-Queue"] == "termination protection is on"
    assert "production" in reasons["TaskApi-Queue"]
    assert reasons["ci-review-Queue"] == "operation in progress (REVIEW_IN_PROGRESS)"
    assert "unreadable expires-at tag 'soon'" in reasons["ci-garbled-Queue"]
    assert reasons["ci-fresh-Queue"].startswith("expires in ")


def test_dry_run_deletes_nothing_and_prints_the_table(
    zoo: dict[str, str], cfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "reap", "--older-than", "1d", "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert _live(cfn) == set(zoo)
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith(tuple(zoo))}
    assert "would delete" in lines["ci-expired-Queue"]
    assert "would delete" in lines["ci-old-Queue"]
    assert "skip" in lines["ci-untagged-Queue"]
    assert "2 stack(s) to delete, 0 failed, 10 seen" in out
    assert "billing-service" not in lines, "unrelated stacks are only counted"
    assert "(1 other stack(s) without the ephemeral tag not shown)" in out


def test_reap_deletes_only_what_it_may(
    zoo: dict[str, str], cfn: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stack", "reap", "--older-than", "1d", "--poll-interval", "0.01"]) == EXIT_OK
    assert _live(cfn) == {name for name, action in zoo.items() if action != "delete"}
    out = capsys.readouterr().out
    assert "2 stack(s) deleted, 0 failed" in out
    assert "deleted" in next(
        line for line in out.splitlines() if line.startswith("ci-expired-Queue")
    )


@pytest.mark.parametrize(
    "status", ["UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"]
)
def test_stacks_in_progress_are_never_touched(cfn: Any, status: str) -> None:
    _create(cfn, "ci-busy-Queue", _eph(PAST))
    moto_stack("ci-busy-Queue").status = status  # moto completes operations synchronously
    assert (
        reap(Cloud(), older_than=timedelta(hours=1), dry_run=False, env={}, interval=0.01)
        == EXIT_OK
    )
    assert _live(cfn) == {"ci-busy-Queue"}


def test_stacks_are_deleted_in_dependency_order(cfn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for suffix in ("Queue", "Api", "Monitoring"):
        _create(cfn, f"ci-a-{suffix}", _eph(PAST))
        _create(cfn, f"ci-b-{suffix}", _eph(PAST))
    order: list[str] = []
    original = Cloud.delete_stack

    def recording(cloud: Cloud, name: str) -> None:
        order.append(name)
        original(cloud, name)

    monkeypatch.setattr(Cloud, "delete_stack", recording)
    assert (
        reap(Cloud(), older_than=timedelta(hours=1), dry_run=False, env={}, interval=0.01)
        == EXIT_OK
    )
    assert _live(cfn) == set()
    ranks = [("Monitoring", "Api", "Queue").index(name.rsplit("-", 1)[1]) for name in order]
    assert ranks == sorted(ranks), f"exporting stacks must go last: {order}"


def test_an_exporting_stack_waits_for_a_kept_sibling(cfn: Any) -> None:
    _create(cfn, "ci-c-Queue", _eph(PAST))
    _create(cfn, "ci-c-Api", _eph(PAST), EnableTerminationProtection=True)
    decisions = {
        d.stack.name: d
        for d in plan(
            Cloud().list_stacks(), now=datetime.now(UTC), older_than=timedelta(days=1), env={}
        )
    }
    assert decisions["ci-c-Queue"].action == "keep"
    assert "ci-c-Api must go first" in decisions["ci-c-Queue"].reason


def test_a_failed_delete_is_reported_and_fails_the_run(
    cfn: Any, cfn_faults: CfnFaults, capsys: pytest.CaptureFixture[str]
) -> None:
    _create(cfn, "ci-stuck-Queue", _eph(PAST))
    _create(cfn, "ci-fine-Queue", _eph(PAST))
    cfn_faults.fail_delete(
        "ci-stuck-Queue", "TasksTable", "AWS::DynamoDB::Table", "Table is being restored"
    )
    code = reap(Cloud(), older_than=timedelta(hours=1), dry_run=False, env={}, interval=0.01)
    assert code == EXIT_FAILED
    out = capsys.readouterr().out
    stuck = next(line for line in out.splitlines() if line.startswith("ci-stuck-Queue"))
    assert "FAILED" in stuck
    assert "TasksTable: Table is being restored" in stuck
    assert _live(cfn) == {"ci-stuck-Queue"}


def test_leftover_log_groups_of_a_reaped_prefix_are_cleaned_when_tagged(cfn: Any) -> None:
    for suffix in ("Queue", "Api", "Monitoring"):
        _create(cfn, f"ci-logs-{suffix}", _eph(PAST))
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/aws/lambda/ci-logs-Api-Fn", tags={"ephemeral": "true"})
    logs.create_log_group(logGroupName="/aws/lambda/ci-logs-Api-Untagged")
    assert (
        reap(Cloud(), older_than=timedelta(hours=1), dry_run=False, env={}, interval=0.01)
        == EXIT_OK
    )
    names = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert names == ["/aws/lambda/ci-logs-Api-Untagged"]


def test_expiry_wins_over_age_and_age_over_a_missing_tag() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    young = StackInfo(
        name="ci-x-Api",
        status="CREATE_COMPLETE",
        created=now - timedelta(minutes=5),
        tags={"ephemeral": "true", "expires-at": "2029-12-31T23:59:00Z"},
    )
    assert decide(young, now=now, older_than=timedelta(days=1), env={}).action == "delete"
    old = StackInfo(
        name="ci-x-Api",
        status="UPDATE_COMPLETE",
        created=now - timedelta(days=2),
        tags={"ephemeral": "TRUE", "expires-at": "2030-06-01T00:00:00Z"},
    )
    assert decide(old, now=now, older_than=timedelta(days=1), env={}).action == "delete"
    nested = StackInfo(
        name="ci-x-Api",
        status="CREATE_COMPLETE",
        created=now - timedelta(days=2),
        tags={"ephemeral": "true"},
        parent_id="arn:parent",
    )
    assert decide(nested, now=now, older_than=timedelta(days=1), env={}).action == "skip"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90m", 5400), ("6h", 21600), ("1d12h", 129600), ("2w", 1209600), ("45s", 45), ("1.5h", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "6x", "-1h", "0m", "1h foo"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_bad_duration_is_a_usage_error(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:  # refused while parsing, before any AWS call
        main(["stack", "reap", "--older-than", "soon"])
    assert exited.value.code == 2
    assert "not a duration" in capsys.readouterr().err
