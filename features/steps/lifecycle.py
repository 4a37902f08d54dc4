"""Steps of the lifecycle feature: what each answer of the API promises, under faults behind
the API, and the processor's record of attempts (a crash on a task's last attempt)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pytest_bdd import parsers, then, when

from cdk import contract
from features.steps.common import ScenarioTasks, fault_headers, stored
from handlers.domain.constants import (
    DLQ_DETAIL_ATTRIBUTE,
    DLQ_REASON_ATTRIBUTE,
    DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE,
)
from handlers.domain.messages import PoisonReason
from handlers.domain.processing import FailureCode
from harness.drivers import (
    ApiResponse,
    DeadLetters,
    Functions,
    TaskApi,
    TaskQueue,
    TaskStore,
    history_of,
    processing_order,
)
from harness.payloads import valid_task
from harness.target import DeployedSettings, Target
from harness.waiting import wait_until

# The statuses a task can settle in; PENDING past its deadline reads CANCELLED in GET.
SETTLED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class Submission:
    """One keyed submission of this scenario: what was sent and what came back."""

    key: str
    title: str
    response: ApiResponse
    task_id: str | None = None  # once known (from the answer, or found by its title)


def pending_window_s(target: Target) -> int:
    """How long a stored task may stay PENDING: the API function's own setting."""
    environment = Functions(target).environment(contract.API_FUNCTION_NAME)
    return int(environment["PENDING_WINDOW_SECONDS"])


# --- the answers under faults behind the API ---------------------------------------------


@when(
    parsers.parse(
        'a client submits a valid task with an idempotency key while "{fault}" happens '
        "behind the API"
    ),
    target_fixture="submission",
)
def submit_with_api_fault(api: TaskApi, target: Target, fault: str) -> Submission:
    key, title = f"lifecycle-{uuid.uuid4()}", f"lifecycle {uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key, **fault_headers(target, fault)}
    return Submission(key, title, api.submit(valid_task(title), headers=headers))


@then(parsers.parse("the API answers {answer}"))
def api_answers(submission: Submission, answer: str) -> None:
    response = submission.response
    expected = int(answer.split()[0])
    assert response.status == expected, f"expected {answer}, got {response.describe()}"
    body = response.json if isinstance(response.json, dict) else {}
    if "outcome unknown" in answer:
        assert body.get("error") == "outcome_unknown", body
        assert body.get("task_id"), f"an unknown outcome must name its task: {body}"
        assert response.headers.get("Retry-After"), response.headers
        submission.task_id = str(body["task_id"])
    if expected == 503:
        assert body.get("error") == "service_unavailable", body
        assert response.headers.get("Retry-After"), response.headers


def _the_task(store: TaskStore, submission: Submission) -> dict[str, Any]:
    """The one task stored for this submission (found as an operator would: by title)."""
    found = store.find_by_title(submission.title)
    assert len(found) == 1, f"expected one task titled {submission.title!r}: {found}"
    submission.task_id = str(found[0]["task_id"])
    return found[0]


def _never_processed(item: dict[str, Any]) -> None:
    assert int(item.get("attempts", 0)) == 0, f"the task was attempted: {item}"
    assert not item.get("history"), f"the task has a processing history: {item}"
    assert "applied" not in item, f"the task was applied: {item}"


@then("the task was never stored")
def never_stored(store: TaskStore, submission: Submission) -> None:
    assert store.find_by_title(submission.title) == [], "a task was stored despite the 503"


@then("the task is CANCELLED and never processed")
def cancelled_never_processed(
    api: TaskApi, target: Target, store: TaskStore, submission: Submission, budget: DeployedSettings
) -> None:
    # Whatever message was sent (a lost send's did arrive) has been delivered and dropped.
    TaskQueue(target).wait_until_empty(timeout=budget.redelivery_budget_s(1))
    item = _the_task(store, submission)
    assert item["status"] == "CANCELLED", item
    _never_processed(item)
    seen = api.get(item["task_id"])
    assert seen.status == 200, seen.describe()
    assert seen.json["status"] == "CANCELLED", seen.describe()


@then("the task settles COMPLETED or CANCELLED by its deadline")
def settles(
    api: TaskApi, target: Target, store: TaskStore, submission: Submission, budget: DeployedSettings
) -> None:
    task_id = submission.task_id or _the_task(store, submission)["task_id"]
    timeout = pending_window_s(target) + budget.redelivery_budget_s(1)
    settled = wait_until(
        lambda: (r := api.get(task_id)).status == 200 and r.json["status"] in SETTLED and r,
        timeout=timeout,
        interval=0.5,
        description=f"task {task_id} to settle (COMPLETED or CANCELLED), not stay PENDING",
    )
    assert settled.json["status"] in {"COMPLETED", "CANCELLED"}, settled.describe()
    if settled.json["status"] == "CANCELLED":
        _never_processed(stored(store, task_id))


@then("the task is CANCELLED once its deadline passes, never processed")
def cancelled_by_deadline(
    api: TaskApi, target: Target, store: TaskStore, submission: Submission
) -> None:
    item = _the_task(store, submission)
    task_id = item["task_id"]
    assert item["status"] == "PENDING", f"the function ended before confirming: {item}"
    wait_until(
        lambda: api.get(task_id).json.get("status") == "CANCELLED",
        timeout=pending_window_s(target) + 5.0,
        interval=0.5,
        description=f"task {task_id} to read CANCELLED once its deadline passed",
    )
    _never_processed(stored(store, task_id))


@when("the client retries with the same idempotency key and no fault", target_fixture="retry")
def retry_same_key(api: TaskApi, target: Target, submission: Submission) -> ApiResponse:
    # A function that ended leaves its idempotency record in progress until the end of
    # its invocation's time: the retry is told 409 + Retry-After until then.
    function = Functions(target).configuration(contract.API_FUNCTION_NAME)
    headers = {"Idempotency-Key": submission.key}
    seen: dict[str, ApiResponse] = {}

    def attempt() -> ApiResponse | None:
        seen["last"] = api.submit(valid_task(submission.title), headers=headers)
        return None if seen["last"].status == 409 else seen["last"]

    return wait_until(
        attempt,
        timeout=float(function["Timeout"]) + 10.0,
        interval=1.0,
        description="the retry to be answered other than 409 (request in progress)",
    )


@then("the retry is accepted with the same task, which is COMPLETED once")
def retry_accepted(
    retry: ApiResponse, store: TaskStore, submission: Submission, budget: DeployedSettings
) -> None:
    assert retry.status == 200, retry.describe()
    task_id = str(retry.json["task_id"])
    if submission.task_id is not None:
        assert task_id == submission.task_id, "the retry made another task"
    item = store.wait_for_status(task_id, {"COMPLETED"}, timeout=budget.redelivery_budget_s(1))
    assert int(item.get("applied", 0)) == 1, item
    assert [t["task_id"] for t in store.find_by_title(submission.title)] == [task_id]


# --- a crash on the last attempt -------------------------------------------------------------


@when(
    parsers.parse(
        "a client submits a valid task, a task that crashes the processor on each of its "
        "{attempts:d} attempts, and {count:d} valid tasks"
    )
)
def submit_around_last_attempt_crash(
    api: TaskApi,
    target: Target,
    tasks: ScenarioTasks,
    budget: DeployedSettings,
    attempts: int,
    count: int,
) -> None:
    assert attempts == budget.attempt_budget == 3, "the spec's 3 attempts"
    plan = [("before", None), ("crasher", f"crash-attempts={attempts}")]
    plan += [(f"behind {n}", None) for n in range(1, count + 1)]
    for label, directive in plan:
        headers = fault_headers(target, directive) if directive else {}
        submitted = tasks.add(label, api.submit(valid_task(f"Batch {label}"), headers=headers))
        assert submitted.response.status == 200, submitted.response.describe()


def _crash_budget_s(budget: DeployedSettings) -> float:
    # Every crash costs a visibility timeout and a fresh worker (a cold start).
    return float(budget.redelivery_budget_s(budget.attempt_budget + 1) + 60.0)


@then(
    parsers.parse(
        "the crashing task is FAILED after exactly {attempts:d} attempts with the failure "
        'code "{code}"'
    )
)
def crasher_failed(
    tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings, attempts: int, code: str
) -> None:
    task_id = tasks.by_label("crasher").task_id or ""
    item = store.wait_for_status(task_id, {"FAILED", "COMPLETED"}, timeout=_crash_budget_s(budget))
    assert item["status"] == "FAILED", item
    assert int(item["attempts"]) == attempts == budget.attempt_budget, item
    assert item.get("failure_code") == code, item
    events = [(e.event, e.attempt) for e in history_of(item)]
    assert events == [
        ("started", 1), ("started", 2), ("started", 3), ("dead_lettered", 3),
    ], events  # fmt: skip


@then("it is in the dead-letter queue, forwarded by the processor without a fourth attempt")
def crasher_in_dlq(
    tasks: ScenarioTasks, dead_letters: DeadLetters, store: TaskStore, budget: DeployedSettings
) -> None:
    task_id = tasks.by_label("crasher").task_id or ""
    entry = dead_letters.wait_for_task(task_id, timeout=budget.redelivery_budget_s(1))
    attributes = entry.attributes
    assert attributes.get(DLQ_REASON_ATTRIBUTE) == PoisonReason.ATTEMPTS_EXHAUSTED, entry
    assert attributes.get(DLQ_DETAIL_ATTRIBUTE) == FailureCode.INTERRUPTED, entry
    last = history_of(stored(store, task_id))[-1]
    assert attributes.get(DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE) == str(last.receive_count), (
        entry,
        last,
    )
    assert last.receive_count == budget.attempt_budget + 1, last


@then("the tasks behind it are COMPLETED after 1 attempt each, in submission order")
def behind_completed(tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings) -> None:
    behind = [t.task_id or "" for t in tasks.items if t.label.startswith("behind")]
    items = store.wait_all(behind, {"COMPLETED", "FAILED"}, timeout=_crash_budget_s(budget))
    for item in items:
        assert (item["status"], int(item["attempts"])) == ("COMPLETED", 1), item
    before = stored(store, tasks.by_label("before").task_id or "")
    assert processing_order([before, *items]) == [before["task_id"], *behind]


@then("they were received with the crashing task at every one of its attempts")
def received_together(tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings) -> None:
    crasher = history_of(stored(store, tasks.by_label("crasher").task_id or ""))
    for submitted in tasks.items:
        if not submitted.label.startswith("behind"):
            continue
        (started,) = [
            e for e in history_of(stored(store, submitted.task_id or "")) if e.event == "started"
        ]
        # Handed back with each crash, attempted in the delivery that dead-lettered it.
        assert started.receive_count == crasher[-1].receive_count, (started, crasher)
        assert started.invocation == crasher[-1].invocation, "not in the crasher's batch"


@then("no task was applied twice")
def each_applied_once(tasks: ScenarioTasks, store: TaskStore) -> None:
    for submitted in tasks.items:
        item = stored(store, submitted.task_id or "")
        expected = 0 if item["status"] == "FAILED" else 1
        assert int(item.get("applied", 0)) == expected, item


# --- the record of an attempt ---------------------------------------------------------------


@then("its history shows attempt 1 started and completed by the same invocation")
def history_of_one_attempt(tasks: ScenarioTasks, store: TaskStore) -> None:
    item = stored(store, tasks.accepted_ids()[-1])
    started, completed = history_of(item)
    assert (started.event, completed.event) == ("started", "completed"), item
    assert started.attempt == completed.attempt == 1, item
    assert started.invocation, item
    assert started.invocation == completed.invocation, item
    assert started.at < completed.at == item["processed_at"], item
    assert int(item["receive_count"]) == started.receive_count >= 1, item
