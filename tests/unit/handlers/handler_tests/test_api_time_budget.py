"""The API function's whole AWS SDK budget fits inside its timeout, with margin.

A request that outlived the function would end between two steps of accepting a task;
the lifecycle copes with that (the deadline rule), but the answer would then be API
Gateway's 502, not the one the state machine chose. So the SDK's worst case, for the
longest path a request can take, must fit in the function's timeout: every call there can
take at most ``(connect_timeout + read_timeout) x attempts`` plus the retry backoff
between attempts. This test reads those numbers from the clients the API really builds,
counts the calls of every request path (every combination of the API's faults, the
idempotency paths, a reopen after a cancel) through botocore's own events, and compares
the product with the timeout the CDK app gives the function.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from cdk.config import EPHEMERAL_DEFAULTS, PRODUCTION
from handlers import api
from handlers.adapters import aws
from handlers.domain.faults import ApiFault
from harness.payloads import valid_task

from .conftest import CallApi, Cloud

pytestmark = [pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")]

MARGIN = 0.2  # of the timeout, left for the function's own work
LONGEST_PATH = 6  # idempotency record, store, reopen, send, confirm/cancel, result


class FunctionEnded(BaseException):
    pass


class CallCounter:
    """Counts the AWS calls the API's clients make, per request."""

    def __init__(self) -> None:
        self.current: Counter[str] = Counter()
        self.worst: tuple[int, str, list[str]] = (0, "", [])
        self._calls: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self._calls.append(model.name)

    def finish(self, label: str) -> None:
        if len(self._calls) > self.worst[0]:
            self.worst = (len(self._calls), label, list(self._calls))
        self._calls = []


@pytest.fixture
def real_clients(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The API built with the clients it builds in Lambda (moto still answers them)."""
    monkeypatch.setattr(api, "dynamodb_client", aws.dynamodb_client)
    monkeypatch.setattr(api, "sqs_client", aws.sqs_client)
    monkeypatch.setenv("FAULT_INJECTION_ENABLED", "true")
    api.reset_dependencies()
    services = api._services()
    # The idempotency layer uses the same DynamoDB client as the tasks table.
    clients = [services.table._client, services.queue._client]
    yield clients
    api.reset_dependencies()


def _worst_call_s(client: Any) -> float:
    config = client.meta.config
    retries = config.retries or {}
    attempts = int(retries.get("total_max_attempts", retries.get("max_attempts", 2) + 1))
    # Standard retries sleep up to 1 s before the second attempt (throttling), doubling
    # after, and an x-amz-retry-after header may add 5 s to each; none with one attempt.
    backoff = sum(min(2**i, 20) + 5 for i in range(attempts - 1))
    return float(attempts * (config.connect_timeout + config.read_timeout) + backoff)


def test_the_worst_request_path_fits_in_the_function_timeout(
    cloud: Cloud, call_api: CallApi, real_clients: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CallCounter()
    for client in real_clients:
        client.meta.events.register("before-call", counter)

    def ended(code: int) -> None:
        raise FunctionEnded

    monkeypatch.setattr(api, "_exit", ended)

    def post(
        label: str, key: str | None, faults: tuple[str, ...] = (), title: str | None = None
    ) -> None:
        headers = {"Idempotency-Key": key} if key else {}
        if faults:
            headers["X-Fault-Injection"] = ", ".join(faults)
        body = valid_task(title=title or label)
        with contextlib.suppress(FunctionEnded):
            call_api("POST", "/tasks", json_body=body, headers=headers)
        counter.finish(label)

    names = sorted(fault.value for fault in ApiFault)
    for size in range(len(names) + 1):
        for combo in itertools.combinations(names, size):
            label = "+".join(combo) or "none"
            post(label, key=f"key-{label}", faults=combo)
            post(label, key=None, faults=combo)
    # A retry after a 503 reopens the cancelled task: the longest path there is.
    post("cancelled", key="reopen", faults=("send-lost",), title="reopen")
    post("reopened, send lost again", key="reopen", faults=("send-lost",), title="reopen")
    # Idempotency: a replay, and a key reused with another body.
    post("first", key="replayed", title="replayed")
    post("replay", key="replayed", title="replayed")
    post("other body", key="replayed")
    call_api("GET", f"/tasks/{cloud.items()[0]['task_id']}")
    counter.finish("GET")

    calls, label, path = counter.worst
    assert calls == LONGEST_PATH, f"the longest path changed ({label}: {path}); update the docs"
    per_call = max(_worst_call_s(client) for client in real_clients)
    worst_s = calls * per_call
    for config in (PRODUCTION, EPHEMERAL_DEFAULTS):
        budget_s = config.api_timeout_s * (1 - MARGIN)
        assert worst_s <= budget_s, (
            f"{calls} calls x {per_call:.1f} s = {worst_s:.1f} s does not fit in "
            f"{config.api_timeout_s} s less {MARGIN:.0%} ({label}: {path})"
        )
    print(f"\nlongest path {label}: {path}; worst case {worst_s:.1f} s of 12 s")


def test_the_api_clients_do_not_retry_and_time_out_quickly(real_clients: list[Any]) -> None:
    # What the budget above assumes; the processor's clients keep the SDK's retries.
    for client in real_clients:
        config = client.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": 1}
        assert (config.connect_timeout, config.read_timeout) == (0.5, 1.0)
    # botocore reads max_attempts 3 as three retries: four attempts in all.
    processor_retries = aws.PROCESSOR_CLIENT_CONFIG.retries  # type: ignore[attr-defined]
    assert processor_retries == {"mode": "standard", "total_max_attempts": 4}
