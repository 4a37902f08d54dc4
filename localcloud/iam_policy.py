"""IAM enforced for the functions' roles: each call is evaluated against the role's
identity-based policies (inline and attached managed, as deployed) and refused as AWS does.

The evaluation is moto's own (``moto.iam.access_control.IAMPolicy``, through
:mod:`localcloud.moto_compat`): Allow and Deny statements, an explicit Deny winning,
``Action``/``NotAction`` and ``Resource`` lists with ``*`` wildcards. Before a document is
handed to it, it is made exact where moto is not: action names are compared without case
(AWS's rule; moto compares them with case), and each pattern is escaped so that only ``*``
and ``?`` are wildcards (moto turns a pattern into a regular expression without escaping
it, and knows no ``?``). What moto cannot evaluate faithfully is refused by name rather
than guessed (:func:`unsupported_elements`): ``Condition`` (moto knows only
``StringEquals``, treats a missing key as a match and a failed condition on an Allow as a
Deny), ``NotResource`` (moto then allows every resource), ``Principal``/``NotPrincipal``
(not part of an identity-based policy) and policy variables (``${aws:username}``).

Not evaluated at all, as they are not part of a role's identity-based policies: resource
policies (queue policies, Lambda permissions), permission boundaries, session policies,
SCPs and RCPs. docs/local-cloud/iam.md says what that means for this project.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

logger = logging.getLogger(__name__)

Response = tuple[int, list[tuple[str, str]], bytes]

NO_ALLOW: Final = "because no identity-based policy allows the {action} action"
EXPLICIT_DENY: Final = "with an explicit deny in an identity-based policy"
_ROLE_ARN: Final = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")
_POLICY_VARIABLE: Final = re.compile(r"\$\{[^}]*\}")
_UNSUPPORTED_KEYS: Final = ("Condition", "NotResource", "Principal", "NotPrincipal")
_JSON_CORAL: Final = "com.amazon.coral.service#AccessDeniedException"


class UnsupportedPolicyError(ValueError):
    """A policy document uses what the local cloud cannot evaluate faithfully."""


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating a role's policies for one action on one resource."""

    allowed: bool
    explicit_deny: bool = False


class AccessDeniedError(Exception):
    """A call the principal's role does not allow; ``message`` is AWS's wording."""

    def __init__(
        self, *, caller_arn: str, action: str, resource: str, explicit_deny: bool = False
    ) -> None:
        self.caller_arn = caller_arn
        self.action = action
        self.resource = resource
        self.explicit_deny = explicit_deny
        super().__init__(self.message_for(action))

    def message_for(self, action: str) -> str:
        """AWS's message, naming the action as ``action`` (SQS writes it in lower case)."""
        why = EXPLICIT_DENY if self.explicit_deny else NO_ALLOW.format(action=action)
        return (
            f"User: {self.caller_arn} is not authorized to perform: {action} "
            f"on resource: {self.resource} {why}"
        )

    @property
    def message(self) -> str:
        return self.message_for(self.action)


def assumed_role_arn(role_arn: str, session_name: str) -> str:
    """The STS identity of a role session: what AWS names as the caller in a denial.

    Lambda's session name for a function's role is the function's name."""
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        return f"arn:aws:sts::000000000000:assumed-role/{role_arn}/{session_name}"
    partition, account, name = match.groups()
    return f"arn:{partition}:sts::{account}:assumed-role/{name}/{session_name}"


def unsupported_elements(document: Mapping[str, Any]) -> list[str]:
    """What in an identity-based policy document the local cloud cannot evaluate
    faithfully (empty when every statement can be), each naming its statement."""
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    problems: list[str] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            problems.append(f"Statement[{index}] is not an object")
            continue
        name = statement.get("Sid") or f"Statement[{index}]"
        for key in _UNSUPPORTED_KEYS:
            if key in statement:
                problems.append(f"{name}: {key}")
        # IAM refuses such statements; moto would allow every resource or fail.
        if "Resource" not in statement and "NotResource" not in statement:
            problems.append(f"{name}: no Resource")
        if "Action" not in statement and "NotAction" not in statement:
            problems.append(f"{name}: no Action")
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{name}: Effect must be Allow or Deny")
        if _POLICY_VARIABLE.search(json.dumps(statement.get("Resource", ""))):
            problems.append(f"{name}: a policy variable in Resource")
    return problems


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _exact_pattern(pattern: str) -> str:
    """``pattern`` written so that moto's matcher (``*`` -> ``.*``, then an anchored
    regular expression) matches exactly what IAM matches: ``*`` any run, ``?`` one
    character, everything else literally."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _normalized(document: Mapping[str, Any]) -> str:
    """The document as moto's evaluator should see it (see the module docstring)."""
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    out = []
    for statement in statements:
        copy = dict(statement)
        for key in ("Action", "NotAction"):
            if key in copy:
                copy[key] = [_exact_pattern(a.lower()) for a in _values(copy[key])]
        if "Resource" in copy:
            copy["Resource"] = [_exact_pattern(r) for r in _values(copy["Resource"])]
        out.append(copy)
    return json.dumps({"Version": "2012-10-17", "Statement": out})


def _parsed(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        return document
    parsed = json.loads(document)
    if not isinstance(parsed, Mapping):
        raise UnsupportedPolicyError("a policy document must be a JSON object")
    return parsed


class PolicySet:
    """The identity-based policy documents of one principal, evaluated with moto's evaluator."""

    def __init__(self, documents: Sequence[str | Mapping[str, Any]]) -> None:
        from localcloud.moto_compat import IAMPolicy

        parsed = [_parsed(d) for d in documents]
        problems = [p for d in parsed for p in unsupported_elements(d)]
        if problems:
            raise UnsupportedPolicyError(
                "the local cloud cannot evaluate "
                + "; ".join(problems)
                + " (docs/local-cloud/iam.md)"
            )
        self._policies = [IAMPolicy(_normalized(d)) for d in parsed]

    def decide(self, action: str, resource: str) -> Decision:
        """AWS's rule within one account: an explicit Deny wins, else any Allow allows."""
        from localcloud.moto_compat import PermissionResult

        allowed = False
        for policy in self._policies:
            result = policy.is_action_permitted(action.lower(), resource)
            if result == PermissionResult.DENIED:
                return Decision(allowed=False, explicit_deny=True)
            if result == PermissionResult.PERMITTED:
                allowed = True
        return Decision(allowed=allowed)


class RoleAuthorizer:
    """Evaluates calls made with a role against the role's policies as IAM holds them now.

    The documents are read from moto's IAM in this process (the CloudFormation engine puts
    them there from the template): the role's inline policies and the default version of
    each attached managed policy. Each decision is remembered until the role's policies
    change (an update of the stack), so a repeated call is not evaluated again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decisions: dict[tuple[str, str, str], tuple[object, Decision]] = {}

    @staticmethod
    def _documents(role_arn: str) -> tuple[object, list[str]]:
        """The role's policy documents now, and a token that changes when they do."""
        from localcloud.moto_compat import iam_backends

        match = _ROLE_ARN.match(role_arn)
        if match is None:
            return ("no role", role_arn), []
        partition, account, _ = match.groups()
        try:
            role = iam_backends[account][partition].get_role_by_arn(role_arn)
        except Exception:  # moto's NotFoundException: no such role, so no policy allows
            return ("no role", role_arn), []
        inline = tuple(role.policies.items())
        managed = tuple(
            (
                arn,
                policy.default_version_id,
                next((v.document for v in policy.versions if v.is_default), ""),
            )
            for arn, policy in tuple(role.managed_policies.items())
        )
        token = (inline, managed)
        return token, [doc for _, doc in inline] + [doc for _, _, doc in managed]

    def decide(self, role_arn: str, action: str, resource: str) -> Decision:
        """Whether the role may perform ``action`` on ``resource``.

        Raises :class:`UnsupportedPolicyError` when a policy of the role cannot be evaluated.
        """
        token, documents = self._documents(role_arn)
        key = (role_arn, action, resource)
        cached = self._decisions.get(key)
        if cached is not None and cached[0] == token:
            return cached[1]
        decision = PolicySet(documents).decide(action, resource)
        with self._lock:
            self._decisions[key] = (token, decision)
        return decision


# ----------------------------------------------------------------------------------------
# The refusal, in each protocol's shape
# ----------------------------------------------------------------------------------------


def denied_response(error: AccessDeniedError, protocol: str, request_id: str) -> Response:
    """AWS's answer to a call its caller's role does not allow, for the request's protocol.

    - ``sqs-json``: 403, ``x-amzn-query-error: AccessDenied;Sender``, the coral
      ``AccessDeniedException`` type and the action in lower case, as AWS answers
      (recorded on AWS, eu-west-1, 2026-10-02; docs/local-cloud/iam.md);
    - ``sqs-query``: 403, the SQS ``ErrorResponse`` with code ``AccessDenied``;
    - ``json`` (DynamoDB and the other JSON protocols): 400 with the coral
      ``AccessDeniedException`` type, as DynamoDB answers;
    - ``query`` (CloudWatch and other query services): 403 ``ErrorResponse``/``AccessDenied``;
    - ``rest-json``: 403 with ``x-amzn-ErrorType: AccessDeniedException``.
    """
    if protocol == "sqs-json":
        body = {"__type": _JSON_CORAL, "Message": error.message_for(error.action.lower())}
        return (
            403,
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-RequestId", request_id),
                ("x-amzn-query-error", "AccessDenied;Sender"),
            ],
            json.dumps(body).encode(),
        )
    if protocol == "json":
        body = {"__type": _JSON_CORAL, "Message": error.message}
        return (
            400,
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)],
            json.dumps(body).encode(),
        )
    if protocol in ("sqs-query", "query"):
        from xml.sax.saxutils import escape

        namespace = (
            ' xmlns="http://queue.amazonaws.com/doc/2012-11-05/"' if protocol == "sqs-query" else ""
        )
        message = error.message_for(
            error.action.lower() if protocol == "sqs-query" else error.action
        )
        xml = (
            f"<ErrorResponse{namespace}><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{escape(message)}</Message><Detail/></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return 403, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml.encode()
    return (
        403,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", "AccessDeniedException"),
        ],
        json.dumps({"Message": error.message}).encode(),
    )
