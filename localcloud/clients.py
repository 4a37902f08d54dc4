"""boto3 clients for the local endpoint: the one factory every part of the local cloud uses.

The endpoint accepts any credentials, so every client gets the same dummy keys and
botocore never walks the credential chain (environment, files, instance metadata).
Callers choose only the retry and timeout ``config`` (fail fast for background threads,
none for tests that must see every throttle) and whether to share a session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config

DUMMY_KEY = "testing"
"""Access key and secret of every local client (moto's default account)."""

FAIL_FAST = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=2,
    read_timeout=10,
)
"""Local endpoints answer at once or not at all: fail fast instead of botocore's default
minute of retries and backoff, so a stopped endpoint never stalls a background thread."""

ClientFactory = Callable[[str], Any]
"""``make(service)``: a client of one endpoint and region."""


def local_client(
    service: str,
    endpoint_url: str,
    region: str,
    *,
    config: Config | None = FAIL_FAST,
    session: boto3.session.Session | None = None,
    credentials: Mapping[str, str] | None = None,
) -> Any:
    """A boto3 client for ``service`` at a local endpoint.

    ``credentials`` (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``
    variables, as a function's workers get them) sign as that identity; by default the
    dummy keys, which IAM does not check. ``config`` None means botocore's defaults.
    ``session`` None means boto3's default session; a session is not thread-safe, so a
    caller sharing one across threads holds a lock while creating clients (as
    :func:`client_factory` does).
    """
    maker: Any = session if session is not None else boto3
    return maker.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"] if credentials else DUMMY_KEY,
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"] if credentials else DUMMY_KEY,
        aws_session_token=credentials.get("AWS_SESSION_TOKEN") if credentials else None,
        config=config,
    )


def client_factory(
    endpoint_url: str, region: str, *, max_pool_connections: int = 10
) -> ClientFactory:
    """Clients of one endpoint and region from one session of their own, for services
    that keep them (botocore's standard retries, ``max_pool_connections`` per client).

    The first client of a service loads its model; later ones reuse it (~20 ms instead of
    ~300 ms each). Creation holds a lock: sessions are not thread-safe.
    """
    session = boto3.session.Session()
    lock = threading.Lock()
    config = Config(max_pool_connections=max_pool_connections, retries={"mode": "standard"})

    def make(service: str) -> Any:
        with lock:
            return local_client(service, endpoint_url, region, config=config, session=session)

    return make


__all__ = ["DUMMY_KEY", "FAIL_FAST", "ClientFactory", "client_factory", "local_client"]
