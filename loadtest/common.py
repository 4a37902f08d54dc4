"""Locust-side glue shared by the scenarios: the configured load shape and the target.

Imported only inside locust processes (it imports locust, which gevent-patches the
process); everything it computes comes from the locust-free ``harness.load`` modules.
"""

from __future__ import annotations

import os
from pathlib import Path

from locust import LoadTestShape, constant_throughput

from harness.load.settings import (
    DEFAULT_USER_RATE,
    ENV_OUTPUTS,
    ENV_USER_RATE,
    Scenario,
    env_float,
    shape_params_from_env,
)
from harness.load.shapes import users_at
from harness.load.target import Target, load_target


def target_for(scenario: Scenario) -> Target | None:
    """The stack outputs named by ``LOAD_OUTPUTS``; ``None`` when unset (use ``--host``)."""
    path = os.environ.get(ENV_OUTPUTS)
    return load_target(Path(path), scenario) if path else None


def user_wait_time(scenario: Scenario):  # type: ignore[no-untyped-def]  # locust's wait-time callable
    """A constant per-user iteration rate, so the offered load is users x ``LOAD_USER_RATE``."""
    return constant_throughput(env_float(ENV_USER_RATE, DEFAULT_USER_RATE[scenario]))


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
