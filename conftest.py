"""Root pytest configuration shared by every test tier.

It owns the options that choose a target for the Gherkin features (``--target``,
``--outputs``, ``--stack-prefix``, ``--report-dir``) and loads the feature steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdk.node import put_node_on_path
from features.session import SCENARIOS_FILE

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
    "features.steps.authentication",
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
    # Under xdist the scenarios' results are spread over processes: no QA report then
    # (``make test``); ``make verify`` and ``pytest features`` write it.
    if _under_xdist(config):
        return False
    features = (Path(str(config.rootpath)) / "features").resolve()
    args = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [features]
    return any(arg == features or features in arg.parents for arg in args)


# --- pytest-xdist (`make test` runs the suite on several workers) -------------------------

# Files that take minutes: under xdist they start first, each on its own worker, so that
# none of them is what the last worker is still running when the others are done.
_LONG_FIRST = (
    SCENARIOS_FILE,
    "tests/hardening/test_faults_under_load.py",
    "tests/local_cloud/test_mutation_subset.py",
)
# Reads what the session's feature run did on the features' own local stack
# (``features.session``), so it runs after the scenarios, in the features' worker.
_WITH_THE_FEATURES = "tests/hardening/test_least_privilege.py"


def _under_xdist(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput") or bool(getattr(config.option, "numprocesses", None))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The least-privilege check after the scenarios; on several xdist workers, also the
    longest files first. On one process (or one worker) the features stay last, as
    collected: their session-long stack must not share the process with a later file's."""
    workerinput = getattr(config, "workerinput", None)
    several_workers = workerinput is not None and int(workerinput["workercount"]) >= 2
    long_first = _LONG_FIRST if several_workers else ()

    def rank(item: pytest.Item) -> float:
        path = item.nodeid.split("::")[0]
        if path == _WITH_THE_FEATURES:  # right behind the scenarios
            return long_first.index(SCENARIOS_FILE) + 0.5 if long_first else len(_LONG_FIRST)
        return long_first.index(path) if path in long_first else len(_LONG_FIRST) - 0.5

    items.sort(key=rank)  # stable: within a file, and for the rest, the order stays


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (whole files to a worker: module fixtures start once) in the
    order ``pytest_collection_modifyitems`` left (xdist would sort files by test count),
    with the least-privilege check counted as part of the features' file, and the
    features' worker running nothing else: their local stack lives for the whole session
    and would share the worker's in-process moto with a later file's stack."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    features = SCENARIOS_FILE
    config.option.loadscopereorder = False

    class FeaturesAlone(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(_WITH_THE_FEATURES + "::"):
                return features
            return str(super()._split_scope(nodeid))

        def _assign_work_unit(self, node: Any) -> None:
            # With a single worker there is nobody else to run the rest.
            if len(self.nodes) == 1 or features not in self.assigned_work.get(node, {}):
                super()._assign_work_unit(node)

    return FeaturesAlone(config, log)
