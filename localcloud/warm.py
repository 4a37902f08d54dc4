"""One-time work of a local stack's first start, done ahead while something else takes time.

``harness local up`` synthesizes in a subprocess (Node, seconds) before it can start the
local cloud; :func:`warm_up` runs meanwhile in a thread, so the start is left with the
template's own work. Everything here is what a first start in a process pays anyway, on
the first request to each moto service or the first client of each service: imports
(moto and its web stack are most of it), backend instances, botocore service models.
It creates no AWS resource, binds no port and starts no process: it changes when the cost
is paid, not what the stack does. It runs once per process and region.
"""

from __future__ import annotations

import importlib
import threading

MOTO_SERVICES = ("dynamodb", "iam", "logs", "cloudwatch", "xray")
"""The moto services the deployment and the running stack call (SQS is our own engine;
X-Ray stores the traced functions' segments)."""

MOTO_INTERNAL_BACKENDS = ("kms",)
"""Backends moto calls itself: DynamoDB creates the default table encryption key in KMS."""

MOTO_EXPECTED_ERRORS = ("iam",)
"""Services a deployment expects error responses from: IAM, for the AWS managed policies
moto does not know (``AWSLambdaBasicExecutionRole`` on every CDK function role)."""

LOCAL_CLOUD_MODULES = (
    "localcloud.endpoint",
    "localcloud.lambda_service",
    "localcloud.lambda_service.esm",
    "localcloud.apigw",
    "localcloud.alarms",
    "localcloud.metrics",
    "localcloud.lambda_service.control_plane",
    "localcloud.inprocess",
    "localcloud.cfn",
    "localcloud.xray",
)
"""The local cloud's services and the CloudFormation engine, imported by the start."""

LOCAL_CLIENT_SERVICES = ("cloudwatch",)
"""What the start creates ``local_client``\\ s for (the alarm evaluator, the queue metrics)."""

_UNREACHABLE = "http://127.0.0.1:9"  # a client is made for it, never used
_lock = threading.Lock()
_warmed: set[str] = set()


def preload_moto(region: str) -> None:
    """Import moto's WSGI app and the stack's services, instantiate their backends.

    A first request to a moto service otherwise pays all of this while the deployment
    waits (about 1.5 s for the stack's services on a 2-core machine, mostly imports).
    """
    from localcloud.moto_compat import (
        DEFAULT_ACCOUNT_ID,
        create_backend_app,
        get_backend,
        get_partition,
        get_service_model,
        service_name_from_moto_package_name,
    )

    def instantiate(service: str) -> None:
        account = get_backend(service)[DEFAULT_ACCOUNT_ID]  # type: ignore[call-overload]
        # Regional services are keyed by region, global ones (IAM) by partition.
        account[region if region in account.regions else get_partition(region)]

    for service in MOTO_SERVICES:
        # The Flask app is thrown away (the endpoint's dispatcher makes its own); making
        # it imports the service's models, responses and URL rules.
        create_backend_app(service)  # type: ignore[arg-type]
        instantiate(service)
        # The botocore model moto parses requests and serializes responses with (cached;
        # these services' boto3 names are their moto names).
        get_service_model(service)
    for service in MOTO_INTERNAL_BACKENDS:
        instantiate(service)
    for service in MOTO_EXPECTED_ERRORS:
        # Looked up on a service's first error response: a botocore session listing
        # every service (cached per service).
        service_name_from_moto_package_name(service)


def warm_up(region: str) -> None:
    """Load everything a first local-stack start in ``region`` would load; once per process."""
    with _lock:
        if region in _warmed:
            return
        from localcloud.cfn.providers.base import preload_clients
        from localcloud.clients import local_client

        for module in LOCAL_CLOUD_MODULES:
            importlib.import_module(module)
        preload_clients(region)
        preload_moto(region)
        # After moto's import, as without the warm-up: this creates boto3's default
        # session, and moto hooks (inactive unless mocking) into sessions made after it.
        for service in LOCAL_CLIENT_SERVICES:
            local_client(service, _UNREACHABLE, region)
        _warmed.add(region)
