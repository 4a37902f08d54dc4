"""Signing requests to the Task API: its methods use IAM (SigV4) authorization.

Every client of the API (the features' driver, the load users, the fuzzer, the
benchmarks) signs with :class:`ApiSigner`, botocore's own SigV4 over the ``execute-api``
service. Which credentials: :func:`api_credentials` reads them from the target's outputs
on a local stack (the ``invoker`` IAM user the local stack creates, or the ``no_invoke``
one, whose key is valid but may not invoke), and takes boto3's default chain (the CI's
own credentials) on AWS. See ``docs/decisions/api-authentication.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cdk import contract

if TYPE_CHECKING:
    import requests

    from harness.target import Target

SERVICE = "execute-api"
Who = Literal["invoker", "no_invoke"]
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")
# The headers a signature covers besides host and X-Amz-Date: none, so proxies and HTTP
# clients may add or re-case headers freely (curl --aws-sigv4 signs the same two).
_OUT_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


class CredentialsUnavailable(RuntimeError):
    """The target gives no credentials of the kind asked for; the message says why."""


@dataclass(frozen=True)
class ApiCredentials:
    """An access key, its secret and (for temporary credentials) the session token."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def environment(self) -> dict[str, str]:
        """The ``AWS_*`` variables that name these credentials (for curl and the AWS CLI)."""
        values = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            values["AWS_SESSION_TOKEN"] = self.session_token
        return values


def api_region(api_url: str, fallback: str | None = None) -> str:
    """The region an API URL's signature is scoped to: from its ``execute-api`` host, else
    ``fallback`` (the local stack's ``Region`` output), else ``us-east-1``."""
    match = _REGION_IN_HOST.search(urlsplit(api_url).netloc)
    if match:
        return match.group(1)
    return fallback or "us-east-1"


def local_credentials(outputs: Mapping[str, str], who: Who = "invoker") -> ApiCredentials:
    """The local stack's API credentials of ``who`` from its outputs."""
    key_id, secret = (
        (contract.API_ACCESS_KEY_ID, contract.API_SECRET_ACCESS_KEY)
        if who == "invoker"
        else (contract.API_NO_INVOKE_ACCESS_KEY_ID, contract.API_NO_INVOKE_SECRET_ACCESS_KEY)
    )
    if not outputs.get(key_id) or not outputs.get(secret):
        raise CredentialsUnavailable(
            f"the outputs have no {key_id}/{secret}: start the stack with a current "
            "`harness local up` (older local stacks did not create API credentials)"
        )
    return ApiCredentials(outputs[key_id], outputs[secret])


def api_credentials(target: Target, who: Who = "invoker") -> ApiCredentials:
    """Credentials to call the target's API with: the local stack's IAM users (from its
    outputs, whenever they name them), or on AWS boto3's default chain for ``invoker``
    (the caller needs ``execute-api:Invoke``; docs/ci-stacks.md). AWS has no
    ``no_invoke`` principal."""
    if target.endpoint_url or target.outputs.get(contract.API_ACCESS_KEY_ID):
        return local_credentials(target.outputs, who)
    if who != "invoker":
        raise CredentialsUnavailable(
            "an AWS stack has no principal without execute-api:Invoke to sign with; "
            "that check runs on the local stack"
        )
    import boto3

    found = boto3.Session().get_credentials()
    if found is None:
        raise CredentialsUnavailable(
            "no AWS credentials in boto3's default chain to sign API requests with"
        )
    frozen = found.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        raise CredentialsUnavailable("boto3's default chain gave incomplete credentials")
    return ApiCredentials(frozen.access_key, frozen.secret_key, frozen.token)


class ApiSigner:
    """SigV4 ``Authorization`` headers for requests to one API (botocore's signer)."""

    def __init__(self, credentials: ApiCredentials, region: str) -> None:
        self.credentials = credentials
        self.region = region
        self._auth = SigV4Auth(
            Credentials(
                credentials.access_key_id, credentials.secret_access_key, credentials.session_token
            ),
            SERVICE,
            region,
        )

    @classmethod
    def for_target(cls, target: Target, who: Who = "invoker") -> ApiSigner:
        """A signer with :func:`api_credentials` of ``who`` for the target's API."""
        return cls(
            api_credentials(target, who), api_region(target.output(contract.API_URL), target.region)
        )

    def headers(self, method: str, url: str, body: bytes | str | None = None) -> dict[str, str]:
        """The headers to add to a request (``Authorization``, ``X-Amz-Date`` and, for
        temporary credentials, ``X-Amz-Security-Token``); ``body`` exactly as sent."""
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        request = AWSRequest(method=method.upper(), url=url, data=data)
        self._auth.add_auth(request)
        return {name: request.headers[name] for name in _OUT_HEADERS if name in request.headers}


def requests_auth(signer: ApiSigner) -> requests.auth.AuthBase:
    """A ``requests`` auth that signs each prepared request with ``signer``."""
    import requests

    class _SigV4(requests.auth.AuthBase):
        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            body = request.body
            request.headers.update(
                signer.headers(str(request.method), str(request.url), body)  # type: ignore[arg-type]
            )
            return request

    return _SigV4()
