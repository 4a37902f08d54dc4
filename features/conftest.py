"""The target every feature runs against, chosen by ``--target`` (local by default)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from features.session import (
    FEATURES_LOCAL_STACK,
    SCENARIOS_LEFT_OUT,
    SETTLED_SCENARIOS,
    is_scenario,
)
from harness.reports.model import IAM_REFUSED
from harness.target import StackNotDeployedError, Target, TargetError

if TYPE_CHECKING:
    from harness.local_stack.cloud import LocalDeployment

# How many calls the local cloud had refused (IAM) when a scenario started.
_REFUSALS_BEFORE = pytest.StashKey[int]()
# Tags that need a capability of the target.
_FAULT_TAG = "fault_injection"
# Feature tags (pytest markers; --strict-markers wants each declared).
FEATURE_TAGS = {
    "spec": "checks the spec's numbers as literals; also run on a production-profile stack",
    "resilience": "feature tag",
    "retry": "feature tag",
    "acceptance": "an accepted task of some kind is processed and stored as the rules say",
    "validation": "a rule's limit: the last accepted and the first rejected value",
    "sanitization": "text is trimmed, cleaned of control characters, normalized, escaped",
    "idempotency": "the Idempotency-Key header",
}


def pytest_configure(config: pytest.Config) -> None:
    for tag, meaning in FEATURE_TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}")


@pytest.fixture(scope="session")
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The stack under test: a fresh local stack unless ``--outputs``/``--stack-prefix``.

    The local stack synthesizes the ephemeral profile, or deploys ``--assembly``.
    """
    name = request.config.getoption("target")
    outputs: Path | None = request.config.getoption("outputs")
    prefix: str | None = request.config.getoption("stack_prefix")
    assembly: Path | None = request.config.getoption("assembly")
    try:
        if assembly is not None and (outputs is not None or name == "aws"):
            raise TargetError("--assembly only applies to a fresh local stack")
        if outputs is not None:
            yield Target.from_outputs_file(outputs, name)
        elif name == "aws":
            if not prefix:
                raise TargetError("--target aws needs --outputs FILE or --stack-prefix NAME")
            from harness.stack.outputs import write_outputs_for_prefix

            path = tmp_path_factory.mktemp("aws") / "cdk-outputs.json"
            write_outputs_for_prefix(prefix, path)
            yield Target.from_outputs_file(path, "aws")
        else:
            from harness.local_stack.cloud import LocalDeployment, assembly_lines

            with _deployed(
                LocalDeployment(
                    work_dir=tmp_path_factory.mktemp("local-stack"),
                    assembly_dir=assembly,
                    on_progress=assembly_lines(request.config),
                )
            ) as stack:
                request.config.stash[FEATURES_LOCAL_STACK] = stack
                try:
                    yield Target.from_outputs_file(stack.outputs_file, "local")
                finally:
                    del request.config.stash[FEATURES_LOCAL_STACK]
    except TargetError as exc:
        pytest.exit(f"cannot use the {name} target: {exc}", returncode=2)


@contextmanager
def _deployed(stack: LocalDeployment) -> Iterator[LocalDeployment]:
    """``stack`` started, and stopped when the block ends. A stack that cannot start
    (synthesis, a template or resource refused, the local cloud itself) raises
    :class:`StackNotDeployedError`: the scenario that asked for it failed on no product
    behaviour, and the report says so (``harness mutate`` reports an error, not a kill)."""
    try:
        stack.start()  # stops whatever it started before raising
    except Exception as error:
        raise StackNotDeployedError(f"{type(error).__name__}: {error}") from error
    try:
        yield stack
    finally:
        stack.stop()


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Note a selection that left scenarios out (``features.session``)."""
    left_out = [item for item in items if is_scenario(item)]
    if left_out:
        left_out[0].config.stash[SCENARIOS_LEFT_OUT] = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    stack = item.config.stash.get(FEATURES_LOCAL_STACK, None)
    if stack is not None:
        item.stash[_REFUSALS_BEFORE] = stack.endpoint.access.refusal_count


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note each scenario that passed or was skipped (``features.session``); a failed one
    on the local stack says which calls the functions' roles were refused meanwhile."""
    report = yield
    if is_scenario(item) and (report.skipped or (report.when == "call" and report.passed)):
        item.config.stash.setdefault(SETTLED_SCENARIOS, set()).add(item.nodeid)
    stack = item.config.stash.get(FEATURES_LOCAL_STACK, None)
    if report.when == "call" and report.failed and stack is not None:
        refused = stack.endpoint.access.refusals_since(item.stash.get(_REFUSALS_BEFORE, 0))
        if refused:
            lines = [
                f"{IAM_REFUSED} {c.action} on {c.resource} (role {c.role_arn.rsplit('/', 1)[-1]})"
                for c in refused
            ]
            report.longrepr = "\n".join([report.longreprtext, "", *lines])
    return report


@pytest.fixture(autouse=True)
def _target_capabilities(request: pytest.FixtureRequest) -> None:
    """Skip scenarios whose tags need something this target does not have."""
    node = request.node
    markers = {marker.name for marker in node.iter_markers()}
    if not markers & {_FAULT_TAG, "local_only", "aws_only"}:
        return
    target: Target = request.getfixturevalue("target")
    if _FAULT_TAG in markers and not target.fault_injection:
        pytest.skip(f"needs fault injection, which the {target.profile} profile does not have")
    if "local_only" in markers and target.name != "local":
        pytest.skip("only meaningful against the local stack")
    if "aws_only" in markers and target.name != "aws":
        pytest.skip("only meaningful against a deployed AWS stack")
