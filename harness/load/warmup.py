"""Warm the target before a measured run, so the run measures a serving system.

A fresh stack has no warm Lambda workers. On the local stack a cold start is a real
process start importing Powertools, pydantic and boto3: 3-8 s on a busy 2-core machine,
so in a seconds-long smoke run the first request of each user would alone break the p95
threshold. :func:`warm_up` sends ``concurrency`` valid ``POST /tasks`` at once (retrying
until each is accepted, so that many API workers exist), then waits for those tasks to
settle, which also starts the processor's worker. The warm-up tasks are not in the run's
record file, so the ledger never counts them.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.api_auth import ApiSigner
from harness.load.sources import settle, state_source
from harness.load.target import Target

MAX_WARM_UP = 8  # more users than this warm up during the ramp, as on a real stack


@dataclass(frozen=True)
class WarmUp:
    """What the warm-up did: requests accepted, tasks settled, seconds spent."""

    accepted: int
    settled: int
    seconds: float


def _post_until_accepted(url: str, deadline: float, signer: ApiSigner | None = None) -> str:
    title = f"warm-up {uuid.uuid4().hex[:12]}"
    task = {"title": title, "description": "Warm-up.", "priority": "low"}
    body = json.dumps(task).encode()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    last = "no attempt"
    while time.monotonic() < deadline:
        headers = {"Content-Type": "application/json"}
        if signer is not None:  # signed per attempt: a signature is good for 5 minutes
            headers.update(signer.headers("POST", url, body))
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, method="POST", headers=headers
        )
        try:
            wait = max(deadline - time.monotonic(), 1.0)
            with urllib.request.urlopen(request, timeout=wait) as reply:  # noqa: S310
                return str(json.loads(reply.read())["task_id"])
        except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
            # 429/502 while workers start (throttle or init) are expected: try again.
            last = repr(error)
            time.sleep(0.2)  # back off between attempts; not waiting for async work
    raise TimeoutError(f"warm-up: POST {url} never accepted a task; last: {last}")


def warm_up(
    target: Target,
    concurrency: int,
    *,
    timeout: float = 60.0,
    echo: Callable[[str], None] = print,
) -> WarmUp:
    """Make ``concurrency`` API workers and the processor warm; bounded by ``timeout``."""
    if not target.api_url or concurrency <= 0:
        return WarmUp(0, 0, 0.0)
    started = time.monotonic()
    deadline = started + timeout
    url = f"{target.api_url}/tasks"
    echo(f"[load] warming up: {concurrency} concurrent POST /tasks, then their processing")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        signer = target.api_signer()
        task_ids = list(
            pool.map(lambda _: _post_until_accepted(url, deadline, signer), range(concurrency))
        )
    states = settle(state_source(target), task_ids, timeout=max(deadline - time.monotonic(), 1.0))
    settled = sum(1 for state in states.values() if state.terminal)
    if settled < len(task_ids):
        echo(f"[load] warm-up: only {settled} of {len(task_ids)} tasks settled; going on")
    return WarmUp(len(task_ids), settled, time.monotonic() - started)
