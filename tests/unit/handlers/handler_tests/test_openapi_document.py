"""The published OpenAPI document: up to date, valid, and true to what the API answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from openapi_spec_validator import validate

from handlers.openapi import DOCUMENT_PATH, main, openapi_document
from harness.payloads import valid_task

from .conftest import ApiAnswer, CallApi, Cloud


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(openapi_document())
    return loaded


def test_the_published_document_is_up_to_date() -> None:
    assert DOCUMENT_PATH.read_text(encoding="utf-8") == openapi_document(), (
        "docs/openapi.json is stale: run `.venv/bin/python -m handlers.openapi`"
    )


def test_the_generator_writes_and_checks(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert main(["--check", "--output", str(target)]) == 1
    assert main(["--output", str(target)]) == 0
    assert main(["--check", "--output", str(target)]) == 0
    target.write_text("{}", encoding="utf-8")
    assert main(["--check", "--output", str(target)]) == 1


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_operations_and_statuses_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths) == {"/tasks", "/tasks/{task_id}"}
    assert set(paths["/tasks"]) == {"post"}
    assert set(paths["/tasks/{task_id}"]) == {"get"}
    post = paths["/tasks"]["post"]
    assert set(post["responses"]) == {
        "200", "400", "403", "409", "413", "415", "422", "500", "503"
    }  # fmt: skip
    # 403: API Gateway's refusal of an unsigned or unauthorized request (IAM authorization).
    assert set(paths["/tasks/{task_id}"]["get"]["responses"]) == {"200", "400", "403", "404", "500"}
    assert post["requestBody"]["required"] is True
    assert "Retry-After" in post["responses"]["503"]["headers"]
    assert "16384" in post["description"]
    # Test-only fault injection is not part of the public contract.
    assert "x-fault-injection" not in json.dumps(document).lower()


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A JSON Schema 2020-12 validator (the Rust engine fuzzers use) for a schema of the
    document; its ``#/components/...`` references resolve against the document."""
    rooted = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "components": document["components"],
    }
    return jsonschema_rs.validator_for(rooted, validate_formats=True)


def _assert_documented(document: dict[str, Any], path: str, method: str, answer: ApiAnswer) -> None:
    responses = document["paths"][path][method]["responses"]
    assert str(answer.status) in responses, f"{method} {path} answered undocumented {answer}"
    documented = responses[str(answer.status)]
    schema = documented["content"]["application/json"]["schema"]
    _validator(document, schema).validate(answer.json)
    for header in documented.get("headers", {}):
        assert header in answer.headers, f"{answer.status} lacks documented header {header}"


def test_real_answers_match_their_documented_schemas(
    document: dict[str, Any], cloud: Cloud, call_api: CallApi
) -> None:
    created = call_api("POST", "/tasks", json_body=valid_task())
    task_id = created.json["task_id"]
    posts = [
        created,
        call_api("POST", "/tasks", json_body=valid_task(title="")),
        call_api("POST", "/tasks", body="{nope"),
        call_api("POST", "/tasks", json_body=valid_task(), content_type="text/plain"),
        call_api("POST", "/tasks", body="x" * 20000),
        call_api("POST", "/tasks", json_body=valid_task(), headers={"Idempotency-Key": "d"}),
        call_api(
            "POST", "/tasks", json_body=valid_task(title="2"), headers={"Idempotency-Key": "d"}
        ),
    ]
    assert [answer.status for answer in posts] == [200, 400, 400, 415, 413, 200, 422]
    for answer in posts:
        _assert_documented(document, "/tasks", "post", answer)
    gets = [
        call_api("GET", f"/tasks/{task_id}"),
        call_api("GET", "/tasks/not-a-uuid"),
        call_api("GET", "/tasks/3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f"),
    ]
    assert [answer.status for answer in gets] == [200, 400, 404]
    for answer in gets:
        _assert_documented(document, "/tasks/{task_id}", "get", answer)


def test_the_request_schema_accepts_valid_and_rejects_invalid_tasks(
    document: dict[str, Any],
) -> None:
    schema = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    validator = _validator(document, schema)
    assert validator.is_valid(valid_task(priority="HIGH", due_date="2026-12-31T17:30:00+02:00"))
    assert validator.is_valid({**valid_task(), "due_date": None})
    for invalid in (
        valid_task(title="x" * 201),
        valid_task(title="   "),
        valid_task(description="d" * 2001),
        valid_task(priority="urgent"),
        valid_task(due_date="2026-02-30"),
        valid_task(due_date="2026-12-31T17:30:00"),
        {**valid_task(), "owner": "me"},
        {"title": "only a title"},
    ):
        assert not validator.is_valid(invalid), invalid


def test_every_operation_requires_sigv4_as_api_gateway_declares_it(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert scheme["type"] == "apiKey"
    assert scheme["in"] == "header"
    assert scheme["name"] == "Authorization"
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert document["security"] == [{"sigv4": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # No operation opts out (an empty list would make it public).
            assert operation.get("security", document["security"]) == [{"sigv4": []}], (
                method,
                path,
            )
