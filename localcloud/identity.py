"""Who calls what in the local cloud: per-function credentials, every AWS action each
function's role is used for, and IAM enforced on it.

Lambda gives each function its role's credentials; here each function gets its own access
key id (:meth:`Identities.credentials_for`), so a request the endpoint receives names its
caller. :class:`AccessLog` checks ``(role, action, resource)`` for every request made with
such a key, and for what the local cloud itself does with a function's role (the event
source mapping's receives and deletes, the log shipping), as AWS does with the role: each
call is recorded, and, when enforcing (the default), evaluated against the role's
policies (:mod:`localcloud.iam_policy`) and refused with
:class:`~localcloud.iam_policy.AccessDeniedError` when they do not allow it. Calls made
with any other credentials (the harness's, a test's) are nobody's and are not checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from localcloud.iam_policy import (
    AccessDeniedError,
    RoleAuthorizer,
    UnsupportedPolicyError,
    assumed_role_arn,
)

logger = logging.getLogger(__name__)
_ACCESS_KEY_PREFIX: Final = "ASIA"  # AWS's prefix for temporary (role) credentials
_TABLE_NAME: Final = re.compile(rb'"TableName"\s*:\s*"([^"]+)"')
_QUEUE_URL: Final = re.compile(rb'"QueueUrl"\s*:\s*"([^"]+)"')
# SQS batch calls are authorized as their single-message action.
_SQS_AS: Final = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_REFUSALS_KEPT: Final = 1000
# The IAM service prefix where it differs from the SigV4 signing name.
_IAM_PREFIX: Final = {"monitoring": "cloudwatch", "email": "ses"}
# Calls AWS answers whatever the caller's policies say.
_NO_PERMISSION_NEEDED: Final = frozenset({"sts:GetCallerIdentity"})
_DYNAMODB_TARGET: Final = "DynamoDB_20120810."
_SQS_TARGET: Final = "AmazonSQS."


@dataclass(frozen=True)
class Principal:
    """A function acting with its execution role."""

    function_name: str
    role_arn: str


@dataclass(frozen=True, order=True)
class Call:
    """One use of a role (allowed or refused): an IAM action on a resource ARN."""

    role_arn: str
    action: str  # "dynamodb:PutItem"
    resource: str  # an ARN, or "*" for actions without resource-level permissions


class Identities:
    """The access keys the local cloud hands to functions, and whom each one names."""

    def __init__(self) -> None:
        self._by_key: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def credentials_for(self, principal: Principal) -> dict[str, str]:
        """The ``AWS_*`` credential variables of a function's workers (stable per function)."""
        digest = hashlib.sha256(f"{principal.function_name}\n{principal.role_arn}".encode())
        key_id = _ACCESS_KEY_PREFIX + base64.b32encode(digest.digest()).decode()[:16]
        with self._lock:
            self._by_key[key_id] = principal
        return {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": "local-secret-" + digest.hexdigest()[:24],
            "AWS_SESSION_TOKEN": "local-session-token",
        }

    def principal(self, access_key_id: str | None) -> Principal | None:
        """The function an access key was given to, if any."""
        return self._by_key.get(access_key_id or "")


class AccessLog:
    """Every ``(role, action, resource)`` a function's role was used for, deduplicated, and
    the enforcement of the role's policies on each (``enforce``; on by default)."""

    def __init__(self, region: str, account_id: str, *, enforce: bool = True) -> None:
        self.region = region
        self.account_id = account_id
        self.enforce = enforce
        self._authorizer = RoleAuthorizer()
        self._calls: set[Call] = set()
        self._denied: set[Call] = set()
        self._refusals: deque[Call] = deque(maxlen=_REFUSALS_KEPT)
        self.refusal_count = 0  # every refusal so far (``refusals_since`` reads from it)
        self._lock = threading.Lock()

    def check(self, principal: Principal, action: str, resource: str) -> None:
        """A call made with ``principal``'s role: recorded, then refused with
        :class:`~localcloud.iam_policy.AccessDeniedError` if enforcing and the role's
        policies do not allow it."""
        call = Call(principal.role_arn, action, resource)
        if call not in self._calls:  # the common case skips the lock
            with self._lock:
                self._calls.add(call)
        if not self.enforce:
            return
        try:
            decision = self._authorizer.decide(principal.role_arn, action, resource)
        except UnsupportedPolicyError as error:
            # Refused rather than guessed: a local stack that allowed what AWS may refuse
            # would hide the very mistake enforcement is for.
            logger.error(
                "IAM: role %s of %s: %s", principal.role_arn, principal.function_name, error
            )
            decision = None
        if decision is not None and decision.allowed:
            return
        with self._lock:
            self._denied.add(call)
            self._refusals.append(call)
            self.refusal_count += 1
        raise AccessDeniedError(
            caller_arn=assumed_role_arn(principal.role_arn, principal.function_name),
            action=action,
            resource=resource,
            explicit_deny=decision is not None and decision.explicit_deny,
        )

    def allows(self, principal: Principal, action: str, resource: str) -> bool:
        """Whether the role may make the call (not recorded: a permission check, as
        CreateEventSourceMapping makes). Always true when not enforcing."""
        if not self.enforce:
            return True
        try:
            return self._authorizer.decide(principal.role_arn, action, resource).allowed
        except UnsupportedPolicyError:
            return False

    def refusals_since(self, count: int) -> list[Call]:
        """The distinct calls refused after ``refusal_count`` was ``count`` (the most
        recent ones kept), in the order first refused: what went wrong in a test."""
        with self._lock:
            new = min(self.refusal_count - count, len(self._refusals))
            recent = list(self._refusals)[-new:] if new > 0 else []
        return list(dict.fromkeys(recent))

    def denied(self, role_arn: str | None = None) -> list[Call]:
        """The calls refused (of one role), sorted."""
        with self._lock:
            return sorted(c for c in self._denied if role_arn is None or c.role_arn == role_arn)

    def calls(self, role_arn: str | None = None) -> list[Call]:
        """The recorded calls (of one role), sorted."""
        with self._lock:
            return sorted(c for c in self._calls if role_arn is None or c.role_arn == role_arn)

    # --- ARNs -----------------------------------------------------------------------------

    def table_arn(self, name: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"

    def queue_arn(self, url: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{url.rstrip('/').rsplit('/', 1)[-1]}"

    def log_stream_arn(self, group: str, stream: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}:log-stream:{stream}"

    # --- requests at the endpoint ------------------------------------------------------------

    def record_request(
        self,
        principal: Principal,
        *,
        target: str | None,
        service: str | None,
        form: Callable[[], Mapping[str, str]],
        body: bytes,
        path: str = "/",
    ) -> None:
        """Check one request the endpoint received with a function's credentials (raises
        :class:`~localcloud.iam_policy.AccessDeniedError` when refused).

        ``target`` is the ``X-Amz-Target`` header (JSON protocols), ``service`` the SigV4
        signing service, ``form`` the query-protocol parameters (read only if needed).
        """
        if target and target.startswith(_DYNAMODB_TARGET):
            match = _TABLE_NAME.search(body)
            resource = self.table_arn(match.group(1).decode()) if match else "*"
            self.check(principal, f"dynamodb:{target[len(_DYNAMODB_TARGET) :]}", resource)
        elif target and target.startswith(_SQS_TARGET):
            action = target[len(_SQS_TARGET) :]
            match = _QUEUE_URL.search(body)
            resource = self.queue_arn(json.loads(f'"{match.group(1).decode()}"')) if match else "*"
            self.check(principal, f"sqs:{_SQS_AS.get(action, action)}", resource)
        elif target and "." in target:
            prefix = (service or target.split("_", 1)[0].split(".", 1)[0]).lower()
            self._check_any(principal, prefix, target.rsplit(".", 1)[1])
        else:
            params = form()
            action = params.get("Action", "")
            queue = params.get("QueueUrl") or (path if path.count("/") >= 2 else "")
            if service == "sqs" and queue:
                resource = self.queue_arn(queue)
                self.check(principal, f"sqs:{_SQS_AS.get(action, action)}", resource)
            elif action:
                self._check_any(principal, service or "unknown", action)

    def _check_any(self, principal: Principal, service: str, action: str) -> None:
        """A call of a service whose resources are not resolved here: checked on ``*``."""
        iam_action = f"{_IAM_PREFIX.get(service, service)}:{action}"
        if iam_action not in _NO_PERMISSION_NEEDED:
            self.check(principal, iam_action, "*")
