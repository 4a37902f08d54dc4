"""Load shapes as pure functions of elapsed time (the locust ``LoadTestShape`` wraps these).

Keeping them free of locust lets the tests check every shape's timeline directly.
"""

from __future__ import annotations

from harness.load.settings import ShapeParams


def users_at(params: ShapeParams, elapsed_s: float) -> tuple[int, float] | None:
    """``(user count, spawn rate)`` wanted ``elapsed_s`` into the run, or ``None`` to stop."""
    if elapsed_s >= params.run_time_s:
        return None
    if params.shape == "step":
        step = int(elapsed_s // params.step_time_s) + 1
        return min(params.users, step * params.step_users), params.spawn_rate
    if params.shape == "spike":
        start = max(0.0, (params.run_time_s - params.spike_time_s) / 2)
        if start <= elapsed_s < start + params.spike_time_s:
            # A spike arrives at once: spawn every extra user within about a second.
            return params.spike_users, max(params.spawn_rate, float(params.spike_users))
        return params.users, max(params.spawn_rate, float(params.spike_users))
    return params.users, params.spawn_rate


def timeline(params: ShapeParams, resolution_s: float = 1.0) -> list[tuple[float, int]]:
    """The planned user count every ``resolution_s`` seconds (for reports and tests)."""
    points: list[tuple[float, int]] = []
    elapsed = 0.0
    while (wanted := users_at(params, elapsed)) is not None:
        points.append((elapsed, wanted[0]))
        elapsed += resolution_s
    return points
