"""The two events our handlers depend on, held key for key against AWS's recorded samples.

- The SQS event the event source mapping hands the processor: the real mapping service
  (``localcloud.lambda_service.esm``) polling our engine in-process, as the local cloud
  runs it, with a recording function in place of the Lambda service. Recorded samples: LocalStack's
  ``tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_sqs.py`` and
  its ``.snapshot.json`` (validated against AWS on the dates given).
- The REST API (v1) Lambda proxy event: the real local API Gateway front
  (``localcloud.apigw``) with a recording function behind it, called over HTTP with
  the headers the recording sent. Recorded samples: LocalStack's
  ``tests/aws/services/apigateway/test_apigateway_lambda.py``
  (``test_lambda_aws_proxy_integration``, validated 2024-08-02).

Both read at :data:`~tests.parity.expect.LOCALSTACK_COMMIT`; the expected events below are
written from those recordings, in the notation of :mod:`tests.parity.expect`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from harness.waiting import wait_until
from localcloud.apigw import ApiGatewayService
from localcloud.lambda_service import LambdaService
from localcloud.lambda_service.esm import EventSourceMappingService
from localcloud.specs import (
    ApiMethod,
    EventSourceMappingSpec,
    FunctionSpec,
    InvokeResult,
    RestApiSpec,
)
from localcloud.sqs import DEFAULT_ACCOUNT_ID, FakeClock, SqsEngine
from localcloud.sqs.protocol import InProcessSqsClient
from tests.parity.expect import Placeholders, differences

REGION = "us-east-1"
ESM_SOURCE = "tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_sqs.py"
APIGW_SOURCE = "tests/aws/services/apigateway/test_apigateway_lambda.py"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SQS's md5OfBody


def expect(actual: Any, expected: Any, what: str, placeholders: Placeholders | None = None) -> None:
    found = differences(
        expected,
        actual,
        placeholders
        or Placeholders({"partition": "aws", "region": REGION, "account": DEFAULT_ACCOUNT_ID}),
    )
    assert not found, f"{what} differs from AWS's recorded sample:\n  " + "\n  ".join(found)


# -- the SQS event of an event source mapping ----------------------------------------------


@dataclass
class RecordingFunction:
    """In place of the Lambda service: keeps each event and answers from ``answers``
    (success, ``null``, once they run out)."""

    spec: FunctionSpec
    answers: list[InvokeResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def function_spec(self, function_name: str) -> FunctionSpec:
        if function_name != self.spec.function_name:
            raise KeyError(function_name)
        return self.spec

    def invoke(self, function_name: str, payload: bytes) -> InvokeResult:
        with self.lock:
            self.events.append(json.loads(payload))
            return self.answers.pop(0) if self.answers else InvokeResult(200, b"null")

    def event(self, index: int) -> dict[str, Any]:
        """The ``index``-th event, once it has arrived."""
        found: dict[str, Any] = wait_until(
            lambda: len(self.events) > index and self.events[index],
            timeout=15,
            description=f"invocation {index + 1} of the function by the event source mapping",
        )
        return found


FAILED = InvokeResult(200, b'{"errorMessage": "failed attempt"}', function_error="Unhandled")


def batch_item_failures(*message_ids: str) -> InvokeResult:
    failures = [{"itemIdentifier": message_id} for message_id in message_ids]
    return InvokeResult(200, json.dumps({"batchItemFailures": failures}).encode())


@dataclass
class Mapped:
    engine: SqsEngine
    clock: FakeClock
    function: RecordingFunction
    service: EventSourceMappingService

    def queue(self, name: str, **attributes: str) -> tuple[str, str]:
        queue = self.engine.create_queue(name, attributes)
        return queue.url, queue.arn

    def map(self, queue: tuple[str, str], **spec: Any) -> None:
        url, arn = queue
        self.service.add(
            EventSourceMappingSpec(
                uuid=str(uuid.uuid4()),
                function_name=self.function.spec.function_name,
                event_source_arn=arn,
                queue_url=url,
                **spec,
            )
        )


@pytest.fixture
def mapped() -> Iterator[Mapped]:
    """The event source mapping service on an engine whose clock the test moves (long polls
    wait in real time, so the pollers block instead of spinning)."""
    clock = FakeClock()
    engine = SqsEngine(clock=clock)
    function = RecordingFunction(
        FunctionSpec(
            logical_id="Processor",
            stack_name="parity",
            function_name="processor",
            arn=f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:processor",
            handler="index.handler",
            runtime="python3.12",
            code_dir=Path("."),
            timeout_s=3,
        )
    )
    service = EventSourceMappingService(
        cast("LambdaService", function),
        "http://127.0.0.1:9",  # unused: the pollers call the engine in-process
        REGION,
        sqs_client=InProcessSqsClient(engine),
    )
    try:
        yield Mapped(engine, clock, function, service)
    finally:
        service.close()
        engine.close()


def sqs_record(
    message_id: int,
    handle: int,
    body: str,
    md5: str,
    *,
    receive_count: int = 1,
    attributes: dict[str, str] | None = None,
    message_attributes: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One record as AWS sent it (the recordings mask the SenderId and SentTimestamp)."""
    return {
        "messageId": f"<uuid:{message_id}>",
        "receiptHandle": f"<receipt-handle:{handle}>",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "<timestamp-ms>",
            "SenderId": "<sender-id>",
            "ApproximateFirstReceiveTimestamp": "<timestamp-ms>",
            **(attributes or {}),
        },
        "messageAttributes": message_attributes or {},
        "md5OfBody": md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:<partition>:sqs:<region>:<account>:<resource:1>",
        "awsRegion": "<region>",
        **extra,
    }


@pytest.mark.aws_recording(
    "TestSQSEventSourceMapping::test_sqs_event_source_mapping",
    validated="2025-11-25",
    source=ESM_SOURCE,
)
def test_sqs_event_source_mapping(mapped: Mapped) -> None:
    queue = mapped.queue(f"queue-{uuid.uuid4().hex[:8]}-1")
    mapped.map(queue, maximum_batching_window_s=1)
    body = json.dumps({"foo": "bar"})
    mapped.engine.send_message(queue[0], body)
    # With a batching window AWS sends md5OfMessageAttributes: null (recorded).
    record = sqs_record(2, 1, body, md5(body), md5OfMessageAttributes=None)
    expect(mapped.function.event(0), {"Records": [record]}, "events[0]")


# The recordings' function sent its result to this queue (masked as <queue-url:1>).
DESTINATION = "http://127.0.0.1/123456789012/destination-queue"
TITLE_AUTHOR_WEEKS = {
    "Title": {"DataType": "String", "StringValue": "The Whistler"},
    "Author": {"DataType": "String", "StringValue": "John Grisham"},
    "WeeksOn": {"DataType": "Number", "StringValue": "6"},
}


@pytest.mark.aws_recording(
    "test_message_body_and_attributes_passed_correctly", validated="2025-11-25", source=ESM_SOURCE
)
def test_message_body_and_attributes_passed_correctly(mapped: Mapped) -> None:
    dlq = mapped.queue(f"event-dlq-{uuid.uuid4().hex[:8]}")
    policy = json.dumps({"deadLetterTargetArn": dlq[1], "maxReceiveCount": 2})
    queue = mapped.queue(
        f"source-queue-{uuid.uuid4().hex[:8]}", VisibilityTimeout="5", RedrivePolicy=policy
    )
    mapped.map(queue, batch_size=1)
    body = json.dumps({"destination": DESTINATION, "fail_attempts": 0})
    mapped.engine.send_message(queue[0], body, message_attributes=TITLE_AUTHOR_WEEKS)
    attributes = {
        name: {
            "stringValue": value["StringValue"],
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in TITLE_AUTHOR_WEEKS.items()
    }
    record = sqs_record(
        1,
        2,
        body,
        md5(body),
        message_attributes=attributes,
        md5OfMessageAttributes="d25a6aea97eb8f585bfa92d314504a92",
    )
    expect(mapped.function.event(0), {"Records": [record]}, "first_attempt event")


@pytest.mark.aws_recording(
    "test_failing_lambda_retries_after_visibility_timeout",
    validated="2025-11-25",
    source=ESM_SOURCE,
)
def test_failing_lambda_retries_after_visibility_timeout(mapped: Mapped) -> None:
    queue = mapped.queue(f"source-queue-{uuid.uuid4().hex[:8]}", VisibilityTimeout="5")
    mapped.function.answers.append(FAILED)
    mapped.map(queue, batch_size=1)
    body = json.dumps({"destination": DESTINATION, "fail_attempts": 1})
    mapped.engine.send_message(queue[0], body)
    # Without a batching window there is no md5OfMessageAttributes at all (recorded).
    expect(mapped.function.event(0), {"Records": [sqs_record(2, 3, body, md5(body))]}, "first")
    mapped.clock.advance(5)  # the queue's visibility timeout: the retry comes after it
    second = sqs_record(2, 4, body, md5(body), receive_count=2)
    expect(mapped.function.event(1), {"Records": [second]}, "second_attempt event")


@pytest.mark.aws_recording(
    "test_report_batch_item_failures", validated="2025-03-03", source=ESM_SOURCE
)
def test_report_batch_item_failures(mapped: Mapped) -> None:
    dlq_url, dlq_arn = mapped.queue(f"event-dlq-{uuid.uuid4().hex[:8]}.fifo", FifoQueue="true")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    queue = mapped.queue(
        f"source-queue-{uuid.uuid4().hex[:8]}.fifo",
        FifoQueue="true",
        VisibilityTimeout="8",
        RedrivePolicy=policy,
    )
    bodies = [
        json.dumps({"message": n, "fail_attempts": fails})
        for n, fails in ((1, 0), (2, 1), (3, 1), (4, 2))
    ]
    sent, _ = mapped.engine.send_message_batch(
        queue[0],
        [
            _entry(f"message-{n}", body, group="1", dedup=f"dedup-{n}")
            for n, body in enumerate(bodies, start=1)
        ],
    )
    ids = [result.message_id for _, result in sent]
    mapped.function.answers += [batch_item_failures(*ids[1:]), batch_item_failures(ids[3])]
    mapped.map(queue, batch_size=10, function_response_types=("ReportBatchItemFailures",))

    def fifo(n: int, handle: int, receive_count: int = 1) -> dict[str, Any]:
        attributes = {
            "MessageDeduplicationId": f"dedup-{n}",
            "MessageGroupId": "1",
            "SequenceNumber": f"<sequence-number:{n}>",
        }
        body = bodies[n - 1]
        return sqs_record(
            n, handle, body, md5(body), receive_count=receive_count, attributes=attributes
        )

    first = {"Records": [fifo(n, 3 + n) for n in (1, 2, 3, 4)]}
    expect(mapped.function.event(0), first, "first_invocation event")
    mapped.clock.advance(8)
    second = {"Records": [fifo(n, 6 + n, receive_count=2) for n in (2, 3, 4)]}
    expect(mapped.function.event(1), second, "second_invocation event")
    mapped.clock.advance(8)
    # Message 4 failed twice: the queue moves it to the DLQ instead of a third invocation.
    moved = wait_until(
        lambda: mapped.engine.receive_message(dlq_url),
        timeout=10,
        description="message 4 in the dead-letter queue",
    )
    assert [(m.message_id, m.body) for m in moved] == [(ids[3], bodies[3])]
    assert len(mapped.function.events) == 2


def _entry(entry_id: str, body: str, *, group: str, dedup: str) -> Any:
    from localcloud.sqs import SendEntry

    return SendEntry(id=entry_id, body=body, group_id=group, deduplication_id=dedup)


# -- the REST API (v1) Lambda proxy event ---------------------------------------------------

# What an edge-optimized endpoint adds (CloudFront in front): the recording's API was
# EDGE; ours are REGIONAL, and the local front serves every API as a regional one.
EDGE_HEADERS = {
    "CloudFront-Forwarded-Proto": "https",
    "CloudFront-Is-Desktop-Viewer": "true",
    "CloudFront-Is-Mobile-Viewer": "false",
    "CloudFront-Is-SmartTV-Viewer": "false",
    "CloudFront-Is-Tablet-Viewer": "false",
    "CloudFront-Viewer-ASN": "<cloudfront-asn>",
    "CloudFront-Viewer-Country": "<cloudfront-country>",
    "Via": "<via>",
    "X-Amz-Cf-Id": "<cf-id>",
}


@dataclass
class ProxyApi:
    url: str  # the invoke URL, http://127.0.0.1:PORT/stage/
    events: list[dict[str, Any]]

    @property
    def host(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.url.split("/stage/")[0]

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Send a request to ``path`` (under the stage); return the event the function got."""
        before = len(self.events)
        response = requests.request(method, self.url.rstrip("/") + path, timeout=10, **kwargs)
        assert response.status_code == 200, response.text
        assert len(self.events) == before + 1
        return self.events[-1]


@pytest.fixture(scope="module")
def proxy_api() -> Iterator[ProxyApi]:
    """``ANY /{proxy+}`` and ``ANY /hardcoded`` (stage ``stage``) proxying to a function
    that answers with the event it got, as the recording's function did."""
    events: list[dict[str, Any]] = []

    def invoke(
        function_name: str, payload: bytes, *, trace_header: str | None = None
    ) -> InvokeResult:
        event = json.loads(payload)
        events.append(event)
        return InvokeResult(
            200, json.dumps({"statusCode": 200, "body": json.dumps(event)}).encode()
        )

    spec = RestApiSpec(
        api_id="a1b2c3d4e5",
        name="test-api",
        stage_name="stage",
        methods=tuple(
            ApiMethod(path, "ANY", "AWS_PROXY", function_name="test-function")
            for path in ("/{proxy+}", "/hardcoded")
        ),
    )
    with ApiGatewayService(invoke, publish_metrics=False) as service:
        yield ProxyApi(service.add_rest_api(spec), events)


RECORDING_HEADERS = {
    # python-requests' own defaults at the time (newer ones add "br" with brotli installed).
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "python-requests/testing",
    "tEsT-HEADeR": "aValUE",
    "authorization": "random-value",
}


def proxy_event(
    *,
    path: str,
    stage_path: str,
    resource: str = "/{proxy+}",
    path_parameters: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    edge: bool = False,
) -> dict[str, Any]:
    """The event the recording's requests produced (``stage_path``: requestContext.path)."""
    sent = headers or {"Authorization": "random-value", "tEsT-HEADeR": "aValUE"}
    single = {
        "Accept": "*/*",
        "Accept-Encoding": "gzip, deflate",
        "Host": "<host:1>",
        "User-Agent": "python-requests/testing",
        # The recording masks the X-Forwarded-* values.
        "X-Amzn-Trace-Id": "<trace-id>",
        "X-Forwarded-For": "<forwarded-for>",
        "X-Forwarded-Port": "<port>",
        "X-Forwarded-Proto": "<scheme>",
        **sent,
        **(EDGE_HEADERS if edge else {}),
    }
    return {
        "body": body,
        "headers": single,
        "httpMethod": method,
        "isBase64Encoded": False,
        "multiValueHeaders": {name: [value] for name, value in single.items()},
        "multiValueQueryStringParameters": query,
        "path": path,
        "pathParameters": path_parameters,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "requestContext": {
            "accountId": "<account>",
            "apiId": "<api-id:1>",
            "deploymentId": "<deployment-id>",
            "domainName": "<host:1>",
            "domainPrefix": "<domain-prefix>",
            "extendedRequestId": "<extended-request-id>",
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": "<source-ip>",
                "user": None,
                "userAgent": "python-requests/testing",
                "userArn": None,
            },
            "path": stage_path,
            "protocol": "HTTP/1.1",
            "requestId": "<uuid>",
            "requestTime": "<request-time>",
            "requestTimeEpoch": "<timestamp-ms>",
            "resourceId": "<resource-id>",
            "resourcePath": resource,
            "stage": "stage",
        },
        "resource": resource,
        "stageVariables": None,
    }


def _proxy(path: str, stage_path: str | None = None, proxy: str | None = None, **kw: Any) -> Any:
    return proxy_event(
        path=path,
        stage_path=stage_path or f"/stage{path}",
        path_parameters={"proxy": proxy if proxy is not None else path.strip("/")},
        **kw,
    )


GET_CASES = [
    # (snapshot key, path after the invoke URL's host, expected event)
    ("invocation-payload-without-trailing-slash", "/stage/proxy-value", _proxy("/proxy-value")),
    ("invocation-payload-with-trailing-slash", "/stage/proxy-value/", _proxy("/proxy-value/")),
    (
        "invocation-payload-with-double-slash",
        "/stage/proxy-value//double-slash",
        _proxy("/proxy-value//double-slash"),
    ),
    (
        "invocation-payload-with-prepended-slash-to-stage",
        "//stage/proxy-value",
        _proxy("/proxy-value"),
    ),
    (
        "invocation-payload-with-prepended-slash",
        "/stage//proxy-value",
        _proxy("/proxy-value", "/stage//proxy-value", "proxy-value"),
    ),
    (
        "invocation-payload-without-trailing-slash-and-query-params",
        "/stage/proxy-value?urlparam=test",
        _proxy("/proxy-value", query={"urlparam": ["test"]}),
    ),
    (
        "invocation-payload-with-trailing-slash-and-query-params",
        "/stage/proxy-value/?urlparam=test",
        _proxy("/proxy-value/", query={"urlparam": ["test"]}),
    ),
    (
        "invocation-payload-with-path-encoded-email",
        "/stage/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com",
        _proxy("/proxy-value/api/user/test%2Balias@gmail.com/plus/test+alias@gmail.com"),
    ),
    (
        "invocation-payload-with-params-encoding",
        "/stage/proxy-value/api?dateTimeOffset=2023-06-12T18:05:10.123456+00:00"
        "&email=test%2Balias@gmail.com&plus=test+alias@gmail.com&url=https://www.google.com/"
        "&whitespace=foo bar&zhash=abort/#&ignored=this-does-not-appear-after-the-hash",
        _proxy(
            "/proxy-value/api",
            query={
                "dateTimeOffset": ["2023-06-12T18:05:10.123456 00:00"],
                "email": ["test+alias@gmail.com"],
                "plus": ["test alias@gmail.com"],
                "url": ["https://www.google.com/"],
                "whitespace": ["foo bar"],
                "zhash": ["abort/"],
            },
        ),
    ),
    (
        "invocation-hardcoded",
        "/stage//hardcoded",
        proxy_event(path="/hardcoded", stage_path="/stage//hardcoded", resource="/hardcoded"),
    ),
]


@pytest.mark.aws_recording(
    "test_lambda_aws_proxy_integration", validated="2024-08-02", source=APIGW_SOURCE
)
@pytest.mark.parametrize(("key", "path", "expected"), GET_CASES, ids=[c[0] for c in GET_CASES])
def test_lambda_aws_proxy_integration(
    proxy_api: ProxyApi, key: str, path: str, expected: dict[str, Any]
) -> None:
    before = len(proxy_api.events)
    response = requests.get(proxy_api.host + path, headers=RECORDING_HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    assert len(proxy_api.events) == before + 1
    event = proxy_api.events[-1]
    expect(event, expected, key, _proxy_placeholders())
    _domain_is_the_host(event)


@pytest.mark.aws_recording(
    "test_lambda_aws_proxy_integration", validated="2024-08-02", source=APIGW_SOURCE
)
def test_lambda_aws_proxy_integration_multi_value(proxy_api: ProxyApi) -> None:
    before = len(proxy_api.events)
    response = requests.post(
        proxy_api.host + "/stage/proxy-value",
        data=json.dumps({"message": "hello world"}),
        headers={
            "Accept-Encoding": "gzip, deflate",
            "Content-Type": "application/json;charset=utf-8",
            "aUThorization": "Bearer token123;API key456",
            "User-Agent": "python-requests/testing",
        },
        params={"category": ["electronics", "books"], "price": ["10", "20", "30"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert len(proxy_api.events) == before + 1
    expected = _proxy(
        "/proxy-value",
        method="POST",
        body=json.dumps({"message": "hello world"}),
        query={"category": ["electronics", "books"], "price": ["10", "20", "30"]},
        headers={
            "Authorization": "Bearer token123;API key456",
            "Content-Type": "application/json;charset=utf-8",
        },
    )
    expect(
        proxy_api.events[-1],
        expected,
        "invocation-payload-with-params-encoding-multi",
        _proxy_placeholders(),
    )


def _proxy_placeholders() -> Placeholders:
    return Placeholders({"account": "123456789012"})


def _domain_is_the_host(event: dict[str, Any]) -> None:
    # Locally domainName is the Host the client used; its first label is domainPrefix.
    context = event["requestContext"]
    assert context["domainName"] == event["headers"]["Host"]
    assert context["domainPrefix"] == context["domainName"].split(".")[0].split(":")[0]


@pytest.mark.aws_recording(
    "test_lambda_aws_proxy_integration", validated="2024-08-02", source=APIGW_SOURCE
)
@pytest.mark.deviation("regional-endpoints-only")
def test_edge_optimized_endpoint_headers(proxy_api: ProxyApi) -> None:
    event = proxy_api.call("GET", "/proxy-value", headers=RECORDING_HEADERS)
    expect(
        event,
        _proxy("/proxy-value", edge=True),
        "invocation-payload-without-trailing-slash",
        _proxy_placeholders(),
    )


@pytest.mark.aws_recording(
    "test_lambda_aws_proxy_integration", validated="2024-08-02", source=APIGW_SOURCE
)
@pytest.mark.deviation("local-domain-name")
def test_domain_prefix_is_the_api_id(proxy_api: ProxyApi) -> None:
    context = proxy_api.call("GET", "/proxy-value", headers=RECORDING_HEADERS)["requestContext"]
    assert context["domainPrefix"] == context["apiId"]
