"""Why a request failed, in words a reader of the report understands.

The load users record every failed or throttled request with a *cause* (``loadtest``'s
recorder); this module names causes from what the client saw, and attributes API
Gateway's bare 500s to Lambda throttles using the function's ``AWS/Lambda Throttles``
metric, since the client cannot tell them apart: API Gateway answers a throttled Lambda
invocation with ``500 {"message": "Internal server error"}``, the same answer as for a
configuration error ("Handle Lambda errors in API Gateway", Lambda developer guide).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGE_THROTTLE = "HTTP 429: API stage throttle"
GATEWAY_500 = "HTTP 500: API Gateway 'Internal server error' (not matched to a Lambda throttle)"
LAMBDA_THROTTLE_500 = "HTTP 500: API function throttled (Lambda concurrency limit)"
FUNCTION_ERROR_502 = "HTTP 502: API function error"
INTEGRATION_TIMEOUT = "HTTP 504: integration timeout"
SQS_THROTTLE = "SQS ThrottlingException (FIFO quota)"
# Causes that mean "slow down" rather than "broken": counted as throttles, not errors.
THROTTLE_CAUSES = frozenset({STAGE_THROTTLE, LAMBDA_THROTTLE_500, SQS_THROTTLE})
_GATEWAY_MESSAGE = "Internal server error"


def http_cause(status: int, error_type: str | None, body: str | None) -> str:
    """The cause of one HTTP answer the scenario did not expect."""
    if status == 0:
        return "no HTTP answer (connection failed)"
    document: Any = None
    with contextlib.suppress(ValueError):
        document = json.loads(body or "")
    gateway = isinstance(document, dict) and set(document) == {"message"}
    if status == 429:
        return STAGE_THROTTLE
    if status == 500 and gateway and document.get("message") == _GATEWAY_MESSAGE:
        return GATEWAY_500
    if status == 502 and gateway:
        return FUNCTION_ERROR_502
    if status == 504:
        return INTEGRATION_TIMEOUT
    if status == 500:
        return "HTTP 500: API function answered 500"
    kind = f" ({error_type})" if error_type else ""
    return f"HTTP {status}{kind}"


def sqs_cause(code: str) -> str:
    """The cause of one failed SQS call, from its error code."""
    if "Throttl" in code or code == "RequestThrottled":
        return SQS_THROTTLE
    return f"SQS {code}"


@dataclass(frozen=True)
class FailureEvent:
    """One failed or throttled request, as a load user recorded it."""

    second: int  # epoch second
    name: str
    cause: str

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FailureEvent:
        return cls(int(raw["t"]), str(raw["name"]), str(raw["cause"]))


def read_failures(path: Path) -> list[FailureEvent]:
    """The JSON lines the recorder wrote (missing file: none)."""
    if not path.exists():
        return []
    return [
        FailureEvent.from_json(json.loads(line))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def attribute_lambda_throttles(
    events: Iterable[FailureEvent], lambda_throttles: int
) -> list[FailureEvent]:
    """Name gateway 500s as Lambda throttles, as many as the function's metric counted.

    Both counts cover the run; the earliest 500s are named first (the metric says how
    many, not which). A 500 the metric does not cover keeps the gateway's own name.
    """
    left = lambda_throttles
    named = []
    for event in sorted(events, key=lambda e: e.second):
        if event.cause == GATEWAY_500 and left > 0:
            left -= 1
            event = FailureEvent(event.second, event.name, LAMBDA_THROTTLE_500)
        named.append(event)
    return named


def by_cause(events: Iterable[FailureEvent]) -> dict[str, int]:
    """How many requests failed of each cause, most frequent first."""
    return dict(Counter(e.cause for e in events).most_common())


def timeline(events: Iterable[FailureEvent]) -> dict[str, dict[int, int]]:
    """``{cause: {epoch second: count}}``."""
    series: dict[str, dict[int, int]] = defaultdict(dict)
    for event in events:
        per_second = series[event.cause]
        per_second[event.second] = per_second.get(event.second, 0) + 1
    return dict(series)
