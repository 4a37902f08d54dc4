"""api_ingest: users POST tasks through the API and check every answer.

Per iteration a user sends exactly one request (so offered load = users x rate):
mostly valid tasks (200, a UUID task_id, status QUEUED); a share of invalid ones
(400 with ``{error, message}``); a share of ``Idempotency-Key`` requests, each later
retried with the same key and body (the same task_id must come back); and a share of
``GET /tasks/{id}`` reads of tasks this user created.

Shares: ``LOAD_INVALID_RATIO`` (0.1), ``LOAD_IDEMPOTENT_RATIO`` (0.1), ``LOAD_READ_RATIO``
(0.05); rate: ``LOAD_USER_RATE``; shape: ``LOAD_SHAPE`` and friends (see harness.load.settings).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from locust import FastHttpUser, task

from harness.load.settings import (
    ENV_IDEMPOTENT_RATIO,
    ENV_INVALID_RATIO,
    ENV_READ_RATIO,
    Scenario,
    env_float,
)
from harness.payloads import invalid_tasks, varied_valid_task
from loadtest.common import (
    ConfiguredShape,
    api_signer,
    reject,
    signed_headers,
    target_for,
    user_wait_time,
)

SCENARIO: Scenario = "api_ingest"
TARGET = target_for(SCENARIO)
INVALID_RATIO = env_float(ENV_INVALID_RATIO, 0.1)
IDEMPOTENT_RATIO = env_float(ENV_IDEMPOTENT_RATIO, 0.1)
READ_RATIO = env_float(ENV_READ_RATIO, 0.05)
STATUSES = {"QUEUED", "PROCESSING", "COMPLETED", "FAILED"}
INVALID = invalid_tasks()
# Every request is signed (SigV4, the API's IAM authorization): ~0.05 ms of CPU each
# (docs/benchmarks.md), well under what a request costs the user otherwise.
SIGNER = api_signer(TARGET)
JSON = {"Content-Type": "application/json"}


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def _accepted_problem(body: Any) -> str | None:
    """Why a 200 body is not the documented ``{task_id, message, status: QUEUED}``."""
    if not isinstance(body, dict):
        return "200 body is not a JSON object"
    try:
        uuid.UUID(str(body.get("task_id")))
    except ValueError:
        return f"task_id {body.get('task_id')!r} is not a UUID"
    if body.get("status") != "QUEUED":
        return f"status {body.get('status')!r}, expected QUEUED"
    if not isinstance(body.get("message"), str):
        return "no message in the 200 body"
    return None


class Shape(ConfiguredShape):
    scenario = SCENARIO


class ApiIngestUser(FastHttpUser):
    """One client of the API."""

    host = TARGET.api_url if TARGET else None
    wait_time = user_wait_time(SCENARIO)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.created: list[str] = []
        self.pending_retry: tuple[str, dict[str, Any], str] | None = None
        # Each user starts with one request of each kind, then rolls: a short run (the
        # smoke shape on a busy machine) still checks every kind of answer.
        self.first_rolls = [0.0, INVALID_RATIO, 1.0]

    @task
    def one_request(self) -> None:
        roll = self.first_rolls.pop(0) if self.first_rolls else self.rng.random()
        if roll < INVALID_RATIO:
            self.post_invalid()
        elif roll < INVALID_RATIO + IDEMPOTENT_RATIO:
            self.post_idempotent()
        elif roll < INVALID_RATIO + IDEMPOTENT_RATIO + READ_RATIO and self.created:
            self.read_back()
        else:
            self.post_valid()

    def _post(self, body: str, name: str, headers: dict[str, str] | None = None) -> Any:
        """POST ``body`` to /tasks, signed; the locust response context."""
        url = f"{self.host}/tasks"
        return self.client.post(
            "/tasks",
            data=body,
            headers=signed_headers(SIGNER, "POST", url, body, {**JSON, **(headers or {})}),
            name=name,
            catch_response=True,
        )

    def post_valid(self) -> None:
        with self._post(json.dumps(varied_valid_task(self.rng)), "POST /tasks") as response:
            body = _json(response.text)
            if response.status_code != 200:
                reject(response, f"status {response.status_code}: {(response.text or '')[:200]}")
            elif problem := _accepted_problem(body):
                response.failure(problem)
            else:
                self.created.append(body["task_id"])
                del self.created[:-50]

    def post_invalid(self) -> None:
        label, payload = self.rng.choice(INVALID)
        with self._post(json.dumps(payload), "POST /tasks (invalid)") as response:
            body = _json(response.text)
            if response.status_code != 400:
                reject(response, f"{label}: status {response.status_code}, expected 400")
            elif not (isinstance(body, dict) and body.get("error") and body.get("message")):
                response.failure(f"{label}: 400 without an {{error, message}} body")
            else:
                response.success()  # a 400 is the right answer here

    def post_idempotent(self) -> None:
        if self.pending_retry is None:
            key, payload, name = (
                str(uuid.uuid4()),
                varied_valid_task(self.rng),
                "POST /tasks (idempotency key)",
            )
        else:
            key, payload, _ = self.pending_retry
            name = "POST /tasks (idempotent retry)"
        with self._post(json.dumps(payload), name, {"Idempotency-Key": key}) as response:
            body = _json(response.text)
            if response.status_code != 200:
                reject(response, f"status {response.status_code}: {(response.text or '')[:200]}")
                self.pending_retry = None
            elif problem := _accepted_problem(body):
                response.failure(problem)
                self.pending_retry = None
            elif self.pending_retry is None:
                self.pending_retry = (key, payload, body["task_id"])
            else:
                first_id = self.pending_retry[2]
                self.pending_retry = None
                if body["task_id"] != first_id:
                    response.failure(f"retry got task {body['task_id']}, first call got {first_id}")

    def read_back(self) -> None:
        task_id = self.rng.choice(self.created)
        with self.client.get(
            f"/tasks/{task_id}",
            headers=signed_headers(SIGNER, "GET", f"{self.host}/tasks/{task_id}", "", {}),
            name="GET /tasks/{task_id}",
            catch_response=True,
        ) as response:
            body = _json(response.text)
            if response.status_code != 200:
                reject(response, f"status {response.status_code} for a task this user created")
            elif not isinstance(body, dict) or body.get("task_id") != task_id:
                response.failure("GET returned a different task")
            elif body.get("status") not in STATUSES:
                response.failure(f"unknown status {body.get('status')!r}")
