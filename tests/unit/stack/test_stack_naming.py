"""Stack prefixes from the CI context: unique, valid, length-checked, deterministic per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdk.naming import MAX_PREFIX_LENGTH, validate_stack_prefix
from harness.stack.naming import derive_owner, derive_stack_prefix, fit_prefix, sanitize, short_hash

RUN = {"GITHUB_RUN_ID": "9876543210", "GITHUB_RUN_ATTEMPT": "2"}


def test_pull_request_from_the_merge_ref() -> None:
    env = {
        **RUN,
        "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_REF_NAME": "42/merge",
        "GITHUB_HEAD_REF": "feature/x",
    }
    assert derive_stack_prefix(env) == "ci-pr42-9876543210-2"


def test_pull_request_from_the_event_file(tmp_path: Path) -> None:
    # pull_request_target runs on the base branch's ref: the number is only in the event.
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    env = {
        **RUN,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "pull_request_target",
        "GITHUB_EVENT_PATH": str(event),
    }
    assert derive_stack_prefix(env) == "ci-pr7-9876543210-2"


def test_branch_push_is_sanitized() -> None:
    env = {**RUN, "GITHUB_REF": "refs/heads/Feat/Login_Pg", "GITHUB_REF_NAME": "Feat/Login_Pg"}
    assert derive_stack_prefix(env) == "ci-feat-login-pg-9876543210-2"


def test_head_ref_is_used_when_there_is_no_pull_ref() -> None:
    env = {**RUN, "GITHUB_HEAD_REF": "fix/alarm", "GITHUB_REF_NAME": "ignored"}
    assert derive_stack_prefix(env) == "ci-fix-alarm-9876543210-2"


def test_attempt_defaults_to_one_and_branch_without_valid_characters_is_dropped() -> None:
    env = {"GITHUB_RUN_ID": "555", "GITHUB_REF_NAME": "***"}
    assert derive_stack_prefix(env) == "ci-555-1"


def test_same_run_gives_the_same_name_so_teardown_can_derive_it() -> None:
    env = {**RUN, "GITHUB_REF_NAME": "main"}
    assert derive_stack_prefix(env) == derive_stack_prefix(dict(env))


def test_long_branch_names_are_truncated_with_a_hash_and_stay_unique() -> None:
    shared = "feature/a-really-long-branch-name-that-goes-on-and-on-"
    first = derive_stack_prefix({**RUN, "GITHUB_REF_NAME": shared + "one"})
    second = derive_stack_prefix({**RUN, "GITHUB_REF_NAME": shared + "two"})
    assert first != second
    for name in (first, second):
        assert len(name) <= MAX_PREFIX_LENGTH
        assert validate_stack_prefix(name) == name
        assert name.startswith("ci-feature-")
        assert name.endswith("-9876543210-2"), "the run id and attempt survive truncation"


def test_invalid_characters_never_reach_the_name() -> None:
    env = {**RUN, "GITHUB_REF_NAME": "Ünïcode!!  weird__branch--name.."}
    name = derive_stack_prefix(env)
    # "n-code-weird-branch-name" is too long next to the run id: cut, then its hash.
    assert name == f"ci-n-code-we-{short_hash('n-code-weird-branch-name')}-9876543210-2"
    assert validate_stack_prefix(name) == name


def test_local_fallback_is_user_plus_random() -> None:
    env = {"USER": "Jane.Doe"}
    assert derive_stack_prefix(env, token=lambda: "a1b2c3") == "local-jane-doe-a1b2c3"
    assert derive_stack_prefix(env) != derive_stack_prefix(env), (
        "each local run gets its own stacks"
    )


def test_local_fallback_with_a_huge_user_name_fits() -> None:
    name = derive_stack_prefix({"USER": "x" * 200}, token=lambda: "abcdef")
    assert len(name) <= MAX_PREFIX_LENGTH
    assert validate_stack_prefix(name) == name
    assert name.endswith("-abcdef")


@settings(max_examples=200, deadline=None)
@given(
    branch=st.text(max_size=300),
    run_id=st.integers(min_value=1, max_value=10**12),
    attempt=st.integers(1, 99),
)
def test_any_branch_gives_a_valid_prefix(branch: str, run_id: int, attempt: int) -> None:
    env = {
        "GITHUB_RUN_ID": str(run_id),
        "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_REF_NAME": branch,
    }
    name = derive_stack_prefix(env)
    assert validate_stack_prefix(name) == name
    assert name.endswith(f"{run_id}-{attempt}")


@pytest.mark.parametrize(
    ("head", "middle", "tail", "limit"),
    [("ci", "m" * 100, "1-1", 32), ("ci", "m", "9" * 40, 32), ("local", "", "abc", 8)],
)
def test_fit_prefix_respects_the_limit(head: str, middle: str, tail: str, limit: int) -> None:
    result = fit_prefix(head, middle, tail, limit)
    assert len(result) <= limit
    assert result.startswith(head)


def test_sanitize() -> None:
    assert sanitize("  Feature/ABC__def  ") == "feature-abc-def"
    assert sanitize("!!!") == ""


def test_owner_from_github_and_locally() -> None:
    assert (
        derive_owner({"GITHUB_ACTOR": "octo", "GITHUB_REPOSITORY": "org/repo"})
        == "github:org/repo@octo"
    )
    assert derive_owner({"USER": "jane<doe>"}) == "jane-doe-"
