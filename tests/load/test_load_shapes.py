"""Load shapes and their settings: pure functions of elapsed time and LOAD_* variables."""

from __future__ import annotations

import pytest

from harness.load.settings import (
    ShapeParams,
    default_shape_params,
    parse_duration,
    shape_params_from_env,
)
from harness.load.shapes import timeline, users_at


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2.5s", 2.5), ("1m30s", 90)],
)
def test_parse_duration_accepts_locust_style(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-3s"])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_smoke_runs_its_users_for_its_run_time_then_stops() -> None:
    params = ShapeParams("smoke", users=3, spawn_rate=3, run_time_s=5)
    assert users_at(params, 0) == (3, 3)
    assert users_at(params, 4.99) == (3, 3)
    assert users_at(params, 5) is None


def test_step_ramps_in_increments_and_holds_at_the_top() -> None:
    params = ShapeParams(
        "step", users=10, spawn_rate=5, run_time_s=40, step_users=3, step_time_s=10
    )
    assert [users for _, users in timeline(params, resolution_s=10)] == [3, 6, 9, 10]
    assert users_at(params, 40) is None


def test_spike_jumps_in_the_middle_and_falls_back() -> None:
    params = ShapeParams(
        "spike", users=2, spawn_rate=1, run_time_s=30, spike_users=20, spike_time_s=10
    )
    counts = dict(timeline(params))
    assert counts[0] == 2
    assert counts[9] == 2
    assert counts[10] == 20
    assert counts[19] == 20
    assert counts[20] == 2
    assert counts[29] == 2
    # The spike arrives at once: its spawn rate covers every extra user within a second.
    assert users_at(params, 10) == (20, 20.0)


def test_env_overrides_defaults_and_step_run_time_follows_the_ramp() -> None:
    params = shape_params_from_env(
        {"LOAD_SHAPE": "step", "LOAD_USERS": "20", "LOAD_STEP_USERS": "4", "LOAD_STEP_TIME": "15s"},
        "api_ingest",
    )
    assert (params.users, params.step_users, params.step_time_s) == (20, 4, 15)
    assert params.run_time_s == 75  # five steps of 15 s: the whole ramp by default
    explicit = shape_params_from_env(
        {"LOAD_SHAPE": "step", "LOAD_RUN_TIME": "1m", "LOAD_USERS": "20"}, "api_ingest"
    )
    assert explicit.run_time_s == 60


def test_env_round_trip_through_to_env() -> None:
    params = ShapeParams("spike", 4, 2.5, 33, spike_users=40, spike_time_s=7)
    assert shape_params_from_env(params.to_env(), "end_to_end") == params


def test_smoke_defaults_depend_on_the_scenario() -> None:
    # sqs_fifo_limits has six user classes: fewer users would leave some unspawned.
    assert default_shape_params("smoke", "sqs_fifo_limits").users == 6
    assert default_shape_params("smoke", "api_ingest").run_time_s <= 10
    assert default_shape_params("soak", "api_ingest").run_time_s >= 1800


def test_unknown_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown load shape 'ramp'"):
        shape_params_from_env({"LOAD_SHAPE": "ramp"})
