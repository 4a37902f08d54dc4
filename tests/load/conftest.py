"""Targets for the load-suite tests.

``local_stack_outputs`` is the real local stack (synthesized and started once for the
module that asks for it, ~15 s): the smoke run of each scenario hits it. The stand-ins
stay for what a healthy stack cannot show cheaply: ``fake_api`` (an in-process Task API
with knobs that lose or reorder tasks, to prove the ledger and thresholds fail a run) and
``sqs_outputs`` (the local SQS endpoint alone, whose FIFO quota a test lowers in-process
to make throttling visible at a few calls/s without touching the shared stack).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness.load.target import load_target
from tests.load.load_fakes import FakeApi, running_fake_api, running_sqs_endpoint, write_outputs

FakeApiFactory = Callable[..., tuple[Path, FakeApi]]


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[FakeApiFactory]:
    """Start stand-in APIs with knobs (``lose_every``, ``reorder``); stopped after the test."""
    with ExitStack() as stack:

        def start(**knobs: object) -> tuple[Path, FakeApi]:
            url, api = stack.enter_context(running_fake_api(**knobs))
            outputs = write_outputs(tmp_path / f"outputs-{id(api)}.json", {"ApiUrl": url})
            return outputs, api

        yield start


@pytest.fixture(scope="module")
def local_stack() -> Iterator[tuple[Path, Any]]:
    """``(outputs file, LocalDeployment)`` of a real local stack, shared by the module's runs.

    Started through the very seam ``harness load --target local`` uses, so the smoke runs
    also prove that it starts the stack and that leaving it stops everything.
    """
    from harness.load.cli import local_stack_outputs as start_local_stack

    started: list[Any] = []
    with start_local_stack(on_started=started.append) as outputs:
        endpoint = load_target(outputs).endpoint_url
        assert endpoint is not None, f"{outputs} names no AwsEndpointUrl"
        yield outputs, started[0]
    assert not outputs.exists(), f"the local stack left its work directory: {outputs}"
    port = int(endpoint.rsplit(":", 1)[1].strip("/"))
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"{endpoint} still answers"


@pytest.fixture(scope="module")
def local_stack_outputs(local_stack: tuple[Path, Any]) -> Path:
    """Outputs file of the module's real local stack."""
    return local_stack[0]


@pytest.fixture
def sqs_outputs(tmp_path: Path) -> Iterator[Path]:
    """Outputs of an SQS endpoint with a FIFO task queue configured like the stack's."""
    with running_sqs_endpoint() as (endpoint_url, region, kind):
        import boto3

        sqs = boto3.client(
            "sqs", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        queue_url = sqs.create_queue(
            QueueName="local-Queue-TaskQueue.fifo",
            Attributes={
                "FifoQueue": "true",
                "ContentBasedDeduplication": "true",
                "VisibilityTimeout": "30",
                "MessageRetentionPeriod": "345600",
            },
        )["QueueUrl"]
        outputs = tmp_path / "sqs-outputs.json"
        outputs.write_text(
            json.dumps(
                {
                    f"local-{kind}": {
                        "TaskQueueUrl": queue_url,
                        "AwsEndpointUrl": endpoint_url,
                        "Region": region,
                    }
                }
            )
        )
        yield outputs
