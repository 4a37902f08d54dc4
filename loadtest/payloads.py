"""Request bodies for the API scenarios: valid tasks and a catalogue of invalid ones.

Plain Python (no locust), shared by the locustfiles and the tests' stand-in API.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

PRIORITIES = ("low", "medium", "high")


def valid_task(rng: random.Random, label: str = "load") -> dict[str, Any]:
    """A task the API must accept; varied priority case and optional due date."""
    body: dict[str, Any] = {
        "title": f"{label} {uuid.uuid4().hex[:12]}",
        "description": "Load test task. " * rng.randint(1, 8),
        "priority": rng.choice(PRIORITIES).upper()
        if rng.random() < 0.2
        else rng.choice(PRIORITIES),
    }
    roll = rng.random()
    due = datetime.now(UTC) + timedelta(days=rng.randint(1, 60))
    if roll < 0.3:
        body["due_date"] = due.date().isoformat()
    elif roll < 0.6:
        body["due_date"] = due.replace(microsecond=0).isoformat()
    return body


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
