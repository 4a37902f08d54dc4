"""Steps shared by every feature: the API, submitting tasks, waiting for outcomes, order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from cdk import contract
from harness.drivers import (
    ApiResponse,
    DeadLetters,
    ProcessorEventSource,
    QueueIdle,
    TaskApi,
    TaskQueue,
    TaskStore,
    processing_order,
)
from harness.payloads import valid_task
from harness.target import DeployedSettings, Target


@dataclass
class Submitted:
    """One task a scenario submitted: its label, the API's answer and its id."""

    label: str
    response: ApiResponse
    task_id: str | None
    fault: str | None = None
    """The fault directive it was submitted with (test-only fault injection)."""
    redriven: bool = False
    """Sent back from the dead-letter queue: FAILED until the processor takes it again."""


@dataclass
class ScenarioTasks:
    """The tasks one scenario submitted, in submission order."""

    items: list[Submitted] = field(default_factory=list)

    def add(self, label: str, response: ApiResponse, fault: str | None = None) -> Submitted:
        body = response.json
        task_id = body.get("task_id") if isinstance(body, dict) else None
        submitted = Submitted(label, response, task_id, fault)
        self.items.append(submitted)
        return submitted

    @property
    def last(self) -> Submitted:
        assert self.items, "no task was submitted in this scenario"
        return self.items[-1]

    def by_label(self, label: str) -> Submitted:
        for item in self.items:
            if item.label == label:
                return item
        raise AssertionError(f"no task labelled {label!r} was submitted")

    def accepted_ids(self) -> list[str]:
        ids = []
        for item in self.items:
            assert item.response.status == 200, (
                f"task {item.label} was not accepted: {item.response.describe()}"
            )
            assert item.task_id, f"task {item.label} has no id: {item.response.describe()}"
            ids.append(item.task_id)
        return ids


def fault_headers(target: Target, directive: str) -> dict[str, str]:
    """The test-only header that makes the processor misbehave on purpose."""
    if not target.fault_injection:
        pytest.skip(f"the {target.profile} profile has no fault injection")
    return {contract.FAULT_INJECTION_HEADER: directive}


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
def tasks() -> ScenarioTasks:
    """The tasks this scenario submitted."""
    return ScenarioTasks()


@pytest.fixture
def api(target: Target) -> Iterator[TaskApi]:
    client = TaskApi(target)
    yield client
    client.close()


@pytest.fixture
def store(target: Target) -> TaskStore:
    return TaskStore(target)


@pytest.fixture
def dead_letters(target: Target) -> DeadLetters:
    return DeadLetters(target)


@pytest.fixture
def event_source(target: Target) -> Iterator[ProcessorEventSource]:
    """The processor's event source mapping; left enabled whatever the scenario did."""
    source = ProcessorEventSource(target)
    yield source
    if source.state() != "Enabled":
        source.set_enabled(True)


@pytest.fixture
def budget(target: Target) -> DeployedSettings:
    """Wait budgets derived from the running stack's own timings."""
    return target.settings


# --- steps ----------------------------------------------------------------------------


# What API Gateway answers to the CORS preflight of POST /tasks (the stack's CORS options).
PREFLIGHT_STATUS = 204
PREFLIGHT_METHODS = {"GET", "POST", "OPTIONS"}
PREFLIGHT_HEADERS = {"content-type", "idempotency-key"}


def send_preflight(api: TaskApi) -> ApiResponse:
    """The CORS preflight a browser sends before POSTing a task with an Idempotency-Key."""
    return api.request(
        "OPTIONS",
        "/tasks",
        headers={
            "Origin": "https://qa.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Idempotency-Key",
        },
    )


def check_preflight(preflight: ApiResponse) -> None:
    """The gateway's answer to the preflight is exactly the stack's CORS options."""
    assert preflight.status == PREFLIGHT_STATUS, f"CORS preflight: {preflight.describe()}"
    headers = {k.lower(): v for k, v in preflight.headers.items()}
    assert headers.get("access-control-allow-origin") == "*", headers
    methods = {m.strip() for m in headers.get("access-control-allow-methods", "").split(",")}
    assert methods == PREFLIGHT_METHODS, f"preflight allows methods {methods}"
    allowed = {
        h.strip().lower() for h in headers.get("access-control-allow-headers", "").split(",")
    }
    assert allowed >= PREFLIGHT_HEADERS, f"preflight allows headers {allowed}"


@given("the Task API is available")
def api_available(api: TaskApi) -> None:
    """The gateway answers the CORS preflight exactly, and the API function answers."""
    check_preflight(send_preflight(api))
    # The function behind the gateway answers too: an unknown task is its 404, as JSON.
    lookup = api.get(str(uuid.uuid4()))
    assert lookup.status == 404, f"the API function does not answer: {lookup.describe()}"
    assert isinstance(lookup.json, dict), lookup.describe()
    assert lookup.json.get("error") == "not_found", lookup.describe()


@given("the task queue is empty")
def task_queue_empty(target: Target, budget: DeployedSettings) -> None:
    """Earlier scenarios' messages are gone: nothing of theirs can share this one's batches."""
    TaskQueue(target).wait_until_empty(timeout=budget.redelivery_budget_s(budget.attempt_budget))


@given("the processor's event source is paused")
def pause_event_source(event_source: ProcessorEventSource) -> None:
    """Disabled (and reported so): what is submitted now waits in the queue, to be received
    together when the source is resumed."""
    event_source.set_enabled(False)


@when("the processor's event source is resumed")
def resume_event_source(event_source: ProcessorEventSource) -> None:
    event_source.set_enabled(True)


@when(parsers.parse('a client submits a valid task titled "{title}"'))
def submit_titled(api: TaskApi, tasks: ScenarioTasks, title: str) -> None:
    tasks.add(title, api.submit(valid_task(title)))


@when(parsers.parse("a client submits {count:d} valid tasks one after another"))
@when(parsers.parse("a client submits {count:d} valid tasks right after it"))
def submit_many(api: TaskApi, tasks: ScenarioTasks, count: int) -> None:
    start = len(tasks.items)
    for index in range(count):
        label = f"task {start + index + 1}"
        submitted = tasks.add(label, api.submit(valid_task(f"Ordered {label}")))
        assert submitted.response.status == 200, submitted.response.describe()


@then("the task is accepted with a new task id and the status QUEUED")
def accepted(tasks: ScenarioTasks) -> None:
    response = tasks.last.response
    assert response.status == 200, f"expected the task to be accepted, got {response.describe()}"
    body = response.json
    assert body["status"] == "QUEUED", body
    assert body.get("message"), f"the answer has no message: {body}"
    parsed = uuid.UUID(body["task_id"])
    assert parsed.version == 4, f"task id {body['task_id']} is not a UUID4"


def completion_budget_s(tasks: ScenarioTasks, budget: DeployedSettings) -> float:
    """How long this scenario's tasks may take: one delivery each when none was told to
    fail (the queue before them may still hold one batch), every allowed one otherwise."""
    faulty = any(item.fault for item in tasks.items)
    return float(budget.redelivery_budget_s(budget.attempt_budget if faulty else 1))


@then("the task is eventually COMPLETED")
def eventually_completed(
    target: Target, tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings
) -> None:
    task_id = tasks.accepted_ids()[-1]
    store.wait_for_status(
        task_id,
        {"COMPLETED"},
        timeout=completion_budget_s(tasks, budget),
        # A redriven task is FAILED until the processor takes it again; any other is done.
        fail_on=() if tasks.last.redriven else {"FAILED"},
        idle=QueueIdle.for_target(target),
    )


@then("all submitted tasks are eventually COMPLETED")
def all_completed(
    target: Target, tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings
) -> None:
    ids = tasks.accepted_ids()
    items = store.wait_all(
        ids,
        {"COMPLETED", "FAILED"},
        timeout=completion_budget_s(tasks, budget) + 0.2 * len(ids),
        idle=QueueIdle.for_target(target),
    )
    failed = [item["task_id"] for item in items if item["status"] != "COMPLETED"]
    assert not failed, f"tasks ended FAILED instead of COMPLETED: {failed}"


@then("they were processed in the order they were submitted")
def processed_in_order(tasks: ScenarioTasks, store: TaskStore) -> None:
    ids = tasks.accepted_ids()
    items = [store.get(task_id) or {"task_id": task_id} for task_id in ids]
    actual = processing_order(items)
    labels = {item.task_id: item.label for item in tasks.items}
    assert actual == ids, (
        "tasks were not processed in submission order:\n"
        f"  submitted: {[labels[i] for i in ids]}\n"
        f"  processed: {[labels[i] for i in actual]}"
    )
    sequence = [int(item["sequence_number"]) for item in items]
    assert sequence == sorted(sequence), f"queue sequence numbers out of order: {sequence}"


@then(parsers.parse("looking the task up shows it COMPLETED after {attempts:d} attempt"))
def lookup_completed(api: TaskApi, tasks: ScenarioTasks, attempts: int) -> None:
    response = api.get(tasks.accepted_ids()[-1])
    assert response.status == 200, response.describe()
    body = response.json
    assert body["status"] == "COMPLETED", body
    assert body["attempts"] == attempts, body
    for stamp in ("created_at", "updated_at", "processed_at"):
        assert body.get(stamp), f"the task has no {stamp}: {body}"


@then(parsers.parse("the request is rejected with status {status:d} and an error explaining why"))
def rejected_with(tasks: ScenarioTasks, status: int) -> None:
    response = tasks.last.response
    assert response.status == status, f"expected HTTP {status}, got {response.describe()}"
    body = response.json
    assert isinstance(body, dict), f"the error body is not a JSON object: {response.text[:300]}"
    assert body.get("error"), f"the error body lacks 'error': {body}"
    assert body.get("message"), f"the error body lacks 'message': {body}"


@then("it is not in the dead-letter queue")
def not_dead_lettered(tasks: ScenarioTasks, dead_letters: DeadLetters) -> None:
    task_id = tasks.accepted_ids()[-1]
    assert task_id not in dead_letters.task_ids(), f"task {task_id} is in the dead-letter queue"


def stored(store: TaskStore, task_id: str) -> dict[str, Any]:
    item = store.get(task_id)
    assert item is not None, f"task {task_id} is not in the tasks table"
    return item
