"""The local AWS endpoint under malformed SQS requests: AWS-shaped errors, and it keeps serving."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from harness.local.endpoint import AwsEndpoint

JSON_10 = "application/x-amz-json-1.0"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[AwsEndpoint]:
    """A bare local AWS endpoint (no stack needed for SQS abuse)."""
    with AwsEndpoint() as running:
        yield running


def _post(endpoint: AwsEndpoint, action: str, body: bytes) -> requests.Response:
    headers = {"Content-Type": JSON_10, "X-Amz-Target": f"AmazonSQS.{action}"}
    return requests.post(endpoint.url + "/", headers=headers, data=body, timeout=30)


@pytest.fixture(scope="module")
def queue_url(endpoint: AwsEndpoint) -> str:
    body = b'{"QueueName": "abuse.fifo", "Attributes": {"FifoQueue": "true"}}'
    answer = _post(endpoint, "CreateQueue", body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["QueueUrl"])


@pytest.mark.parametrize(
    ("action", "body", "error_type"),
    [
        ("SendMessage", b"{not json", "SerializationException"),
        ("SendMessage", b"[1, 2]", "SerializationException"),
        ("Explode", b"{}", "UnknownOperationException"),
    ],
)
def test_malformed_requests_get_aws_shaped_errors(
    endpoint: AwsEndpoint, action: str, body: bytes, error_type: str
) -> None:
    answer = _post(endpoint, action, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["__type"].endswith(f"#{error_type}"), answer.text
    assert answer.headers["x-amzn-query-error"].endswith(";Sender")
    assert _post(endpoint, "ListQueues", b"{}").status_code == 200, "the endpoint stopped serving"


def test_a_huge_message_is_refused_and_the_endpoint_keeps_serving(
    endpoint: AwsEndpoint, queue_url: str
) -> None:
    huge = (
        b'{"QueueUrl": "%s", "MessageBody": "%s", "MessageGroupId": "g", '
        % (
            queue_url.encode(),
            b"a" * (3 * 1024 * 1024),
        )
        + b'"MessageDeduplicationId": "d"}'
    )
    answer = _post(endpoint, "SendMessage", huge)
    assert answer.status_code == 400, answer.text[:300]
    # AWS's answer to a body over the 1 MiB message limit.
    assert answer.json()["__type"].endswith("#InvalidParameterValue"), answer.text[:300]
    small = (
        b'{"QueueUrl": "%s", "MessageBody": "ok", "MessageGroupId": "g", ' % (queue_url.encode())
        + b'"MessageDeduplicationId": "d2"}'
    )
    sent = _post(endpoint, "SendMessage", small)
    assert sent.status_code == 200, sent.text
