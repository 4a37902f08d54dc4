"""``harness dlq list | replay | purge``: the spec's recovery procedure, for an operator.

Every command reads a stack from ``--outputs FILE`` (the ``cdk deploy --outputs-file``
shape; a local stack's when it names ``AwsEndpointUrl``), from ``--stack-prefix P`` (the
deployed stacks ``P-*``, read back from CloudFormation), or by default from the running
local stack's ``cdk-outputs.local.json``. The manual is ``docs/dlq.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cdk import contract
from harness.cliargs import existing_file, fail
from harness.dlq.queue import DeadLetters, Listing, format_listing, format_messages
from harness.target import Target, TargetError

PROG = "harness dlq"
EXIT_NOT_FOUND = 1  # a task asked for was not in the dead-letter queue
EXIT_REFUSED = 3  # as ``harness stack``: a guard rail refused to act

_STACK_SUFFIXES = ("-Queue", "-Api", "-Monitoring")


class CommandError(Exception):
    """A command cannot run as asked; the message says why and what to do."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dlq`` command group."""
    dlq = subparsers.add_parser(
        "dlq",
        help="the dead-letter queue: list, replay, purge",
        description="See every dead-lettered task, send them back in order, purge a test stack.",
    )
    commands = dlq.add_subparsers(dest="dlq_command", metavar="COMMAND")

    listing = commands.add_parser(
        "list", help="every dead-lettered task, beside the queue's own counters"
    )
    _add_stack_arguments(listing)
    listing.add_argument(
        "--messages",
        action="store_true",
        help="read the queue's messages themselves (one rotation: same order, new message "
        "ids) to see what is not a task on record",
    )
    listing.set_defaults(func=_guarded(_list))

    replay = commands.add_parser(
        "replay", help="send dead-lettered tasks back for processing, in order, each once"
    )
    replay.add_argument("task_ids", nargs="*", metavar="TASK_ID", help="tasks to send back")
    replay.add_argument("--all", action="store_true", help="every task in the dead-letter queue")
    replay.add_argument(
        "--dry-run", action="store_true", help="say what would be sent back; change nothing"
    )
    _add_stack_arguments(replay)
    replay.set_defaults(func=_guarded(_replay))

    purge = commands.add_parser(
        "purge", help="delete every message of an ephemeral stack's dead-letter queue"
    )
    purge.add_argument("--yes", action="store_true", help="required: yes, delete them")
    _add_stack_arguments(purge)
    purge.set_defaults(func=_guarded(_purge))


def _add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--outputs",
        type=existing_file,
        help="the stack's outputs file (default: the local stack's cdk-outputs.local.json)",
    )
    where.add_argument("--stack-prefix", help="a deployed stack prefix (its stacks P-*)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


Command = Callable[[argparse.Namespace], int]


def _guarded(command: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        from harness.stack.guards import GuardError

        try:
            return command(args)
        except CommandError as error:
            return fail(PROG, str(error))
        except GuardError as error:
            print(f"{PROG}: refused: {error}", file=sys.stderr)
            return EXIT_REFUSED
        except TargetError as error:
            print(f"{PROG}: {error}", file=sys.stderr)
            return 2
        except (BotoCoreError, ClientError) as error:
            print(f"{PROG}: AWS call failed: {error}", file=sys.stderr)
            return 1

    return run


# --- the stack ---------------------------------------------------------------------------


def resolve_stack(outputs: Path | None, stack_prefix: str | None) -> tuple[Target, str]:
    """The target and its stack prefix, from ``--outputs``, ``--stack-prefix`` or the
    local stack's outputs file."""
    if stack_prefix is not None:
        from cdk.naming import validate_stack_prefix
        from harness.stack.outputs import outputs_for_prefix

        try:
            prefix = validate_stack_prefix(stack_prefix)
        except ValueError as error:
            raise CommandError(str(error)) from None
        raw = outputs_for_prefix(prefix)
        return Target(name="aws", outputs=contract.flatten(raw)), prefix
    if outputs is None:
        from harness.local_stack.lifecycle import DEFAULT_OUTPUTS

        if not DEFAULT_OUTPUTS.is_file():
            raise CommandError(
                f"no --outputs or --stack-prefix given, and no local stack outputs at "
                f"{DEFAULT_OUTPUTS} (start one with `harness local up --detach`)"
            )
        outputs = DEFAULT_OUTPUTS
    target = Target.from_outputs_file(outputs, "aws")  # checks the file's shape
    if target.endpoint_url is not None:
        target = Target.from_outputs_file(outputs, "local")
    return target, stack_prefix_of(json.loads(outputs.read_text(encoding="utf-8")))


def stack_prefix_of(raw: Mapping[str, Any]) -> str:
    """The prefix of the stacks an outputs file names (``P-Queue``, ``P-Api``, ...)."""
    prefixes = {
        name[: -len(suffix)]
        for name in raw
        for suffix in _STACK_SUFFIXES
        if name.endswith(suffix) and len(name) > len(suffix)
    }
    if len(prefixes) != 1:
        raise CommandError(
            f"cannot tell the stack prefix from the outputs file's stacks {sorted(raw)}: "
            "expected names P-Queue, P-Api, P-Monitoring with one prefix P"
        )
    return prefixes.pop()


def check_purge_allowed(target: Target, prefix: str, env: Mapping[str, str]) -> None:
    """Refuse to purge what the CI guards refuse to touch: a production-named prefix
    everywhere; on AWS also production credentials or profile and stacks that are not
    tagged ephemeral (``harness.stack.guards``)."""
    from harness.stack.guards import GuardError, check_prefix

    check_prefix(prefix, env)
    if target.name == "local":
        return
    if target.profile == "production":
        raise GuardError(
            f"refusing to purge the dead-letter queue of {prefix!r}: its stacks were "
            "deployed with the production profile"
        )
    from harness.stack.cloud import Cloud
    from harness.stack.deploy import preflight

    preflight(prefix, Cloud(), env, action="purge the dead-letter queue of")


# --- the commands ------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    target, _ = resolve_stack(args.outputs, args.stack_prefix)
    dead_letters = DeadLetters(target)
    if args.messages:
        letters = dead_letters.messages()
        if args.json:
            _print_json(
                [
                    {
                        "message_id": letter.message_id,
                        "task_id": letter.task_id,
                        "attributes": dict(letter.attributes),
                        "body": letter.body,
                    }
                    for letter in letters
                ]
            )
        else:
            print(format_messages(letters))
        return 0
    listing = dead_letters.listing()
    if args.json:
        _print_json(listing.as_json())
    else:
        print(format_listing(listing))
    return 0


def chosen_task_ids(task_ids: Sequence[str], replay_all: bool) -> list[str] | None:
    """The tasks a replay is asked for (None: all); bad input is a :class:`CommandError`."""
    if replay_all and task_ids:
        raise CommandError("give TASK_IDs or --all, not both")
    if not replay_all and not task_ids:
        raise CommandError("name the tasks to send back (TASK_ID ...) or pass --all")
    bad = [task_id for task_id in task_ids if not is_task_id(task_id)]
    if bad:
        raise CommandError(f"not a task id (a UUID): {', '.join(bad)}")
    return None if replay_all else list(dict.fromkeys(task_id.lower() for task_id in task_ids))


def _replay(args: argparse.Namespace) -> int:
    chosen = chosen_task_ids(args.task_ids, args.all)
    target, _ = resolve_stack(args.outputs, args.stack_prefix)
    dead_letters = DeadLetters(target)
    if args.dry_run:
        return _dry_run(dead_letters.listing(), chosen, as_json=args.json)
    report = dead_letters.replay(chosen)
    if args.json:
        _print_json(report.as_json())
    else:
        for task_id in report.replayed:
            print(f"sent back {task_id}")
        for task_id, why in report.removed:
            print(f"removed {task_id} from the dead-letter queue without sending it: {why}")
        print(
            f"{len(report.replayed)} task(s) sent back to the task queue in the dead-letter "
            f"queue's order; {report.kept} message(s) left in the dead-letter queue"
        )
        if report.not_found:
            print(f"not in the dead-letter queue: {', '.join(report.not_found)}")
    return EXIT_NOT_FOUND if report.not_found else 0


def _dry_run(listing: Listing, chosen: list[str] | None, *, as_json: bool) -> int:
    wanted = None if chosen is None else set(chosen)
    planned = [task for task in listing.tasks if wanted is None or task.task_id in wanted]
    missing = sorted((wanted or set()) - {task.task_id for task in planned})
    if as_json:
        _print_json(
            {
                "would_replay": [task.task_id for task in planned],
                "not_dead_lettered": missing,
                "queue": listing.as_json()["queue"],
                "unaccounted": listing.unaccounted,
            }
        )
    else:
        for task in planned:
            print(f"would send back {task.task_id} (dead-lettered {task.dead_lettered_at})")
        print(
            f"{len(planned)} task(s) would be sent back, in this order; nothing was changed. "
            f"The queue holds {listing.counts.total} message(s)."
        )
        if missing:
            print(f"not dead-lettered tasks on record: {', '.join(missing)}")
    return EXIT_NOT_FOUND if missing else 0


def _purge(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CommandError("purge deletes every message of the dead-letter queue: pass --yes")
    target, prefix = resolve_stack(args.outputs, args.stack_prefix)
    check_purge_allowed(target, prefix, dict(os.environ))
    deleted = DeadLetters(target).purge()
    if args.json:
        _print_json({"deleted": deleted, "stack_prefix": prefix})
    else:
        print(f"deleted {deleted} message(s) from the dead-letter queue of {prefix!r}")
    return 0


def is_task_id(text: str) -> bool:
    """Whether ``text`` is a UUID in its canonical 8-4-4-4-12 form (any letter case)."""
    try:
        return str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))
