"""GET /tasks/{task_id} through ``handlers.api.handler``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.payloads import valid_task

from .conftest import CallApi, Cloud

Drain = Callable[[], list[dict[str, Any]]]


def _submit(call_api: CallApi, **overrides: Any) -> str:
    answer = call_api("POST", "/tasks", json_body=valid_task(**overrides))
    assert answer.status == 200, answer
    task_id: str = answer.json["task_id"]
    return task_id


def test_a_queued_task_shows_its_status_and_timestamps(call_api: CallApi) -> None:
    task_id = _submit(call_api, title="Look me up", due_date="2026-12-31T17:30:00+02:00")

    answer = call_api("GET", f"/tasks/{task_id}")

    assert answer.status == 200, answer
    body = answer.json
    assert body["task_id"] == task_id
    assert body["title"] == "Look me up"
    assert body["priority"] == "medium"
    assert body["due_date"] == "2026-12-31T17:30:00+02:00"
    assert body["status"] == "QUEUED"
    assert body["attempts"] == 0
    assert body["created_at"] < body["updated_at"]  # stored PENDING, then confirmed
    assert body["processed_at"] is None
    assert body["failure_code"] is None
    assert "history" not in body
    assert "fault" not in body
    assert "applied" not in body


def test_a_completed_task_shows_attempts_and_processing_time(
    call_api: CallApi, drain: Drain
) -> None:
    task_id = _submit(call_api)
    drain()

    body = call_api("GET", f"/tasks/{task_id}").json

    assert body["status"] == "COMPLETED"
    assert body["attempts"] == 1
    assert body["created_at"] < body["processed_at"] == body["updated_at"]
    assert body["message_id"]
    assert body["sequence_number"]
    assert body["duplicate_deliveries"] == 0


def test_ids_are_matched_in_any_letter_case(call_api: CallApi) -> None:
    task_id = _submit(call_api)
    assert call_api("GET", f"/tasks/{task_id.upper()}").json["task_id"] == task_id


@pytest.mark.parametrize(
    "task_id",
    ["not-a-task-id", "123", "3f1c2b9e8a7d4c6b9e5f1a2b3c4d5e6f",
     "3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6", "3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6g"],
)  # fmt: skip
def test_a_malformed_id_is_400_naming_the_task_id(call_api: CallApi, task_id: str) -> None:
    answer = call_api("GET", f"/tasks/{task_id}")
    assert answer.status == 400, answer
    body = answer.json
    assert body["error"] == "validation_error"
    assert [detail["field"] for detail in body["details"]] == ["task_id"]


def test_an_unknown_id_is_404(cloud: Cloud, call_api: CallApi) -> None:
    answer = call_api("GET", "/tasks/3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f")
    assert answer.status == 404, answer
    assert answer.json["error"] == "not_found"
    assert "3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f" in answer.json["message"]


def test_a_failed_task_shows_a_short_failure_code_and_no_error_text(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    cloud.fault_injection(True)
    cloud.sqs.set_queue_attributes(
        QueueUrl=cloud.task_queue_url, Attributes={"VisibilityTimeout": "0"}
    )
    answer = call_api(
        "POST", "/tasks", json_body=valid_task(), headers={"X-Fault-Injection": "always-fail"}
    )
    task_id = answer.json["task_id"]
    for _ in range(3):
        drain()

    body = call_api("GET", f"/tasks/{task_id}").json

    assert (body["status"], body["attempts"], body["failure_code"]) == (
        "FAILED",
        3,
        "injected_fault",
    )
    assert "last_error" not in body
    assert "Error" not in json.dumps(body), "error text reached the API"
