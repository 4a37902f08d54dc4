"""``harness stack ...``: ephemeral AWS stacks for CI (deploy, destroy, reap, verify, ...)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError

from cdk.naming import validate_stack_prefix
from harness.cliargs import new_file, positive_float
from harness.stack import EXIT_FAILED, EXIT_REFUSED
from harness.stack.cdk import Cdk, install_pinned_cdk, resolve_cdk_command
from harness.stack.cloud import Cloud
from harness.stack.deploy import DEFAULT_TTL_HOURS, deploy_stacks, preflight, write_ci_outputs
from harness.stack.destroy import DEFAULT_INTERVAL_S, DEFAULT_TIMEOUT_S, destroy_stacks
from harness.stack.guards import GuardError
from harness.stack.naming import derive_owner, derive_stack_prefix
from harness.stack.outputs import StackOutputsError, write_outputs_for_prefix
from harness.stack.process import Interrupted, interruptible
from harness.stack.reap import parse_duration, reap
from harness.stack.verify import (
    DEFAULT_OUTPUTS,
    add_aws_verify_arguments,
    add_cdk_arguments,
    parse_context,
    verify_aws,
)

Command = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``stack`` command group."""
    stack = subparsers.add_parser(
        "stack",
        help="ephemeral AWS stacks for CI: deploy, destroy, reap, verify",
        description="Ephemeral AWS stacks for CI. Exit codes: 0 ok, 1 failed, 2 usage, "
        "3 refused by a guard rail, 128+N interrupted by signal N.",
    )
    commands = stack.add_subparsers(dest="stack_command", metavar="SUBCOMMAND")

    name = commands.add_parser("name", help="print the stack prefix derived from the CI context")
    name.set_defaults(func=_guarded(_name))

    deploy = commands.add_parser("deploy", help="deploy the three stacks under an ephemeral prefix")
    deploy.add_argument(
        "--ephemeral", action="store_true", help="required: only ephemeral deploys are done here"
    )
    deploy.add_argument("--name", help="stack prefix (default: derived from the CI context)")
    deploy.add_argument(
        "--outputs",
        type=new_file,
        default=DEFAULT_OUTPUTS,
        help="outputs file",
    )
    deploy.add_argument(
        "--ttl-hours",
        type=positive_float,
        default=DEFAULT_TTL_HOURS,
        help="expires-at = now + this (default %(default)s)",
    )
    deploy.add_argument("--owner", help="owner tag (default: the CI actor or the local user)")
    add_cdk_arguments(deploy)
    deploy.set_defaults(func=_guarded(_deploy))

    destroy = commands.add_parser(
        "destroy", help="destroy a prefix's stacks and wait until they are gone"
    )
    destroy.add_argument("name", metavar="NAME", help="the stack prefix")
    destroy.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait (default %(default)s)",
    )
    destroy.add_argument(
        "--poll-interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_S,
        help="seconds between polls (default %(default)s)",
    )
    add_cdk_arguments(destroy)
    destroy.set_defaults(func=_guarded(_destroy))

    reaper = commands.add_parser("reap", help="delete ephemeral stacks past their expiry")
    reaper.add_argument(
        "--older-than",
        required=True,
        type=_age,
        metavar="DURATION",
        help="also delete ephemeral stacks created longer ago (90m, 6h, 1d12h)",
    )
    reaper.add_argument(
        "--dry-run", action="store_true", help="print the decisions, delete nothing"
    )
    reaper.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait per wave (default %(default)s)",
    )
    reaper.add_argument(
        "--poll-interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_S,
        help="seconds between polls (default %(default)s)",
    )
    reaper.set_defaults(func=_guarded(_reap))

    verify = commands.add_parser(
        "verify",
        help="deploy, run the features (and a load smoke), always destroy",
        description="What `harness verify --target aws` runs.",
    )
    add_aws_verify_arguments(verify)
    verify.set_defaults(func=_guarded(verify_aws))

    install = commands.add_parser(
        "install-cdk", help="npm ci: install the CDK CLI pinned in package.json (venv Node)"
    )
    install.set_defaults(func=_guarded(lambda _args: install_pinned_cdk()))

    outputs = commands.add_parser("outputs", help="write the outputs file of a deployed prefix")
    outputs.add_argument("name", metavar="NAME", help="the stack prefix")
    outputs.add_argument(
        "--outputs",
        type=new_file,
        default=DEFAULT_OUTPUTS,
        help="file to write",
    )
    outputs.set_defaults(func=_guarded(_outputs))


def _age(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _guarded(command: Command) -> Command:
    """Run ``command`` with SIGINT/SIGTERM as exceptions and every refusal a clear message."""

    def run(args: argparse.Namespace) -> int:
        try:
            with interruptible():
                return command(args)
        except Interrupted as interruption:
            print(f"{interruption}", file=sys.stderr)
            return interruption.exit_code
        except GuardError as error:
            print(f"refused: {error}", file=sys.stderr)
            return EXIT_REFUSED
        except ValueError as error:
            print(f"harness stack: {error}", file=sys.stderr)
            return 2
        except (BotoCoreError, ClientError) as error:
            print(f"harness stack: AWS call failed: {error}", file=sys.stderr)
            return EXIT_FAILED

    return run


def _cdk(args: argparse.Namespace) -> Cdk:
    return Cdk(
        command=resolve_cdk_command(args.cdk_command),
        env=dict(os.environ),
        extra_context=parse_context(args.context or []),
    )


def _name(args: argparse.Namespace) -> int:
    print(derive_stack_prefix())
    return 0


def _deploy(args: argparse.Namespace) -> int:
    if not args.ephemeral:
        raise ValueError(
            "only `deploy --ephemeral` is supported here; production deploys go through "
            "`npx cdk deploy --all -c profile=production` with their own review"
        )
    env = dict(os.environ)
    prefix = validate_stack_prefix(args.name) if args.name else derive_stack_prefix(env)
    cloud = Cloud()
    preflight(prefix, cloud, env, action="deploy")  # credentials and guards before the CLI
    cdk = _cdk(args)
    write_ci_outputs(env, prefix, args.outputs)
    try:
        return deploy_stacks(
            prefix,
            cdk=cdk,
            cloud=cloud,
            outputs=args.outputs,
            ttl_hours=args.ttl_hours,
            owner=args.owner or derive_owner(env),
        )
    except Interrupted:
        print(
            f"deploy interrupted; stacks of {prefix} may exist: "
            f"run `harness stack destroy {prefix}`",
            file=sys.stderr,
        )
        raise


def _destroy(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    prefix = validate_stack_prefix(args.name)
    cloud = Cloud()
    preflight(prefix, cloud, env, action="destroy")  # credentials and guards before the CLI
    cdk = _cdk(args)
    return destroy_stacks(
        prefix, cdk=cdk, cloud=cloud, timeout=args.timeout, interval=args.poll_interval
    )


def _reap(args: argparse.Namespace) -> int:
    return reap(
        Cloud(),
        older_than=args.older_than,
        dry_run=args.dry_run,
        env=dict(os.environ),
        timeout=args.timeout,
        interval=args.poll_interval,
    )


def _outputs(args: argparse.Namespace) -> int:
    try:
        path = write_outputs_for_prefix(validate_stack_prefix(args.name), args.outputs)
    except StackOutputsError as error:
        print(f"harness stack outputs: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {path}")
    return 0
