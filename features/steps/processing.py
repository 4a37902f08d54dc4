"""Steps of the ordering, retry, dead-letter and resilience features."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdk import contract
from features.steps.common import ScenarioTasks, fault_headers, stored
from handlers.domain.constants import (
    DLQ_REASON_ATTRIBUTE,
    DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE,
)
from handlers.domain.messages import PoisonReason
from harness.drivers import (
    DeadLetter,
    DeadLetters,
    FunctionMetrics,
    HistoryEntry,
    TaskApi,
    TaskQueue,
    TaskStore,
    history_of,
    processing_order,
)
from harness.payloads import valid_task
from harness.target import DeployedSettings, Target
from harness.waiting import wait_until

BEHAVIOURS = {"succeeds": None, "fails once": "fail-attempts=1", "always fails": "always-fail"}
FAULTS = {"crash": "crash", "time out": "timeout"}


def submit_with_fault(
    api: TaskApi, target: Target, tasks: ScenarioTasks, label: str, directive: str | None
) -> None:
    headers = fault_headers(target, directive) if directive else {}
    submitted = tasks.add(
        label, api.submit(valid_task(f"Task {label}"), headers=headers), fault=directive
    )
    assert submitted.response.status == 200, submitted.response.describe()


@when("a client submits these tasks in order")
def submit_table(
    api: TaskApi, target: Target, tasks: ScenarioTasks, datatable: list[list[str]]
) -> None:
    header, *rows = datatable
    assert header == ["task", "behaviour"], header
    for label, behaviour in rows:
        submit_with_fault(api, target, tasks, label, BEHAVIOURS[behaviour])


@when(parsers.parse("a client submits a task that fails its first {failures:d} attempts"))
def submit_failing(api: TaskApi, target: Target, tasks: ScenarioTasks, failures: int) -> None:
    submit_with_fault(api, target, tasks, "failing", f"fail-attempts={failures}")


@when("a client submits a task that always fails")
def submit_poison(api: TaskApi, target: Target, tasks: ScenarioTasks) -> None:
    submit_with_fault(api, target, tasks, "poison", "always-fail")


@when(
    parsers.parse(
        "a client submits 3 valid tasks, one that makes the processor {fault}, and 2 more"
    )
)
def submit_around_fault(api: TaskApi, target: Target, tasks: ScenarioTasks, fault: str) -> None:
    labels = ["1", "2", "3", fault, "5", "6"]
    for label in labels:
        submit_with_fault(api, target, tasks, label, FAULTS[fault] if label == fault else None)


@then(parsers.parse("it completed on attempt {attempt:d}"))
def completed_on_attempt(tasks: ScenarioTasks, store: TaskStore, attempt: int) -> None:
    item = stored(store, tasks.accepted_ids()[-1])
    assert item["status"] == "COMPLETED", item
    assert int(item["attempts"]) == attempt, (
        f"the task completed on attempt {item['attempts']}, expected {attempt}"
    )


@then("the failing task is in the dead-letter queue after exactly 3 receives")
def in_dlq_after_three(
    tasks: ScenarioTasks, dead_letters: DeadLetters, budget: DeployedSettings
) -> None:
    task_id = tasks.by_label("poison").task_id or ""
    # The processor forwards it on its last allowed receive, recording which one that was.
    entry = dead_letters.wait_for_task(
        task_id, timeout=budget.redelivery_budget_s(budget.attempt_budget)
    )
    attributes = entry.attributes
    assert attributes.get(DLQ_REASON_ATTRIBUTE) == PoisonReason.ATTEMPTS_EXHAUSTED, entry
    assert (
        attributes.get(DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE) == str(budget.attempt_budget) == "3"
    ), entry


@then("it is marked FAILED after 3 attempts")
def marked_failed(tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings) -> None:
    # The processor marks the task FAILED before it forwards it: once it is in the
    # dead-letter queue, nothing about it may still change.
    item = stored(store, tasks.by_label("poison").task_id or "")
    assert item["status"] == "FAILED", f"the dead-lettered task is {item['status']}: {item}"
    assert int(item["attempts"]) == budget.attempt_budget == 3, item
    assert item.get("failure_code"), f"no failure code recorded on the failed task: {item}"


@then("the tasks behind it are COMPLETED afterwards, in submission order")
def behind_completed(tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings) -> None:
    poison = stored(store, tasks.by_label("poison").task_id or "")
    behind = [item.task_id or "" for item in tasks.items if item.label != "poison"]
    items = store.wait_all(behind, {"COMPLETED", "FAILED"}, timeout=budget.redelivery_budget_s(1))
    assert all(item["status"] == "COMPLETED" for item in items), items
    assert processing_order(items) == behind, "the tasks behind the failing one were reordered"
    first_done = min(str(item["processed_at"]) for item in items)
    assert first_done > str(poison["updated_at"]), (
        "a task behind the failing one completed before the failing one was given up on"
    )


@when("a message that is not a task is put on the task queue", target_fixture="malformed_id")
def put_malformed(target: Target) -> str:
    marker = f"not-a-task-{uuid.uuid4()}"
    TaskQueue(target).send(f"{{this is not json: {marker}", deduplication_id=marker)
    return marker


@then("the task queue no longer holds it before a visibility timeout has passed")
def malformed_deleted(target: Target, budget: DeployedSettings) -> None:
    # Taken and deleted with its batch, not left to come back: a retried message would be
    # in flight or visible again for at least one visibility timeout.
    TaskQueue(target).wait_until_empty(timeout=float(budget.visibility_timeout_s))


@then(
    "the dead-letter queue holds exactly one copy of it, with the reason it was rejected",
    target_fixture="malformed_copy",
)
def one_copy(dead_letters: DeadLetters, malformed_id: str) -> DeadLetter:
    # The processor forwards before its batch is deleted: with the task queue empty, every
    # copy there will ever be is in the dead-letter queue already.
    copies = _copies(dead_letters, malformed_id)
    assert len(copies) == 1, f"the dead-letter queue holds {len(copies)} copies: {copies}"
    reason = copies[0].attributes.get(DLQ_REASON_ATTRIBUTE)
    assert reason == PoisonReason.MALFORMED_JSON, f"the dead-lettered message has reason {reason!r}"
    return copies[0]


@then("that copy was forwarded on the message's first receive")
def forwarded_first(malformed_copy: DeadLetter) -> None:
    # The processor records how often the task queue had delivered it: once.
    count = malformed_copy.attributes.get(DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE)
    assert count == "1", f"the malformed message was received {count} times: {malformed_copy}"


def _copies(dead_letters: DeadLetters, marker: str) -> list[DeadLetter]:
    return [letter for letter in dead_letters.messages() if marker in letter.body]


@given("a task that always fails has been dead-lettered")
def poison_dead_lettered(
    api: TaskApi,
    target: Target,
    tasks: ScenarioTasks,
    dead_letters: DeadLetters,
    store: TaskStore,
    budget: DeployedSettings,
) -> None:
    submit_poison(api, target, tasks)
    in_dlq_after_three(tasks, dead_letters, budget)
    marked_failed(tasks, store, budget)


@when("its fault is cleared and it is sent back from the dead-letter queue")
def clear_and_redrive(tasks: ScenarioTasks, store: TaskStore, dead_letters: DeadLetters) -> None:
    task_id = tasks.by_label("poison").task_id or ""
    # The operator fixes the cause: the injected fault lives on the stored task.
    store.clear_fault(task_id)
    dead_letters.send_back(task_id)
    tasks.by_label("poison").redriven = True


# --- evidence from the recorded history ---------------------------------------------


def _record(
    store: TaskStore, tasks: ScenarioTasks, label: str
) -> tuple[dict[str, Any], list[HistoryEntry]]:
    item = stored(store, tasks.by_label(label).task_id or "")
    return item, history_of(item)


def _events(history: list[HistoryEntry]) -> list[tuple[str, int]]:
    return [(entry.event, entry.attempt) for entry in history]


def _first_invocation(store: TaskStore, tasks: ScenarioTasks) -> str:
    """The invocation of the first batch: where the first task submitted first started."""
    _, history = _record(store, tasks, tasks.items[0].label)
    assert history, f"task {tasks.items[0].label} has no recorded history"
    return history[0].invocation


@then(parsers.parse("task {label} completed on attempt 1 in the first batch"))
def completed_in_first_batch(tasks: ScenarioTasks, store: TaskStore, label: str) -> None:
    item, history = _record(store, tasks, label)
    first = _first_invocation(store, tasks)
    assert _events(history) == [("started", 1), ("completed", 1)], (label, history)
    assert {entry.invocation for entry in history} == {first}, (label, history)
    assert history[0].receive_count == 1, (label, history)
    assert int(item["attempts"]) == 1, item


@then(
    parsers.parse(
        "task {label} failed on attempt 1 in that same batch and completed on attempt 2 "
        "in a later one"
    )
)
def failed_then_completed(tasks: ScenarioTasks, store: TaskStore, label: str) -> None:
    item, history = _record(store, tasks, label)
    first = _first_invocation(store, tasks)
    assert _events(history) == [("started", 1), ("failed", 1), ("started", 2), ("completed", 2)], (
        f"task {label}: {history}"
    )
    assert history[0].invocation == history[1].invocation == first, (
        f"task {label} did not fail in the first batch: {history}"
    )
    assert history[2].invocation == history[3].invocation != first, history
    assert int(item["attempts"]) == 2, item


@then(
    parsers.parse(
        "tasks {first} and {second} were handed back untried from the first batch and "
        "completed on attempt 1 later"
    )
)
def handed_back_untried(tasks: ScenarioTasks, store: TaskStore, first: str, second: str) -> None:
    batch = _first_invocation(store, tasks)
    for label in (first, second):
        item, history = _record(store, tasks, label)
        # Received in the first batch (its first start is on its second receive) but
        # never started there: a record handed back untried is not an attempt.
        assert _events(history) == [("started", 1), ("completed", 1)], (label, history)
        assert batch not in {entry.invocation for entry in history}, (
            f"task {label} was attempted in the batch where the task before it failed: {history}"
        )
        assert history[0].receive_count == 2, (
            f"task {label} was not received in the first batch: {history}"
        )
        assert (int(item["attempts"]), int(item["receive_count"])) == (1, 2), item


@then(
    parsers.parse(
        "they reached the processor in at least {batches:d} batches of at most {size:d}, "
        "each completed in one attempt"
    )
)
def in_batches(tasks: ScenarioTasks, store: TaskStore, batches: int, size: int) -> None:
    by_invocation: dict[str, list[str]] = {}
    for submitted in tasks.items:
        item = stored(store, submitted.task_id or "")
        history = history_of(item)
        assert _events(history) == [("started", 1), ("completed", 1)], (submitted.label, history)
        by_invocation.setdefault(history[0].invocation, []).append(submitted.label)
    sizes = [len(labels) for labels in by_invocation.values()]
    assert len(sizes) >= batches, f"fewer batches than {batches}: {list(by_invocation.values())}"
    assert max(sizes) <= size, f"a batch larger than {size}: {list(by_invocation.values())}"
    assert max(sizes) > 1, f"every task came alone, nothing was batched: {sizes}"


@then(
    parsers.parse(
        "the task that made the processor {fault} started its first attempt in the first "
        "batch and never finished it there"
    )
)
def fault_interrupted(tasks: ScenarioTasks, store: TaskStore, fault: str) -> None:
    item, history = _record(store, tasks, fault)
    first = _first_invocation(store, tasks)
    assert history, f"the {fault} task has no recorded history"
    assert (history[0].event, history[0].attempt) == ("started", 1), history
    assert history[0].invocation == first, f"the {fault} was not in the first batch: {history}"
    ended_there = [e for e in history[1:] if e.invocation == first]
    assert not ended_there, f"attempt 1 recorded an end, so nothing was interrupted: {history}"
    assert _events(history)[-2:] == [("started", 2), ("completed", 2)], history
    assert int(item["attempts"]) == 2, item


@dataclass(frozen=True)
class ErrorsBaseline:
    """The processor's Lambda ``Errors`` over a fixed window, noted before the scenario's
    fault: read again later, only new datapoints change the total."""

    metrics: FunctionMetrics
    start: datetime
    end: datetime
    before: float


@given("the processor's Lambda error count is noted", target_fixture="errors_baseline")
def note_errors(target: Target) -> ErrorsBaseline:
    metrics = FunctionMetrics(target, contract.PROCESSOR_FUNCTION_NAME)
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return ErrorsBaseline(metrics, start, end, metrics.total("Errors", start=start, end=end))


@then("the processor's Lambda errors went up by at least 1")
def errors_went_up(target: Target, errors_baseline: ErrorsBaseline) -> None:
    baseline, metrics = errors_baseline, errors_baseline.metrics
    # CloudWatch metrics arrive with a delay on AWS (about a minute).
    wait_until(
        lambda: (
            metrics.total("Errors", start=baseline.start, end=baseline.end) >= baseline.before + 1
        ),
        timeout=180.0 if target.name == "aws" else 30.0,
        interval=1.0,
        description=f"{metrics.function_name}'s Errors to rise above {baseline.before:g}",
    )


@then(
    parsers.parse(
        "the {count:d} tasks before it completed in the first batch, were delivered again "
        "and counted as duplicates"
    )
)
def before_fault_duplicates(tasks: ScenarioTasks, store: TaskStore, count: int) -> None:
    first = _first_invocation(store, tasks)
    for submitted in tasks.items[:count]:
        item = stored(store, submitted.task_id or "")
        history = history_of(item)
        assert _events(history) == [("started", 1), ("completed", 1)], (submitted.label, history)
        assert {entry.invocation for entry in history} == {first}, (submitted.label, history)
        assert int(item.get("duplicate_deliveries", 0)) >= 1, (
            f"task {submitted.label} was not delivered again (or not counted): {item}"
        )


@then("each task was applied exactly once")
def applied_once(tasks: ScenarioTasks, store: TaskStore) -> None:
    for task_id in tasks.accepted_ids():
        item = stored(store, task_id)
        assert item["status"] == "COMPLETED", item
        # A missing ``applied`` is a failure, not 1: the completing write always sets it.
        assert "applied" in item, f"task {task_id} records no application: {item}"
        assert int(item["applied"]) == 1, f"task {task_id} was applied {item['applied']} times"


@then(parsers.parse("its history shows {failures:d} failed attempt(s), then the completed one"))
def retry_history(tasks: ScenarioTasks, store: TaskStore, failures: int) -> None:
    item = stored(store, tasks.accepted_ids()[-1])
    history = history_of(item)
    expected = [
        event for n in range(1, failures + 1) for event in (("started", n), ("failed", n))
    ] + [("started", failures + 1), ("completed", failures + 1)]
    assert _events(history) == expected, f"history {history}"
    assert all(entry.error_code for entry in history if entry.event == "failed"), history
    assert int(item["applied"]) == 1, item
