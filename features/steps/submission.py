"""Steps of the submission and validation feature."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import Any

from pytest_bdd import parsers, then, when

from features.steps.common import ScenarioTasks, stored
from harness.drivers import ApiResponse, TaskApi, TaskStore, new_idempotency_key
from harness.payloads import valid_task

FIELDS = {
    "title": "title",
    "description": "description",
    "priority": "priority",
    "due date": "due_date",
}
_LENGTH = re.compile(
    r"^(\d+) characters? long( with spaces around| with a bell character inside)?$"
)
MISSING = object()
MAX_BODY_BYTES = 16384
"""The spec's body limit (16 KiB), as the feature states it."""


def field_value(description: str) -> Any:
    """Turn the plain-language value of an Examples row into the value to send."""
    if description == "missing":
        return MISSING
    if description == "null":
        return None
    if description == "only spaces":
        return "     "
    if match := _LENGTH.match(description):
        text = "x" * int(match.group(1))
        if match.group(2) == " with spaces around":
            return f"   {text}   "
        if match.group(2):
            return f"{text[:100]}\x07{text[100:]}"
        return text
    if description.startswith('"') and description.endswith('"'):
        return description[1:-1]
    raise ValueError(f"unknown value description {description!r}")


def padded_body(size: int) -> str:
    """A valid task as JSON, padded with insignificant spaces to exactly ``size`` bytes."""
    text = json.dumps(valid_task("Padded task"))
    padding = size - len(text.encode())
    assert padding >= 0, f"a valid task is already {len(text.encode())} bytes"
    return text[:-1] + " " * padding + "}"


@when(
    parsers.parse("a client submits a task whose {field_name} is {value}"),
    target_fixture="sent_task",
)
def submit_with_field(
    api: TaskApi, tasks: ScenarioTasks, field_name: str, value: str
) -> dict[str, Any]:
    task = valid_task()
    key = FIELDS[field_name]
    converted = field_value(value)
    if converted is MISSING:
        task.pop(key)
    else:
        task[key] = converted
    tasks.add(f"{field_name} {value}", api.submit(task))
    return task


@then(parsers.parse("its stored {field_name} is {expected}"))
def stored_field(
    tasks: ScenarioTasks,
    store: TaskStore,
    sent_task: dict[str, Any],
    field_name: str,
    expected: str,
) -> None:
    key = FIELDS[field_name]
    item = stored(store, tasks.accepted_ids()[-1])
    if expected == "absent":
        assert key not in item, f"the task stored a {key} it was not given: {item.get(key)!r}"
        return
    wanted = sent_task[key] if expected == "as sent" else field_value(expected)
    assert item.get(key) == wanted, f"stored {key} {item.get(key)!r}, expected {wanted!r}"


@then("the submission is rejected as invalid")
def rejected_invalid(tasks: ScenarioTasks) -> None:
    response = tasks.last.response
    assert response.status == 400, f"expected HTTP 400, got {response.describe()}"


@then(parsers.parse('the error points at the {field_name} and mentions "{hint}"'))
def error_points_at(tasks: ScenarioTasks, field_name: str, hint: str) -> None:
    body = tasks.last.response.json
    key = FIELDS[field_name]
    details = body.get("details") or []
    for_field = [d for d in details if d.get("field") == key]
    assert for_field, f"no error detail names the field {key!r}: {json.dumps(body)}"
    messages = " ".join(str(d.get("message", "")) for d in for_field)
    assert hint.lower() in messages.lower(), (
        f"the message for {key!r} does not mention {hint!r}: {messages!r}"
    )


@when(parsers.parse('a client submits a task titled "{title}" written with combining accents'))
def submit_decomposed(api: TaskApi, tasks: ScenarioTasks, title: str) -> None:
    # NFD splits "è" into "e" + U+0300: the API must store the composed (NFC) form.
    decomposed = unicodedata.normalize("NFD", title)
    assert decomposed != title
    tasks.add("decomposed", api.submit(valid_task(decomposed)))


@when("a client submits a task whose description holds a tab, a new line and a bell character")
def description_with_controls(api: TaskApi, tasks: ScenarioTasks) -> None:
    task = valid_task(description="Step one\tthen\nstep two\x07 done")
    tasks.add("control characters", api.submit(task))


@then(parsers.parse('the stored title is "{expected}" in composed form'))
def stored_title(tasks: ScenarioTasks, store: TaskStore, expected: str) -> None:
    item = stored(store, tasks.accepted_ids()[-1])
    assert item["title"] == unicodedata.normalize("NFC", expected), (
        f"stored title {item['title']!r}, expected {expected!r}"
    )


@then("the stored description keeps the tab and the new line but not the bell character")
def stored_description(tasks: ScenarioTasks, store: TaskStore) -> None:
    item = stored(store, tasks.accepted_ids()[-1])
    assert item["description"] == "Step one\tthen\nstep two done", repr(item["description"])


@when(parsers.parse("a client sends {request}"))
def send_request(api: TaskApi, tasks: ScenarioTasks, request: str) -> None:
    task = valid_task()
    if request == "a body that is not valid JSON":
        response = api.submit(raw_body='{"title": "unfinished"')
    elif request == "a list instead of a task":
        response = api.submit(raw_body=json.dumps([task]))
    elif request == "a valid task labelled as plain text":
        response = api.submit(raw_body=json.dumps(task), content_type="text/plain")
    elif request == f"a valid task padded to {MAX_BODY_BYTES + 1} bytes":
        response = api.submit(raw_body=padded_body(MAX_BODY_BYTES + 1))
    elif request == "a task larger than the 16 KiB body limit":
        response = api.submit(valid_task(description="x" * 17 * 1024))
    elif request == "a task with a field the API does not know":
        response = api.submit({**task, "owner": "someone"})
    else:
        raise ValueError(f"unknown request {request!r}")
    tasks.add(request, response)


@when(parsers.parse("a client submits a valid task padded to exactly {size:d} bytes"))
def submit_padded(api: TaskApi, tasks: ScenarioTasks, size: int) -> None:
    body = padded_body(size)
    assert len(body.encode()) == size
    tasks.add(f"{size} bytes", api.submit(raw_body=body))


@when(
    parsers.parse('a browser asks whether it may POST tasks from "{origin}"'),
    target_fixture="preflight",
)
def browser_preflight(api: TaskApi, origin: str) -> ApiResponse:
    return api.request(
        "OPTIONS",
        "/tasks",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )


@then("the API allows that origin to POST tasks with a Content-Type header")
def preflight_allows(preflight: ApiResponse) -> None:
    assert preflight.status in (200, 204), preflight.describe()
    headers = {k.lower(): v for k, v in preflight.headers.items()}
    assert headers.get("access-control-allow-origin") in ("*", "https://app.example.com"), headers
    assert "POST" in headers.get("access-control-allow-methods", ""), headers
    assert "content-type" in headers.get("access-control-allow-headers", "").lower(), headers


@when(
    "a client submits a valid task with a fresh idempotency key", target_fixture="idempotency_key"
)
def submit_with_key(api: TaskApi, tasks: ScenarioTasks) -> str:
    key = new_idempotency_key()
    tasks.add("first", api.submit(valid_task("Idempotent task"), headers={"Idempotency-Key": key}))
    assert tasks.last.response.status == 200, tasks.last.response.describe()
    return key


@when("the client retries exactly the same submission with the same key")
def retry_same(api: TaskApi, tasks: ScenarioTasks, idempotency_key: str) -> None:
    tasks.add(
        "retry",
        api.submit(valid_task("Idempotent task"), headers={"Idempotency-Key": idempotency_key}),
    )


@when("the client submits a different task with the same key", target_fixture="different_title")
def retry_different(api: TaskApi, tasks: ScenarioTasks, idempotency_key: str) -> str:
    title = f"Another task {uuid.uuid4()}"
    tasks.add(
        "different",
        api.submit(valid_task(title), headers={"Idempotency-Key": idempotency_key}),
    )
    return title


@then("no task was created for the different body")
def nothing_created(store: TaskStore, different_title: str) -> None:
    found = store.find_by_title(different_title)
    assert not found, f"the refused request still stored a task: {found}"


@when(
    parsers.parse("a client submits a valid task with an idempotency key of {length:d} characters")
)
def submit_with_key_length(api: TaskApi, tasks: ScenarioTasks, length: int) -> None:
    key = (new_idempotency_key() * 10)[:length]
    assert len(key) == length
    tasks.add(f"key of {length}", api.submit(valid_task(), headers={"Idempotency-Key": key}))


@then(parsers.parse("the key is {verdict}"))
def key_verdict(tasks: ScenarioTasks, verdict: str) -> None:
    response = tasks.last.response
    if verdict == "accepted":
        assert response.status == 200, f"expected the key to be accepted: {response.describe()}"
        return
    assert response.status == 400, f"expected HTTP 400 for the key: {response.describe()}"
    fields = [detail.get("field") for detail in response.json.get("details") or []]
    assert fields == ["Idempotency-Key"], f"the error does not name the key: {response.json}"


@then("both answers carry the same task id")
def same_task_id(tasks: ScenarioTasks) -> None:
    first, retry = tasks.by_label("first"), tasks.by_label("retry")
    assert retry.response.status == 200, retry.response.describe()
    assert first.task_id == retry.task_id, (first.task_id, retry.task_id)


@then("the task was processed once")
def processed_once(tasks: ScenarioTasks, store: TaskStore) -> None:
    item = stored(store, tasks.items[0].task_id or "")
    assert item["status"] == "COMPLETED", item
    assert int(item.get("duplicate_deliveries", 0)) == 0, (
        f"the task was delivered to the processor more than once: {item}"
    )


@when(parsers.parse("a client looks up the task {task_id}"))
def look_up(api: TaskApi, tasks: ScenarioTasks, task_id: str) -> None:
    tasks.add(task_id, api.get(task_id))
