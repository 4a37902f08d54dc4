"""The parity suite: AWS's recorded answers replayed against our SQS engine and plain moto.

A test taking the ``sqs`` fixture runs once per backend (``engine``, ``moto``) and
protocol (``json``, ``query``; ``@pytest.mark.protocols("json")`` when the recording used
one). Markers:

- ``@pytest.mark.aws_recording(name, validated=...)``: the recorded case the test
  replays (every test here carries one; the score counts them);
- ``@pytest.mark.deviation(name)``: a listed deliberate difference of ours
  (:data:`tests.parity.deviations.DEVIATIONS`); the engine's run is a strict xfail;
- ``@pytest.mark.moto_differs(reason, protocols=...)``: plain moto answers otherwise; its
  run is a strict xfail, so the suite says so when moto catches up.

The run ends with the parity score (terminal summary).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from localcloud.endpoint import AwsEndpoint
from localcloud.sqs import DEFAULT_ACCOUNT_ID, FakeClock
from localcloud.sqs.testing import client, query_client
from tests.parity.backends import EngineTime, MotoClock, Sqs
from tests.parity.deviations import DEVIATIONS
from tests.parity.expect import LOCALSTACK, LOCALSTACK_COMMIT

BACKENDS = ("engine", "moto")
PROTOCOLS = ("json", "query")


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "aws_recording(name, validated): the AWS-validated recorded case this test replays",
        "deviation(name): a listed deliberate difference; the engine's run is a strict xfail",
        "moto_differs(reason, protocols=None): plain moto answers otherwise (strict xfail)",
        "protocols(*names): the protocols the recording used (default: json and query)",
    ):
        config.addinivalue_line("markers", line)
    config.stash[_SCORE] = _Score()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sqs" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("protocols")
    protocols = marker.args if marker else PROTOCOLS
    metafunc.parametrize(
        "sqs",
        [pytest.param((b, p), id=f"{b}-{p}") for b in BACKENDS for p in protocols],
        indirect=True,
    )


def _applies(marker: pytest.Mark, protocol: str) -> bool:
    protocols = marker.kwargs.get("protocols")
    return protocols is None or protocol in protocols


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "sqs" in callspec.params:
            backend, protocol = callspec.params["sqs"]
        elif item.get_closest_marker("aws_recording") is not None:
            backend, protocol = "engine", "json"  # the event shapes: our local cloud's
        else:
            continue
        deviation = item.get_closest_marker("deviation")
        if deviation is not None and backend == "engine" and _applies(deviation, protocol):
            name = deviation.args[0]
            if name not in DEVIATIONS:
                raise pytest.UsageError(f"{item.nodeid}: unknown deviation {name!r}")
            item.add_marker(
                pytest.mark.xfail(strict=True, reason=f"deviation {name}: {DEVIATIONS[name]}")
            )
        moto = item.get_closest_marker("moto_differs")
        if moto is not None and backend == "moto" and _applies(moto, protocol):
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"plain moto: {moto.args[0]}"))


# -- backends -----------------------------------------------------------------------------


@dataclass
class _Backend:
    url: str
    json: Any
    query: Any
    clock: Any


@pytest.fixture(scope="session")
def engine_backend() -> Iterator[_Backend]:
    """Our endpoint, its engine on a virtual clock (quotas on, as in the local stack)."""
    clock = FakeClock(virtual_waits=True)
    with AwsEndpoint(clock=clock) as endpoint:
        yield _Backend(
            endpoint.url,
            client("sqs", endpoint.url),
            query_client(endpoint.url),
            EngineTime(clock, endpoint.sqs),
        )


@pytest.fixture(scope="session")
def moto_backend() -> Iterator[_Backend]:
    """Plain moto's server in this process, with a virtual SQS clock (installed into moto
    only while a case runs on it: moto's backends are process-global)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield _Backend(url, client("sqs", url), query_client(url), MotoClock())
    finally:
        server.stop()


@pytest.fixture
def sqs(request: pytest.FixtureRequest) -> Iterator[Sqs]:
    """One backend and protocol for one recorded case (see the module docstring)."""
    kind, protocol = request.param
    backend: _Backend = request.getfixturevalue(f"{kind}_backend")
    case = Sqs(
        kind=kind,
        protocol=protocol,
        url=backend.url,
        json=backend.json,
        query=backend.query,
        clock=backend.clock,
        account=DEFAULT_ACCOUNT_ID,
    )
    if kind == "moto":
        with backend.clock.installed():
            yield case
    else:
        yield case


# -- the score ----------------------------------------------------------------------------


@dataclass
class _Score:
    # outcome by (group, nodeid): True when the answer matched AWS's recording
    matched: dict[tuple[str, str], bool] = field(default_factory=dict)
    deviations: set[tuple[str, str]] = field(default_factory=set)  # (group, deviation)


_SCORE = pytest.StashKey[_Score]()


def _group(item: pytest.Item) -> str | None:
    if item.get_closest_marker("aws_recording") is None:
        return None
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "sqs" in callspec.params:
        return str(callspec.params["sqs"][0])
    return "events"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    group = _group(item)
    if group is None or report.when not in ("setup", "call"):
        return report
    if report.when == "setup" and report.passed:
        return report
    score = item.config.stash[_SCORE]
    strict_xpass = report.failed and "XPASS(strict)" in str(report.longrepr)
    score.matched[(group, item.nodeid)] = (report.passed and report.when == "call") or (
        strict_xpass
    )
    deviation = item.get_closest_marker("deviation")
    if deviation is not None and group != "moto" and hasattr(report, "wasxfail"):
        score.deviations.add((group, deviation.args[0]))
    return report


def score_lines(score: _Score) -> list[str]:
    """The score, one line per backend (and one for the event shapes)."""
    lines = []
    for group, label in (
        ("engine", "our SQS engine"),
        ("moto", "plain moto"),
        ("events", "event shapes (ESM SQS records, REST v1 proxy events)"),
    ):
        outcomes = [ok for (g, _), ok in score.matched.items() if g == group]
        if not outcomes:
            continue
        matched = sum(outcomes)
        share = matched / len(outcomes)
        line = f"{label}: {matched}/{len(outcomes)} recorded cases match AWS ({share:.0%})"
        deviations = sorted(d for g, d in score.deviations if g == group)
        if deviations:
            line += f"; the rest are listed deviations: {', '.join(deviations)}"
        lines.append(line)
    return lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = score_lines(config.stash[_SCORE])
    if lines:
        terminalreporter.section("AWS parity (tests/parity, AWS-recorded answers)")
        terminalreporter.write_line(
            f"recordings: {LOCALSTACK}@{LOCALSTACK_COMMIT[:10]}, AWS-validated cases only; "
            "deviations: docs/local-cloud/parity.md"
        )
        for line in lines:
            terminalreporter.write_line(line)
