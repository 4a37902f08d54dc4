"""The endpoint itself: one URL for SQS and moto's services, the AWS CLI and the query
protocol, keep-alive, long polls that starve nobody, a clean stop, and the
``harness local services`` command."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.waiting import wait_until
from localcloud.endpoint import AwsEndpoint
from localcloud.sqs.errors import SqsError
from localcloud.sqs.protocol import InProcessSqsClient
from localcloud.sqs.testing import client, error_of, query_client

REPO = Path(__file__).resolve().parents[2]
AWS_CLI = Path(sys.executable).parent / "aws"


def aws_cli(endpoint: AwsEndpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": endpoint.region,
    }
    return subprocess.run(
        [str(AWS_CLI), "--endpoint-url", endpoint.url, "--output", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_aws_cli_works_unchanged(aws_endpoint: AwsEndpoint) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}.fifo"
    created = aws_cli(
        aws_endpoint,
        "sqs", "create-queue", "--queue-name", name,
        "--attributes", "FifoQueue=true,ContentBasedDeduplication=true",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    url = json.loads(created.stdout)["QueueUrl"]
    assert url == f"{aws_endpoint.url}/123456789012/{name}"

    sent = aws_cli(
        aws_endpoint,
        "sqs", "send-message", "--queue-url", url,
        "--message-body", "from the cli", "--message-group-id", "g",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    received = aws_cli(
        aws_endpoint,
        "sqs", "receive-message", "--queue-url", url, "--attribute-names", "All",
    )  # fmt: skip
    assert received.returncode == 0, received.stderr
    (message,) = json.loads(received.stdout)["Messages"]
    assert message["Body"] == "from the cli"
    assert message["Attributes"]["SequenceNumber"] == json.loads(sent.stdout)["SequenceNumber"]
    deleted = aws_cli(
        aws_endpoint,
        "sqs", "delete-message", "--queue-url", url,
        "--receipt-handle", message["ReceiptHandle"],
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr

    missing = aws_cli(aws_endpoint, "sqs", "get-queue-url", "--queue-name", "no-such-queue")
    assert missing.returncode == 255
    assert "AWS.SimpleQueueService.NonExistentQueue" in missing.stderr


@pytest.fixture(scope="module")
def query_sqs(aws_endpoint: AwsEndpoint) -> Any:
    """A botocore SQS client speaking the query protocol (what SQS spoke before JSON)."""
    return query_client(aws_endpoint.url)


def test_the_query_protocol_works(query_sqs: Any) -> None:
    assert query_sqs.meta.service_model.protocol == "query"
    queue = query_sqs.create_queue(
        QueueName=f"query-{uuid.uuid4().hex[:8]}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        tags={"via": "query"},
    )["QueueUrl"]
    sent = query_sqs.send_message(
        QueueUrl=queue,
        MessageBody="<xml & friends>",
        MessageGroupId="g",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    (message,) = query_sqs.receive_message(
        QueueUrl=queue, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]

    assert message["Body"] == "<xml & friends>"
    assert message["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert message["Attributes"]["SequenceNumber"] == sent["SequenceNumber"]
    assert query_sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"via": "query"}
    deleted = query_sqs.delete_message_batch(
        QueueUrl=queue, Entries=[{"Id": "1", "ReceiptHandle": message["ReceiptHandle"]}]
    )
    assert deleted["Successful"] == [{"Id": "1"}]
    error = error_of(lambda: query_sqs.get_queue_url(QueueName="no-such-queue"))
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_other_services_are_moto_on_the_same_url(aws_endpoint: AwsEndpoint) -> None:
    table = f"t-{uuid.uuid4().hex[:8]}"
    dynamodb = client("dynamodb", aws_endpoint.url)
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}
    logs = client("logs", aws_endpoint.url)
    logs.create_log_group(logGroupName=f"/test/{table}")
    assert logs.describe_log_groups(logGroupNamePrefix=f"/test/{table}")["logGroups"]
    client("cloudwatch", aws_endpoint.url).put_metric_data(
        Namespace="Test", MetricData=[{"MetricName": "m", "Value": 1.0}]
    )
    assert client("sts", aws_endpoint.url).get_caller_identity()["Account"] == "123456789012"
    # SQS on the same URL is ours, not moto's.
    queue = client("sqs", aws_endpoint.url).create_queue(QueueName=f"ours-{table}")["QueueUrl"]
    assert aws_endpoint.sqs.find_queue(queue) is not None


def test_mounted_apps_answer_their_paths_first() -> None:
    def status(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.dumps({"path": environ["PATH_INFO"], "method": environ["REQUEST_METHOD"]})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]

    with AwsEndpoint() as endpoint:
        endpoint.mount(lambda path: path.startswith("/_local/"), status)
        connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
        connection.request("GET", "/_local/status")
        response = connection.getresponse()

        assert response.status == 200
        assert json.loads(response.read()) == {"path": "/_local/status", "method": "GET"}
        assert client("sqs", endpoint.url).list_queues().get("QueueUrls") is None
        connection.close()


def test_engine_lookups_by_url_and_arn(aws_endpoint: AwsEndpoint) -> None:
    sqs = client("sqs", aws_endpoint.url)
    name = f"lookup-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    arn = f"arn:aws:sqs:us-east-1:123456789012:{name}"

    by_url = aws_endpoint.sqs.find_queue(url)
    by_arn = aws_endpoint.sqs.find_queue(arn)

    assert by_url is not None
    assert by_url is by_arn
    assert by_url.url == url
    assert by_url.arn == arn
    depth = aws_endpoint.sqs.queue_depth(arn)
    assert (depth.visible, depth.not_visible, depth.delayed) == (1, 0, 0)
    assert aws_endpoint.sqs.queue_depths()[url].visible == 1
    assert aws_endpoint.sqs.find_queue("arn:aws:sqs:us-east-1:123456789012:nope") is None


def test_keep_alive_and_no_nagle_delay(aws_endpoint: AwsEndpoint) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", aws_endpoint.port, timeout=10)
    body = json.dumps({"QueueNamePrefix": "none-such"}).encode()
    headers = {"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"}
    timings = []
    for _ in range(50):
        started = time.perf_counter()
        connection.request("POST", "/", body, headers)
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        timings.append(time.perf_counter() - started)
    local_port = connection.sock.getsockname()[1]
    connection.request("POST", "/", body, headers)
    connection.getresponse().read()

    assert connection.sock.getsockname()[1] == local_port, "one connection for every request"
    # Nagle plus delayed ACK would cost ~40 ms per request.
    assert statistics.median(timings) < 0.02
    connection.close()


def test_many_long_polls_starve_nobody() -> None:
    with AwsEndpoint(throttling=False) as endpoint:
        sqs = client("sqs", endpoint.url)  # one client, a pool of 64 connections
        idle = sqs.create_queue(QueueName="idle")["QueueUrl"]
        busy = sqs.create_queue(QueueName="busy")["QueueUrl"]
        pollers = [
            threading.Thread(
                target=lambda: sqs.receive_message(QueueUrl=idle, WaitTimeSeconds=4),
                daemon=True,
            )
            for _ in range(40)
        ]
        for poller in pollers:
            poller.start()
        wait_until(
            lambda: endpoint.sqs.long_polls_waiting() == 40,
            timeout=10,
            description="40 long polls waiting in the engine",
        )

        started = time.monotonic()
        for i in range(20):
            sqs.send_message(QueueUrl=busy, MessageBody=str(i))
        received = sqs.receive_message(QueueUrl=busy, MaxNumberOfMessages=10)["Messages"]

        assert len(received) == 10
        assert endpoint.sqs.long_polls_waiting() == 40
        assert time.monotonic() - started < 3, "40 waiting long polls slowed nothing down"
        for poller in pollers:
            poller.join(timeout=10)


def port_is_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def test_stop_ends_long_polls_and_releases_the_port() -> None:
    endpoint = AwsEndpoint().start()
    port = endpoint.port
    sqs = client("sqs", endpoint.url)
    queue = sqs.create_queue(QueueName="waiting")["QueueUrl"]
    outcome: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        try:
            outcome["messages"] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=20).get(
                "Messages", []
            )
        except Exception as error:  # a closed connection is a fine way to end it too
            outcome["error"] = repr(error)
        outcome["elapsed"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # let the poll reach the server (pacing, not a wait for work)

    endpoint.stop()
    poller.join(timeout=10)

    assert outcome["elapsed"] < 5
    assert port_is_free(port)


# -- harness local services ---------------------------------------------------------------


@pytest.fixture
def services_process() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "local", "services", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        # readline blocks until the command prints; it prints within a second or two.
        while not banner or banner[-1] != "Ctrl-C to stop.":
            line = process.stdout.readline()
            assert line, f"the command exited early: {process.wait(timeout=10)}"
            banner.append(line.rstrip("\n"))
        yield process, banner
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_harness_local_services_serves_until_a_signal(
    services_process: tuple[subprocess.Popen[str], list[str]], stop_signal: signal.Signals
) -> None:
    process, banner = services_process
    assert banner[0].startswith("Local AWS endpoint: http://127.0.0.1:"), banner
    url = banner[0].split()[3]
    assert f"  export AWS_ENDPOINT_URL={url}" in banner
    assert f"  aws --endpoint-url {url} sqs list-queues" in banner
    port = int(url.rsplit(":", 1)[1])
    sqs = client("sqs", url)
    queue = sqs.create_queue(QueueName="from-a-test")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"] == "hello"

    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=15)

    assert process.returncode == 0, stderr
    assert "stopped" in stderr
    assert port_is_free(port)


def test_the_in_process_client_answers_as_boto3_does(aws_endpoint: AwsEndpoint) -> None:
    """What the local cloud's pollers use instead of HTTP: the same shapes, the same errors."""
    sqs = client("sqs", aws_endpoint.url)
    url = sqs.create_queue(
        QueueName=f"inproc-{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    attributes = {
        "text": {"DataType": "String", "StringValue": "é"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    for body in ("first", "second"):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageGroupId="g",
            MessageDeduplicationId=body,
            MessageAttributes=attributes,
        )
    request = {"QueueUrl": url, "MaxNumberOfMessages": 1, "AttributeNames": ["All"]}
    request["MessageAttributeNames"] = ["All"]
    in_process = InProcessSqsClient(aws_endpoint.sqs)

    via_boto3 = sqs.receive_message(**request)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=via_boto3["ReceiptHandle"])
    direct = in_process.receive_message(**request)["Messages"][0]

    assert direct.keys() == via_boto3.keys()
    assert direct["Body"] == "second"
    assert direct["Attributes"].keys() == via_boto3["Attributes"].keys()
    assert direct["MessageAttributes"]["text"] == via_boto3["MessageAttributes"]["text"]
    # boto3 decodes binary values; on the wire (and here) they are base64 text.
    assert direct["MessageAttributes"]["raw"]["BinaryValue"] == "AP8="
    deleted = in_process.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "ReceiptHandle": direct["ReceiptHandle"]},
            {"Id": "bad", "ReceiptHandle": "not-a-handle"},
        ],
    )
    assert [entry["Id"] for entry in deleted["Successful"]] == ["ok"]
    assert [entry["Code"] for entry in deleted["Failed"]] == ["ReceiptHandleIsInvalid"]
    assert aws_endpoint.sqs.queue_depth(url).visible == 0
    names = ["VisibilityTimeout", "RedrivePolicy"]
    assert in_process.get_queue_attributes(QueueUrl=url, AttributeNames=names) == {
        key: value
        for key, value in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names).items()
        if key != "ResponseMetadata"
    }
    with pytest.raises(SqsError) as missing:
        in_process.receive_message(QueueUrl=url + "-gone")
    assert missing.value.code == "AWS.SimpleQueueService.NonExistentQueue"
