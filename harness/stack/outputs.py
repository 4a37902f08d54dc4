"""The outputs file of an already deployed prefix, read back from CloudFormation.

``cdk deploy --outputs-file`` writes ``{StackName: {OutputKey: value}}``; this writes the
same file from DescribeStacks, for a run that did not deploy (``pytest features --target
aws --stack-prefix NAME``).
"""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from cdk.contract import REQUIRED_OUTPUTS, flatten
from cdk.naming import stack_names
from harness.stack.cloud import Cloud
from harness.target import TargetError


class StackOutputsError(TargetError):
    """The prefix's stacks are missing, unreadable or lack the contract's outputs."""


def outputs_for_prefix(prefix: str, cloud: Cloud | None = None) -> dict[str, dict[str, str]]:
    """``{StackName: {OutputKey: value}}`` for the prefix's three stacks."""
    client = cloud or Cloud()
    result: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for name in stack_names(prefix).values():
        try:
            stack = client.get_stack(name)
        except (BotoCoreError, ClientError) as error:
            raise StackOutputsError(f"cannot read stack {name}: {error}") from error
        if stack is None:
            missing.append(name)
        else:
            result[name] = dict(stack.outputs)
    if missing:
        raise StackOutputsError(
            f"stack(s) {', '.join(missing)} do not exist (deploy {prefix!r} first)"
        )
    absent = [key for key in REQUIRED_OUTPUTS if key not in flatten(result)]
    if absent:
        raise StackOutputsError(f"stacks of {prefix!r} lack the outputs {', '.join(absent)}")
    return result


def write_outputs_for_prefix(prefix: str, path: Path, cloud: Cloud | None = None) -> Path:
    """Write the prefix's outputs file to ``path`` (the ``cdk deploy --outputs-file`` shape)."""
    data = outputs_for_prefix(prefix, cloud)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
