"""The service: every REST API of a template served, and what they share."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from localcloud.apigw.flushing import _Flusher
from localcloud.apigw.formatting import _is_loopback
from localcloud.apigw.iam_auth import CredentialStore, MotoCredentials
from localcloud.apigw.responses import (
    ACCOUNT_ID,
    INTEGRATION_TIMEOUT,
    THROTTLED,
    ApiGatewayStats,
    Invoke,
    _Outcome,
)
from localcloud.apigw.restapi import _RestApi
from localcloud.apigw.server import serve
from localcloud.apigw.watchdog import _Watchdog
from localcloud.clients import local_client
from localcloud.closing import ClosesOnExit
from localcloud.specs import RestApiSpec


class ApiGatewayService(ClosesOnExit):
    """Serve REST APIs from their specs on loopback, each on its own port.

    ``invoke(function_name, payload, trace_header=...) -> InvokeResult`` is the Lambda
    service's Invoke; it gets each request's ``X-Amzn-Trace-Id`` (the request's own trace,
    continued).
    ``credentials`` resolves the access keys of requests to ``AWS_IAM`` methods (by default
    the IAM users and assumed roles of moto in this process).
    Access logs and ``AWS/ApiGateway`` metrics go to ``endpoint_url`` (or the clients the
    factories return); with neither, they are off. ``port`` is used by the first API;
    later ones take a free port each (their URLs say which).
    """

    def __init__(
        self,
        invoke: Invoke,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        logs_client_factory: Callable[[], Any] | None = None,
        cloudwatch_client_factory: Callable[[], Any] | None = None,
        publish_metrics: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        flush_interval_s: float = 0.5,
        credentials: CredentialStore | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the local API Gateway binds loopback only, not {host!r}")
        self.invoke = invoke
        self._host = host
        self._port = port
        self._region = region
        # Who may sign requests to AWS_IAM methods: the local cloud's IAM users and roles.
        self.credentials = credentials or MotoCredentials(ACCOUNT_ID, region)
        if logs_client_factory is None and endpoint_url is not None:
            logs_client_factory = lambda: local_client("logs", endpoint_url, region)  # noqa: E731
        if cloudwatch_client_factory is None and endpoint_url is not None:
            cloudwatch_client_factory = lambda: local_client(  # noqa: E731
                "cloudwatch", endpoint_url, region
            )
        self._flusher = _Flusher(
            logs_client_factory,
            cloudwatch_client_factory if publish_metrics else None,
            flush_interval_s,
        )
        self.watchdog = _Watchdog()
        self._apis: dict[str, _RestApi] = {}
        self._stats = ApiGatewayStats()
        self._stats_lock = threading.Lock()
        self._closed = False

    @property
    def region(self) -> str:
        """The region the APIs are served in (their ``execute-api`` ARNs name it)."""
        return self._region

    def add_rest_api(self, spec: RestApiSpec) -> str:
        """Serve ``spec``; return its invoke URL ``http://127.0.0.1:PORT/<stage>/``."""
        if self._closed:
            raise RuntimeError("the API Gateway service is closed")
        if spec.api_id in self._apis:
            raise ValueError(f"REST API {spec.api_id!r} is already served")
        api = _RestApi(spec, self)
        port = self._port if not self._apis else 0
        api.server = serve(api, self._host, port)
        self._apis[spec.api_id] = api
        return self.url(spec.api_id)

    def url(self, api_id: str) -> str:
        """The invoke URL of a served API."""
        api = self._apis[api_id]
        assert api.server is not None
        port = api.server.server_address[1]
        return f"http://{self._host}:{port}/{api.spec.stage_name}/"

    @property
    def ports(self) -> dict[str, int]:
        """``{api_id: port}`` of every served API."""
        return {
            api_id: api.server.server_address[1]
            for api_id, api in self._apis.items()
            if api.server is not None
        }

    def stats(self) -> ApiGatewayStats:
        """A snapshot of the request counters."""
        with self._stats_lock:
            return ApiGatewayStats(**self._stats.as_dict())

    def flush(self) -> None:
        """Ship pending access-log lines and metrics now (normally a background job)."""
        self._flusher.flush()

    def _record(self, api: _RestApi, outcome: _Outcome, latency_ms: int) -> None:
        status = outcome.status
        with self._stats_lock:
            stats = self._stats
            stats.requests += 1
            if 200 <= status < 300:
                stats.status_2xx += 1
            elif 400 <= status < 500:
                stats.status_4xx += 1
            elif status >= 500:
                stats.status_5xx += 1
            if outcome.error is THROTTLED:
                stats.throttled += 1
            if outcome.integration_error is not None:
                stats.integration_errors += 1
            if outcome.error is INTEGRATION_TIMEOUT:
                stats.integration_timeouts += 1
            if outcome.integration_status == 429:
                stats.lambda_throttles += 1
        self._flusher.metric(api.spec.name, api.spec.stage_name, outcome, latency_ms)

    def _access_log(self, api: _RestApi, started: float, line: str) -> None:
        if api.log_group is not None:
            self._flusher.log(api.log_group, api.log_stream, int(started * 1000), line)

    def close(self) -> None:
        """Stop every server, drop open connections, flush logs and metrics."""
        if self._closed:
            return
        self._closed = True
        for api in self._apis.values():
            if api.server is None:
                continue
            api.server.close(timeout=5)
        self.watchdog.close()
        self._flusher.close()
