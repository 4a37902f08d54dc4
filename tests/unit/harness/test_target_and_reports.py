"""The outputs-file reader and the QA report: clear errors, escaped HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.reports import FeatureReport, ScenarioResult, StepResult
from harness.target import Target, TargetError

LOCAL = {
    "local-Queue": {
        "TaskQueueUrl": "http://127.0.0.1:1/q",
        "DeadLetterQueueUrl": "d",
        "TasksTableName": "t",
        "AwsEndpointUrl": "http://127.0.0.1:1",
        "Region": "us-east-1",
        "Profile": "ephemeral",
    },
    "local-Api": {
        "ApiUrl": "http://127.0.0.1:2/prod/",
        "AwsEndpointUrl": "http://127.0.0.1:1",
        "Region": "us-east-1",
    },
}


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    return path


def test_outputs_of_all_stacks_are_merged(tmp_path: Path) -> None:
    target = Target.from_outputs_file(_write(tmp_path, json.dumps(LOCAL)), "local")
    assert target.output("ApiUrl") == "http://127.0.0.1:2/prod/"
    assert target.endpoint_url == "http://127.0.0.1:1"
    assert target.fault_injection is True


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must map stack names to objects"),
        (json.dumps({"s": {"ApiUrl": "x"}}), "lacks required outputs: TaskQueueUrl"),
        (json.dumps({"a": {"ApiUrl": "x"}, "b": {"ApiUrl": "y"}}), "differs between stacks"),
    ],
)
def test_a_broken_outputs_file_is_a_clear_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "outputs.json" if content is None else _write(tmp_path, content)
    with pytest.raises(TargetError, match=message):
        Target.from_outputs_file(path, "aws")


def test_the_local_target_needs_the_endpoint(tmp_path: Path) -> None:
    aws_only = {"s": {k: v for k, v in LOCAL["local-Queue"].items() if k != "AwsEndpointUrl"}}
    aws_only["s"]["ApiUrl"] = "https://x"
    del aws_only["s"]["Region"]
    path = _write(tmp_path, json.dumps(aws_only))
    assert Target.from_outputs_file(path, "aws").endpoint_url is None
    with pytest.raises(TargetError, match="AwsEndpointUrl, Region"):
        Target.from_outputs_file(path, "local")


def test_the_report_escapes_everything_a_task_or_failure_can_carry(tmp_path: Path) -> None:
    report = FeatureReport(tmp_path, "local")
    hostile = "<script>alert('x')</script>"
    report.scenarios.append(
        ScenarioResult(
            feature=f"Feature {hostile}",
            feature_description=hostile,
            feature_file="f.feature",
            name=f"Scenario {hostile}",
            tags=[hostile],
            outcome="failed",
            duration_s=1.0,
            steps=[StepResult("Given", f"a task titled {hostile}", "failed", 0.5)],
            detail=f"AssertionError: stored {hostile}",
        )
    )
    report.pytest_sessionfinish()
    page = (tmp_path / "features.html").read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["totals"] == {"passed": 0, "failed": 1, "skipped": 0, "not run": 0}
