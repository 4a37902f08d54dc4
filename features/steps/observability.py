"""Steps of the deduplication feature (the monitoring steps are in features/steps/monitoring.py)."""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, then, when

from features.steps.common import ScenarioTasks, stored
from harness.drivers import QueueIdle, TaskApi, TaskQueue, TaskStore
from harness.payloads import valid_task
from harness.target import DeployedSettings, Target
from harness.waiting import wait_until

# --- deduplication --------------------------------------------------------------------


@given("a task has been COMPLETED", target_fixture="completed_task")
@given("a later task has been COMPLETED")
@when("a later task has been COMPLETED")
def completed_task(
    api: TaskApi, tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings
) -> dict[str, Any]:
    submitted = tasks.add(f"task {len(tasks.items) + 1}", api.submit(valid_task("Dedup task")))
    assert submitted.response.status == 200, submitted.response.describe()
    return store.wait_for_status(
        submitted.task_id or "", {"COMPLETED"}, timeout=budget.redelivery_budget_s(1)
    )


def _resend(target: Target, item: dict[str, Any], dedup_id: str) -> None:
    from handlers.domain.messages import task_message_body

    TaskQueue(target).send(task_message_body(item), deduplication_id=dedup_id)


@when("the same task is delivered to the processor again")
def deliver_again(target: Target, completed_task: dict[str, Any]) -> None:
    # A new deduplication id gets past the queue, as an at-least-once redelivery does.
    _resend(target, completed_task, f"redelivery-{completed_task['task_id']}")


@when("the identical message is sent to the queue again within the deduplication window")
def send_identical(target: Target, completed_task: dict[str, Any]) -> None:
    # The API sent it with the task id as deduplication id: the same id again is a duplicate.
    _resend(target, completed_task, completed_task["task_id"])


@then("the duplicate delivery is counted on the task")
def duplicate_counted(
    target: Target, store: TaskStore, completed_task: dict[str, Any], budget: DeployedSettings
) -> None:
    task_id = completed_task["task_id"]
    idle = QueueIdle.for_target(target)

    def counted_or_consumed() -> bool:
        # Once the queue is empty the duplicate was consumed: its count, if any, is written.
        consumed = idle.quiet()
        return consumed or int((store.get(task_id) or {}).get("duplicate_deliveries", 0)) >= 1

    wait_until(
        counted_or_consumed,
        timeout=budget.redelivery_budget_s(1),
        interval=0.1,
        description=f"the processor to take the duplicate delivery of task {task_id}",
    )
    item = stored(store, task_id)
    assert int(item.get("duplicate_deliveries", 0)) >= 1, (
        f"the duplicate was delivered and not counted: {item}"
    )


@then("the task is still COMPLETED with its original completion time")
def unchanged(store: TaskStore, completed_task: dict[str, Any]) -> None:
    now = stored(store, completed_task["task_id"])
    assert now["status"] == "COMPLETED", now
    assert now["processed_at"] == completed_task["processed_at"], (
        f"the duplicate changed the task: processed_at {completed_task['processed_at']} -> "
        f"{now['processed_at']}"
    )
    assert now["attempts"] == completed_task["attempts"], now
    # Applied once, and the duplicate left no trace in the history (it only counts).
    assert now.get("applied") == 1, f"the task was applied {now.get('applied')} times: {now}"
    assert now.get("history") == completed_task.get("history"), (
        f"the duplicate changed the history: {completed_task.get('history')} -> "
        f"{now.get('history')}"
    )


@then("the identical message was not delivered to the processor again")
def processed_once_after_barrier(tasks: ScenarioTasks, store: TaskStore) -> None:
    # The later task completed after the duplicate was sent; in one FIFO group a
    # delivered duplicate would have been processed before it.
    item = stored(store, tasks.items[0].task_id or "")
    assert int(item.get("duplicate_deliveries", 0)) == 0, (
        f"the queue delivered the identical message again: {item}"
    )
