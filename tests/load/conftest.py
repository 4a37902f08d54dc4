"""Targets for the load-suite tests.

SMOKE TARGET SEAM: ``api_outputs`` and ``sqs_outputs`` are the only places the smoke
runs get a target. Until the local stack is wired in they are stand-ins (a fake API on
127.0.0.1; the local SQS endpoint, or moto when it is missing). Switching the smoke runs
to the real local stack is a change here only, e.g.::

    @pytest.fixture(scope="module")
    def api_outputs() -> Iterator[Path]:
        with LocalStack() as stack:
            yield stack.outputs_file

(and ``sqs_outputs`` can take the same stack's outputs file).
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


@pytest.fixture
def api_outputs(fake_api: FakeApiFactory) -> Path:
    """Outputs file of the target the API smoke runs hit. STAND-IN: see the module docstring."""
    outputs, _ = fake_api()
    return outputs


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
