"""IAM (SigV4) authorization of a REST API method, as API Gateway does it for ``AWS_IAM``.

A method whose ``AuthorizationType`` is ``AWS_IAM`` answers only requests signed with AWS
Signature Version 4 for the ``execute-api`` service by a principal whose identity
policies allow ``execute-api:Invoke`` on the method's ARN
(``arn:aws:execute-api:REGION:ACCOUNT:API_ID/STAGE/METHOD/PATH``). Every refusal is a 403
with API Gateway's message and ``x-amzn-ErrorType`` (sources: ``docs/local-cloud/
apigateway.md#iam-authorization``):

- no ``Authorization`` header: ``Missing Authentication Token``;
- a header that is not ``key=value`` pairs, or lacks ``Credential``, ``SignedHeaders``,
  ``Signature`` or a date: ``IncompleteSignatureException`` with AWS's sentences;
- an ``X-Amz-Date`` more than 5 minutes from now: ``Signature expired: ...`` (or ``not
  yet current``);
- an access key no IAM user (or assumed role) holds: ``The security token included in
  the request is invalid.``;
- a signature that is not the one the key's secret gives: ``The request signature we
  calculated does not match ...`` with the canonical request and string to sign;
- a principal whose policies do not allow the invocation: ``{"Message": "User: ARN is
  not authorized to perform: execute-api:Invoke on resource: ..."}`` (capital M, the
  account masked but for its last four digits, as AWS answers).

The signature is recomputed with botocore's own SigV4 code over exactly the headers the
client signed; the principal and its policies come from the IAM users and roles of the
local cloud (moto's IAM, through :mod:`localcloud.moto_compat`), and the policies are
evaluated by :class:`localcloud.iam_policy.PolicySet` (moto's ``IAMPolicy``, the evaluator
of the functions' roles too). Not evaluated: resource policies, permission
boundaries, SCPs, condition keys API Gateway supplies, presigned (query-string) requests.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from localcloud.apigw.responses import MISSING_TOKEN, GatewayError
from localcloud.iam_policy import PolicySet, UnsupportedPolicyError

_LOG = logging.getLogger(__name__)
ALGORITHM: Final = "AWS4-HMAC-SHA256"
SERVICE: Final = "execute-api"
INVOKE_ACTION: Final = "execute-api:Invoke"
CLOCK_SKEW: Final = timedelta(minutes=5)  # how far X-Amz-Date may be from the gateway's clock
_AMZ_DATE: Final = "%Y%m%dT%H%M%SZ"
_HASHED: Final = "(hashed with SHA-256 and encoded with Base64)"


@dataclass(frozen=True)
class Caller:
    """Who signed a request: the fields API Gateway puts in ``requestContext.identity``."""

    arn: str  # userArn
    access_key_id: str  # accessKey
    account_id: str  # accountId
    principal_id: str  # caller and user: the user's id, or ROLE_ID:SESSION for a role


@dataclass(frozen=True)
class KnownKey:
    """An access key the local cloud issued, with what signing and policy checks need."""

    caller: Caller
    secret_access_key: str
    session_token: str | None
    policies: tuple[Any, ...]  # moto policy objects or documents, for IAMPolicy


class CredentialStore(Protocol):
    """Where the gateway looks up an access key id."""

    def lookup(self, access_key_id: str, session_token: str | None) -> KnownKey | None:
        """The key (None when no principal holds it, or the session token is wrong)."""


class MotoCredentials:
    """The IAM users' access keys and assumed roles' sessions of the in-process moto."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def lookup(self, access_key_id: str, session_token: str | None) -> KnownKey | None:
        from localcloud.moto_compat import CreateAccessKeyFailure, create_access_key, get_partition

        headers = {"X-Amz-Security-Token": session_token} if session_token else {}
        try:
            key = create_access_key(
                account_id=self.account_id,
                partition=get_partition(self.region),
                access_key_id=access_key_id,
                headers=headers,
            )
        except CreateAccessKeyFailure:
            return None
        credentials = key.create_credentials()
        arn = key.arn
        name = arn.rsplit("/", 1)[-1]
        try:
            if ":assumed-role/" in arn:
                role = key.backend.get_role(arn.split("/")[1])
                principal_id = f"{role.id}:{name}"
            else:
                principal_id = key.backend.get_user(name).id
        except Exception:  # an id is informative only: never refuse a valid key over it
            principal_id = access_key_id
        return KnownKey(
            caller=Caller(arn, access_key_id, self.account_id, principal_id),
            secret_access_key=credentials.secret_key,
            session_token=credentials.token,
            policies=tuple(key.collect_policies()),
        )


@dataclass(frozen=True)
class Denial:
    """A refusal: the gateway error API Gateway answers with (status, message, error type,
    response type and the body's key)."""

    error: GatewayError


def _incomplete(message: str) -> Denial:
    return Denial(GatewayError(403, message, "IncompleteSignatureException", "INVALID_SIGNATURE"))


def _invalid_signature(message: str, response_type: str = "INVALID_SIGNATURE") -> Denial:
    return Denial(GatewayError(403, message, "InvalidSignatureException", response_type))


INVALID_TOKEN_MESSAGE: Final = "The security token included in the request is invalid."  # noqa: S105
SIGNATURE_MISMATCH_MESSAGE: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


def _hashed(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def masked_account(account_id: str) -> str:
    """The account as API Gateway shows it in a denial: ``********`` and the last four."""
    return "********" + account_id[-4:]


def method_arn(
    region: str, account_id: str, api_id: str, stage: str, method: str, path: str
) -> str:
    """The ``execute-api:Invoke`` resource of one request (``path``: after the stage)."""
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}/{path.lstrip('/')}"


class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client listed in ``SignedHeaders``."""

    def __init__(self, credentials: Credentials, region: str, signed: Mapping[str, str]) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        headers = HTTPHeaders()
        for name, value in self._signed.items():
            headers[name] = value
        return headers


@dataclass(frozen=True)
class SignedRequest:
    """What the check reads of one HTTP request."""

    method: str
    target: str  # path and query as sent (percent-encoded)
    headers: Iterable[tuple[str, str]]
    body: bytes


class IamAuthorizer:
    """Authenticate a SigV4 request and authorize ``execute-api:Invoke`` for its caller."""

    def __init__(
        self, store: CredentialStore, *, region: str, account_id: str, api_id: str, stage: str
    ) -> None:
        self.store = store
        self.region = region
        self.account_id = account_id
        self.api_id = api_id
        self.stage = stage
        self._lock = threading.Lock()

    def check(
        self, request: SignedRequest, resource_path: str, now: datetime | None = None
    ) -> Caller | Denial:
        """The caller when the request may invoke the method at ``resource_path`` (the
        request's own path after the stage), else the denial API Gateway would answer."""
        headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers.setdefault(name.lower(), []).append(value)
        authorization = ",".join(headers.get("authorization", [])).strip()
        if not authorization:
            return Denial(MISSING_TOKEN)
        parsed = _parse_authorization(authorization, headers)
        if isinstance(parsed, Denial):
            return parsed
        algorithm, credential, signed_names, signature, timestamp = parsed
        if algorithm != ALGORITHM:
            return _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'")
        scope = credential.split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return _incomplete(
                "Credential should be scoped to a valid region, not "
                f"'{scope[2] if len(scope) > 2 else ''}'. "
            )
        access_key_id, _, region, service, _ = scope
        if service != SERVICE:
            return _invalid_signature(
                f"Credential should be scoped to correct service: '{SERVICE}'. "
            )
        if region != self.region:
            return _invalid_signature(
                f"Credential should be scoped to a valid region, not '{region}'. "
            )
        if "host" not in signed_names:
            return _incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        signed_at = _signing_time(timestamp)
        if signed_at is None:
            return _incomplete(
                f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601"
            )
        current = now or datetime.now(UTC)
        stamp = current.strftime(_AMZ_DATE)
        if signed_at < current - CLOCK_SKEW:
            earliest = (current - CLOCK_SKEW).strftime(_AMZ_DATE)
            return _invalid_signature(
                f"Signature expired: {signed_at.strftime(_AMZ_DATE)} is now earlier than "
                f"{earliest} ({stamp} - 5 min.)",
                "EXPIRED_TOKEN",
            )
        if signed_at > current + CLOCK_SKEW:
            latest = (current + CLOCK_SKEW).strftime(_AMZ_DATE)
            return _invalid_signature(
                f"Signature not yet current: {signed_at.strftime(_AMZ_DATE)} is still later "
                f"than {latest} ({stamp} + 5 min.)",
                "EXPIRED_TOKEN",
            )
        session_token = ",".join(headers.get("x-amz-security-token", [])) or None
        # moto's IAM backend is not made for concurrent readers (one lock per API is
        # enough: the local stack serves one API).
        with self._lock:
            key = self.store.lookup(access_key_id, session_token)
        if key is None:
            return Denial(
                GatewayError(403, INVALID_TOKEN_MESSAGE, "AccessDeniedException", "ACCESS_DENIED")
            )
        canonical, string_to_sign, expected = _signature(
            request, key, region, signed_names, headers, signed_at.strftime(_AMZ_DATE)
        )
        if not hmac.compare_digest(expected, signature):
            return _invalid_signature(
                f"{SIGNATURE_MISMATCH_MESSAGE}\n\nThe Canonical String for this request should "
                f"have been\n'{canonical}'\n\nThe String-to-Sign should have been\n"
                f"'{string_to_sign}'\n"
            )
        arn = method_arn(
            self.region,
            self.account_id,
            self.api_id,
            self.stage,
            request.method.upper(),
            resource_path,
        )
        verdict = self._evaluate(key, arn)
        if verdict == "allowed":
            return key.caller
        shown = method_arn(
            self.region,
            masked_account(self.account_id),
            self.api_id,
            self.stage,
            request.method.upper(),
            resource_path,
        )
        message = (
            f"User: {key.caller.arn} is not authorized to perform: {INVOKE_ACTION} on "
            f"resource: {shown}" + (" with an explicit deny" if verdict == "denied" else "")
        )
        return Denial(
            GatewayError(403, message, "AccessDeniedException", "ACCESS_DENIED", body_key="Message")
        )

    def _evaluate(self, key: KnownKey, arn: str) -> str:
        """``allowed``, ``denied`` (an explicit Deny) or ``neutral``, as IAM combines them.

        The same evaluator as the functions' roles (:class:`localcloud.iam_policy.PolicySet`):
        a policy it cannot evaluate faithfully refuses, naming the element.
        """
        try:
            documents = tuple(_document(p) for p in key.policies)
            decision = _policy_set(documents).decide(INVOKE_ACTION, arn)
        except UnsupportedPolicyError:
            _LOG.warning("refused %s: a policy it cannot evaluate", key.caller.arn, exc_info=True)
            return "neutral"
        if decision.explicit_deny:
            return "denied"
        return "allowed" if decision.allowed else "neutral"


@functools.lru_cache(maxsize=256)
def _policy_set(documents: tuple[str, ...]) -> PolicySet:
    """The evaluator of these documents, built once per distinct set (keyed by their text,
    so a changed policy is a new key): parsing them on every request tripled the check."""
    return PolicySet(documents)


def _document(policy: Any) -> str:
    """A policy document from what moto's ``collect_policies`` gives: a managed policy (its
    default version), an inline ``{"policy_document": ...}`` entry, or a document."""
    versions = getattr(policy, "versions", None)
    if versions is not None:
        return str(next((v.document for v in versions if v.is_default), "{}"))
    if isinstance(policy, Mapping) and "policy_document" in policy:
        return str(policy["policy_document"])
    return policy if isinstance(policy, str) else json.dumps(policy)


def _parse_authorization(
    authorization: str, headers: Mapping[str, list[str]]
) -> tuple[str, str, dict[str, str], str, str] | Denial:
    """``(algorithm, credential, {signed header: value}, signature, timestamp)``."""
    algorithm, _, rest = authorization.partition(" ")
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            return _incomplete(
                "Invalid key=value pair (missing equal-sign) in Authorization header "
                f"{_HASHED}: '{_hashed(authorization)}'."
            )
        name, _, value = part.partition("=")
        params[name.strip()] = value.strip()
    timestamp = ",".join(headers.get("x-amz-date", [])) or ",".join(headers.get("date", []))
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if not timestamp:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if missing:
        # AWS echoed the header here until it began hashing it (as in the message above).
        return _incomplete(
            " ".join(missing) + f" Authorization={_hashed(authorization)} "
            "(Hashed with SHA-256 and encoded with Base64)"
        )
    signed: dict[str, str] = {}
    for name in params["SignedHeaders"].lower().split(";"):
        if name:
            signed[name] = ",".join(headers.get(name, []))
    return algorithm, params["Credential"], signed, params["Signature"], timestamp


def _signing_time(timestamp: str) -> datetime | None:
    try:
        return datetime.strptime(timestamp, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:  # the Date header's HTTP form
        parsed = parsedate_to_datetime(timestamp)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _signature(
    request: SignedRequest,
    key: KnownKey,
    region: str,
    signed: Mapping[str, str],
    headers: Mapping[str, list[str]],
    timestamp: str,
) -> tuple[str, str, str]:
    """``(canonical request, string to sign, signature)`` botocore computes for the request."""
    credentials = Credentials(key.caller.access_key_id, key.secret_access_key, key.session_token)
    auth = _SignedHeadersOnly(credentials, region, signed)
    host = ",".join(headers.get("host", [])) or "localhost"
    target = request.target
    if target.startswith(("http://", "https://")):  # absolute-form: the path is what is signed
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    aws_request = AWSRequest(
        method=request.method.upper(),
        url=f"http://{host}{target}",
        data=request.body,
        headers={name: value for name, value in signed.items()},
    )
    aws_request.context["timestamp"] = timestamp
    canonical = auth.canonical_request(aws_request)
    string_to_sign = auth.string_to_sign(aws_request, canonical)
    return canonical, string_to_sign, auth.signature(string_to_sign, aws_request)
