"""The deliberate differences between our local cloud and AWS's recorded answers.

Each is named by a test's ``@pytest.mark.deviation(name)`` (its engine run is a strict
xfail) and listed, with the same reason, in ``docs/local-cloud/parity.md``.
"""

from __future__ import annotations

DEVIATIONS: dict[str, str] = {
    "query-json-responses": (
        "a query-protocol request with 'Accept: application/json' is answered in XML; AWS "
        "answers a JSON rendering of the query response, which no AWS SDK asks for (they "
        "speak the JSON protocol, or the query protocol with XML)"
    ),
    "regional-endpoints-only": (
        "the local API Gateway serves every REST API as a REGIONAL endpoint (what the "
        "product's API is); an EDGE-optimized API on AWS goes through CloudFront, which adds "
        "CloudFront-*, Via and X-Amz-Cf-Id headers to the proxy event"
    ),
    "local-domain-name": (
        "requestContext.domainName is the Host the client used (127.0.0.1:PORT), so URLs a "
        "handler builds point back to the local API, and domainPrefix is its first label; "
        "on AWS the domain is <api-id>.execute-api.<region>.amazonaws.com and its prefix the "
        "API id"
    ),
}
