"""Steps of the configuration feature: the running stack against the spec's numbers.

Every number comes from the feature's Examples tables, never from ``cdk/config.py``: a
changed profile must fail here, not be read back as the expected value.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from cdk import contract
from features.steps.common import ScenarioTasks, stored
from harness.drivers import Functions, Queues, TaskApi, TaskStore
from harness.payloads import valid_task
from harness.target import DeployedSettings, Target
from harness.waiting import wait_until

DAY_S = 24 * 60 * 60
# The environment variable the processor reads its attempt budget from.
ATTEMPTS_ENV = "ATTEMPT_BUDGET"


def _queue(target: Target, key: str) -> dict[str, str]:
    return Queues(target).attributes(key)


def _function(target: Target, key: str) -> dict[str, Any]:
    return Functions(target).configuration(key)


@given(parsers.parse("the stack runs the {profile} profile"))
def runs_profile(target: Target, profile: str) -> None:
    if target.profile != profile:
        pytest.skip(f"the stack runs the {target.profile} profile, this row is for {profile}")


@then("the task queue is a FIFO queue with content-based deduplication")
def fifo_queue(target: Target) -> None:
    attributes = _queue(target, contract.TASK_QUEUE_URL)
    assert attributes.get("FifoQueue") == "true", f"FifoQueue={attributes.get('FifoQueue')}"
    assert attributes.get("ContentBasedDeduplication") == "true", (
        f"ContentBasedDeduplication={attributes.get('ContentBasedDeduplication')}"
    )


@then(parsers.parse("the task queue hides a received message for {seconds:d} seconds"))
def visibility_timeout(target: Target, seconds: int) -> None:
    attributes = _queue(target, contract.TASK_QUEUE_URL)
    assert int(attributes["VisibilityTimeout"]) == seconds, (
        f"visibility timeout {attributes['VisibilityTimeout']} s, expected {seconds} s"
    )


@then(parsers.parse("the task queue keeps a message for {days:d} days"))
def queue_retention(target: Target, days: int) -> None:
    attributes = _queue(target, contract.TASK_QUEUE_URL)
    assert int(attributes["MessageRetentionPeriod"]) == days * DAY_S, (
        f"retention {attributes['MessageRetentionPeriod']} s, expected {days} days"
    )


@then(
    parsers.parse(
        "the task queue moves a message to the dead-letter queue once it has been "
        "received {receives:d} times"
    )
)
def redrive_policy(target: Target, receives: int) -> None:
    policy = json.loads(_queue(target, contract.TASK_QUEUE_URL)["RedrivePolicy"])
    dlq_arn = _queue(target, contract.DEAD_LETTER_QUEUE_URL)["QueueArn"]
    assert policy["deadLetterTargetArn"] == dlq_arn, f"redrive target {policy}, not {dlq_arn}"
    assert int(policy["maxReceiveCount"]) == receives, (
        f"maxReceiveCount {policy['maxReceiveCount']}, expected {receives}"
    )


@then(parsers.parse("the dead-letter queue is a FIFO queue that keeps a message for {days:d} days"))
def dlq_settings(target: Target, days: int) -> None:
    attributes = _queue(target, contract.DEAD_LETTER_QUEUE_URL)
    assert attributes.get("FifoQueue") == "true", f"DLQ FifoQueue={attributes.get('FifoQueue')}"
    assert int(attributes["MessageRetentionPeriod"]) == days * DAY_S, (
        f"DLQ retention {attributes['MessageRetentionPeriod']} s, expected {days} days"
    )


@then(parsers.parse("the processor runs on Python {version}"))
def processor_runtime(target: Target, version: str) -> None:
    runtime = _function(target, contract.PROCESSOR_FUNCTION_NAME)["Runtime"]
    assert runtime == f"python{version}", f"runtime {runtime}, expected python{version}"


@then(parsers.parse("the processor may run for {seconds:d} seconds with {memory:d} MB of memory"))
def processor_size(target: Target, seconds: int, memory: int) -> None:
    function = _function(target, contract.PROCESSOR_FUNCTION_NAME)
    assert (function["Timeout"], function["MemorySize"]) == (seconds, memory), (
        f"timeout {function['Timeout']} s and {function['MemorySize']} MB, "
        f"expected {seconds} s and {memory} MB"
    )


@then(parsers.parse("at most {count:d} copies of the processor run at once"))
def processor_concurrency(target: Target, count: int) -> None:
    reserved = Functions(target).reserved_concurrency(contract.PROCESSOR_FUNCTION_NAME)
    assert reserved == count, f"reserved concurrency {reserved}, expected {count}"


@then(parsers.parse("the processor gives a task at most {attempts:d} attempts"))
def processor_attempts(target: Target, attempts: int) -> None:
    value = Functions(target).environment(contract.PROCESSOR_FUNCTION_NAME).get(ATTEMPTS_ENV)
    assert value == str(attempts), f"{ATTEMPTS_ENV} is {value!r}, expected {attempts}"


@then(
    parsers.parse(
        "the processor reads the task queue in batches of up to {size:d} messages "
        "and reports partial failures"
    )
)
def event_source(target: Target, size: int) -> None:
    mappings = Functions(target).event_source_mappings(contract.PROCESSOR_FUNCTION_NAME)
    queue_arn = _queue(target, contract.TASK_QUEUE_URL)["QueueArn"]
    mine = [m for m in mappings if m["EventSourceArn"] == queue_arn]
    assert len(mine) == 1, f"{len(mine)} event source mappings from the task queue: {mappings}"
    assert mine[0]["BatchSize"] == size, f"batch size {mine[0]['BatchSize']}, expected {size}"
    assert mine[0].get("FunctionResponseTypes") == ["ReportBatchItemFailures"], (
        f"function response types {mine[0].get('FunctionResponseTypes')}, "
        "expected ['ReportBatchItemFailures']"
    )


@then(parsers.parse("fault injection is switched {switch} in the API and the processor"))
def fault_injection_switch(target: Target, switch: str) -> None:
    for key in (contract.API_FUNCTION_NAME, contract.PROCESSOR_FUNCTION_NAME):
        env = Functions(target).environment(key)
        enabled = env.get(contract.FAULT_INJECTION_ENV) == "true"
        assert enabled == (switch == "on"), (
            f"{key}: {contract.FAULT_INJECTION_ENV}={env.get(contract.FAULT_INJECTION_ENV)!r}"
        )


# --- fault injection impossible in production, by behaviour -------------------------------


def _submit_with_fault(api: TaskApi, tasks: ScenarioTasks, directive: str) -> None:
    headers = {contract.FAULT_INJECTION_HEADER: directive}
    tasks.add(directive, api.submit(valid_task(f"Fault request {directive}"), headers=headers))


@when("a client submits a task asking the processor to always fail")
def submit_always_fail(api: TaskApi, tasks: ScenarioTasks) -> None:
    _submit_with_fault(api, tasks, "always-fail")


@when("a client submits a task with a fault directive that does not exist")
def submit_unknown_directive(api: TaskApi, tasks: ScenarioTasks) -> None:
    # Where fault injection is on, this is a 400; off, the header means nothing.
    _submit_with_fault(api, tasks, "explode-please")


@then("both tasks are accepted and stored without a fault")
def accepted_without_fault(tasks: ScenarioTasks, store: TaskStore) -> None:
    for task_id in tasks.accepted_ids():
        item = stored(store, task_id)
        assert "fault" not in item, f"production stored a fault directive: {item}"


@then("both tasks are COMPLETED on their first attempt")
def completed_first_attempt(
    tasks: ScenarioTasks, store: TaskStore, budget: DeployedSettings
) -> None:
    for task_id in tasks.accepted_ids():
        item = wait_until(
            functools.partial(_first_outcome, store, task_id),
            timeout=budget.processor_timeout_s + 15.0,
            interval=0.1,
            description=f"task {task_id}'s first attempt to end",
        )
        assert item["status"] == "COMPLETED", f"production honoured a fault: {item}"
        assert int(item["attempts"]) == 1, item


def _first_outcome(store: TaskStore, task_id: str) -> dict[str, Any] | None:
    """The task once its first attempt ended: COMPLETED, or any recorded failure (a retry
    would only come after the visibility timeout, 300 s in production)."""
    item = store.get(task_id)
    if item is None:
        return None
    ended = item.get("status") in ("COMPLETED", "FAILED")
    failed = any(entry.get("event") == "failed" for entry in item.get("history", []))
    return item if ended or failed else None
