"""Who calls what in the local cloud: per-function credentials and a record of every AWS
action each function's role was used for.

Lambda gives each function its role's credentials; here each function gets its own access
key id (:meth:`Identities.credentials_for`), so a request the endpoint receives names its
caller. :class:`AccessLog` records ``(role, action, resource)`` for every request made
with such a key, and for what the local cloud itself does with a function's role (the
event source mapping's receives and deletes, the log shipping), as AWS does with the role.

This is the seam where IAM enforcement goes (issue 20): :meth:`AccessLog.check` is called
for every recorded call before it is served, with the principal, the IAM action and the
resource ARN; today it records, an enforcing log would evaluate the role's policy there
and refuse with ``AccessDenied``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

_ACCESS_KEY_PREFIX: Final = "ASIA"  # AWS's prefix for temporary (role) credentials
_TABLE_NAME: Final = re.compile(rb'"TableName"\s*:\s*"([^"]+)"')
_QUEUE_URL: Final = re.compile(rb'"QueueUrl"\s*:\s*"([^"]+)"')
# SQS batch calls are authorized as their single-message action.
_SQS_AS: Final = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}
_DYNAMODB_TARGET: Final = "DynamoDB_20120810."
_SQS_TARGET: Final = "AmazonSQS."


@dataclass(frozen=True)
class Principal:
    """A function acting with its execution role."""

    function_name: str
    role_arn: str


@dataclass(frozen=True, order=True)
class Call:
    """One authorized use of a role: an IAM action on a resource ARN."""

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
    """Every ``(role, action, resource)`` a function's role was used for, deduplicated."""

    def __init__(self, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self._calls: set[Call] = set()
        self._lock = threading.Lock()

    def check(self, principal: Principal, action: str, resource: str) -> None:
        """A call made with ``principal``'s role: recorded (the enforcement seam)."""
        call = Call(principal.role_arn, action, resource)
        if call in self._calls:  # the common case, without the lock
            return
        with self._lock:
            self._calls.add(call)

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
        """Record one request the endpoint received with a function's credentials.

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
            self.check(principal, f"{prefix}:{target.rsplit('.', 1)[1]}", "*")
        else:
            params = form()
            action = params.get("Action", "")
            queue = params.get("QueueUrl") or (path if path.count("/") >= 2 else "")
            if service == "sqs" and queue:
                resource = self.queue_arn(queue)
                self.check(principal, f"sqs:{_SQS_AS.get(action, action)}", resource)
            elif action:
                self.check(principal, f"{service or 'unknown'}:{action}", "*")
