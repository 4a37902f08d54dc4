"""The local API Gateway: REST API (v1) semantics in front of the local Lambda service.

:class:`ApiGatewayService` serves each :class:`~localcloud.specs.RestApiSpec` on its own
loopback port (one port per API, like one ``execute-api`` host per API) at
``http://127.0.0.1:PORT/<stage>/``. What it reproduces from API Gateway:

- Routing over the template's resources: literal segments, ``{param}`` and a trailing
  ``{proxy+}``, the most specific resource first; ``ANY`` methods. A path outside the
  stage answers 403 ``Forbidden``, an unknown resource or method 403
  ``Missing Authentication Token`` (what REST APIs answer, not 404).
- ``AWS_PROXY`` methods: the REST v1 proxy event (the fields Powertools'
  ``APIGatewayProxyEvent`` and ``APIGatewayRestResolver`` read), and the Lambda proxy
  response mapped back to HTTP. A malformed response or a function error, crash or
  timeout answers 502, a rejected invocation (throttle) 500, an integration slower than
  its timeout (29 s by default) 504 ``Endpoint request timed out``.
- ``MOCK`` methods (the CORS preflight CDK generates): the request template picks the
  status code, the integration responses map it, ``method.response.header.*`` parameters
  become headers (``'literal'`` quoting, ``method.request.*`` references), and the
  origin-reflecting template CDK emits for a list of origins is honoured.
- ``AWS_IAM`` methods: SigV4 verified and ``execute-api:Invoke`` evaluated against the
  caller's IAM policies (:mod:`.iam_auth`), each refusal a 403 with AWS's message; the
  caller's ``userArn``, ``accessKey``, ``caller`` and ``accountId`` in the event.
- Stage throttling as a token bucket (rate, burst) -> 429; API keys -> 403 ``Forbidden``;
  request bodies over 10 MB -> 413. Gateway errors carry ``x-amzn-ErrorType``; every
  response carries ``x-amzn-RequestId`` and ``x-amz-apigw-id``.
- Access logs in the stage's format (``$context.*`` variables) to the CloudWatch Logs
  group the template names, and the ``AWS/ApiGateway`` metrics (Count, 4XXError,
  5XXError, Latency, IntegrationLatency by ApiName and Stage), both batched by a
  background thread so requests never wait for them.

Known differences: no binary media types (a body that is not UTF-8 reaches the function
base64-encoded with ``isBase64Encoded``; AWS would need ``binaryMediaTypes`` for that),
no Lambda or Cognito authorizers (refused at deploy), resource policies, usage plans or
request validation, and ``domainName`` is the Host the
client used (so URLs a handler builds point back here).

The package follows the service's sections: :mod:`.routing`, :mod:`.throttling`,
:mod:`.server`, :mod:`.iam_auth`, :mod:`.restapi`, :mod:`.mock`, :mod:`.formatting`,
:mod:`.flushing`, :mod:`.watchdog`, :mod:`.service`, and :mod:`.responses` (errors and
outcomes they share).

The HTTP layer is a small HTTP/1.1 server (threaded, keep-alive, ``TCP_NODELAY``, each
response in one write, requests read by :mod:`localcloud.http11`): the front must add
little to the ingest path.
"""

from localcloud.apigw.responses import MAX_PAYLOAD_BYTES, ApiGatewayStats, GatewayError, Invoke
from localcloud.apigw.service import ApiGatewayService

__all__ = ["MAX_PAYLOAD_BYTES", "ApiGatewayService", "ApiGatewayStats", "GatewayError", "Invoke"]
