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
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

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
def local_stack_outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Outputs file of a real local stack, shared by the module's smoke runs; stopped after."""
    from harness.local.cloud import LocalStack

    with LocalStack(work_dir=tmp_path_factory.mktemp("load-local-stack")) as stack:
        yield stack.outputs_file


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
