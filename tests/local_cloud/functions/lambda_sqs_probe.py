"""An SQS-triggered handler for the event source mapping tests.

Every invocation that completes appends one JSON line to ``$JOURNAL`` (records seen, the
response given). ``$PROBE_MODE`` picks the response; a record whose body has
``"fail_until_receive": N`` fails until its ``ApproximateReceiveCount`` reaches N, and
``"sleep": S`` makes the invocation slower.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def _journal(entry: dict[str, Any]) -> None:
    # One write() on an O_APPEND file: concurrent workers never interleave within a line.
    line = json.dumps(entry) + "\n"
    fd = os.open(os.environ["JOURNAL"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _failing(record: dict[str, Any]) -> bool:
    try:
        body = json.loads(record["body"])
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    until = int(body.get("fail_until_receive", 0))
    return int(record["attributes"]["ApproximateReceiveCount"]) < until


def handler(event: dict[str, Any], context: Any) -> Any:
    """Process a batch as ``$PROBE_MODE`` says; journal what was seen and answered."""
    started = time.time()
    records = event["Records"]
    mode = os.environ.get("PROBE_MODE", "report")
    pause = max(_sleep_of(r) for r in records)
    if pause:
        time.sleep(pause)
    failing = [r for r in records if _failing(r)]
    response: Any = None
    if mode == "report":
        # Like the production processor on a FIFO queue: the first failure and all after it.
        if failing:
            first = records.index(failing[0])
            response = {
                "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records[first:]]
            }
        else:
            response = {"batchItemFailures": []}
    elif mode == "report_only_failed":
        response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in failing]}
    elif mode in ("raise", "exit", "hang") and failing:
        if mode == "raise":
            raise RuntimeError("batch failed on purpose")
        if mode == "exit":
            os._exit(7)
        time.sleep(3600)  # past the function timeout
    elif mode == "literal":
        response = json.loads(os.environ["PROBE_RESPONSE"])
    _journal(
        {
            "request_id": context.aws_request_id,
            "pid": os.getpid(),
            "started": started,
            "ended": time.time(),
            "records": records,
            "response": response,
        }
    )
    return response


def _sleep_of(record: dict[str, Any]) -> float:
    try:
        body = json.loads(record["body"])
    except ValueError:
        return 0.0
    return float(body.get("sleep", 0.0)) if isinstance(body, dict) else 0.0
