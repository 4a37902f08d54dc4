"""Schemathesis fuzzes the published OpenAPI document against the local stack's API.

Every generated request (examples, coverage and fuzzing phases, positive and negative
data) goes through the API Gateway front to the API Lambda; every answer must conform
to ``docs/openapi.json`` (status code, headers, body schema, content type), valid data
must be accepted and invalid data refused, and nothing may answer 5xx. The example
count is bounded for ``make test``; ``make fuzz-long`` raises it with
``TASK_API_FUZZ_EXAMPLES``.

Two answers are the document's, not defects, and are configured as such (not hidden):
- a schema-valid POST whose ``Idempotency-Key`` was used before with another body
  answers 422 (documented; schemathesis reuses short keys such as ``"0"``), and one
  whose first use is still in flight answers 409 (documented);
- a method the document does not declare is answered by API Gateway with 403
  ``Missing Authentication Token`` (as on AWS, and as the document says), not 405:
  the built-in ``unsupported_method`` check is replaced by ``test_undeclared_methods``.

Every case that carries the security scheme's ``Authorization`` header is signed (SigV4,
the API's IAM authorization) by the session with the local stack's invoker credentials,
so the fuzzer reaches the function; a negative case without it goes unsigned and must get
the gateway's documented 403. Schemathesis's ``ignored_auth`` check (it resends a case
without the header) is replaced by ``test_unsigned_requests_get_the_gateway_403``: its
resend keeps a generated header here, which the session would sign. So is
``missing_required_header``: for a missing ``Authorization`` it accepts only 401, and API
Gateway answers 403 (AWS's behaviour, in the document).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from cdk import contract
from handlers.openapi import DOCUMENT_PATH
from harness.api_auth import ApiSigner, api_region, local_credentials, requests_auth
from harness.local_stack.cloud import LocalDeployment

FUZZ_EXAMPLES = int(os.environ.get("TASK_API_FUZZ_EXAMPLES", "500"))
MIN_REQUESTS = int(os.environ.get("TASK_API_FUZZ_MIN_REQUESTS", "1000"))
GATEWAY_403 = {"message": "Missing Authentication Token"}


@dataclass
class _Tally:
    """What the fuzzer sent and what came back, across every operation."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


TALLY = _Tally()
SESSION = requests.Session()


def _load_schema() -> Any:
    """The published document with the fuzzing configuration.

    Loaded at import time (schemathesis 4.32's lazy ``from_fixture`` schema relies on a
    pytest node attribute pytest 9 no longer has); the server URL is the stack's ApiUrl,
    passed to every call as ``base_url`` by the module-scoped ``api_url`` fixture.
    """
    config = schemathesis.Config.from_dict(
        {
            "seed": int(os.environ.get("TASK_API_FUZZ_SEED", "20261129")),
            "generation": {"max-examples": FUZZ_EXAMPLES, "mode": "all"},
            "checks": {
                "positive_data_acceptance": {
                    # Stricter than the default (no 401/403/429/5xx): 404 an unknown
                    # task id, 409 a key in flight, 422 a key reused with another body.
                    "expected-statuses": ["2xx", "404", "409", "422"],
                },
                "unsupported_method": {"enabled": False},
                "ignored_auth": {"enabled": False},
                # Its only required header is Authorization, for which it insists on 401;
                # API Gateway answers a missing signature with 403 (test_unsigned_...).
                "missing_required_header": {"enabled": False},
            },
        }
    )
    return schemathesis.openapi.from_path(DOCUMENT_PATH, config=config)


schema = _load_schema()


@pytest.fixture(scope="module")
def api_url(local_stack: LocalDeployment) -> str:
    """The stack's ApiUrl (the stage's base URL) without the trailing slash; the shared
    session signs every request with the stack's invoker credentials."""
    outputs = contract.flatten(local_stack.outputs)
    signer = ApiSigner(
        local_credentials(outputs), api_region(outputs[contract.API_URL], outputs[contract.REGION])
    )
    SESSION.auth = _SignWhereAuthorized(requests_auth(signer))

    return outputs[contract.API_URL].rstrip("/")


class _SignWhereAuthorized(requests.auth.AuthBase):
    """Sign a case that carries the scheme's ``Authorization`` header (its generated value
    replaced by a real signature); leave a case without it (schemathesis's negative
    "missing Authorization") unsigned, so the gateway's 403 is what answers it."""

    def __init__(self, sign: requests.auth.AuthBase) -> None:
        self._sign = sign

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if "Authorization" in request.headers:
            return self._sign(request)
        return request


def _each(method: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Schemathesis's parametrization of one declared method (typed here: it declares
    ``parametrize`` as returning a bare ``Callable``). One test per method: a single
    test over every operation gives its items the same node id, which pytest-xdist
    (``make test`` runs it) collapses into one, silently dropping an operation."""
    parametrize: Callable[[Callable[..., None]], Callable[..., None]] = schema.include(
        method=method
    ).parametrize()
    return parametrize


_FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def _conforms(api_url: str, case: schemathesis.Case[Any]) -> None:
    response = case.call(base_url=api_url, session=SESSION, timeout=35)
    TALLY.requests += 1
    TALLY.statuses[response.status_code] += 1
    if response.status_code >= 500:
        TALLY.server_errors.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")
    case.validate_response(response, transport_kwargs={"base_url": api_url, "session": SESSION})


@_each("POST")
@_FUZZ_SETTINGS
def test_every_post_answer_conforms_to_the_document(
    api_url: str, case: schemathesis.Case[Any]
) -> None:
    _conforms(api_url, case)


@_each("GET")
@_FUZZ_SETTINGS
def test_every_get_answer_conforms_to_the_document(
    api_url: str, case: schemathesis.Case[Any]
) -> None:
    _conforms(api_url, case)


def test_fuzzing_sent_enough_requests_and_got_no_5xx() -> None:
    if TALLY.requests == 0:
        pytest.skip("the fuzz test did not run in this session")
    print(f"fuzzed requests: {TALLY.requests}, statuses: {dict(sorted(TALLY.statuses.items()))}")
    assert not TALLY.server_errors, f"5xx answers: {TALLY.server_errors[:5]}"
    assert TALLY.requests >= MIN_REQUESTS, (
        f"only {TALLY.requests} requests fuzzed; at least {MIN_REQUESTS} expected"
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "TRACE", "GET"])
def test_undeclared_methods_get_the_gateway_403(api_url: str, method: str) -> None:
    # GET /tasks is undeclared too (only POST is); the others on both resources.
    paths = (
        ["/tasks"] if method == "GET" else ["/tasks", "/tasks/2b1f0c3e-0000-4000-8000-000000000000"]
    )
    for path in paths:
        response = SESSION.request(method, api_url + path, timeout=10)
        assert response.status_code == 403, f"{method} {path}: {response.status_code}"
        assert response.json() == GATEWAY_403, f"{method} {path}: {response.text}"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tasks"), ("GET", "/tasks/2b1f0c3e-0000-4000-8000-000000000000")],
)
def test_unsigned_requests_get_the_gateway_403(api_url: str, method: str, path: str) -> None:
    """Without a signature, every declared operation is refused by the gateway itself."""
    response = requests.request(
        method, api_url + path, json={"title": "t", "description": "d", "priority": "low"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 403, f"{method} {path}: {response.status_code}"
    assert response.json() == GATEWAY_403, f"{method} {path}: {response.text}"
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
