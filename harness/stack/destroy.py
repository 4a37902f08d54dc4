"""``harness stack destroy NAME``: remove the prefix's stacks, wait, clean up tagged leftovers."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cdk.naming import stack_names
from harness.stack import EXIT_FAILED, EXIT_OK
from harness.stack.cdk import Cdk
from harness.stack.cloud import CFN_STACK_NAME_TAG, DELETE_FAILED, Cloud, LogGroupInfo, StackInfo
from harness.stack.deploy import CLOCK_SKEW, existing_stacks
from harness.waiting import wait_until

DEFAULT_TIMEOUT_S: Final = 1800.0
DEFAULT_INTERVAL_S: Final = 5.0
# Stacks that import another's exports go first (Monitoring and Api import from Queue).
DELETE_ORDER: Final = ("Monitoring", "Api", "Queue")


@dataclass(frozen=True)
class LogCleanup:
    """What the log-group cleanup did."""

    deleted: tuple[str, ...]
    left: tuple[tuple[str, str], ...]  # (group name, why it was left alone)


def destroy_stacks(
    prefix: str,
    *,
    cdk: Cdk,
    cloud: Cloud,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_INTERVAL_S,
) -> int:
    """Destroy the prefix's stacks and wait until they are gone. Guards are not run here.

    ``cdk destroy`` does the work; if it fails (a broken app cannot even synthesize) the
    stacks it did not reach are deleted through the CloudFormation API, in dependency
    order. A stack that was busy (e.g. still updating after a cancelled deploy) is waited
    for and then deleted the same way. A ``DELETE_FAILED`` stack is reported with the
    resources that could not be deleted and why. Log groups are cleaned up once every
    stack is gone.
    """
    started = datetime.now(UTC)
    present = existing_stacks(cloud, prefix)
    if present:
        code = cdk.run(cdk.destroy_argv(prefix))
        if code != 0:
            print(
                f"cdk destroy exited {code}; deleting what is left through CloudFormation",
                file=sys.stderr,
            )
            _delete_remaining(cloud, prefix, timeout=timeout, interval=interval)
    else:
        print(f"no stacks with prefix {prefix} exist; nothing for cdk to destroy", flush=True)

    try:
        remaining = wait_for_deletion(cloud, prefix, timeout=timeout, interval=interval)
        if any(s.status != DELETE_FAILED for s in remaining):
            print("deleting the stacks still there (busy or not reached before)", flush=True)
            _delete_remaining(cloud, prefix, timeout=timeout, interval=interval)
            remaining = wait_for_deletion(cloud, prefix, timeout=timeout, interval=interval)
    except TimeoutError as error:
        print(f"destroy of {prefix} did not finish: {error}", file=sys.stderr)
        print(
            f"re-run `harness stack destroy {prefix}` later; "
            "`harness stack reap` removes it after expiry",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if remaining:
        explain_remaining(cloud, remaining, since=started - CLOCK_SKEW)
        return EXIT_FAILED
    print(f"stacks of {prefix} are gone", flush=True)
    cleanup = cleanup_log_groups(cloud, prefix)
    return EXIT_OK if cleanup is not None else EXIT_FAILED


def _delete_remaining(cloud: Cloud, prefix: str, *, timeout: float, interval: float) -> None:
    names = stack_names(prefix)
    for suffix in DELETE_ORDER:
        stack = cloud.get_stack(names[suffix])
        if stack is None or stack.busy or stack.status == DELETE_FAILED:
            # Gone, busy (waited for below) or failed (reported below; a retry would not help).
            continue
        print(f"deleting {stack.name} ({stack.status}) with DeleteStack", flush=True)
        cloud.delete_stack(stack.name)
        name = stack.name
        try:
            wait_until(
                lambda: _settled(cloud.get_stack(name)),  # noqa: B023
                timeout=timeout,
                interval=interval,
                description=f"stack {stack.name} to be deleted",
            )
        except TimeoutError as error:
            print(str(error), file=sys.stderr)
            return


def _settled(stack: StackInfo | None) -> bool:
    # Deleted, or stopped in DELETE_FAILED; DescribeStacks may briefly show the old status.
    return stack is None or stack.status == DELETE_FAILED


@dataclass(frozen=True)
class _Settled:
    remaining: tuple[StackInfo, ...]  # always truthy, even when empty: "done waiting"


def wait_for_deletion(
    cloud: Cloud, prefix: str, *, timeout: float, interval: float
) -> list[StackInfo]:
    """Poll until no stack of the prefix is busy; return the ones still there (empty: all gone).

    Prints each status change so a CI log shows progress. Raises ``TimeoutError`` naming
    the stacks still in progress after ``timeout`` seconds.
    """
    last: dict[str, str] = {}

    def probe() -> _Settled | None:
        stacks = existing_stacks(cloud, prefix)
        now = {s.name: s.status for s in stacks}
        for name, status in now.items():
            if last.get(name) != status:
                print(f"  {name}: {status}", flush=True)
        for name in set(last) - set(now):
            print(f"  {name}: deleted", flush=True)
        last.clear()
        last.update(now)
        return None if any(s.busy for s in stacks) else _Settled(tuple(stacks))

    try:
        settled = wait_until(
            probe,
            timeout=timeout,
            interval=interval,
            description=f"the stacks of {prefix} to finish deleting",
        )
    except TimeoutError as error:
        raise TimeoutError(f"{error}; stack statuses: {last}") from None
    return list(settled.remaining)


def explain_remaining(cloud: Cloud, remaining: list[StackInfo], *, since: datetime) -> None:
    """Say which stacks are left, and for ``DELETE_FAILED`` which resources failed and why."""
    for stack in remaining:
        if stack.status != DELETE_FAILED:
            print(
                f"stack {stack.name} still exists ({stack.status}); it was not deleted",
                file=sys.stderr,
            )
            continue
        print(
            f"stack {stack.name} is DELETE_FAILED: CloudFormation could not delete:",
            file=sys.stderr,
        )
        failures = [
            e for e in cloud.failed_events(stack.name, since) if e.logical_id != stack.name
        ] or cloud.failed_events(stack.name, since)
        for event in failures:
            print(
                f"  - {event.logical_id} ({event.resource_type}): "
                f"{event.reason or '(no reason given)'}",
                file=sys.stderr,
            )
        if not failures:
            print(
                "  (no DELETE_FAILED events found; see the stack's events in the console)",
                file=sys.stderr,
            )
    print(
        "fix or remove those resources by hand, then re-run `harness stack destroy "
        f"{_prefix_of(remaining[0].name)}` (CloudFormation's DeleteStack also accepts "
        "RetainResources for resources you want to keep).",
        file=sys.stderr,
    )


def _prefix_of(stack_name: str) -> str:
    return stack_name.rsplit("-", 1)[0]


def log_group_matcher(prefix: str) -> re.Pattern[str]:
    """Matches a log-group name containing ``prefix`` as a whole name part (not ``prefix2``)."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(prefix)}(?![A-Za-z0-9])")


def cleanup_log_groups(cloud: Cloud, prefix: str) -> LogCleanup | None:
    """Delete leftover log groups naming the prefix, only those tagged ``ephemeral=true``.

    A group CloudFormation created carries ``aws:cloudformation:stack-name``; such a group
    is deleted only if that names one of this prefix's stacks. Untagged groups (Lambda
    creates its own on first log line) are reported and left alone. Returns ``None`` if a
    delete failed.
    """
    matcher = log_group_matcher(prefix)
    ours = set(stack_names(prefix).values())
    deleted: list[str] = []
    left: list[tuple[str, str]] = []
    failed = False
    for group in cloud.log_groups(lambda name: bool(matcher.search(name))):
        reason = _why_not_ours(group, ours)
        if reason:
            left.append((group.name, reason))
            print(f"left log group {group.name}: {reason}", flush=True)
            continue
        try:
            cloud.delete_log_group(group.name)
        except Exception as error:  # report and go on: one stuck group must not hide the others
            failed = True
            print(f"could not delete log group {group.name}: {error}", file=sys.stderr)
            continue
        deleted.append(group.name)
        print(f"deleted leftover log group {group.name} (tagged ephemeral=true)", flush=True)
    return None if failed else LogCleanup(deleted=tuple(deleted), left=tuple(left))


def _why_not_ours(group: LogGroupInfo, ours: set[str]) -> str | None:
    if group.tags.get("ephemeral", "").strip().lower() != "true":
        return "no ephemeral=true tag"
    owner_stack = group.tags.get(CFN_STACK_NAME_TAG)
    if owner_stack is not None and owner_stack not in ours:
        return f"belongs to stack {owner_stack}"
    return None
