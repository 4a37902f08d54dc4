"""end_to_end: POST tasks, record every accepted one, account for all of them afterwards.

The users only create tasks (valid ones, a share with an ``Idempotency-Key`` retried
once, and optionally poison tasks that the stack's test-only fault injection makes fail
until they reach the dead-letter queue). Every accepted task is recorded with the
client's send and accept times (``loadtest.recorder``). After locust stops,
``harness load`` waits for the tasks to settle and computes the ledger
(``harness.load.ledger``): accepted = completed + dead-lettered, lost 0, applied twice 0,
order preserved, end-to-end latency, drain throughput, backlog over time.

Shares: ``LOAD_IDEMPOTENT_RATIO`` (0.05), ``LOAD_POISON_RATIO`` (0: poison tasks block the
single message group through all their retries); rate: ``LOAD_USER_RATE``.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, task

from cdk.contract import FAULT_INJECTION_HEADER
from harness.load.settings import ENV_IDEMPOTENT_RATIO, ENV_POISON_RATIO, Scenario, env_float
from harness.payloads import varied_valid_task
from loadtest.common import (
    ConfiguredShape,
    api_signer,
    reject,
    signed_headers,
    target_for,
    user_wait_time,
)
from loadtest.recorder import RECORDER

SCENARIO: Scenario = "end_to_end"
TARGET = target_for(SCENARIO)
IDEMPOTENT_RATIO = env_float(ENV_IDEMPOTENT_RATIO, 0.05)
POISON_RATIO = env_float(ENV_POISON_RATIO, 0.0)
SIGNER = api_signer(TARGET)  # the API's IAM authorization: every request signed


class Shape(ConfiguredShape):
    scenario = SCENARIO


class EndToEndUser(FastHttpUser):
    """A client creating tasks and noting which ones the API accepted."""

    host = TARGET.api_url if TARGET else None
    wait_time = user_wait_time(SCENARIO)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.pending_retry: tuple[str, dict[str, Any]] | None = None

    @task
    def create(self) -> None:
        headers: dict[str, str] = {}
        poison = False
        key: str | None = None
        if self.pending_retry is not None:
            key, payload = self.pending_retry
            self.pending_retry = None
            name = "POST /tasks (idempotent retry)"
        else:
            payload = varied_valid_task(self.rng, label="e2e")
            name = "POST /tasks"
            roll = self.rng.random()
            if roll < POISON_RATIO:
                poison = True
                headers[FAULT_INJECTION_HEADER] = "always-fail"
                name = "POST /tasks (poison)"
            elif roll < POISON_RATIO + IDEMPOTENT_RATIO:
                key = str(uuid.uuid4())
                self.pending_retry = (key, payload)
        if key:
            headers["Idempotency-Key"] = key
        sent_at = time.time()
        body = json.dumps(payload)
        headers = signed_headers(
            SIGNER,
            "POST",
            f"{self.host}/tasks",
            body,
            {"Content-Type": "application/json", **headers},
        )
        with self.client.post(
            "/tasks", data=body, headers=headers, name=name, catch_response=True
        ) as response:
            accepted_at = time.time()
            if response.status_code != 200:
                reject(response, f"status {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                task_id = str(json.loads(response.text or "")["task_id"])
                uuid.UUID(task_id)  # the id the table is keyed by, exactly as returned
            except (ValueError, KeyError, TypeError):
                response.failure("200 without a UUID task_id")
                return
            RECORDER.record(
                task_id=task_id,
                sent_at=sent_at,
                accepted_at=accepted_at,
                poison=poison,
                idempotency_key=key,
            )
