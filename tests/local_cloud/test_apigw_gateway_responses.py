"""The local API Gateway answers its own errors as the API's gateway responses say.

``AWS::ApiGateway::GatewayResponse`` customizes an error type's status, headers and body;
a type not customized inherits ``DEFAULT_4XX`` or ``DEFAULT_5XX`` by its status class. The
stack uses it so that 403 (unknown route), 429 (throttled), 502 (function error), 504
(integration timeout) carry CORS headers; a browser otherwise sees an opaque failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localcloud.apigw import ApiGatewayService
from localcloud.cfn.testing import template, write_assembly
from localcloud.specs import GatewayResponse, InvokeResult

from .test_apigw_front import FakeLambda, gateway_error, ok, proxy, serve
from .test_cfn_validation import rejected

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET,POST,OPTIONS"}


@pytest.fixture
def fake() -> FakeLambda:
    fake = FakeLambda()
    fake.handlers["fn"] = ok
    error = json.dumps({"errorMessage": "boom", "errorType": "RuntimeError"}).encode()
    fake.handlers["crash"] = lambda event: InvokeResult(
        200, error, function_error="Unhandled", error_type="RuntimeError"
    )
    return fake


@pytest.fixture
def gateway(fake: FakeLambda) -> Iterator[ApiGatewayService]:
    with ApiGatewayService(fake) as service:
        yield service


def _cors_api(gateway: ApiGatewayService, *extra: GatewayResponse, **spec: Any) -> str:
    return serve(
        gateway,
        proxy("/tasks", "POST"),
        proxy("/crash", "GET", "crash"),
        gateway_responses=(
            GatewayResponse("DEFAULT_4XX", headers=CORS),
            GatewayResponse("DEFAULT_5XX", headers=CORS),
            *extra,
        ),
        **spec,
    )


def _has_cors(response: requests.Response) -> None:
    for name, value in CORS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


def test_every_gateway_error_inherits_the_default_responses_headers(
    gateway: ApiGatewayService,
) -> None:
    url = _cors_api(gateway)
    limited = _cors_api(
        gateway, api_id="z9y8x7w6v5", throttling_rate_limit=0.001, throttling_burst_limit=1
    )
    with requests.Session() as session:
        assert session.post(f"{limited}tasks", timeout=10).status_code == 200
        throttled = session.post(f"{limited}tasks", timeout=10)
    unknown = requests.get(f"{url}nowhere", timeout=10)
    crashed = requests.get(f"{url}crash", timeout=10)
    # The status, body and error type stay API Gateway's; the headers are added.
    gateway_error(throttled, 429, "Too Many Requests", "TooManyRequestsException")
    gateway_error(
        unknown, 403, "Missing Authentication Token", "MissingAuthenticationTokenException"
    )
    gateway_error(crashed, 502, "Internal server error", "InternalServerErrorException")
    for response in (throttled, unknown, crashed):
        _has_cors(response)
    # Answers of the function itself are the function's: nothing is added to them.
    assert "Access-Control-Allow-Methods" not in requests.post(f"{url}tasks", timeout=10).headers


def test_a_response_type_configured_on_its_own_replaces_the_default(
    gateway: ApiGatewayService,
) -> None:
    url = _cors_api(
        gateway,
        GatewayResponse(
            "MISSING_AUTHENTICATION_TOKEN",
            status_code=404,
            headers={"X-Why": "no such route"},
            template='{"error":"not_found","message":$context.error.messageString}',
        ),
    )
    response = requests.get(f"{url}nowhere", timeout=10)
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Missing Authentication Token"}
    assert response.headers["X-Why"] == "no such route"
    assert "Access-Control-Allow-Origin" not in response.headers  # not inherited


def test_without_gateway_responses_nothing_is_added(gateway: ApiGatewayService) -> None:
    url = serve(gateway, proxy("/tasks", "POST"))
    response = requests.get(f"{url}nowhere", timeout=10)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_engine_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    response = {
        "Type": "AWS::ApiGateway::GatewayResponse",
        "Properties": {
            "RestApiId": "api",
            "ResponseType": "DEFAULT_4XX",
            "ResponseParameters": {
                "gatewayresponse.header.Access-Control-Allow-Origin": "method.request.header.Origin"
            },
        },
    }
    write_assembly(tmp_path, {"S": template({"Response": response})})
    error = str(rejected(tmp_path))
    assert "resource Response" in error
    assert "only static 'quoted' values" in error


def test_unknown_response_types_are_refused(tmp_path: Path) -> None:
    response = {
        "Type": "AWS::ApiGateway::GatewayResponse",
        "Properties": {"RestApiId": "api", "ResponseType": "DEFAULT_6XX"},
    }
    write_assembly(tmp_path, {"S": template({"Response": response})})
    assert "unknown gateway response type 'DEFAULT_6XX'" in str(rejected(tmp_path))
