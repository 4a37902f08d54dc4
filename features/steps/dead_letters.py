"""Steps of the operator's dead-letter procedure: list what failed, replay it in order.

They call the code behind ``harness dlq`` (:class:`harness.dlq.DeadLetters`), so the
scenario proves the operator's command, not a test helper.
"""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, parsers, then, when

from features.steps.common import ScenarioTasks, fault_headers
from harness.dlq import DeadLetters, Listing, ReplayReport
from harness.drivers import QueueIdle, TaskApi, TaskStore, history_of, processing_order
from harness.payloads import valid_task
from harness.target import Target


@given(
    parsers.parse("{count:d} tasks that always fail have been dead-lettered"),
    target_fixture="failed_ids",
)
def many_dead_lettered(
    api: TaskApi, target: Target, tasks: ScenarioTasks, store: TaskStore, budget: Any, count: int
) -> list[str]:
    headers = fault_headers(target, "always-fail")
    for index in range(count):
        tasks.add(
            f"failing {index + 1}", api.submit(valid_task(f"Doomed {index + 1}"), headers=headers)
        )
    ids = tasks.accepted_ids()
    # One message group: each task's attempts run after the previous task's last one.
    items = store.wait_all(
        ids,
        {"FAILED"},
        timeout=budget.redelivery_budget_s(budget.attempt_budget * count),
        idle=QueueIdle.for_target(target),
    )
    assert all(item["status"] == "FAILED" for item in items), items
    return ids


@when("the operator lists the dead-letter queue", target_fixture="dlq_listing")
def operator_lists(target: Target) -> Listing:
    return DeadLetters(target).listing()


@then(
    parsers.parse(
        "the list shows the {count:d} tasks in the order they failed, each given up after "
        "{attempts:d} attempts with its error"
    )
)
def list_shows_all(dlq_listing: Listing, failed_ids: list[str], count: int, attempts: int) -> None:
    listed = [task.task_id for task in dlq_listing.tasks]
    assert len(failed_ids) == count
    assert listed == failed_ids, (
        f"the list shows {len(listed)} task(s), expected the {count} dead-lettered in "
        f"submission order: listed {listed}, dead-lettered {failed_ids}"
    )
    for task in dlq_listing.tasks:
        assert (task.reason, task.attempts, task.error_code) == (
            "attempts_exhausted",
            attempts,
            "injected_fault",
        ), task
        # Handed back untried behind the tasks ahead of it, a task is received more often
        # than it is attempted, never less.
        assert task.receive_count >= attempts, task


@then("the dead-letter queue's own count agrees with the list")
def counts_agree(dlq_listing: Listing) -> None:
    counts = dlq_listing.counts
    assert dlq_listing.unaccounted == 0, (
        f"the dead-letter queue holds {counts.total} message(s) ({counts}), the list "
        f"{len(dlq_listing.tasks)} task(s)"
    )


@when(
    "their fault is cleared and the operator replays every dead-lettered task",
    target_fixture="replay_report",
)
def clear_and_replay(target: Target, store: TaskStore, failed_ids: list[str]) -> ReplayReport:
    # The operator fixes the cause: the injected fault lives on the stored task.
    for task_id in failed_ids:
        store.clear_fault(task_id)
    report = DeadLetters(target).replay()
    assert report.replayed == failed_ids, f"replayed {report.replayed}, expected {failed_ids}"
    return report


@then(parsers.parse("the {count:d} tasks are COMPLETED in the order they failed"))
def completed_in_order(
    target: Target, store: TaskStore, budget: Any, failed_ids: list[str], count: int
) -> None:
    items = store.wait_all(
        failed_ids,
        {"COMPLETED"},
        timeout=budget.redelivery_budget_s(count),
        idle=QueueIdle.for_target(target),
    )
    assert len(items) == count
    assert processing_order(items) == failed_ids, "the replayed tasks completed out of order"


@then("none of them was completed or delivered twice")
def none_twice(store: TaskStore, failed_ids: list[str], budget: Any) -> None:
    for task_id in failed_ids:
        item = store.get(task_id) or {}
        events = [entry.event for entry in history_of(item)]
        assert (events.count("redriven"), events.count("completed")) == (1, 1), (
            f"task {task_id} was sent back or completed other than once: {events}"
        )
        assert int(item.get("duplicate_deliveries", 0)) == 0, (
            f"task {task_id} was delivered {item.get('duplicate_deliveries')} more time(s) "
            "after it completed"
        )
        assert int(item["attempts"]) == budget.attempt_budget + 1, item
