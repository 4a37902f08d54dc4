"""Root pytest configuration shared by every test tier.

It owns the options that choose a target for the Gherkin features (``--target``,
``--outputs``, ``--stack-prefix``, ``--report-dir``) and loads the feature steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.node import put_node_on_path

# jsii starts `node` from PATH when aws_cdk is first imported: make it the wheel's Node 24.
put_node_on_path()

# Step definitions live in features/steps (one module per concern); as plugins they are
# visible to every feature file without star imports.
pytest_plugins = [
    "features.steps.common",
    "features.steps.submission",
    "features.steps.processing",
    "features.steps.observability",
    "features.steps.configuration",
    "features.steps.lifecycle",
    "features.steps.monitoring",
    "features.steps.dead_letters",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("task-api", "Task API target for the Gherkin features")
    group.addoption(
        "--target",
        choices=("local", "aws"),
        default="local",
        help="run the features against a fresh local stack (default) or AWS",
    )
    group.addoption(
        "--outputs",
        type=Path,
        default=None,
        help="outputs file of a running stack (cdk deploy --outputs-file shape)",
    )
    group.addoption(
        "--assembly",
        type=Path,
        default=None,
        help="local target: deploy this cloud assembly (e.g. the production profile's) "
        "instead of synthesizing the ephemeral profile",
    )
    group.addoption(
        "--stack-prefix",
        default=None,
        help="AWS only: read the outputs of the deployed stacks <prefix>-*",
    )
    group.addoption(
        "--report-dir",
        type=Path,
        default=Path("reports/features"),
        help="where the feature reports go (HTML, cucumber JSON, summary)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Runs before pytest-bdd's own configure, so its cucumber JSON lands in the report dir.
    if _runs_features(config):
        report_dir: Path = config.getoption("report_dir")
        report_dir.mkdir(parents=True, exist_ok=True)
        if not config.option.cucumber_json_path:
            config.option.cucumber_json_path = str(report_dir / "cucumber.json")
        from harness.reports import FeatureReport

        config.pluginmanager.register(
            FeatureReport(report_dir, config.getoption("target")), "task-api-feature-report"
        )


def _runs_features(config: pytest.Config) -> bool:
    features = (Path(str(config.rootpath)) / "features").resolve()
    args = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [features]
    return any(arg == features or features in arg.parents for arg in args)
