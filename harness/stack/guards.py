"""Guard rails: what the CI commands refuse to touch, each refusal with a clear message.

- credentials for a protected account (``HARNESS_PROTECTED_ACCOUNTS``, a comma list of
  account ids checked against STS GetCallerIdentity) or outside an allow-list
  (``HARNESS_ALLOWED_ACCOUNTS``, optional);
- an AWS profile whose name says production (``AWS_PROFILE`` / ``AWS_DEFAULT_PROFILE``);
- a stack prefix that looks like production (``TaskApi`` exactly, ``prod``/``production``/
  ``prd``/``live`` as its first or last word, or ``HARNESS_PRODUCTION_PATTERNS`` globs);
- an existing stack without the ``ephemeral=true`` tag, or with termination protection.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from harness.stack.cloud import StackInfo

PRODUCTION_PREFIX: Final = "TaskApi"  # the production profile's stack prefix (cdk/config.py)
PRODUCTION_WORDS: Final = frozenset({"prod", "production", "prd", "live"})
PROTECTED_ACCOUNTS_ENV: Final = "HARNESS_PROTECTED_ACCOUNTS"
ALLOWED_ACCOUNTS_ENV: Final = "HARNESS_ALLOWED_ACCOUNTS"
PRODUCTION_PATTERNS_ENV: Final = "HARNESS_PRODUCTION_PATTERNS"
PROFILE_ENVS: Final = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class GuardError(Exception):
    """A guard rail refused the operation; the message says what and why."""


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def _env_list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def production_reason(prefix: str, env: Mapping[str, str]) -> str | None:
    """Why ``prefix`` looks like a production stack prefix, or ``None`` if it does not.

    Only the first and last word count (``prod-eu``, ``taskapi-prod``): derived CI names
    start with ``ci-``/``local-`` and end with a run id, so a branch called
    ``fix-prod-alarm`` does not block its own pipeline.
    """
    if prefix.lower() == PRODUCTION_PREFIX.lower():
        return f"{prefix!r} is the production stack prefix"
    words = _words(prefix)
    if words and (words[0] in PRODUCTION_WORDS or words[-1] in PRODUCTION_WORDS):
        words_text = ", ".join(sorted(PRODUCTION_WORDS))
        return f"{prefix!r} starts or ends with a production word ({words_text})"
    for pattern in _env_list(env, PRODUCTION_PATTERNS_ENV):
        if fnmatch.fnmatchcase(prefix.lower(), pattern.lower()):
            return f"{prefix!r} matches {PRODUCTION_PATTERNS_ENV} pattern {pattern!r}"
    return None


def check_prefix(prefix: str, env: Mapping[str, str]) -> None:
    """Refuse a stack prefix that looks like production."""
    reason = production_reason(prefix, env)
    if reason:
        raise GuardError(
            f"refusing to touch stack prefix {prefix!r}: {reason}. Ephemeral stacks need a "
            "non-production name (omit --name to derive one from the CI context)."
        )


def check_profile(env: Mapping[str, str]) -> None:
    """Refuse credentials selected through an AWS profile whose name says production."""
    for variable in PROFILE_ENVS:
        profile = env.get(variable, "")
        if set(_words(profile)) & PRODUCTION_WORDS:
            raise GuardError(
                f"refusing to run with {variable}={profile!r}: the profile name says production. "
                "Use credentials for a sandbox/CI account."
            )


def check_account(account_id: str, env: Mapping[str, str]) -> None:
    """Refuse a protected account, or one outside ``HARNESS_ALLOWED_ACCOUNTS`` when set."""
    protected = _env_list(env, PROTECTED_ACCOUNTS_ENV)
    if account_id in protected:
        raise GuardError(
            f"refusing to act in AWS account {account_id}: it is listed in "
            f"{PROTECTED_ACCOUNTS_ENV}. The credentials point at an account this tool must "
            "not touch."
        )
    allowed = _env_list(env, ALLOWED_ACCOUNTS_ENV)
    if allowed and account_id not in allowed:
        raise GuardError(
            f"refusing to act in AWS account {account_id}: it is not in "
            f"{ALLOWED_ACCOUNTS_ENV} ({', '.join(allowed)})."
        )


def check_existing_stacks(stacks: Iterable[StackInfo], *, action: str) -> None:
    """Refuse to ``action`` stacks that are not ephemeral or are termination-protected."""
    untagged = [s.name for s in stacks if not s.is_ephemeral]
    if untagged:
        raise GuardError(
            f"refusing to {action}: stack(s) {', '.join(untagged)} exist without the "
            "ephemeral=true tag, so they are not ours to change. Pick another --name."
        )
    protected = [s.name for s in stacks if s.termination_protection]
    if protected:
        raise GuardError(
            f"refusing to {action}: stack(s) {', '.join(protected)} have termination "
            "protection on; ephemeral stacks never do. Turn it off deliberately if they "
            "really are disposable."
        )
