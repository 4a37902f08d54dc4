"""Security checks on a running local stack and on what the project renders.

- nothing the local stack starts listens beyond loopback;
- a task's description (its payload) never reaches the functions' logs at the default
  log level;
- script cannot travel into an HTML page: a task titled ``<script>`` is stored escaped,
  and the QA report escapes scenario names, steps and failure text;
- the API's IAM authorization: unsigned, forged and unauthorized requests are refused by
  the gateway and never run the API function (what only AWS enforces:
  docs/reliability.md#security).
- IAM is enforced on the running stack: the API function's own credentials are refused
  what its role does not allow (AWS's AccessDenied), while the harness's are not checked.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from cdk import contract
from harness.api_auth import ApiSigner
from harness.drivers import TaskApi, TaskStore
from harness.local_stack.cloud import LocalDeployment
from harness.reports import FeatureReport, ScenarioResult, StepResult
from harness.target import Target
from harness.waiting import wait_until
from localcloud.identity import Principal

SCRIPT = "<script>alert(1)</script>"
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp*


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    return inodes


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    """(local address in /proc hex form, port) of every listening TCP socket of ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        inodes |= _socket_inodes(pid)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and inode in inodes:
                address, port = local.split(":")
                found.append((address, int(port, 16)))
    return found


def _children(pid: int) -> set[int]:
    """``pid``'s descendants (the Lambda worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_nothing_listens_beyond_loopback(local_stack: LocalDeployment, target: Target) -> None:
    # Invoke both functions first so their workers (and runtime API ports) exist.
    api = TaskApi(target)
    try:
        task_id = api.submit({"title": "t", "description": "d", "priority": "low"}).json["task_id"]
    finally:
        api.close()
    TaskStore(target).wait_for_status(task_id, ["COMPLETED"], timeout=30)
    me = os.getpid()
    sockets = _listening({me} | _children(me))
    assert sockets, "found no listening socket at all: the probe is broken"
    # 127.0.0.1 is 0100007F in /proc/net/tcp; ::1 is all zeros but the last word.
    loopback = {"0100007F", "00000000000000000000000001000000"}
    exposed = [(address, port) for address, port in sockets if address not in loopback]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_task_payloads_stay_out_of_the_logs(target: Target) -> None:
    marker = f"confidential-{uuid.uuid4().hex}"
    api = TaskApi(target)
    try:
        answer = api.submit({"title": "secret", "description": marker, "priority": "high"})
    finally:
        api.close()
    assert answer.status == 200, answer.describe()
    task_id = answer.json["task_id"]
    TaskStore(target).wait_for_status(task_id, ["COMPLETED"], timeout=30)
    logs = target.client("logs")

    def function_logs() -> str | None:
        # Both functions have logged about this task once its id appears in each group.
        texts = []
        for key in (contract.API_FUNCTION_NAME, contract.PROCESSOR_FUNCTION_NAME):
            group = f"/aws/lambda/{target.output(key)}"
            events = logs.filter_log_events(logGroupName=group)["events"]
            texts.append("\n".join(event["message"] for event in events))
        return "\n".join(texts) if all(task_id in text for text in texts) else None

    text = wait_until(
        function_logs, timeout=20, interval=0.5, description=f"log lines about task {task_id}"
    )
    assert marker not in text, "a task description reached the function logs"


def test_a_script_title_is_stored_escaped(target: Target) -> None:
    api = TaskApi(target)
    try:
        answer = api.submit({"title": SCRIPT, "description": SCRIPT, "priority": "low"})
    finally:
        api.close()
    assert answer.status == 200, answer.describe()
    stored = TaskStore(target).get(answer.json["task_id"])
    assert stored is not None
    for field in ("title", "description"):
        assert stored[field] == "&lt;script&gt;alert(1)&lt;/script&gt;", stored[field]


def test_a_functions_credentials_get_only_what_its_role_allows(
    local_stack: LocalDeployment, target: Target
) -> None:
    from botocore.exceptions import ClientError

    api_function = target.client("lambda").get_function_configuration(
        FunctionName=target.output(contract.API_FUNCTION_NAME)
    )
    endpoint = local_stack.endpoint
    keys = endpoint.identities.credentials_for(
        Principal(api_function["FunctionName"], api_function["Role"])
    )
    as_api: Any = boto3.client(  # the credentials the API's workers sign with
        "dynamodb",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=keys["AWS_SESSION_TOKEN"],
    )
    table = target.output(contract.TASKS_TABLE_NAME)
    key = {"task_id": {"S": f"not-a-task-{uuid.uuid4()}"}}
    # The API's role may read tasks, never delete them, nor touch anything else.
    as_api.get_item(TableName=table, Key=key)
    with pytest.raises(ClientError) as refused:
        as_api.delete_item(TableName=table, Key=key)
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", error
    assert "dynamodb:DeleteItem" in error["Message"], error
    refused = local_stack.status()["iam_refused"]  # what `harness local status` lists
    assert {
        "role_arn": api_function["Role"],
        "action": "dynamodb:DeleteItem",
        "resource": endpoint.access.table_arn(table),
    } in refused, refused
    # The harness's own identity is not a role's: not checked.
    target.client("dynamodb").delete_item(TableName=table, Key=key)


def test_the_qa_report_escapes_script(tmp_path: Path) -> None:
    report = FeatureReport(tmp_path, "local")
    report.scenarios.append(
        ScenarioResult(
            feature=f"Feature {SCRIPT}",
            feature_description=SCRIPT,
            feature_file="x.feature",
            name=f"Scenario {SCRIPT}",
            tags=[SCRIPT],
            outcome="failed",
            duration_s=0.1,
            steps=[StepResult("Given", f"a step {SCRIPT}", "failed", 0.1)],
            detail=f"AssertionError: {SCRIPT}",
        )
    )
    page = report.render_html()
    assert "alert(1)" in page, "the report does not show the scenario at all"
    assert "<script>alert" not in page.lower(), "script reached the QA report unescaped"


def test_refused_requests_never_run_the_api_function(
    local_stack: LocalDeployment, target: Target
) -> None:
    function = target.output(contract.API_FUNCTION_NAME)
    url = target.output(contract.API_URL) + "tasks"
    body = b'{"title": "t", "description": "d", "priority": "low"}'
    before = local_stack.lambdas.stats()[function].invocations
    anonymous, no_invoke = TaskApi(target, who="anonymous"), TaskApi(target, who="no_invoke")
    invoker = ApiSigner.for_target(target)
    forged = invoker.headers("POST", url, body)
    forged["Authorization"] = forged["Authorization"][:-4] + "0000"  # another signature
    stale = dict(forged)
    try:
        refused = [
            anonymous.submit(raw_body=body),
            anonymous.get(str(uuid.uuid4())),
            no_invoke.submit(raw_body=body),
            no_invoke.get(str(uuid.uuid4())),
            anonymous.request("POST", "/tasks", data=body, headers=forged),
            anonymous.request("POST", "/tasks", data=body + b" ", headers=invoker.headers(
                "POST", url, body
            )),  # signed for another body
            anonymous.request("POST", "/tasks", data=body, headers={
                **stale, "X-Amz-Date": "20200101T000000Z"
            }),
        ]  # fmt: skip
    finally:
        anonymous.close()
        no_invoke.close()
    assert [r.status for r in refused] == [403] * len(refused), [r.describe() for r in refused]
    assert local_stack.lambdas.stats()[function].invocations == before
