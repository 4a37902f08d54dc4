"""POST /tasks through ``handlers.api.handler`` with API Gateway REST (v1) proxy events."""

from __future__ import annotations

import json
import unicodedata
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers import api
from handlers.domain import submission
from handlers.domain.constants import MAX_BODY_BYTES, MESSAGE_GROUP_ID, RETRY_AFTER_SECONDS
from harness.payloads import valid_task

from .conftest import ApiAnswer, CallApi, Cloud

# Powertools warns about normal situations here (an invocation cut short, multipart).
pytestmark = [
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
    pytest.mark.filterwarnings("ignore:Received multipart/form-data:UserWarning"),
]


def _details(answer: ApiAnswer) -> dict[str, str]:
    assert answer.status == 400, answer
    body = answer.json
    assert body["error"] == "validation_error", body
    return {detail["field"]: detail["message"] for detail in body["details"]}


def _assert_error(answer: ApiAnswer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = answer.json
    assert body["error"] == code, body
    assert isinstance(body["message"], str), body
    assert body["message"], body
    return body


# --- the happy path -------------------------------------------------------------------------


def test_a_valid_task_is_stored_queued_and_sent_to_the_fifo_group(
    cloud: Cloud, call_api: CallApi
) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(priority="HIGH"))

    assert answer.status == 200, answer
    body = answer.json
    assert set(body) == {"task_id", "message", "status"}
    assert body["status"] == "QUEUED"
    assert body["message"]
    assert uuid.UUID(body["task_id"]).version == 4
    item = cloud.item(body["task_id"])
    assert item is not None
    assert item["status"] == "QUEUED"
    assert item["priority"] == "high"
    assert item["attempts"] == 0
    assert item["duplicate_deliveries"] == 0
    assert item["history"] == []
    # Stored PENDING with a deadline, then confirmed QUEUED: no TTL any more.
    assert item["created_at"] < item["updated_at"] < item["pending_until"]
    assert item["acceptance"] == 1
    assert "purge_at" not in item
    assert item["created_at"].endswith("Z")
    assert len(item["created_at"]) == 27
    assert "fault" not in item
    (message,) = cloud.receive()
    assert message["Attributes"]["MessageGroupId"] == MESSAGE_GROUP_ID
    assert message["Attributes"]["MessageDeduplicationId"] == body["task_id"]
    sent = json.loads(message["Body"])
    assert sent == {
        "schema_version": 1,
        "task_id": body["task_id"],
        "task": {
            "title": item["title"],
            "description": item["description"],
            "priority": "high",
            "due_date": "2026-12-31",
            "created_at": item["created_at"],
        },
    }


def test_identical_tasks_submitted_twice_are_two_tasks_and_two_messages(
    cloud: Cloud, call_api: CallApi
) -> None:
    first = call_api("POST", "/tasks", json_body=valid_task())
    second = call_api("POST", "/tasks", json_body=valid_task())
    assert first.status == second.status == 200
    assert first.json["task_id"] != second.json["task_id"]
    # Content-based deduplication is on at the queue; the explicit id keeps both.
    assert len(cloud.receive()) == 2


def test_content_type_parameters_and_a_missing_content_type_are_accepted(
    call_api: CallApi,
) -> None:
    with_charset = call_api(
        "POST", "/tasks", json_body=valid_task(), content_type="application/json; charset=utf-8"
    )
    without = call_api("POST", "/tasks", json_body=valid_task(), content_type=None)
    assert with_charset.status == 200, with_charset
    assert without.status == 200, without


def test_a_base64_encoded_body_is_decoded(call_api: CallApi) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(), base64_encoded=True)
    assert answer.status == 200, answer


# --- validation rules and their boundaries ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "t"),
        ("title", "t" * 200),
        ("title", "   " + "t" * 200 + "   "),
        ("description", "d"),
        ("description", "d" * 2000),
        ("description", "\n" + "d" * 2000 + "\t"),
        ("priority", "low"),
        ("priority", "Medium"),
        ("priority", "HIGH"),
        ("due_date", None),
        ("due_date", "2026-12-31"),
        ("due_date", "2026-12-31T17:30:00Z"),
        ("due_date", "2026-12-31T17:30:00+02:00"),
        ("due_date", "2026-12-31T17:30:00.250-05:00"),
    ],
)
def test_values_on_each_boundary_are_accepted(call_api: CallApi, field: str, value: Any) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(**{field: value}))
    assert answer.status == 200, answer


def test_due_date_may_be_left_out(cloud: Cloud, call_api: CallApi) -> None:
    task = valid_task()
    del task["due_date"]
    answer = call_api("POST", "/tasks", json_body=task)
    assert answer.status == 200, answer
    item = cloud.item(answer.json["task_id"])
    assert item is not None
    assert "due_date" not in item


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("title", "t" * 201, "200"),
        ("title", "   " + "t" * 201, "200"),
        ("title", "     ", "at least 1"),
        ("title", "\x07\x00\x1b", "at least 1"),
        ("title", "", "at least 1"),
        ("title", 42, "string"),
        ("title", None, "string"),
        ("description", "d" * 2001, "2000"),
        ("description", " \n\t ", "at least 1"),
        ("description", ["a"], "string"),
        ("priority", "urgent", "low, medium, high"),
        ("priority", "", "low, medium, high"),
        ("priority", 1, "string"),
        ("due_date", "2026-02-30", "date"),
        ("due_date", "2026-12-31T17:30:00", "time zone"),
        ("due_date", "next tuesday", "ISO 8601"),
        ("due_date", 1767139200, "string"),
    ],
)
def test_values_just_past_each_rule_are_rejected_naming_the_field(
    cloud: Cloud, call_api: CallApi, field: str, value: Any, hint: str
) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(**{field: value}))
    details = _details(answer)
    assert list(details) == [field], details
    assert hint.lower() in details[field].lower(), details
    assert cloud.items() == []
    assert cloud.receive() == []


@pytest.mark.parametrize("field", ["title", "description", "priority"])
def test_required_fields(call_api: CallApi, field: str) -> None:
    task = valid_task()
    del task[field]
    details = _details(call_api("POST", "/tasks", json_body=task))
    assert details == {field: "field required"}


def test_unknown_fields_are_rejected_each_by_name(call_api: CallApi) -> None:
    details = _details(
        call_api("POST", "/tasks", json_body={**valid_task(), "owner": "me", "status": "COMPLETED"})
    )
    assert set(details) == {"owner", "status"}
    assert all("unknown field" in message for message in details.values())


def test_every_invalid_field_gets_its_own_detail(call_api: CallApi) -> None:
    details = _details(
        call_api(
            "POST",
            "/tasks",
            json_body={"title": " ", "description": "", "priority": "x", "due_date": "y"},
        )
    )
    assert set(details) == {"title", "description", "priority", "due_date"}


# --- sanitization -------------------------------------------------------------------------


def test_text_is_trimmed_composed_stripped_of_controls_and_html_escaped(
    cloud: Cloud, call_api: CallApi
) -> None:
    title = unicodedata.normalize("NFD", "  <b>Crème brûlée</b>\x07  ")
    description = "\u00a0Step one\tthen\r\nstep two\x07 done <script>alert('x')</script>\n"
    answer = call_api("POST", "/tasks", json_body=valid_task(title=title, description=description))
    assert answer.status == 200, answer
    item = cloud.item(answer.json["task_id"])
    assert item is not None
    assert item["title"] == "&lt;b&gt;Crème brûlée&lt;/b&gt;"
    assert unicodedata.is_normalized("NFC", item["title"])
    assert item["description"] == (
        "Step one\tthen\nstep two done &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    )
    assert json.loads(cloud.receive()[0]["Body"])["task"]["title"] == item["title"]


def test_due_dates_are_stored_in_canonical_form(cloud: Cloud, call_api: CallApi) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(due_date="2026-12-31t17:30:00z"))
    item = cloud.item(answer.json["task_id"])
    assert item is not None
    assert item["due_date"] == "2026-12-31T17:30:00Z"


# --- requests that are not a task -----------------------------------------------------------


@pytest.mark.parametrize(
    "body", ['{"title": "unfinished"', "{'single': 'quotes'}", "nul", "[" * 16_000]
)
def test_malformed_json_is_400(cloud: Cloud, call_api: CallApi, body: str) -> None:
    _assert_error(call_api("POST", "/tasks", body=body), 400, "malformed_json")
    assert cloud.items() == []


def test_a_body_that_is_not_utf8_is_400(call_api: CallApi) -> None:
    answer = call_api("POST", "/tasks", body=b'{"title": "\xff\xfe"}', base64_encoded=True)
    _assert_error(answer, 400, "malformed_json")


@pytest.mark.parametrize("body", ["[]", json.dumps([valid_task()]), '"a task"', "42", "null", ""])
def test_a_body_that_is_not_a_json_object_is_400(call_api: CallApi, body: str) -> None:
    _assert_error(call_api("POST", "/tasks", body=body), 400, "invalid_body")


def test_no_body_at_all_is_400(call_api: CallApi) -> None:
    _assert_error(call_api("POST", "/tasks", body=None), 400, "invalid_body")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "multipart/form-data", "application/xml", "application/json-patch+json", "application/jsonx"],
)  # fmt: skip
def test_a_non_json_content_type_is_415(cloud: Cloud, call_api: CallApi, content_type: str) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(), content_type=content_type)
    _assert_error(answer, 415, "unsupported_media_type")
    assert cloud.items() == []


def test_a_non_json_content_type_is_415_even_when_the_body_is_invalid(call_api: CallApi) -> None:
    answer = call_api("POST", "/tasks", body="title=x", content_type="text/plain")
    _assert_error(answer, 415, "unsupported_media_type")


def _task_of_size(size: int) -> str:
    """A valid task serialized to exactly ``size`` bytes (padding in the description)."""
    skeleton = json.dumps(valid_task(description="d"))
    padding = size - len(skeleton.encode())
    body = json.dumps(valid_task(description=" " * padding + "d"))
    assert len(body.encode()) == size
    return body


def test_a_body_of_exactly_16_kib_is_accepted(call_api: CallApi) -> None:
    answer = call_api("POST", "/tasks", body=_task_of_size(MAX_BODY_BYTES))
    assert answer.status == 200, answer


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 17 * 1024])
def test_a_larger_body_is_413(cloud: Cloud, call_api: CallApi, size: int) -> None:
    body = _assert_error(
        call_api("POST", "/tasks", body=_task_of_size(size)), 413, "payload_too_large"
    )
    assert str(MAX_BODY_BYTES) in body["message"]
    assert cloud.items() == []


def test_a_large_invalid_body_is_413_not_400(call_api: CallApi) -> None:
    _assert_error(
        call_api("POST", "/tasks", body="x" * (MAX_BODY_BYTES + 1)), 413, "payload_too_large"
    )


def test_body_size_counts_utf8_bytes_not_characters(call_api: CallApi) -> None:
    # 6000 three-byte characters: 18000 bytes although only ~6000 characters.
    body = json.dumps(valid_task(description=" " * 6000 + "x"), ensure_ascii=False).replace(
        " " * 6000, "\u3000" * 6000
    )
    _assert_error(call_api("POST", "/tasks", body=body), 413, "payload_too_large")


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/tasks", "POST, OPTIONS"),
        ("PUT", "/tasks", "POST, OPTIONS"),
        ("DELETE", "/tasks", "POST, OPTIONS"),
        ("POST", "/tasks/0b5e3a4e-6f1d-4a53-9d55-6c1a8e6f2a10", "GET, OPTIONS"),
        ("PATCH", "/tasks/anything", "GET, OPTIONS"),
    ],
)
def test_a_wrong_method_is_405_with_allow(
    call_api: CallApi, method: str, path: str, allow: str
) -> None:
    answer = call_api(method, path, json_body=valid_task())
    _assert_error(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == allow


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("POST", "/task"), ("GET", "/tasks/a/b"), ("POST", "/tasks/a/b"),
     ("GET", "/unknown")],
)  # fmt: skip
def test_an_unknown_route_is_404(call_api: CallApi, method: str, path: str) -> None:
    _assert_error(call_api(method, path), 404, "not_found")


def test_cors_preflight_allows_posting_json_from_any_origin(call_api: CallApi) -> None:
    answer = call_api(
        "OPTIONS",
        "/tasks",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Idempotency-Key",
        },
    )
    assert answer.status == 204, answer
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    allowed_headers = answer.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed_headers
    assert "idempotency-key" in allowed_headers


def test_responses_to_browsers_carry_cors_headers(call_api: CallApi) -> None:
    answer = call_api(
        "POST", "/tasks", json_body=valid_task(), headers={"Origin": "https://app.example.com"}
    )
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


# --- idempotency --------------------------------------------------------------------------


def test_the_same_key_and_body_answer_the_same_task_and_queue_nothing_new(
    cloud: Cloud, call_api: CallApi
) -> None:
    headers = {"Idempotency-Key": "order-7f3a"}
    first = call_api("POST", "/tasks", json_body=valid_task(), headers=headers)
    # Same body, keys in another order: the same request.
    reordered = dict(reversed(list(valid_task().items())))
    retry = call_api("POST", "/tasks", json_body=reordered, headers=headers)

    assert first.status == retry.status == 200, (first, retry)
    assert retry.json == first.json
    assert [item["task_id"] for item in cloud.items()] == [first.json["task_id"]]
    assert len(cloud.receive()) == 1


def test_the_same_key_with_another_body_is_422(cloud: Cloud, call_api: CallApi) -> None:
    headers = {"Idempotency-Key": "order-7f3a"}
    first = call_api("POST", "/tasks", json_body=valid_task(), headers=headers)
    other = call_api("POST", "/tasks", json_body=valid_task(title="Another"), headers=headers)
    assert first.status == 200
    _assert_error(other, 422, "idempotency_key_reused")
    assert len(cloud.items()) == 1
    assert len(cloud.receive()) == 1


def test_different_keys_make_different_tasks(cloud: Cloud, call_api: CallApi) -> None:
    first = call_api("POST", "/tasks", json_body=valid_task(), headers={"Idempotency-Key": "a"})
    second = call_api("POST", "/tasks", json_body=valid_task(), headers={"Idempotency-Key": "b"})
    assert first.json["task_id"] != second.json["task_id"]
    assert len(cloud.receive()) == 2


def test_the_header_name_is_case_insensitive(cloud: Cloud, call_api: CallApi) -> None:
    first = call_api("POST", "/tasks", json_body=valid_task(), headers={"idempotency-key": "k"})
    retry = call_api("POST", "/tasks", json_body=valid_task(), headers={"IDEMPOTENCY-KEY": "k"})
    assert first.json["task_id"] == retry.json["task_id"]


def test_an_invalid_task_under_a_key_does_not_use_the_key(call_api: CallApi) -> None:
    headers = {"Idempotency-Key": "k-1"}
    invalid = call_api("POST", "/tasks", json_body=valid_task(title=""), headers=headers)
    valid = call_api("POST", "/tasks", json_body=valid_task(), headers=headers)
    assert invalid.status == 400
    assert valid.status == 200


def test_the_same_key_while_the_first_request_is_in_flight_is_409(
    cloud: Cloud, call_api: CallApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Idempotency-Key": "in-flight"}
    overlapping: list[ApiAnswer] = []
    real_submit = submission.submit_task

    def submit_while_a_retry_arrives(*args: Any, **kwargs: Any) -> Any:
        # The client retries before the first request has finished.
        overlapping.append(call_api("POST", "/tasks", json_body=valid_task(), headers=headers))
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(api, "submit_task", submit_while_a_retry_arrives)
    first = call_api("POST", "/tasks", json_body=valid_task(), headers=headers)

    assert first.status == 200, first
    (retry,) = overlapping
    _assert_error(retry, 409, "request_in_progress")
    assert retry.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert len(cloud.items()) == 1


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\there", "é"])
def test_a_malformed_idempotency_key_is_400(call_api: CallApi, key: str) -> None:
    answer = call_api("POST", "/tasks", json_body=valid_task(), headers={"Idempotency-Key": key})
    assert list(_details(answer)) == ["Idempotency-Key"]


def test_a_failed_attempt_does_not_burn_the_key(
    cloud: Cloud, call_api: CallApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    _break_queue(monkeypatch)
    assert call_api("POST", "/tasks", json_body=valid_task(), headers=headers).status == 503
    monkeypatch.undo()
    api.reset_dependencies()
    retry = call_api("POST", "/tasks", json_body=valid_task(), headers=headers)
    assert retry.status == 200, retry
    # The retry accepted the cancelled task again: one task, now queued.
    (item,) = cloud.items()
    assert (item["task_id"], item["status"], item["acceptance"]) == (
        retry.json["task_id"],
        "QUEUED",
        2,
    )
    (message,) = cloud.receive()
    assert message["Attributes"]["MessageDeduplicationId"] == f"{item['task_id']}#2"


# --- dependencies failing -----------------------------------------------------------------


class _FailingSqs:
    """An SQS client whose SendMessage fails as a throttled or unavailable queue does."""

    def __init__(self, *config: Any) -> None:
        pass

    def send_message(self, **kwargs: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "SendMessage"
        )


def _break_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "sqs_client", _FailingSqs)
    api.reset_dependencies()


def test_a_queue_failure_is_503_with_retry_after_and_the_task_cancelled(
    cloud: Cloud, call_api: CallApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    _break_queue(monkeypatch)
    answer = call_api("POST", "/tasks", json_body=valid_task())
    _assert_error(answer, 503, "service_unavailable")
    assert answer.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    (item,) = cloud.items()
    assert item["status"] == "CANCELLED"
    assert item["purge_at"] > 0, "a cancelled task must be removed by TTL eventually"
    assert cloud.receive() == []


def test_an_unexpected_error_is_500_with_the_request_id_and_no_internals(
    call_api: CallApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals: table arn:aws:dynamodb:... password=hunter2")

    monkeypatch.setattr("handlers.adapters.dynamodb.DynamoTaskTable.put_new", explode)
    answer = call_api("POST", "/tasks", json_body=valid_task())
    body = _assert_error(answer, 500, "internal_error")
    assert "secret" not in answer.raw_body
    assert "hunter2" not in answer.raw_body
    assert uuid.UUID(body["request_id"])
    logged = [record for record in caplog.records if record.levelname == "ERROR"]
    assert [getattr(record, "request_id", None) for record in logged] == [body["request_id"]]
    assert "hunter2" in caplog.text  # the details are in the log, for operators


def test_missing_configuration_is_a_500_not_a_crash(
    call_api: CallApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASK_QUEUE_URL")
    api.reset_dependencies()
    _assert_error(call_api("POST", "/tasks", json_body=valid_task()), 500, "internal_error")


# --- fault injection (test-only) ----------------------------------------------------------


def test_the_fault_header_is_ignored_entirely_when_fault_injection_is_off(
    cloud: Cloud, call_api: CallApi
) -> None:
    cloud.fault_injection(False)
    for directive in ("always-fail", "nonsense"):
        answer = call_api(
            "POST", "/tasks", json_body=valid_task(), headers={"X-Fault-Injection": directive}
        )
        assert answer.status == 200, answer
        item = cloud.item(answer.json["task_id"])
        assert item is not None
        assert "fault" not in item
    assert all("fault" not in body for body in cloud.queued_bodies())


@pytest.mark.parametrize("flag", ["false", "TRUE", "1", ""])
def test_only_the_exact_flag_true_turns_fault_injection_on(
    cloud: Cloud, call_api: CallApi, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    monkeypatch.setenv("FAULT_INJECTION_ENABLED", flag)
    api.reset_dependencies()
    answer = call_api(
        "POST", "/tasks", json_body=valid_task(), headers={"X-Fault-Injection": "always-fail"}
    )
    item = cloud.item(answer.json["task_id"])
    assert item is not None
    assert "fault" not in item


def test_with_fault_injection_on_the_directive_is_stored_and_sent(
    cloud: Cloud, call_api: CallApi
) -> None:
    cloud.fault_injection(True)
    answer = call_api(
        "POST", "/tasks", json_body=valid_task(), headers={"X-Fault-Injection": "timeout"}
    )
    assert answer.status == 200, answer
    item = cloud.item(answer.json["task_id"])
    assert item is not None
    assert item["fault"] == "timeout-attempts=1"
    assert cloud.queued_bodies()[0]["fault"] == "timeout-attempts=1"


def test_with_fault_injection_on_an_unknown_directive_is_400(
    cloud: Cloud, call_api: CallApi
) -> None:
    cloud.fault_injection(True)
    answer = call_api(
        "POST", "/tasks", json_body=valid_task(), headers={"X-Fault-Injection": "explode"}
    )
    assert list(_details(answer)) == ["X-Fault-Injection"]
    assert cloud.items() == []
