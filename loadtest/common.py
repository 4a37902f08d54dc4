"""Locust-side glue shared by the scenarios: the configured load shape, the target, and
the record of every failed request's cause.

Imported only inside locust processes (it imports locust, which gevent-patches the
process); everything it computes comes from the locust-free ``harness.load`` modules.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from locust import LoadTestShape, constant_throughput, events

from harness.api_auth import ApiSigner
from harness.load.causes import http_cause
from harness.load.locust_stats import THROTTLED_SUFFIX
from harness.load.settings import (
    ENV_OUTPUTS,
    ENV_USER_RATE,
    Scenario,
    default_user_rate,
    env_float,
    shape_params_from_env,
)
from harness.load.shapes import users_at
from harness.load.target import Target, load_target
from loadtest.recorder import FAILURES


def target_for(scenario: Scenario) -> Target | None:
    """The stack outputs named by ``LOAD_OUTPUTS``; ``None`` when unset (use ``--host``)."""
    path = os.environ.get(ENV_OUTPUTS)
    return load_target(Path(path), scenario) if path else None


def api_signer(target: Target | None) -> ApiSigner | None:
    """The signer of the run's API requests (``Target.api_signer``); None with ``--host``."""
    return target.api_signer() if target is not None else None


def signed_headers(
    signer: ApiSigner | None, method: str, url: str, body: str, headers: dict[str, str]
) -> dict[str, str]:
    """``headers`` plus the SigV4 ones for this request (none without a signer)."""
    if signer is None:
        return headers
    return {**headers, **signer.headers(method, url, body)}


def user_wait_time(scenario: Scenario):  # type: ignore[no-untyped-def]  # locust's wait-time callable
    """A constant per-user iteration rate, so the offered load is users x ``LOAD_USER_RATE``."""
    shape = shape_params_from_env(scenario=scenario).shape
    return constant_throughput(env_float(ENV_USER_RATE, default_user_rate(scenario, shape)))


class ConfiguredShape(LoadTestShape):
    """The load shape named by ``LOAD_SHAPE`` (smoke, step, spike, soak), from ``LOAD_*``.

    Each locustfile subclasses it with its ``scenario`` so per-scenario defaults apply.
    """

    abstract = True
    scenario: Scenario = "api_ingest"

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust leaves it unannotated
        self.params = shape_params_from_env(scenario=self.scenario)

    def tick(self) -> tuple[int, float] | None:
        return users_at(self.params, self.get_run_time())  # type: ignore[no-untyped-call]


def reject(response: Any, message: str) -> None:
    """Mark an HTTP answer failed; a 429 (the stage throttle) is filed as throttled, apart
    from errors, under ``<name> [throttled]``."""
    if response.status_code == 429:
        response.request_meta["name"] += THROTTLED_SUFFIX
    response.failure(message)


def _cause(exception: BaseException, response: Any, context: dict[str, Any] | None) -> str:
    if context and context.get("cause"):
        return str(context["cause"])
    status = getattr(response, "status_code", None)
    if status is None:
        return type(exception).__name__
    if 200 <= int(status) < 300:
        return f"wrong answer: {str(exception)[:80]}"
    headers = getattr(response, "headers", None) or {}
    return http_cause(int(status), headers.get("x-amzn-ErrorType"), response.text)


def _record_failure(
    name: str,
    exception: BaseException | None = None,
    response: Any = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    if exception is not None:
        FAILURES.record(t=int(time.time()), name=name, cause=_cause(exception, response, context))


events.request.add_listener(_record_failure)  # type: ignore[no-untyped-call]  # locust leaves it unannotated
