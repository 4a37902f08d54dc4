"""``harness dlq`` pieces that need no queue: arguments, the listing's text, the purge
guard on AWS (moto's CloudFormation and STS in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cdk import contract
from harness.dlq.cli import CommandError, check_purge_allowed, chosen_task_ids, stack_prefix_of
from harness.dlq.queue import (
    DeadLetteredTask,
    Listing,
    QueueCounts,
    dead_lettered_task,
    format_listing,
    replay_deduplication_id,
)
from harness.stack.guards import GuardError
from harness.target import Target

TASK = "0b6f3c1e-8d2a-4f1b-9c3d-2e4f5a6b7c8d"


def _listing(tasks: int, queued: int, **extra: object) -> Listing:
    rows = [
        DeadLetteredTask(TASK, "attempts_exhausted", 3, f"2026-12-06T10:00:0{i}.000000Z", "x", 3)
        for i in range(tasks)
    ]
    defaults: dict[str, object] = {
        "retention_s": 14 * 86400,
        "expired": 0,
        "purged_at": None,
        "before_purge": 0,
    }
    defaults.update(extra)
    return Listing(rows, QueueCounts(queued, 0, 0), **defaults)  # type: ignore[arg-type]


def test_the_listing_text_names_each_kind_of_mismatch() -> None:
    assert "mismatch" not in format_listing(_listing(2, 2))
    assert "mismatch: 1 message(s) in the queue are not dead-lettered tasks" in format_listing(
        _listing(2, 3)
    )
    assert "mismatch: 2 task(s) on record have no message" in format_listing(_listing(2, 0))
    text = format_listing(_listing(0, 0, expired=4, before_purge=1, purged_at="2026-12-06T09"))
    assert "4 older FAILED task(s) not listed" in text
    assert "1 FAILED task(s) not listed: dead-lettered before the purge at 2026-12-06T09" in text


def test_a_failed_task_without_a_dead_lettered_entry_stands_out() -> None:
    row = dead_lettered_task(
        {"task_id": TASK, "status": "FAILED", "attempts": 3, "updated_at": "u", "history": []}
    )
    assert (row.receive_count, row.dead_lettered_at, row.error_code) == (0, "u", None)


def test_the_replay_deduplication_id_fits_sqs() -> None:
    assert len(replay_deduplication_id(TASK, 10_000)) <= 128


@pytest.mark.parametrize(
    ("ids", "replay_all", "error"),
    [
        ([], False, "or pass --all"),
        ([TASK], True, "not both"),
        (["not-a-uuid", TASK], False, "not a task id (a UUID): not-a-uuid"),
    ],
)
def test_bad_replay_arguments_are_refused(ids: list[str], replay_all: bool, error: str) -> None:
    with pytest.raises(CommandError, match=error.replace("(", r"\(").replace(")", r"\)")):
        chosen_task_ids(ids, replay_all)


def test_chosen_ids_are_canonical_and_once() -> None:
    assert chosen_task_ids([TASK.upper(), TASK], False) == [TASK]
    assert chosen_task_ids([], True) is None


def test_the_prefix_comes_from_the_stack_names() -> None:
    assert stack_prefix_of({"ci-42-Queue": {}, "ci-42-Api": {}}) == "ci-42"
    with pytest.raises(CommandError, match="cannot tell the stack prefix"):
        stack_prefix_of({"a-Queue": {}, "b-Api": {}})


# --- the purge guard on AWS --------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _deployed(prefix: str, tags: dict[str, str]) -> None:
    template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}
    boto3.client("cloudformation").create_stack(
        StackName=f"{prefix}-Queue",
        TemplateBody=json.dumps(template),
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def _aws_target(profile: str = "ephemeral") -> Target:
    return Target(name="aws", outputs={contract.PROFILE: profile})


@pytest.mark.usefixtures("aws")
def test_an_ephemeral_stack_on_aws_may_be_purged() -> None:
    _deployed("ci-7", {"ephemeral": "true"})
    check_purge_allowed(_aws_target(), "ci-7", {})


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("prefix", "tags", "profile", "env", "why"),
    [
        ("ci-8", {}, "ephemeral", {}, "without the ephemeral=true tag"),
        ("ci-9", {"ephemeral": "true"}, "production", {}, "production profile"),
        ("ci-10", {"ephemeral": "true"}, "ephemeral", {"AWS_PROFILE": "prod"}, "says production"),
        ("prod-eu", {"ephemeral": "true"}, "ephemeral", {}, "production word"),
    ],
)
def test_purge_on_aws_is_refused_like_the_ci_guards_refuse(
    prefix: str, tags: dict[str, str], profile: str, env: dict[str, str], why: str
) -> None:
    _deployed(prefix, tags)
    with pytest.raises(GuardError, match=why):
        check_purge_allowed(_aws_target(profile), prefix, env)
