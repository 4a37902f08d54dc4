"""The warm-up before a run: how many requests by default, and what it does to a target."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.load.settings import ShapeParams
from harness.load.target import load_target
from harness.load.warmup import MAX_WARM_UP, warm_up
from tests.load.conftest import FakeApiFactory
from tests.load.runs import smoke


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, 2),  # the smoke shape's users, against the local stack
        ({"target_kind": "aws"}, 0),  # AWS: the operator decides
        ({"target_kind": "aws", "warm_up": 3}, 3),
        ({"warm_up": 0}, 0),
        (
            {
                "shape": ShapeParams(
                    "step", users=50, spawn_rate=10, run_time_s=60, step_users=5, step_time_s=6
                )
            },
            MAX_WARM_UP,
        ),
        (
            {
                "shape": ShapeParams(
                    "spike", users=1, spawn_rate=1, run_time_s=60, spike_users=5, spike_time_s=10
                )
            },
            5,
        ),
    ],
)
def test_warm_up_requests_default_to_the_shape_users_on_the_local_stack(
    overrides: dict[str, object], expected: int, tmp_path: Path
) -> None:
    assert smoke("end_to_end", tmp_path, **overrides).warm_up_requests == expected


def test_sqs_scenario_warms_nothing(tmp_path: Path) -> None:
    assert smoke("sqs_fifo_limits", tmp_path, warm_up=4).warm_up_requests == 0


def test_warm_up_posts_concurrently_and_waits_for_processing(fake_api: FakeApiFactory) -> None:
    outputs, api = fake_api()
    done = warm_up(load_target(outputs), 3, timeout=20, echo=lambda line: None)
    assert (done.accepted, done.settled) == (3, 3)
    assert sorted(task["status"] for task in api.tasks.values()) == ["COMPLETED"] * 3


def test_warm_up_gives_up_on_a_target_that_never_accepts(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text('{"S": {"ApiUrl": "http://127.0.0.1:9/prod/"}}')  # nothing listens
    with pytest.raises(TimeoutError, match="never accepted a task"):
        warm_up(load_target(outputs), 1, timeout=0.5, echo=lambda line: None)
