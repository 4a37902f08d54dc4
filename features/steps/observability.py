"""Steps of the deduplication and monitoring features."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdk import contract
from features.steps.common import ScenarioTasks, fault_headers, stored, valid_task
from harness.drivers import Alarms, FunctionMetrics, QueueIdle, TaskApi, TaskStore
from harness.target import Target
from harness.waiting import wait_until

ALARMS = {
    "API errors": contract.API_ERRORS_ALARM_NAME,
    "processor errors": contract.PROCESSOR_ERRORS_ALARM_NAME,
    "dead-letter": contract.DLQ_ALARM_NAME,
}
COMPARISONS = {
    "more than": "GreaterThanThreshold",
    "greater than or equal to": "GreaterThanOrEqualToThreshold",
}
METRICS = {
    "the API function's errors": ("AWS/Lambda", "Errors", "Sum"),
    "the processor's errors": ("AWS/Lambda", "Errors", "Sum"),
    "the dead-letter queue depth": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum"),
}


# --- deduplication --------------------------------------------------------------------


@given("a task has been COMPLETED", target_fixture="completed_task")
@given("a later task has been COMPLETED")
@when("a later task has been COMPLETED")
def completed_task(
    api: TaskApi, tasks: ScenarioTasks, store: TaskStore, budget: Any
) -> dict[str, Any]:
    submitted = tasks.add(f"task {len(tasks.items) + 1}", api.submit(valid_task("Dedup task")))
    assert submitted.response.status == 200, submitted.response.describe()
    return store.wait_for_status(
        submitted.task_id or "", {"COMPLETED"}, timeout=budget.redelivery_budget_s(1)
    )


def _resend(target: Target, item: dict[str, Any], dedup_id: str) -> None:
    from handlers.domain.messages import task_message_body

    target.client("sqs").send_message(
        QueueUrl=target.output(contract.TASK_QUEUE_URL),
        MessageBody=task_message_body(item),
        MessageGroupId=contract.MESSAGE_GROUP_ID,
        MessageDeduplicationId=dedup_id,
    )


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
    target: Target, store: TaskStore, completed_task: dict[str, Any], budget: Any
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


# --- monitoring -----------------------------------------------------------------------


@then(
    parsers.parse(
        "the {alarm} alarm goes off when {metric} is {comparison} {threshold:d} "
        "within {minutes:d} minute(s)"
    )
)
def alarm_threshold(
    target: Target, alarm: str, metric: str, comparison: str, threshold: int, minutes: int
) -> None:
    described = Alarms(target).describe(ALARMS[alarm])
    namespace, metric_name, statistic = METRICS[metric]
    seen = {
        key: described.get(key)
        for key in (
            "Namespace",
            "MetricName",
            "Statistic",
            "ComparisonOperator",
            "Threshold",
            "Period",
            "EvaluationPeriods",
        )
    }
    assert described["Namespace"] == namespace, seen
    assert described["MetricName"] == metric_name, seen
    assert described["Statistic"] == statistic, seen
    assert described["ComparisonOperator"] == COMPARISONS[comparison], seen
    assert float(described["Threshold"]) == threshold, seen
    window = int(described["Period"]) * int(described["EvaluationPeriods"])
    assert window == minutes * 60, f"the alarm looks at {window}s, expected {minutes} min: {seen}"


@when("the processor crashes while handling a task", target_fixture="crash_started")
def processor_crashes(
    api: TaskApi, target: Target, tasks: ScenarioTasks, store: TaskStore, budget: Any
) -> datetime:
    started = datetime.now(UTC)
    submitted = tasks.add(
        "crash", api.submit(valid_task("Crash"), headers=fault_headers(target, "crash"))
    )
    assert submitted.response.status == 200, submitted.response.describe()
    store.wait_for_status(
        submitted.task_id or "", {"COMPLETED"}, timeout=budget.redelivery_budget_s(2)
    )
    return started


@then("the processor's error metric counts the crash")
def error_metric(target: Target, crash_started: datetime) -> None:
    metrics = FunctionMetrics(target, contract.PROCESSOR_FUNCTION_NAME)
    # CloudWatch metrics arrive with a delay on AWS (about a minute).
    wait_until(
        lambda: metrics.sum("Errors", since=crash_started) >= 1,
        timeout=180.0 if target.name == "aws" else 30.0,
        interval=1.0,
        description=f"an Errors datapoint for {metrics.function_name}",
    )
