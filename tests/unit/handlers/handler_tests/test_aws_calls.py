"""AWS calls per task, counted through botocore's own events: a figure that does not depend
on the machine, kept at its minimum (issue 19).

- ``POST /tasks``: store, send, confirm (the lifecycle's three steps); with an
  ``Idempotency-Key`` also the idempotency record and its result;
- ``GET /tasks/{id}``: one read;
- the processor: one conditional write per task that carries no fault directive (the start
  write completes it, see :mod:`handlers.domain.processing`); the event source mapping's
  receive and delete are the queue's, not the function's.

``pytest tests/unit/handlers/handler_tests/test_aws_calls.py -s`` prints the figures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import pytest

from harness.payloads import valid_task

from .conftest import CallApi, Cloud, RunProcessor
from .events import records_from_messages

pytestmark = [pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")]

BATCH = 10

MINIMUM_CALLS: Final[dict[str, tuple[str, ...]]] = {
    "POST": ("PutItem", "SendMessage", "UpdateItem"),
    "POST with Idempotency-Key": ("PutItem", "PutItem", "SendMessage", "UpdateItem", "UpdateItem"),
    "GET": ("GetItem",),
    "processor, per task": ("UpdateItem",),
}
"""Each path's calls in order; ``benchmarks/local_stack_bench.py`` prints what a run on the
local stack measured beside these."""


@contextlib.contextmanager
def _counted(cloud: Cloud) -> Iterator[list[str]]:
    """The operations the handlers' clients call meanwhile (they share the test's clients)."""
    calls: list[str] = []

    def count(model: object, **_: object) -> None:
        calls.append(str(getattr(model, "name", model)))

    clients = (cloud.dynamodb, cloud.sqs)
    for client in clients:
        client.meta.events.register("before-call", count, unique_id="count-aws-calls")
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", unique_id="count-aws-calls")


def test_aws_calls_per_task_are_at_their_minimum(
    cloud: Cloud, call_api: CallApi, run_processor: RunProcessor
) -> None:
    with _counted(cloud) as post:
        answer = call_api("POST", "/tasks", json_body=valid_task())
    assert answer.status == 200, answer
    with _counted(cloud) as keyed:
        answer = call_api(
            "POST", "/tasks", json_body=valid_task(), headers={"Idempotency-Key": "calls-1"}
        )
    assert answer.status == 200, answer
    with _counted(cloud) as get:
        assert call_api("GET", f"/tasks/{answer.json['task_id']}").status == 200
    for index in range(BATCH - 2):
        assert call_api("POST", "/tasks", json_body=valid_task(title=f"t{index}")).status == 200
    messages = cloud.receive(limit=BATCH)
    assert len(messages) == BATCH
    with _counted(cloud) as processed:
        assert run_processor(records_from_messages(messages)) == {"batchItemFailures": []}
    assert {item["status"] for item in cloud.items()} == {"COMPLETED"}

    print(
        f"\nAWS calls per task: POST {len(post)} {post}; POST with Idempotency-Key "
        f"{len(keyed)} {keyed}; GET {len(get)} {get}; processor "
        f"{len(processed) / BATCH:g} per task ({len(processed)} for a batch of {BATCH})"
    )
    assert post == list(MINIMUM_CALLS["POST"])
    assert keyed == list(MINIMUM_CALLS["POST with Idempotency-Key"])
    assert get == list(MINIMUM_CALLS["GET"])
    assert processed == list(MINIMUM_CALLS["processor, per task"]) * BATCH
