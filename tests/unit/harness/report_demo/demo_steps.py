"""Steps of the report demo project: a small feature run of our own, against a stub server.

``tests/unit/harness/test_feature_report.py`` copies this folder to a temporary directory
(this file as ``test_demo.py``, ``demo_conftest.py`` as ``conftest.py``, which registers
the report plugin) and runs pytest there in a subprocess; the suite never collects it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from pytest_bdd import given, parsers, scenarios, then, when

from harness.target import StackNotDeployedError

scenarios("demo.feature")

SERVER = os.environ.get("DEMO_SERVER", "http://127.0.0.1:9")


@given("a stub server", target_fixture="answers")
def stub_server() -> list[Any]:
    return []


@when(parsers.parse("the client asks for thing {number:d}"))
def ask(answers: list[Any], number: int) -> None:
    response = requests.get(
        f"{SERVER}/things/{number}",
        headers={"Authorization": "Bearer s3cret-bearer", "X-Trace": "visible"},
        timeout=10,
    )
    answers.append(response.json())


@when("the client posts a secret")
def post_secret(answers: list[Any]) -> None:
    requests.post(
        f"{SERVER}/things", json={"client_secret": "s3cret-field", "name": "x"}, timeout=10
    )


@when("the client lists the queues")
def list_queues() -> None:
    sqs = boto3.client(
        "sqs",
        endpoint_url=SERVER,
        region_name="us-east-1",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="s3cret-key",
    )
    sqs.list_queues(QueueNamePrefix="tasks")
    sqs.tag_queue(QueueUrl=f"{SERVER}/q", Tags={"password": "s3cret-tag", "team": "qa"})


@when(parsers.parse("the client polls thing 1 {times:d} times"))
def poll(times: int) -> None:
    for _ in range(times):
        requests.get(f"{SERVER}/things/1", timeout=10)


@when(parsers.parse("the client asks for {count:d} different things"))
def many(count: int) -> None:
    for number in range(100, 100 + count):
        requests.get(f"{SERVER}/things/{number}", timeout=10)


@when("a background thread asks for thing 5000")
def background() -> None:
    thread = threading.Thread(target=lambda: requests.get(f"{SERVER}/things/5000", timeout=10))
    thread.start()
    thread.join(timeout=10)


@when("the client asks a stopped server")
def stopped_server() -> None:
    requests.get("http://127.0.0.1:9/things/1", timeout=5)


@pytest.fixture(scope="session")
def undeployable_stack() -> None:
    # As the features' stack fixture raises it when the local stack does not start.
    try:
        raise ValueError("Queue visibility timeout: 4 seconds is less than 5")
    except ValueError as error:
        raise StackNotDeployedError(f"{type(error).__name__}: {error}") from error


@when("the client uses a stack that does not deploy")
def uses_undeployable_stack(undeployable_stack: None) -> None:
    pass


@when("the test waits for Ctrl-C")
def wait_for_interrupt() -> None:
    started = Path(os.environ["DEMO_STARTED"])
    started.write_text("started")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the test sends SIGINT meanwhile
        time.sleep(0.05)
    raise AssertionError("no Ctrl-C came within 60 s")


@then(parsers.parse("the answer says {word}"))
def answer_says(answers: list[Any], word: str) -> None:
    assert answers[-1]["word"] == word, f"the server said {answers[-1]['word']!r}, not {word!r}"


@then("nothing else happens")
def nothing() -> None:
    pass
