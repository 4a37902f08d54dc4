"""Accepting a task under faults at every step: no 200 without the task queued, no 503 with
anything of it processed, nothing stranded (``handlers.domain.submission``).

Every combination of the API's test-only faults is submitted with an Idempotency-Key, then
the queue is drained through the real processor, the task's deadline is let pass, and the
queue drained again. The answer must match its promise:

- 200: the task ends COMPLETED, applied once;
- 503: nothing of it is ever processed (no attempt, never applied), and it reads CANCELLED;
- 500 ``outcome_unknown`` (with the task id) or the function ended (API Gateway's 502):
  either outcome, and a retry with the same key answers 200 with the same task, which then
  ends COMPLETED, applied once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from handlers import api
from handlers.domain.faults import ApiFault
from harness.payloads import valid_task

from .conftest import ApiAnswer, CallApi, Cloud

pytestmark = [pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")]

Drain = Callable[[], list[dict[str, Any]]]
ENDED = "ended"  # the function ended mid-request: API Gateway answers 502
PAST = "2000-01-01T00:00:00.000000Z"


class FunctionEnded(BaseException):
    """Stands in for the end of the API function's process (the test-only ``end-*``)."""


@pytest.fixture
def ends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the API's real exit; record each time it was asked to end."""
    seen: list[int] = []

    def exit_(code: int) -> None:
        seen.append(code)
        raise FunctionEnded

    monkeypatch.setattr(api, "_exit", exit_)
    return seen


def _post(
    call_api: CallApi, *, key: str | None, faults: frozenset[str] = frozenset()
) -> ApiAnswer | str:
    headers = {"Idempotency-Key": key} if key else {}
    if faults:
        headers["X-Fault-Injection"] = ", ".join(sorted(faults))
    try:
        return call_api("POST", "/tasks", json_body=valid_task(), headers=headers)
    except FunctionEnded:
        return ENDED


def _http(answer: ApiAnswer | str) -> ApiAnswer:
    """The answer, which must be an HTTP one (the function did not end)."""
    assert isinstance(answer, ApiAnswer), answer
    return answer


def _expire(cloud: Cloud, task_id: str) -> None:
    """Let the task's deadline pass (and any in-flight idempotency record's)."""
    cloud.dynamodb.update_item(
        TableName="tasks",
        Key={"task_id": {"S": task_id}},
        UpdateExpression="SET pending_until = :past",
        ConditionExpression="attribute_exists(task_id)",
        ExpressionAttributeValues={":past": {"S": PAST}},
    )


def _release_idempotency_records(cloud: Cloud) -> None:
    """An ended function leaves its idempotency record in progress until the invocation's
    deadline; let that deadline pass, as a client retrying later would see."""
    for record in cloud.dynamodb.scan(TableName="idempotency")["Items"]:
        if "in_progress_expiration" in record:
            cloud.dynamodb.update_item(
                TableName="idempotency",
                Key={"id": record["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": {"N": "0"}},
            )


def _drain_all(drain: Drain) -> None:
    for _ in range(5):
        if not drain():
            return
    raise AssertionError("the queue did not drain")


def _expected(faults: frozenset[str]) -> int | str:
    """Which answer each combination must get: the first step that fails decides."""
    if ApiFault.STORE_FAILS in faults:
        return 503
    if ApiFault.END_AFTER_STORE in faults:
        return ENDED
    if ApiFault.SEND_FAILS in faults:
        return 500 if ApiFault.CANCEL_FAILS in faults else 503
    if ApiFault.END_AFTER_SEND in faults:
        return ENDED
    if ApiFault.SEND_LOST in faults:
        return 500 if ApiFault.CANCEL_FAILS in faults else 503
    if ApiFault.CONFIRM_FAILS in faults:
        return 500
    return 200


ALL_FAULTS = sorted(fault.value for fault in ApiFault)
COMBINATIONS = [
    frozenset(combo)
    for size in range(len(ALL_FAULTS) + 1)
    for combo in itertools.combinations(ALL_FAULTS, size)
]


@pytest.mark.parametrize("faults", COMBINATIONS, ids=lambda f: "+".join(sorted(f)) or "none")
def test_every_combination_of_api_faults_keeps_the_answers_promise(
    cloud: Cloud, call_api: CallApi, drain: Drain, ends: list[int], faults: frozenset[str]
) -> None:
    cloud.fault_injection(True)
    key = "combination"
    answer = _post(call_api, key=key, faults=faults)
    status = answer if isinstance(answer, str) else answer.status
    assert status == _expected(faults), answer

    # Whatever was sent is delivered now; then the deadline passes; then anything late.
    _drain_all(drain)
    items = cloud.items()
    assert len(items) <= 1, items
    for item in items:
        _expire(cloud, item["task_id"])
    _drain_all(drain)
    items = cloud.items()

    if status == 200:
        assert isinstance(answer, ApiAnswer)
        (item,) = items
        assert item["task_id"] == answer.json["task_id"]
        assert (item["status"], item["applied"]) == ("COMPLETED", 1), item
        return
    if status == 503:
        for item in items:  # stored or not: never processed, and it reads CANCELLED
            assert (item["attempts"], item["history"]) == (0, []), item
            assert "applied" not in item
            seen = call_api("GET", f"/tasks/{item['task_id']}").json
            assert seen["status"] == "CANCELLED", seen
    if status == 500:
        assert isinstance(answer, ApiAnswer)
        body = answer.json
        assert body["error"] == "outcome_unknown", body
        (item,) = items
        assert body["task_id"] == item["task_id"]
        assert answer.headers["Retry-After"]

    # A retry with the same key, the faults gone, converges on one task processed once.
    _release_idempotency_records(cloud)
    retry = _http(_post(call_api, key=key))
    assert retry.status == 200, retry
    _drain_all(drain)
    (item,) = cloud.items()
    assert item["task_id"] == retry.json["task_id"]
    assert (item["status"], item["applied"]) == ("COMPLETED", 1), item
    assert ends == ([70] if status == ENDED else [])


# --- the single faults, one by one -------------------------------------------------------------


def _submit_faulty(cloud: Cloud, call_api: CallApi, *faults: str) -> ApiAnswer | str:
    cloud.fault_injection(True)
    return _post(call_api, key=None, faults=frozenset(faults))


def test_a_failing_store_answers_503_and_stores_and_sends_nothing(
    cloud: Cloud, call_api: CallApi
) -> None:
    answer = _submit_faulty(cloud, call_api, "store-fails")
    assert _http(answer).status == 503, answer
    assert cloud.items() == []
    assert cloud.receive() == []


def test_a_function_ended_after_the_store_leaves_a_task_its_deadline_cancels(
    cloud: Cloud, call_api: CallApi, ends: list[int]
) -> None:
    assert _submit_faulty(cloud, call_api, "end-after-store") == ENDED
    (item,) = cloud.items()
    assert item["status"] == "PENDING"
    assert item["purge_at"] > 0, "an abandoned task must be removed by TTL eventually"
    assert cloud.receive() == []
    assert call_api("GET", f"/tasks/{item['task_id']}").json["status"] == "PENDING"
    _expire(cloud, item["task_id"])
    assert call_api("GET", f"/tasks/{item['task_id']}").json["status"] == "CANCELLED"


def test_a_failing_send_cancels_the_task_before_answering_503(
    cloud: Cloud, call_api: CallApi
) -> None:
    answer = _submit_faulty(cloud, call_api, "send-fails")
    assert _http(answer).status == 503, answer
    (item,) = cloud.items()
    assert item["status"] == "CANCELLED"
    assert cloud.receive() == []


def test_a_lost_send_response_cancels_the_task_and_the_processor_drops_its_message(
    cloud: Cloud, call_api: CallApi, drain: Drain, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = _submit_faulty(cloud, call_api, "send-lost")
    assert _http(answer).status == 503, answer
    (item,) = cloud.items()
    assert item["status"] == "CANCELLED"
    capsys.readouterr()
    assert len(drain()) == 1, "the message did arrive"
    after = cloud.item(item["task_id"])
    assert after is not None
    assert (after["status"], after["attempts"], after["history"]) == ("CANCELLED", 0, [])
    assert '"DroppedMessages":[1.0]' in capsys.readouterr().out


def test_a_task_the_processor_took_before_the_cancel_is_a_200(
    cloud: Cloud, call_api: CallApi, drain: Drain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The message arrives and is processed while the API still waits for the send's
    # (lost) response: the cancel finds the task taken, so the answer is 200.
    from handlers.adapters.sqs import SqsTaskQueue

    real_send = SqsTaskQueue.send

    def send_then_process(self: SqsTaskQueue, **kwargs: Any) -> None:
        real_send(self, **kwargs)
        drain()

    monkeypatch.setattr(SqsTaskQueue, "send", send_then_process)
    answer = _http(_submit_faulty(cloud, call_api, "send-lost"))
    assert answer.status == 200, answer
    item = cloud.item(answer.json["task_id"])
    assert item is not None
    assert (item["status"], item["applied"]) == ("COMPLETED", 1)


def test_a_function_ended_after_the_send_still_processes_the_task(
    cloud: Cloud, call_api: CallApi, drain: Drain, ends: list[int]
) -> None:
    assert _submit_faulty(cloud, call_api, "end-after-send") == ENDED
    (item,) = cloud.items()
    assert item["status"] == "PENDING"
    drain()  # within its deadline the processor may start a PENDING task
    after = cloud.item(item["task_id"])
    assert after is not None
    assert (after["status"], after["applied"]) == ("COMPLETED", 1)
    assert "purge_at" not in after, "a processed task must not be removed by TTL"


def test_a_message_that_arrives_after_the_deadline_is_dropped_and_the_task_cancelled(
    cloud: Cloud, call_api: CallApi, drain: Drain, ends: list[int]
) -> None:
    assert _submit_faulty(cloud, call_api, "end-after-send") == ENDED
    (item,) = cloud.items()
    _expire(cloud, item["task_id"])
    drain()
    after = cloud.item(item["task_id"])
    assert after is not None
    assert (after["status"], after["attempts"]) == ("CANCELLED", 0)


def test_a_failing_confirm_answers_outcome_unknown_with_the_task_id(
    cloud: Cloud, call_api: CallApi
) -> None:
    answer = _http(_submit_faulty(cloud, call_api, "confirm-fails"))
    assert answer.status == 500, answer
    body = answer.json
    assert body["error"] == "outcome_unknown"
    (item,) = cloud.items()
    assert (body["task_id"], item["status"]) == (item["task_id"], "PENDING")
    assert len(cloud.receive()) == 1


def test_without_a_key_a_503_retry_is_a_new_task_and_the_first_is_never_processed(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    first = _submit_faulty(cloud, call_api, "send-lost")
    assert _http(first).status == 503
    second = _post(call_api, key=None)
    assert _http(second).status == 200
    _drain_all(drain)
    statuses = sorted(item["status"] for item in cloud.items())
    assert statuses == ["CANCELLED", "COMPLETED"]


def test_a_processor_directive_and_api_faults_combine(
    cloud: Cloud, call_api: CallApi, drain: Drain
) -> None:
    cloud.fault_injection(True)
    answer = call_api(
        "POST",
        "/tasks",
        json_body=valid_task(),
        headers={"X-Fault-Injection": "fail-attempts=1, confirm-fails"},
    )
    assert answer.status == 500, answer
    (item,) = cloud.items()
    assert item["fault"] == "fail-attempts=1", "the API's own faults are not stored"
    assert json.loads(cloud.receive()[0]["Body"])["fault"] == "fail-attempts=1"


@pytest.mark.parametrize(
    "header", ["send-fails, bogus", "crash, always-fail", "store-fails,", "end-after-lunch"]
)
def test_an_invalid_fault_header_is_400_and_nothing_happens(
    cloud: Cloud, call_api: CallApi, header: str
) -> None:
    cloud.fault_injection(True)
    answer = call_api(
        "POST", "/tasks", json_body=valid_task(), headers={"X-Fault-Injection": header}
    )
    assert answer.status == 400, answer
    assert [d["field"] for d in answer.json["details"]] == ["X-Fault-Injection"]
    assert cloud.items() == []


def test_api_faults_are_ignored_when_fault_injection_is_off(
    cloud: Cloud, call_api: CallApi
) -> None:
    cloud.fault_injection(False)
    answer = _post(call_api, key=None, faults=frozenset({"store-fails", "end-after-send"}))
    assert _http(answer).status == 200, answer
