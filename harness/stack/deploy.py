"""``harness stack deploy --ephemeral``: the three stacks under one prefix, tagged to expire."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cdk.contract import REQUIRED_OUTPUTS, flatten
from cdk.naming import stack_names
from harness.stack import EXIT_FAILED, EXIT_OK
from harness.stack.cdk import Cdk
from harness.stack.cloud import EPHEMERAL_TAG, EXPIRES_AT_TAG, Cloud, StackInfo
from harness.stack.guards import check_account, check_existing_stacks, check_prefix, check_profile

DEFAULT_TTL_HOURS: Final = 4.0
# CloudFormation timestamps events with its clock, not ours: look a little further back.
CLOCK_SKEW: Final = timedelta(seconds=30)


def existing_stacks(cloud: Cloud, prefix: str) -> list[StackInfo]:
    """The prefix's stacks (Queue, Api, Monitoring) that exist right now."""
    found = (cloud.get_stack(name) for name in stack_names(prefix).values())
    return [stack for stack in found if stack is not None]


def preflight(prefix: str, cloud: Cloud, env: Mapping[str, str], *, action: str) -> str:
    """Every guard rail for acting on ``prefix``; returns the account id. Raises ``GuardError``."""
    check_prefix(prefix, env)
    check_profile(env)
    account = cloud.account_id()
    check_account(account, env)
    check_existing_stacks(existing_stacks(cloud, prefix), action=f"{action} {prefix!r}")
    return account


def expiry(ttl_hours: float, now: datetime | None = None) -> str:
    """The ``expires-at`` value: now + ``ttl_hours`` as ISO 8601 UTC with a ``Z``."""
    if ttl_hours <= 0:
        raise ValueError(f"--ttl-hours must be positive, got {ttl_hours}")
    moment = (now or datetime.now(UTC)) + timedelta(hours=ttl_hours)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deploy_stacks(
    prefix: str,
    *,
    cdk: Cdk,
    cloud: Cloud,
    outputs: Path,
    ttl_hours: float,
    owner: str,
    now: datetime | None = None,
) -> int:
    """Run ``cdk deploy``; on failure print the failed resources' events. No guards here."""
    started = now or datetime.now(UTC)
    expires_at = expiry(ttl_hours, started)
    # A stale file from an earlier run must never be mistaken for this deploy's outputs.
    outputs.unlink(missing_ok=True)
    outputs.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"deploying ephemeral stacks {prefix}-{{Queue,Api,Monitoring}} (expires {expires_at})",
        flush=True,
    )
    argv = cdk.deploy_argv(prefix, outputs, {"expires_at": expires_at, "owner": owner})
    code = cdk.run(argv)
    if code != 0:
        print(f"\ncdk deploy failed (exit {code}) for stack prefix {prefix}", file=sys.stderr)
        report_failed_events(cloud, prefix, since=started - CLOCK_SKEW)
        return EXIT_FAILED
    problems = check_deployment(cloud, prefix, outputs)
    if problems:
        print(f"\ndeploy of {prefix} finished but is not usable:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_FAILED
    print(f"deployed {prefix}; outputs in {outputs}", flush=True)
    return EXIT_OK


def report_failed_events(cloud: Cloud, prefix: str, *, since: datetime) -> int:
    """Print the ``*_FAILED`` events of the prefix's stacks since ``since``; returns how many."""
    events = [e for name in stack_names(prefix).values() for e in cloud.failed_events(name, since)]
    events.sort(key=lambda e: e.timestamp)
    if not events:
        print(
            "no *_FAILED CloudFormation events for these stacks since the deploy started: "
            "the failure came before CloudFormation (synth, assets, credentials); see the "
            "cdk output above.",
            file=sys.stderr,
        )
        return 0
    print(
        "failed resources (CloudFormation events, oldest first; the first is usually the cause):",
        file=sys.stderr,
    )
    for event in events:
        print(f"  {event.line()}", file=sys.stderr)
    return len(events)


def check_deployment(cloud: Cloud, prefix: str, outputs: Path) -> list[str]:
    """What is wrong with a finished deploy: missing outputs, or stacks the reaper cannot see."""
    problems: list[str] = []
    try:
        data = json.loads(outputs.read_text(encoding="utf-8"))
        merged = flatten(data)
    except (OSError, ValueError) as error:
        return [f"cannot read outputs file {outputs}: {error}"]
    missing = [key for key in REQUIRED_OUTPUTS if key not in merged]
    if missing:
        problems.append(f"outputs file {outputs} lacks {', '.join(missing)}")
    for name in stack_names(prefix).values():
        stack = cloud.get_stack(name)
        if stack is None:
            problems.append(f"stack {name} does not exist after the deploy")
        elif not stack.is_ephemeral or EXPIRES_AT_TAG not in stack.tags:
            # Without these tags the reaper would never remove a leaked stack.
            problems.append(
                f"stack {name} lacks the {EPHEMERAL_TAG}=true / {EXPIRES_AT_TAG} tags "
                "(the CDK app must tag ephemeral stacks)"
            )
    return problems


def write_ci_outputs(env: Mapping[str, str], prefix: str, outputs: Path) -> None:
    """In GitHub Actions, expose ``stack-prefix`` and ``outputs-file`` as step outputs."""
    target = env.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"stack-prefix={prefix}\noutputs-file={outputs}\n")
