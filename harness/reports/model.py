"""What the QA report is made of: scenarios with their steps and calls, and the run itself."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from harness.reports.recording import Call

OUTCOMES = ("passed", "failed", "skipped", "not run")
# Starts each line of a failed local scenario's detail that names a call the local cloud
# refused a function's role (AWS's AccessDenied) while the scenario ran.
IAM_REFUSED = "IAM refused (AccessDenied):"
# A failed scenario's cause when the stack did not accept a connection (it stopped).
UNREACHABLE = "stack unreachable"
# A failed scenario's cause when the stack under test was not deployed (the session's
# stack fixture raised ``harness.target.StackNotDeployedError``): nothing was tested.
NOT_DEPLOYED = "stack not deployed"
# Starts such a scenario's message; the rest is the deployment's own error.
NOT_DEPLOYED_MESSAGE = "The stack did not deploy: "


@dataclass
class StepResult:
    keyword: str
    name: str
    status: str  # passed | failed | skipped | not run
    duration_s: float


@dataclass
class ScenarioResult:
    feature: str
    feature_description: str
    feature_file: str
    name: str
    tags: list[str]
    outcome: str  # one of OUTCOMES
    duration_s: float
    steps: list[StepResult] = field(default_factory=list)
    detail: str = ""
    """The whole failure text (traceback included), or the reason for a skip."""
    message: str = ""
    """What a reader needs first: the assertion message, or the plain cause."""
    cause: str = ""
    """``stack unreachable`` when the failure is the stack not answering, :data:`NOT_DEPLOYED`
    when the stack could not be deployed, else empty."""
    examples: dict[str, str] = field(default_factory=dict)
    """An outline example's values, by column."""
    node_id: str = ""
    calls: list[Call] = field(default_factory=list)
    calls_omitted: int = 0

    @property
    def title(self) -> str:
        """The name, followed by the example values the name does not already show."""
        extra = [
            f"{column} = {value}"
            for column, value in self.examples.items()
            if value and value not in self.name
        ]
        return f"{self.name} [{'; '.join(extra)}]" if extra else self.name

    @property
    def anchor(self) -> str:
        """A stable HTML id for links to this scenario."""
        return "s-" + _slug(self.node_id or f"{self.feature_file}-{self.title}")


@dataclass
class RunInfo:
    """The run as a whole: how it ended, and where and on what it ran."""

    target: str
    status: str = "running"  # running | complete | incomplete
    reason: str = ""
    """In plain words, why the run did not complete (empty when it did)."""
    started_at: str = ""
    command: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    """Profile, endpoints, commit, versions: label -> value."""
    settings: dict[str, str] = field(default_factory=dict)
    """The deployed settings that bound every wait: label -> value."""
    settings_error: str = ""
    collection_errors: list[str] = field(default_factory=list)
    scenarios_s: float = 0.0
    wall_time_s: float = 0.0


def feature_anchor(feature_file: str) -> str:
    """The HTML id of a feature's section."""
    return "f-" + _slug(feature_file)


def _slug(text: str) -> str:
    # Readable, and unique: outline examples' ids can share a long prefix.
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def counts(results: list[ScenarioResult]) -> dict[str, int]:
    """How many scenarios ended in each outcome."""
    return {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in OUTCOMES}
