"""The AWS verification flow: deploy, run the features (and a load smoke), always destroy.

``harness verify --target aws`` (wired by the main CLI through :func:`add_aws_verify_arguments`
and :func:`verify_aws`) and ``harness stack verify`` both land in
:func:`run_aws_verification`. The teardown runs in a ``finally``: after a failed deploy,
failed features, an exception, or SIGINT/SIGTERM (turned into an orderly teardown; the exit
code is then 128 + the signal). ``--keep-on-failure`` keeps the stacks after a *failure*
(never after an interruption) and prints the exact command that removes them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from cdk.naming import validate_stack_prefix
from harness.cliargs import new_file, positive_float, report_dir
from harness.stack import EXIT_FAILED, EXIT_OK, EXIT_REFUSED
from harness.stack.cdk import PROJECT_ROOT, Cdk, resolve_cdk_command
from harness.stack.cloud import Cloud
from harness.stack.deploy import DEFAULT_TTL_HOURS, deploy_stacks, preflight, write_ci_outputs
from harness.stack.destroy import DEFAULT_INTERVAL_S, DEFAULT_TIMEOUT_S, destroy_stacks
from harness.stack.guards import GuardError
from harness.stack.naming import derive_owner, derive_stack_prefix
from harness.stack.process import Interrupted, interruptible, run_child, shielded

FEATURES_ENV: Final = "HARNESS_FEATURES_COMMAND"
LOAD_ENV: Final = "HARNESS_LOAD_COMMAND"
DEFAULT_FEATURES_COMMAND: Final = (sys.executable, "-m", "pytest", "features")
DEFAULT_LOAD_COMMAND: Final = (sys.executable, "-m", "harness.cli", "load")
DEFAULT_OUTPUTS: Final = Path("cdk-outputs.json")
DEFAULT_REPORT_DIR: Final = Path("reports/aws")


@dataclass(frozen=True)
class AwsVerifyOptions:
    """Everything the AWS verification flow needs (see :func:`add_aws_verify_arguments`)."""

    name: str | None = None
    outputs: Path = DEFAULT_OUTPUTS
    report_dir: Path = DEFAULT_REPORT_DIR
    ttl_hours: float = DEFAULT_TTL_HOURS
    owner: str | None = None
    load_smoke: bool = False
    keep_on_failure: bool = False
    cdk_command: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    destroy_timeout: float = DEFAULT_TIMEOUT_S
    poll_interval: float = DEFAULT_INTERVAL_S
    # Base commands; the options are appended. Overridable by HARNESS_FEATURES_COMMAND /
    # HARNESS_LOAD_COMMAND (shell syntax), as HARNESS_CDK overrides the CDK CLI.
    features_command: tuple[str, ...] | None = None
    load_command: tuple[str, ...] | None = None
    pytest_args: tuple[str, ...] = ()  # extra arguments for the features run
    cwd: Path = PROJECT_ROOT

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AwsVerifyOptions:
        """Build from a namespace parsed with :func:`add_aws_verify_arguments`."""
        return cls(
            name=args.stack_name,
            outputs=Path(getattr(args, "outputs", None) or DEFAULT_OUTPUTS),
            report_dir=Path(getattr(args, "report_dir", None) or DEFAULT_REPORT_DIR),
            ttl_hours=args.ttl_hours,
            owner=args.owner,
            load_smoke=args.load_smoke,
            keep_on_failure=args.keep_on_failure,
            cdk_command=args.cdk_command,
            context=parse_context(args.context or []),
            destroy_timeout=args.destroy_timeout,
            poll_interval=args.poll_interval,
            pytest_args=tuple(getattr(args, "pytest_args", None) or ()),
        )


def parse_context(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (from ``--context``) as a mapping; ``ValueError`` if malformed."""
    context: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--context expects KEY=VALUE, got {pair!r}")
        context[key.strip()] = value
    return context


def _add(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str, **kwargs: object
) -> None:
    # The lead's ``verify`` parser may already define an option (e.g. --outputs): share it.
    existing = getattr(parser, "_option_string_actions", {})
    if flag not in existing:
        parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]


def add_cdk_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--cdk-command`` and ``--context`` (shared by deploy, destroy and verify)."""
    _add(
        parser,
        "--cdk-command",
        metavar="CMD",
        help="the CDK CLI to run (default: $HARNESS_CDK, else node_modules/.bin/cdk, "
        "the CLI pinned in package.json, as `npx --no cdk` would)",
    )
    _add(
        parser,
        "--context",
        action="append",
        metavar="KEY=VALUE",
        help="extra `-c KEY=VALUE` for the CDK app (repeatable), e.g. visibility_timeout=8",
    )


def add_aws_verify_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the AWS-target options to a ``verify`` parser (options it already has are shared)."""
    group = parser.add_argument_group("AWS target (--target aws): an ephemeral stack per run")
    _add(
        group,
        "--stack-name",
        metavar="NAME",
        help="stack prefix (default: derived from the CI context)",
    )
    _add(
        group,
        "--outputs",
        type=new_file,
        default=None,
        help=f"outputs file to write (default: {DEFAULT_OUTPUTS})",
    )
    _add(
        group,
        "--report-dir",
        type=report_dir,
        default=None,
        help=f"feature reports (default: {DEFAULT_REPORT_DIR})",
    )
    _add(
        group,
        "--ttl-hours",
        type=positive_float,
        default=DEFAULT_TTL_HOURS,
        help="expires-at = now + this (default %(default)s)",
    )
    _add(group, "--owner", default=None, help="owner tag (default: the CI actor or the local user)")
    _add(group, "--load-smoke", action="store_true", help="also run the api_ingest smoke load")
    _add(
        group,
        "--keep-on-failure",
        action="store_true",
        help="keep the stacks when deploy/features/load fail (not when interrupted) "
        "and print how to remove them",
    )
    _add(
        group,
        "--destroy-timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for deletion (default %(default)s)",
    )
    _add(
        group,
        "--poll-interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_S,
        help="seconds between status polls (default %(default)s)",
    )
    add_cdk_arguments(group)


def verify_aws(args: argparse.Namespace | AwsVerifyOptions) -> int:
    """Run the AWS verification from parsed arguments (or options); returns the exit code."""
    try:
        options = args if isinstance(args, AwsVerifyOptions) else AwsVerifyOptions.from_args(args)
    except ValueError as error:
        print(f"harness verify --target aws: {error}", file=sys.stderr)
        return 2
    return run_aws_verification(options)


def _command(
    explicit: tuple[str, ...] | None,
    env: Mapping[str, str],
    variable: str,
    default: tuple[str, ...],
) -> list[str]:
    if explicit:
        return list(explicit)
    text = env.get(variable)
    return shlex.split(text) if text else list(default)


def run_aws_verification(
    options: AwsVerifyOptions, *, env: Mapping[str, str] | None = None, cloud: Cloud | None = None
) -> int:
    """Deploy, run the features (and the load smoke), always tear down; return the exit code."""
    environ = dict(os.environ if env is None else env)
    client = cloud or Cloud()
    outputs = options.outputs.resolve()  # children run in the project root, not our cwd
    report_dir = options.report_dir.resolve()
    steps: list[tuple[str, str]] = []
    with interruptible():
        try:
            prefix = (
                validate_stack_prefix(options.name)
                if options.name
                else derive_stack_prefix(environ)
            )
            print(f"AWS verification on stack prefix {prefix}", flush=True)
            # Credentials and account guards first: without them the CDK CLI is moot.
            preflight(prefix, client, environ, action="deploy")
            cdk = Cdk(
                command=resolve_cdk_command(options.cdk_command, environ),
                env=environ,
                extra_context=dict(options.context),
            )
        except GuardError as error:
            print(f"refused: {error}", file=sys.stderr)
            return EXIT_REFUSED
        except ValueError as error:  # a bad --stack-name, or no CDK CLI
            print(f"harness verify --target aws: {error}", file=sys.stderr)
            return 2
        except (BotoCoreError, ClientError) as error:
            print(f"cannot check the AWS account: {error}", file=sys.stderr)
            return EXIT_FAILED
        except Interrupted as interruption:
            return interruption.exit_code
        write_ci_outputs(environ, prefix, outputs)

        failure: int | None = None
        interrupted: Interrupted | None = None
        teardown = EXIT_OK
        try:
            code = deploy_stacks(
                prefix,
                cdk=cdk,
                cloud=client,
                outputs=outputs,
                ttl_hours=options.ttl_hours,
                owner=options.owner or derive_owner(environ),
            )
            steps.append(("deploy", "ok" if code == 0 else f"FAILED (exit {code})"))
            if code != 0:
                failure = code
            else:
                features = [
                    *_command(
                        options.features_command, environ, FEATURES_ENV, DEFAULT_FEATURES_COMMAND
                    ),
                    *(
                        "--target",
                        "aws",
                        "--outputs",
                        str(outputs),
                        "--report-dir",
                        str(report_dir),
                    ),
                    *options.pytest_args,
                ]
                print("$ " + shlex.join(features), flush=True)
                code = run_child(features, env=environ, cwd=options.cwd)
                steps.append(("features", "ok" if code == 0 else f"FAILED (exit {code})"))
                failure = code or None
                if options.load_smoke and failure is None:
                    load = [
                        *_command(options.load_command, environ, LOAD_ENV, DEFAULT_LOAD_COMMAND),
                        *(
                            "--scenario",
                            "api_ingest",
                            "--shape",
                            "smoke",
                            "--target",
                            "aws",
                            "--outputs",
                            str(outputs),
                        ),
                    ]
                    print("$ " + shlex.join(load), flush=True)
                    code = run_child(load, env=environ, cwd=options.cwd)
                    steps.append(("load smoke", "ok" if code == 0 else f"FAILED (exit {code})"))
                    failure = code or None
                elif options.load_smoke:
                    steps.append(("load smoke", "skipped (features failed)"))
        except Interrupted as interruption:
            interrupted = interruption
            steps.append(("interrupted", f"by {interruption}; tearing down"))
            print(
                f"\n{interruption}: tearing down the stacks of {prefix}",
                file=sys.stderr,
                flush=True,
            )
        finally:
            with shielded():
                if failure is not None and options.keep_on_failure and interrupted is None:
                    _print_keep(prefix, options)
                    steps.append(("teardown", "kept (--keep-on-failure)"))
                else:
                    try:
                        teardown = destroy_stacks(
                            prefix,
                            cdk=cdk,
                            cloud=client,
                            timeout=options.destroy_timeout,
                            interval=options.poll_interval,
                        )
                    except (
                        Exception
                    ) as error:  # report; the exception that got us here matters more
                        print(f"teardown of {prefix} failed: {error}", file=sys.stderr)
                        teardown = EXIT_FAILED
                    steps.append(("teardown", "ok" if teardown == 0 else "FAILED"))
                _print_summary(prefix, steps)
    if interrupted is not None:
        return interrupted.exit_code
    if failure is not None:
        return failure
    return teardown


def _print_keep(prefix: str, options: AwsVerifyOptions) -> None:
    command = ["harness", "stack", "destroy", prefix]
    if options.cdk_command:
        command += ["--cdk-command", options.cdk_command]
    print(
        f"\n--keep-on-failure: kept the stacks of {prefix} for debugging. They carry an "
        "expires-at tag; `harness stack reap` deletes them once it has passed.\n"
        f"Remove them now with:\n  {shlex.join(command)}",
        flush=True,
    )


def _print_summary(prefix: str, steps: list[tuple[str, str]]) -> None:
    print(f"\nAWS verification summary ({prefix}):", flush=True)
    for step, result in steps:
        print(f"  {step:<12} {result}", flush=True)
