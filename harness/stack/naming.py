"""Stack prefixes for ephemeral stacks, derived from the CI context.

A CI run gets ``ci-<pr or branch>-<run id>-<attempt>`` (for example ``ci-pr42-9876543210-1``),
deterministic within one run attempt so a later teardown step can derive the same name.
Outside CI the fallback is ``local-<user>-<random>``. Names are sanitized to CloudFormation's
stack-name rules and fit ``MAX_PREFIX_LENGTH``; a part that had to be shortened is followed
by a short hash of its full text, so two long branch names that share a beginning still
give different prefixes.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from cdk.naming import MAX_PREFIX_LENGTH, validate_stack_prefix

HASH_LENGTH: Final = 6
_PULL_REF_RE: Final = re.compile(r"^refs/pull/(\d+)/")


def sanitize(text: str) -> str:
    """Lower-case ``text`` and reduce it to letters, digits and single inner hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    """A stable hex digest prefix of ``text`` (not a secret; only for uniqueness)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit_prefix(head: str, middle: str, tail: str, limit: int = MAX_PREFIX_LENGTH) -> str:
    """Join ``head-middle-tail`` (empty parts dropped) within ``limit`` characters.

    ``head`` and ``tail`` are kept whole; when the result is too long the middle is cut
    and followed by a hash of its full text. If even that cannot fit, everything but the
    head becomes one hash of the whole name.
    """
    parts = [p for p in (head, middle, tail) if p]
    full = "-".join(parts)
    if len(full) <= limit:
        return full
    hashed = short_hash(middle)
    fixed = len(head) + len(tail) + len(hashed) + 3  # three hyphens around the middle part
    room = limit - fixed
    if middle and room >= 1:
        cut = middle[:room].rstrip("-")
        return "-".join(p for p in (head, cut, hashed, tail) if p)
    digest = short_hash(full, max(HASH_LENGTH, min(16, limit - len(head) - 1)))
    return f"{head}-{digest}"[:limit]


def pull_request_number(env: Mapping[str, str]) -> str | None:
    """The pull-request number of a GitHub Actions run, if it is one."""
    match = _PULL_REF_RE.match(env.get("GITHUB_REF", ""))
    if match:
        return match.group(1)
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path and env.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        number = (event.get("pull_request") or {}).get("number", event.get("number"))
        if isinstance(number, int):
            return str(number)
    return None


def ci_prefix(env: Mapping[str, str]) -> str | None:
    """The prefix for a GitHub Actions run, or ``None`` outside GitHub Actions."""
    run_id = sanitize(env.get("GITHUB_RUN_ID", ""))
    if not run_id:
        return None
    attempt = sanitize(env.get("GITHUB_RUN_ATTEMPT", "")) or "1"
    number = pull_request_number(env)
    if number:
        ref = f"pr{number}"
    else:
        # GITHUB_HEAD_REF is the source branch of a pull request; GITHUB_REF_NAME the branch
        # or tag of a push (for pull requests it is "<n>/merge", handled above).
        ref = sanitize(env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or "")
    return validate_stack_prefix(fit_prefix("ci", ref, f"{run_id}-{attempt}"))


def local_prefix(env: Mapping[str, str], token: Callable[[], str] | None = None) -> str:
    """``local-<user>-<random>``: unique per call, for runs outside CI."""
    user = sanitize(env.get("USER") or env.get("USERNAME") or _login() or "user") or "user"
    random_part = sanitize((token or _random_token)()) or _random_token()
    return validate_stack_prefix(fit_prefix("local", user, random_part))


def derive_stack_prefix(
    env: Mapping[str, str] | None = None, *, token: Callable[[], str] | None = None
) -> str:
    """The stack prefix for this run: from the CI context, else a local user+random name."""
    environ = os.environ if env is None else env
    return ci_prefix(environ) or local_prefix(environ, token)


def derive_owner(env: Mapping[str, str] | None = None) -> str:
    """The ``owner`` tag value: ``github:<repo>@<actor>`` in GitHub Actions, else the user."""
    environ = os.environ if env is None else env
    actor = environ.get("GITHUB_ACTOR")
    repository = environ.get("GITHUB_REPOSITORY")
    if actor and repository:
        raw = f"github:{repository}@{actor}"
    else:
        raw = actor or environ.get("USER") or environ.get("USERNAME") or _login() or "unknown"
    # Tag values allow letters, digits, spaces and _ . : / = + - @ (at most 256 characters).
    return re.sub(r"[^\w .:/=+\-@]", "-", raw)[:256] or "unknown"


def _random_token() -> str:
    return secrets.token_hex(3)


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary uid in a container
        return None
