"""The one valid-task factory: what it builds passes the API's rules, and the invalid
catalogue fails them (features, load scenarios and handler tests all build from it)."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from handlers.domain.tasks import CreateTaskRequest
from harness.payloads import invalid_tasks, valid_task, varied_valid_task


def test_the_valid_task_and_its_overrides_pass_the_rules() -> None:
    CreateTaskRequest.model_validate(valid_task())
    CreateTaskRequest.model_validate(valid_task("Another", priority="HIGH", due_date=None))
    assert valid_task(description="d")["description"] == "d"


def test_varied_tasks_pass_the_rules_and_cover_each_due_date_form() -> None:
    rng = random.Random(7)
    tasks = [varied_valid_task(rng, label="check") for _ in range(200)]
    for task in tasks:
        CreateTaskRequest.model_validate(task)
    forms = {"absent" if "due_date" not in t else "T" in t["due_date"] for t in tasks}
    assert forms == {"absent", True, False}, forms
    assert len({t["title"] for t in tasks}) == len(tasks), "titles must be unique"
    assert any(t["priority"].isupper() for t in tasks), "no priority in upper case"


@pytest.mark.parametrize(("label", "body"), invalid_tasks())
def test_every_invalid_task_fails_the_rules(label: str, body: object) -> None:
    with pytest.raises(ValidationError):
        CreateTaskRequest.model_validate(body)
