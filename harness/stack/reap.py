"""``harness stack reap``: delete ephemeral stacks that outlived their expiry.

A stack is deleted only if every rule allows it: tagged ``ephemeral=true``, named like one of
our stacks (``<prefix>-Queue|Api|Monitoring``), not nested, no termination protection, a
non-production prefix, no operation in progress (``*_IN_PROGRESS``), and either its
``expires-at`` tag is in the past or it was created longer ago than ``--older-than``.
Deletion uses the CloudFormation API in dependency order (Monitoring and Api before Queue,
whose exports they import). Every stack gets a line in the decision table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from cdk.naming import STACK_SUFFIXES
from harness.stack import EXIT_FAILED, EXIT_OK
from harness.stack.cloud import DELETE_FAILED, Cloud, StackInfo
from harness.stack.deploy import CLOCK_SKEW
from harness.stack.destroy import DELETE_ORDER, cleanup_log_groups
from harness.stack.guards import check_account, check_profile, production_reason
from harness.waiting import wait_until

Action = Literal["delete", "keep", "skip", "would delete", "deleted", "FAILED"]

_DURATION_RE: Final = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNIT_S: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_NAME_RE: Final = re.compile(
    rf"^(?P<prefix>[A-Za-z][A-Za-z0-9-]*)-(?P<suffix>{'|'.join(STACK_SUFFIXES)})$"
)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``6h``, ``1d12h``, ``2w``, ``45s`` as a timedelta; ``ValueError`` otherwise."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise ValueError(f"{text!r} is not a duration like 90m, 6h, 1d12h or 2w")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION_RE.findall(compact))
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return timedelta(seconds=seconds)


def describe_age(delta: timedelta) -> str:
    """A short human duration: ``3d4h``, ``5h12m``, ``7m``."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m"


@dataclass(frozen=True)
class Decision:
    """What the reaper does with one stack, and why."""

    stack: StackInfo
    action: Action
    reason: str


def decide(
    stack: StackInfo, *, now: datetime, older_than: timedelta, env: Mapping[str, str]
) -> Decision:
    """The decision for one stack on its own (sibling order is applied by :func:`plan`)."""
    match = _NAME_RE.match(stack.name)
    if not stack.is_ephemeral:
        return Decision(stack, "skip", "no ephemeral=true tag")
    if match is None:
        return Decision(stack, "skip", "not a <prefix>-Queue|Api|Monitoring stack")
    if stack.parent_id:
        return Decision(stack, "skip", "nested stack (deleted with its parent)")
    if stack.termination_protection:
        return Decision(stack, "skip", "termination protection is on")
    production = production_reason(match.group("prefix"), env)
    if production:
        return Decision(stack, "skip", f"prefix looks like production: {production}")
    if stack.in_progress:
        return Decision(stack, "skip", f"operation in progress ({stack.status})")

    age = now - stack.created
    try:
        expires_at = stack.expires_at()
    except ValueError:
        expires_at = None
        unreadable = f"unreadable expires-at tag {stack.tags.get('expires-at')!r}; "
    else:
        unreadable = ""
    if expires_at is not None and expires_at <= now:
        return Decision(
            stack,
            "delete",
            f"expired {describe_age(now - expires_at)} ago ({expires_at:%Y-%m-%dT%H:%M:%SZ})",
        )
    if age > older_than:
        return Decision(
            stack,
            "delete",
            f"{unreadable}created {describe_age(age)} ago, older than {describe_age(older_than)}",
        )
    if expires_at is not None:
        return Decision(stack, "keep", f"expires in {describe_age(expires_at - now)}")
    return Decision(
        stack, "keep", f"{unreadable or 'no expires-at tag; '}created {describe_age(age)} ago"
    )


def plan(
    stacks: Sequence[StackInfo], *, now: datetime, older_than: timedelta, env: Mapping[str, str]
) -> list[Decision]:
    """Decisions for every stack, sorted by name.

    A stack whose sibling must be deleted first (it imports this stack's exports) is kept
    while that sibling stays: deleting it would only end in ``DELETE_FAILED``.
    """
    decisions = {s.name: decide(s, now=now, older_than=older_than, env=env) for s in stacks}
    for name, decision in decisions.items():
        match = _NAME_RE.match(name)
        if decision.action != "delete" or match is None:
            continue
        rank = DELETE_ORDER.index(match.group("suffix"))
        for before in DELETE_ORDER[:rank]:
            sibling = decisions.get(f"{match.group('prefix')}-{before}")
            if sibling is not None and sibling.action != "delete":
                decisions[name] = replace(
                    decision,
                    action="keep",
                    reason=f"{sibling.stack.name} must go first and is kept ({sibling.reason})",
                )
                break
    return [decisions[name] for name in sorted(decisions)]


def reap(
    cloud: Cloud,
    *,
    older_than: timedelta,
    dry_run: bool,
    env: Mapping[str, str],
    now: datetime | None = None,
    timeout: float = 1800.0,
    interval: float = 5.0,
) -> int:
    """List, decide, delete (unless ``dry_run``), print the table; 1 if any delete failed.

    Raises ``GuardError`` when the credentials point at an account it must not touch.
    """
    check_profile(env)
    account = cloud.account_id()
    check_account(account, env)
    moment = now or datetime.now(UTC)
    decisions = plan(cloud.list_stacks(), now=moment, older_than=older_than, env=env)
    if dry_run:
        decisions = [
            replace(d, action="would delete") if d.action == "delete" else d for d in decisions
        ]
    else:
        decisions = _execute(cloud, decisions, timeout=timeout, interval=interval)
    mode = " (dry run: nothing deleted)" if dry_run else ""
    print(f"reaper decisions in account {account}{mode}:")
    # Stacks that are neither tagged nor named like ours are only counted: in a shared
    # account they would drown the lines that matter.
    shown = [d for d in decisions if d.stack.is_ephemeral or _NAME_RE.match(d.stack.name)]
    print(format_table(shown))
    if len(shown) < len(decisions):
        print(f"({len(decisions) - len(shown)} other stack(s) without the ephemeral tag not shown)")
    failed = [d for d in decisions if d.action == "FAILED"]
    acted = sum(d.action in ("deleted", "would delete") for d in decisions)
    print(
        f"{acted} stack(s) {'to delete' if dry_run else 'deleted'}, "
        f"{len(failed)} failed, {len(decisions)} seen"
    )
    return EXIT_FAILED if failed else EXIT_OK


def _execute(
    cloud: Cloud, decisions: list[Decision], *, timeout: float, interval: float
) -> list[Decision]:
    results = {d.stack.name: d for d in decisions}
    # Waves in dependency order; within a wave every prefix's deletes run concurrently.
    for suffix in DELETE_ORDER:
        wave = [
            d for d in decisions if d.action == "delete" and d.stack.name.endswith(f"-{suffix}")
        ]
        started: list[Decision] = []
        for decision in wave:
            try:
                cloud.delete_stack(decision.stack.name)
            except Exception as error:  # one refused delete must not stop the rest
                results[decision.stack.name] = replace(
                    decision, action="FAILED", reason=f"DeleteStack failed: {error}"
                )
            else:
                print(f"deleting {decision.stack.name}: {decision.reason}", flush=True)
                started.append(decision)
        results.update(_wait_wave(cloud, started, timeout=timeout, interval=interval))
    prefixes = {d.stack.name.rsplit("-", 1)[0] for d in results.values() if d.action == "deleted"}
    for prefix in sorted(prefixes):
        siblings = [d for d in results.values() if d.stack.name.rsplit("-", 1)[0] == prefix]
        if all(d.action == "deleted" for d in siblings):
            cleanup_log_groups(cloud, prefix)
    return [results[name] for name in sorted(results)]


def _wait_wave(
    cloud: Cloud, started: list[Decision], *, timeout: float, interval: float
) -> dict[str, Decision]:
    """Wait until every started delete is gone or DELETE_FAILED; outcome by stack name."""
    since = datetime.now(UTC) - CLOCK_SKEW
    outcomes: dict[str, Decision] = {}

    def probe() -> bool:
        for decision in started:
            name = decision.stack.name
            if name in outcomes:
                continue
            stack = cloud.get_stack(name)
            if stack is None:
                outcomes[name] = replace(decision, action="deleted")
            elif stack.status == DELETE_FAILED:
                reasons = "; ".join(
                    f"{e.logical_id}: {e.reason}"
                    for e in cloud.failed_events(name, since)
                    if e.logical_id != name
                )
                outcomes[name] = replace(
                    decision, action="FAILED", reason=f"DELETE_FAILED {reasons}".strip()
                )
        return len(outcomes) == len(started)

    try:
        wait_until(
            probe, timeout=timeout, interval=interval, description="reaped stacks to be deleted"
        )
    except TimeoutError:
        for decision in started:
            outcomes.setdefault(
                decision.stack.name,
                replace(decision, action="FAILED", reason=f"still deleting after {timeout:g}s"),
            )
    return outcomes


def format_table(decisions: Sequence[Decision]) -> str:
    """The decision table: stack, status, action, reason."""
    rows = [("STACK", "STATUS", "ACTION", "REASON")]
    rows += [(d.stack.name, d.stack.status, d.action, d.reason) for d in decisions]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    if not decisions:
        lines.append("(no stacks in this region)")
    return "\n".join(lines)
