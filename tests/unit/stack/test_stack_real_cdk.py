"""The real CDK CLI (pinned in package.json) driven by the harness against a moto server.

Checks what the stand-in cannot: that the pinned CLI accepts the exact ``deploy``/``destroy``
arguments the harness builds, passes the ``-c`` context to the app, writes the outputs
file the harness reads, and that the CLI reaches moto through ``AWS_ENDPOINT_URL``. The app
is ``fake_cdk/tiny_app.py`` (the real one needs Lambda assets and a bootstrapped account).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
from moto.cloudformation.models import CloudFormationBackend

from cdk.contract import REQUIRED_OUTPUTS, flatten
from harness.cli import main
from harness.stack import EXIT_OK
from harness.stack.cdk import PINNED_CDK
from harness.stack.cloud import Cloud

from .conftest import Cli

PREFIX = "ci-real-1-1"
TINY_APP = Path(__file__).parent / "fake_cdk" / "tiny_app.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PINNED_CDK.exists(), reason="the pinned CDK CLI is not installed (npm ci)"
    ),
]


@pytest.fixture
def change_set_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fill a moto gap: after ExecuteChangeSet (how cdk deploys) moto keeps no outputs."""
    original = CloudFormationBackend.execute_change_set

    def execute(
        backend: CloudFormationBackend, change_set_name: str, stack_name: str | None = None
    ) -> Any:
        result = original(backend, change_set_name, stack_name)
        for stack in backend.stacks.values():
            # A stack created by a change set starts with an empty template in moto.
            if stack.template and not stack.template_dict:
                stack._parse_template()
                stack.output_map = stack._create_output_map()
        return result

    monkeypatch.setattr(CloudFormationBackend, "execute_change_set", execute)


def test_real_cdk_deploys_and_destroys_through_the_harness(
    cli: Cli, tmp_path: Path, change_set_outputs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDK_DISABLE_VERSION_CHECK", "1")
    command = shlex.join(
        [
            str(PINNED_CDK),
            "--no-notices",
            "--app",
            f"{sys.executable} {TINY_APP}",
            "--output",
            str(tmp_path / "cdk.out"),
        ]
    )
    outputs = tmp_path / "outputs.json"
    deployed = main(
        [
            "stack",
            "deploy",
            "--ephemeral",
            "--name",
            PREFIX,
            "--outputs",
            str(outputs),
            "--owner",
            "qa",
            "--cdk-command",
            command,
        ]
    )
    assert deployed == EXIT_OK
    assert set(REQUIRED_OUTPUTS) <= set(flatten(json.loads(outputs.read_text())))
    stack = Cloud().get_stack(f"{PREFIX}-Api")
    assert stack is not None
    assert stack.is_ephemeral
    assert stack.tags["owner"] == "qa"
    assert stack.expires_at() is not None

    destroyed = main(
        [
            "stack",
            "destroy",
            PREFIX,
            "--cdk-command",
            command,
            "--poll-interval",
            "0.1",
            "--timeout",
            "60",
        ]
    )
    assert destroyed == EXIT_OK
    assert not {f"{PREFIX}-Queue", f"{PREFIX}-Api", f"{PREFIX}-Monitoring"} & cli.stack_names()
