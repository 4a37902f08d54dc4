"""Compare an answer, as boto3 parsed it, with AWS's recorded answer, field by field.

Expected values are written as AWS answered, with the parts that differ on every run
(ids, handles, sequence numbers, timestamps, names) written as placeholders in the
recording's own notation:

- ``<kind:N>`` matches the pattern of ``kind`` and binds N: the same ``<kind:N>`` must be
  the same value wherever it appears in a case, and two different N of one kind must be
  different values (AWS gave a new receipt handle on every receive, the same MessageId on
  a redelivery: the comparison holds the engine to both);
- ``<kind>`` matches the pattern only;
- ``<partition>``, ``<region>``, ``<account>`` and ``<endpoint>`` are the backend's own
  (the recordings' ``111111111111`` is LocalStack's mask of the recording account; our
  queue URLs name the local endpoint instead of ``https://sqs.<region>.amazonaws.com``).

Dicts are compared key for key (a missing or an extra key is a difference), lists item by
item, everything else by type and value. :data:`ANY_INT` stands for a number the
recording's own test marks as non-deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

LOCALSTACK = "localstack/localstack"
# The LocalStack commit the recordings were read at (tests/aws/services/.../*.snapshot.json,
# with *.validation.json saying when each case was last validated against AWS).
LOCALSTACK_COMMIT = "8b9a79f05846835cf4dff63ab7eefdde9df83783"

PATTERNS: dict[str, str] = {
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    # AWS's are a few hundred base64 characters; ours are shorter. Only the alphabet counts.
    "receipt-handle": r"[A-Za-z0-9+/=_-]+",
    # A 128-bit number; AWS's samples and recordings have 20 digits.
    "sequence-number": r"[0-9]{20}",
    # An IAM user's (AIDA...) or role's (AROA...:session) unique id.
    "sender-id": r"[A-Z0-9]{21}(?::\S+)?",
    "task-handle": r"[A-Za-z0-9+/]+=*",
    # The recordings mask these as "timestamp"; SQS's are epoch milliseconds (messages,
    # move tasks) or seconds (queues).
    "timestamp-ms": r"[0-9]{13}",
    "timestamp-s": r"[0-9]{10}",
    "resource": r"[A-Za-z0-9_.-]+",
    "md5": r"[0-9a-f]{32}",
    # Opaque to clients; the recording masks AWS's.
    "next-token": r"\S+",
    # REST API proxy events (API Gateway's identifiers and what it adds to requests).
    "host": r"[A-Za-z0-9.-]+(?::[0-9]+)?",
    "api-id": r"[a-z0-9]{10}",
    "deployment-id": r"[a-z0-9]{6}",
    "resource-id": r"[a-z0-9]{6,10}",
    "domain-prefix": r"[A-Za-z0-9-]+",
    "extended-request-id": r"[A-Za-z0-9+/=_-]{16}",
    "request-time": r"[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} \+0000",
    "trace-id": r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}",
    "source-ip": r"[0-9a-fA-F.:]+",
    "forwarded-for": r"[0-9a-fA-F.:]+(?:, [0-9a-fA-F.:]+)*",
    "port": r"[0-9]+",
    "scheme": r"https?",
    "cloudfront-asn": r"[0-9]+",
    "cloudfront-country": r"[A-Z]{2}",
    "via": r"[0-9.]+ [0-9a-f]+\.cloudfront\.net \(CloudFront\)",
    "cf-id": r"[A-Za-z0-9_=-]+",
}
_PLACEHOLDER = re.compile(r"<([a-z0-9-]+)(?::(\d+))?>")
_NUMERIC = frozenset({"<timestamp-ms>", "<timestamp-s>"})


class _AnyInt:
    def __repr__(self) -> str:
        return "ANY_INT"


ANY_INT: Any = _AnyInt()


@dataclass
class Placeholders:
    """The fixed values of one backend and the bindings made so far in one case."""

    fixed: Mapping[str, str]
    bound: dict[tuple[str, str], str] = field(default_factory=dict)

    def _regex(self, template: str) -> tuple[re.Pattern[str], list[tuple[str, str, str]]]:
        parts: list[str] = []
        groups: list[tuple[str, str, str]] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            parts.append(re.escape(template[position : match.start()]))
            kind, number = match.group(1), match.group(2)
            if kind in self.fixed and number is None:
                parts.append(re.escape(self.fixed[kind]))
            elif kind in PATTERNS:
                name = f"g{len(groups)}"
                groups.append((name, kind, number or ""))
                parts.append(f"(?P<{name}>{PATTERNS[kind]})")
            else:
                raise ValueError(f"unknown placeholder {match.group(0)} in {template!r}")
            position = match.end()
        parts.append(re.escape(template[position:]))
        return re.compile("".join(parts)), groups

    def match(self, template: str, actual: str) -> str | None:
        """None if ``actual`` fits ``template``, else why not."""
        regex, groups = self._regex(template)
        found = regex.fullmatch(actual)
        if found is None:
            return "does not fit the recorded form"
        for name, kind, number in groups:
            if not number:
                continue
            value = found.group(name)
            key = (kind, number)
            previous = self.bound.get(key)
            if previous is not None and previous != value:
                return f"<{kind}:{number}> was {previous!r} earlier in this case"
            clash = next(
                (k for k, v in self.bound.items() if k[0] == kind and k != key and v == value),
                None,
            )
            if clash is not None:
                return f"equals <{kind}:{clash[1]}>, which AWS answered with a different value"
        for name, kind, number in groups:
            if number:
                self.bound[(kind, number)] = found.group(name)
        return None


def differences(
    expected: Any, actual: Any, placeholders: Placeholders, path: str = "$"
) -> list[str]:
    """Every place where ``actual`` differs from the recorded ``expected``."""
    if expected is ANY_INT:
        if isinstance(actual, int) and not isinstance(actual, bool):
            return []
        return [f"{path}: expected an integer, got {actual!r}"]
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected an object, got {actual!r}"]
        found: list[str] = []
        for key in expected.keys() - actual.keys():
            found.append(f"{path}.{key}: missing (AWS answered {expected[key]!r})")
        for key in actual.keys() - expected.keys():
            found.append(f"{path}.{key}: not in AWS's answer (got {actual[key]!r})")
        for key in expected.keys() & actual.keys():
            found += differences(expected[key], actual[key], placeholders, f"{path}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {actual!r}"]
        if len(expected) != len(actual):
            return [f"{path}: {len(actual)} items, AWS answered {len(expected)}: {actual!r}"]
        found = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found += differences(want, got, placeholders, f"{path}[{index}]")
        return found
    if isinstance(expected, str) and _PLACEHOLDER.search(expected):
        if expected in _NUMERIC and isinstance(actual, int) and not isinstance(actual, bool):
            actual = str(actual)  # a timestamp boto3 parsed into a number
        if not isinstance(actual, str):
            return [f"{path}: expected text like {expected!r}, got {actual!r}"]
        why = placeholders.match(expected, actual)
        return [] if why is None else [f"{path}: {actual!r} vs {expected!r}: {why}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: got {actual!r}, AWS answered {expected!r}"]
    return []


def answer(call: Callable[[], Any]) -> dict[str, Any]:
    """The response of a boto3 call, or its error response, with only the HTTP status kept
    of the response metadata (what the recordings keep)."""
    try:
        response = dict(call())
    except ClientError as error:
        response = dict(error.response)
    metadata = response.pop("ResponseMetadata", {})
    response["ResponseMetadata"] = {"HTTPStatusCode": metadata.get("HTTPStatusCode")}
    return response


def ok(**fields: Any) -> dict[str, Any]:
    """A recorded successful answer: its fields and HTTP 200."""
    return {**fields, "ResponseMetadata": {"HTTPStatusCode": 200}}


@dataclass(frozen=True)
class Error:
    """A recorded error answer, as both protocols carry it.

    ``code`` is the error code boto3 reports (the query code, also the JSON protocol's
    ``x-amzn-query-error`` header); ``json_type`` the JSON ``__type`` (boto3's
    ``QueryErrorCode``). The query protocol's answer has ``Detail: None`` in its place.
    ``message_field``: botocore copies the message to the top level when the code names a
    modelled error shape (the recordings have it there for those errors).
    """

    code: str
    message: str
    json_type: str
    status: int = 400
    message_field: bool = False

    def on(self, protocol: str) -> dict[str, Any]:
        error: dict[str, Any] = {"Code": self.code, "Message": self.message, "Type": "Sender"}
        out: dict[str, Any] = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": self.status}}
        if protocol == "json":
            error["QueryErrorCode"] = self.json_type
            if self.message_field:
                out["message"] = self.message
        else:
            error["Detail"] = None
        return out


def invalid_parameter_value(message: str) -> Error:
    return Error("InvalidParameterValue", message, "InvalidParameterValueException")


def missing_parameter(name: str) -> Error:
    return Error(
        "MissingParameter",
        f"The request must contain the parameter {name}.",
        "MissingRequiredParameterException",
    )


def invalid_attribute_name(message: str) -> Error:
    return Error("InvalidAttributeName", message, "InvalidAttributeName", message_field=True)


__all__ = [
    "ANY_INT",
    "LOCALSTACK",
    "LOCALSTACK_COMMIT",
    "Error",
    "Placeholders",
    "answer",
    "differences",
    "invalid_attribute_name",
    "invalid_parameter_value",
    "missing_parameter",
    "ok",
]
