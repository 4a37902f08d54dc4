"""Task bodies for ``POST /tasks``: the one valid-task factory and a catalogue of invalid ones.

Plain Python (no pytest, no locust), so the features' steps, the locustfiles and the
handlers' unit tests all build their tasks here.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PRIORITIES = ("low", "medium", "high")


def valid_task(title: str = "Prepare the quarterly report", **overrides: Any) -> dict[str, Any]:
    """A task that passes every validation rule; ``overrides`` replace or add fields."""
    task: dict[str, Any] = {
        "title": title,
        "description": "Collect the figures and write the summary.",
        "priority": "medium",
        "due_date": "2026-12-31",
    }
    task.update(overrides)
    return task


def varied_valid_task(rng: random.Random, label: str = "load") -> dict[str, Any]:
    """A valid task with a unique title, a description of varying length, a priority in
    either case and a due date that is absent, a date or a date-time (load scenarios)."""
    task = valid_task(
        f"{label} {uuid.uuid4().hex[:12]}",
        description="Load test task. " * rng.randint(1, 8),
        priority=rng.choice(PRIORITIES).upper() if rng.random() < 0.2 else rng.choice(PRIORITIES),
    )
    del task["due_date"]
    roll = rng.random()
    due = datetime.now(UTC) + timedelta(days=rng.randint(1, 60))
    if roll < 0.3:
        task["due_date"] = due.date().isoformat()
    elif roll < 0.6:
        task["due_date"] = due.replace(microsecond=0).isoformat()
    return task


def invalid_tasks() -> list[tuple[str, Any]]:
    """``(label, body)`` pairs the API must reject with 400 and an error body."""
    ok = {"title": "t", "description": "d", "priority": "low"}
    return [
        ("missing title", {"description": "d", "priority": "low"}),
        ("blank title", {**ok, "title": "   "}),
        ("title too long", {**ok, "title": "x" * 201}),
        ("description too long", {**ok, "description": "x" * 2001}),
        ("unknown priority", {**ok, "priority": "urgent"}),
        ("impossible due date", {**ok, "due_date": "2026-02-30"}),
        ("due date-time without timezone", {**ok, "due_date": "2026-03-01T10:00:00"}),
        ("unknown field", {**ok, "owner": "someone"}),
        ("not an object", ["title", "description"]),
    ]
