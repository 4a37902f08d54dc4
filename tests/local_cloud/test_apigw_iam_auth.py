"""IAM (SigV4) authorization on the local API Gateway, refused as AWS refuses.

A method with ``AuthorizationType: AWS_IAM`` answers only requests signed for
``execute-api`` by an IAM principal (here: users created in the local cloud's IAM) whose
policies allow ``execute-api:Invoke`` on the method's ARN. Each refusal has AWS's status,
``x-amzn-ErrorType`` and message (sources in docs/local-cloud/apigateway.md), the function
is never invoked, and the event of an allowed call names the caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud import AwsEndpoint, local_client
from localcloud.apigw import ApiGatewayService
from localcloud.specs import ApiMethod

from .test_apigw_front import CDK_CORS_ALL, FakeLambda, ok, proxy, serve

API_ID = "iamapi0001"
REGION = "us-east-1"


@pytest.fixture
def fake() -> FakeLambda:
    fake = FakeLambda()
    fake.handlers["fn"] = ok
    return fake


@pytest.fixture
def gateway(fake: FakeLambda) -> Iterator[ApiGatewayService]:
    with ApiGatewayService(fake, region=REGION) as service:
        yield service


def _user(endpoint: AwsEndpoint, statements: list[dict[str, Any]]) -> tuple[str, Credentials]:
    """An IAM user with these inline statements; its ARN and a fresh access key."""
    iam = local_client("iam", endpoint.url, endpoint.region)
    name = f"caller-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if statements:
        document = {"Version": "2012-10-17", "Statement": statements}
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def _invoke(resource: str = "*", effect: str = "Allow") -> dict[str, Any]:
    return {
        "Effect": effect,
        "Action": "execute-api:Invoke",
        "Resource": f"arn:aws:execute-api:{REGION}:123456789012:{API_ID}/{resource}",
    }


def _signed(
    credentials: Credentials,
    method: str,
    url: str,
    body: bytes = b"",
    *,
    region: str = REGION,
    service: str = "execute-api",
    when: datetime | None = None,
) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body)
    if when is not None:
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        request.headers["X-Amz-Date"] = request.context["timestamp"]
        auth = SigV4Auth(credentials, service, region)
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        signed = auth.signed_headers(auth.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )
    else:
        SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


def _refused(response: requests.Response, error_type: str, *, key: str = "message") -> str:
    assert response.status_code == 403, response.text
    assert response.headers["x-amzn-ErrorType"] == error_type, dict(response.headers)
    body = response.json()
    assert list(body) == [key], body
    return str(body[key])


def _api(gateway: ApiGatewayService) -> str:
    return serve(
        gateway,
        proxy("/tasks", "POST", authorization_type="AWS_IAM"),
        proxy("/tasks/{task_id}", "GET", authorization_type="AWS_IAM"),
        proxy("/open", "GET"),
        api_id=API_ID,
    )


def test_an_unsigned_request_is_refused_and_the_function_never_runs(
    gateway: ApiGatewayService, fake: FakeLambda
) -> None:
    url = _api(gateway)
    response = requests.post(f"{url}tasks", data=b"{}", timeout=10)
    assert _refused(response, "MissingAuthenticationTokenException") == (
        "Missing Authentication Token"
    )
    assert fake.events == []
    assert requests.get(f"{url}open", timeout=10).status_code == 200  # NONE stays open


def test_a_signed_request_by_an_allowed_user_reaches_the_function_with_its_identity(
    gateway: ApiGatewayService, fake: FakeLambda, aws_endpoint: AwsEndpoint
) -> None:
    url = _api(gateway)
    arn, credentials = _user(aws_endpoint, [_invoke("prod/POST/tasks")])
    body = b'{"title": "x"}'
    headers = _signed(credentials, "POST", f"{url}tasks", body)
    response = requests.post(f"{url}tasks", data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    identity = fake.events[-1]["requestContext"]["identity"]
    assert identity["userArn"] == arn
    assert identity["accessKey"] == credentials.access_key
    assert identity["accountId"] == "123456789012"
    assert identity["caller"] == identity["user"]
    iam = local_client("iam", aws_endpoint.url, aws_endpoint.region)
    user_id = iam.get_user(UserName=arn.rsplit("/", 1)[-1])["User"]["UserId"]
    assert identity["user"] == user_id  # the principal's id, as AWS sets caller and user
    assert fake.events[-1]["headers"]["Authorization"] == headers["Authorization"]


def test_a_user_whose_policies_do_not_allow_the_method_gets_awss_access_denied(
    gateway: ApiGatewayService, fake: FakeLambda, aws_endpoint: AwsEndpoint
) -> None:
    url = _api(gateway)
    arn, credentials = _user(aws_endpoint, [_invoke("prod/GET/*")])  # GET only
    headers = _signed(credentials, "POST", f"{url}tasks")
    message = _refused(
        requests.post(f"{url}tasks", headers=headers, timeout=10),
        "AccessDeniedException",
        key="Message",
    )
    assert message == (
        f"User: {arn} is not authorized to perform: execute-api:Invoke on resource: "
        f"arn:aws:execute-api:{REGION}:********9012:{API_ID}/prod/POST/tasks"
    )
    # The same user may GET: the policy is evaluated against the method's ARN, path included.
    task_url = f"{url}tasks/abc"
    assert requests.get(task_url, headers=_signed(credentials, "GET", task_url), timeout=10).ok
    # An explicit Deny says so; a user without any policy is refused too.
    _, denied = _user(aws_endpoint, [_invoke(), _invoke("prod/POST/*", "Deny")])
    message = _refused(
        requests.post(f"{url}tasks", headers=_signed(denied, "POST", f"{url}tasks"), timeout=10),
        "AccessDeniedException",
        key="Message",
    )
    assert message.endswith(" with an explicit deny")
    _, bare = _user(aws_endpoint, [])
    _refused(
        requests.post(f"{url}tasks", headers=_signed(bare, "POST", f"{url}tasks"), timeout=10),
        "AccessDeniedException",
        key="Message",
    )
    assert [e["httpMethod"] for e in fake.events] == ["GET"]


def test_an_unknown_key_a_wrong_secret_and_a_changed_body_are_refused(
    gateway: ApiGatewayService, fake: FakeLambda, aws_endpoint: AwsEndpoint
) -> None:
    url = _api(gateway)
    _, credentials = _user(aws_endpoint, [_invoke()])
    unknown = Credentials("AKIAUNKNOWNKEY000000", "secret")
    message = _refused(
        requests.post(f"{url}tasks", headers=_signed(unknown, "POST", f"{url}tasks"), timeout=10),
        "AccessDeniedException",
    )
    assert message == "The security token included in the request is invalid."
    wrong = Credentials(credentials.access_key, "not-the-secret")
    message = _refused(
        requests.post(f"{url}tasks", headers=_signed(wrong, "POST", f"{url}tasks"), timeout=10),
        "InvalidSignatureException",
    )
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method."
    )
    assert "The Canonical String for this request should have been\n'POST\n/prod/tasks\n" in message
    # Signed for one body, sent with another: the payload hash differs.
    headers = _signed(credentials, "POST", f"{url}tasks", b'{"title": "a"}')
    _refused(
        requests.post(f"{url}tasks", data=b'{"title": "b"}', headers=headers, timeout=10),
        "InvalidSignatureException",
    )
    assert fake.events == []


def test_malformed_and_expired_signatures_get_awss_messages(
    gateway: ApiGatewayService, fake: FakeLambda, aws_endpoint: AwsEndpoint
) -> None:
    url = _api(gateway)
    _, credentials = _user(aws_endpoint, [_invoke()])

    def post(headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{url}tasks", headers=headers, timeout=10)

    message = _refused(post({"Authorization": "Bearer abc"}), "IncompleteSignatureException")
    assert message.startswith(
        "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with "
        "SHA-256 and encoded with Base64): '"
    )
    message = _refused(post({"Authorization": "AWS4-HMAC-SHA256"}), "IncompleteSignatureException")
    assert message.startswith(
        "Authorization header requires 'Credential' parameter. Authorization header requires "
        "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )
    signed_at = datetime.now(UTC) - timedelta(minutes=6)
    message = _refused(
        post(_signed(credentials, "POST", f"{url}tasks", when=signed_at)),
        "InvalidSignatureException",
    )
    assert message.startswith(f"Signature expired: {signed_at:%Y%m%dT%H%M%SZ} is now earlier than ")
    assert message.endswith(" - 5 min.)")
    ahead = datetime.now(UTC) + timedelta(minutes=6)
    message = _refused(
        post(_signed(credentials, "POST", f"{url}tasks", when=ahead)), "InvalidSignatureException"
    )
    assert message.startswith("Signature not yet current: ")
    # Scoped to another service or region.
    message = _refused(
        post(_signed(credentials, "POST", f"{url}tasks", service="sqs")),
        "InvalidSignatureException",
    )
    assert message.startswith("Credential should be scoped to correct service: 'execute-api'")
    message = _refused(
        post(_signed(credentials, "POST", f"{url}tasks", region="eu-west-1")),
        "InvalidSignatureException",
    )
    assert message.startswith("Credential should be scoped to a valid region, not 'eu-west-1'")
    # Four minutes off is within AWS's five.
    near = datetime.now(UTC) - timedelta(minutes=4)
    assert post(_signed(credentials, "POST", f"{url}tasks", when=near)).status_code == 200
    assert len(fake.events) == 1


def test_the_cors_preflight_needs_no_credentials(gateway: ApiGatewayService) -> None:
    url = serve(
        gateway,
        proxy("/tasks", "POST", authorization_type="AWS_IAM"),
        ApiMethod("/tasks", "OPTIONS", **CDK_CORS_ALL),  # type: ignore[arg-type]
        api_id=API_ID,
    )
    response = requests.options(
        f"{url}tasks", headers={"Origin": "https://app.example"}, timeout=10
    )
    assert response.status_code == 204, response.text
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_temporary_credentials_of_an_assumed_role_sign_with_their_session_token(
    gateway: ApiGatewayService, fake: FakeLambda, aws_endpoint: AwsEndpoint
) -> None:
    """What CI has on AWS: STS credentials of a role. The session token is signed along."""
    url = _api(gateway)
    iam = local_client("iam", aws_endpoint.url, aws_endpoint.region)
    name = f"ci-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
        "Arn"
    ]
    document = {"Version": "2012-10-17", "Statement": [_invoke()]}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    sts = local_client("sts", aws_endpoint.url, aws_endpoint.region)
    issued = sts.assume_role(RoleArn=role_arn, RoleSessionName="pipeline")["Credentials"]
    credentials = Credentials(
        issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]
    )
    headers = _signed(credentials, "POST", f"{url}tasks")
    assert "X-Amz-Security-Token" in headers
    response = requests.post(f"{url}tasks", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    identity = fake.events[-1]["requestContext"]["identity"]
    assert identity["userArn"] == f"arn:aws:sts::123456789012:assumed-role/{name}/pipeline"
    assert identity["caller"].endswith(":pipeline")
    # The same key with another session token is not a credential AWS issued.
    forged = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], "another-token")
    message = _refused(
        requests.post(f"{url}tasks", headers=_signed(forged, "POST", f"{url}tasks"), timeout=10),
        "AccessDeniedException",
    )
    assert message == "The security token included in the request is invalid."
