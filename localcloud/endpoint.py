"""One local AWS endpoint: SQS from our engine, every other service from moto, one URL.

``AwsEndpoint`` serves HTTP/1.1 with keep-alive on 127.0.0.1 from a thread-per-connection
server. A request is SQS when it carries ``X-Amz-Target: AmazonSQS.*`` (the JSON protocol
boto3 and the AWS CLI speak) or is an ``Action=`` query request signed for ``sqs`` (or,
unsigned, names an SQS action); it goes to :mod:`localcloud.sqs`. Everything else goes
to moto's in-process WSGI dispatcher (``DomainDispatcherApplication``), which picks the
service from the SigV4 credential scope as moto's own server does.

Two fronts are available (``front=``): ``"threading"`` (default: a thread-per-connection
HTTP/1.1 server reading requests with :mod:`localcloud.http11`, that calls the SQS wire
directly and moto through WSGI, each response written in one send with ``TCP_NODELAY``)
and ``"werkzeug"`` (werkzeug's threaded WSGI server, as moto's ``ThreadedMotoServer``
uses). ``benchmarks/sqs_bench.py`` measures both; the README records the figures.

moto's backends are process-global: two endpoints in one process share moto's state
(DynamoDB tables, log groups, ...) but each has its own SQS engine.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, unquote_to_bytes

from localcloud.dynamodb import TARGET_PREFIX, DynamoFastPath
from localcloud.http11 import (
    BadRequestError,
    ConnectionTracking,
    HttpServer,
    Request,
    response_bytes,
)
from localcloud.iam_policy import AccessDeniedError, denied_response
from localcloud.identity import AccessLog, Identities
from localcloud.sqs.clock import Clock
from localcloud.sqs.engine import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, SqsEngine
from localcloud.sqs.protocol import SqsWire

logger = logging.getLogger(__name__)

Front = Literal["threading", "werkzeug"]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Response = tuple[int, list[tuple[str, str]], bytes]
HeaderGetter = Callable[[str], str | None]

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_QUEUE_PATH = re.compile(r"^/\d{12}/[A-Za-z0-9_.-]{1,80}/?$")
_SQS_ACTIONS = frozenset(
    {
        "AddPermission",
        "CancelMessageMoveTask",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "CreateQueue",
        "DeleteMessage",
        "DeleteMessageBatch",
        "DeleteQueue",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "ListMessageMoveTasks",
        "ListQueueTags",
        "ListQueues",
        "PurgeQueue",
        "ReceiveMessage",
        "RemovePermission",
        "SendMessage",
        "SendMessageBatch",
        "SetQueueAttributes",
        "StartMessageMoveTask",
        "TagQueue",
        "UntagQueue",
    }
)


class _Serving(Protocol):
    server_address: Any

    def serve_forever(self, poll_interval: float = ...) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...

    def close_connections(self) -> None: ...


def _signing_service(authorization: str | None, query: str) -> str | None:
    match = _CREDENTIAL.search(authorization or "")
    if match is None and "X-Amz-Credential" in query:
        credential = dict(parse_qsl(query)).get("X-Amz-Credential", "")
        match = _CREDENTIAL.search(f"Credential={credential}")
    return match.group(2).lower() if match else None


class AwsEndpoint:
    """The local cloud's AWS endpoint (context manager, or :meth:`start`/:meth:`stop`).

    ``url`` is ``http://127.0.0.1:PORT``; ``sqs`` is the SQS engine for in-process
    inspection (queue depth, age of the oldest message, lookups by URL or ARN).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        throttling: bool = True,
        clock: Clock | None = None,
        front: Front = "threading",
        dynamodb_fast_path: bool = True,
        enforce_iam: bool = True,
    ) -> None:
        """``enforce_iam`` refuses a call made with a function's credentials that its role
        does not allow (:mod:`localcloud.identity`); calls with other credentials are
        never checked."""
        self.region = region
        self.front: Front = front
        self._requested_port = port
        self.sqs = SqsEngine(
            region=region, account_id=account_id, clock=clock, throttling=throttling
        )
        self._wire = SqsWire(self.sqs)
        # Item reads and writes served on moto's own tables (see localcloud.dynamodb);
        # disabled, every DynamoDB call goes through moto (the tests compare the two).
        self.dynamodb = DynamoFastPath(enabled=dynamodb_fast_path)
        self._moto_app: WsgiApp | None = None
        self._moto_lock = threading.Lock()
        self._server: _Serving | None = None
        self._thread: threading.Thread | None = None
        # Extra services of the local cloud (the Lambda control plane, its status page),
        # matched by request path before SQS and moto: see :meth:`mount`.
        self._mounts: list[tuple[Callable[[str], bool], WsgiApp]] = []
        self.port = 0
        # Who calls what (localcloud.identity): requests signed with a function's key
        # are recorded with its role and, enforcing, refused when the role does not allow them.
        self.identities = Identities()
        self.access = AccessLog(region, account_id, enforce=enforce_iam)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not running; call start() first")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AwsEndpoint:
        """Bind 127.0.0.1 and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        server: _Serving
        if self.front == "werkzeug":
            server = _WerkzeugServer("127.0.0.1", self._requested_port, self._wsgi)
        else:
            server = _front_server(("127.0.0.1", self._requested_port), self)
        self._server = server
        self.port = int(server.server_address[1])
        self.sqs.base_url = self.url
        self.sqs.reopen()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"aws-endpoint-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self.sqs.close()  # long polls return at once
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> AwsEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def mount(self, matches: Callable[[str], bool], app: WsgiApp) -> None:
        """Answer requests whose path ``matches`` with the WSGI ``app`` (before SQS and moto).

        The local cloud mounts its own APIs here (the Lambda control plane, a status page),
        so every AWS call still goes to one URL. Mounting while serving is allowed.
        """
        self._mounts = [*self._mounts, (matches, app)]

    def _mounted(self, path: str) -> WsgiApp | None:
        for matches, app in self._mounts:
            if matches(path):
                return app
        return None

    # -- routing ------------------------------------------------------------------------

    def _sqs_response(
        self, method: str, path: str, query: str, header: HeaderGetter, body: bytes
    ) -> Response | None:
        """The SQS answer to this request, or None when it belongs to another service."""
        target = header("X-Amz-Target")
        if target:
            if target.startswith("AmazonSQS."):
                return self._wire.handle_json(target, body, header("X-Amzn-Trace-Id"))
            return None
        content_type = header("Content-Type") or ""
        form: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        if method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
            form.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = form.get("Action")
        if not action:
            return None
        service = _signing_service(header("Authorization"), query)
        if service == "sqs" or (
            service is None
            and action in _SQS_ACTIONS
            and (path in ("", "/") or _QUEUE_PATH.match(path))
        ):
            return self._wire.handle_query(form, path, header("X-Amzn-Trace-Id"))
        return None

    def _check_caller(
        self, method: str, path: str, query: str, header: HeaderGetter, body: bytes
    ) -> Response | None:
        """Check the call if it is signed with a function's credentials: None when it may
        go on, else AWS's AccessDenied answer in the request's protocol."""
        authorization = header("Authorization") or ""
        match = _ACCESS_KEY.search(authorization)
        principal = self.identities.principal(match.group(1) if match else None)
        if principal is None:
            return None
        service = _signing_service(authorization, query)
        target = header("X-Amz-Target")

        def form() -> dict[str, str]:
            params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
            if method == "POST" and (header("Content-Type") or "").startswith(
                "application/x-www-form-urlencoded"
            ):
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            return params

        try:
            self.access.record_request(
                principal, target=target, service=service, form=form, body=body, path=path
            )
        except AccessDeniedError as error:
            if target:
                protocol = "sqs-json" if target.startswith("AmazonSQS.") else "json"
            elif "Action" in form():
                protocol = "sqs-query" if service == "sqs" else "query"
            else:
                protocol = "rest-json"
            return denied_response(error, protocol, str(uuid.uuid4()))
        return None

    def _moto(self) -> WsgiApp:
        if self._moto_app is None:
            with self._moto_lock:
                if self._moto_app is None:
                    self._moto_app = _moto_dispatcher()
        return self._moto_app

    def dispatch(
        self,
        method: str,
        raw_path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        client: tuple[str, int],
    ) -> Response:
        """Answer one request (threading front): SQS directly, anything else through moto."""
        path, _, query = raw_path.partition("?")
        mounted = self._mounted(unquote_to_bytes(path).decode("latin-1"))
        if mounted is not None:
            return _call_wsgi(
                mounted, _environ(method, path, query, headers, body, client, self.port)
            )
        lowered: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            lowered[key] = f"{lowered[key]},{value}" if key in lowered else value

        def header(name: str) -> str | None:
            return lowered.get(name.lower())

        denied = self._check_caller(method, path, query, header, body)
        if denied is not None:
            return denied
        response = self._sqs_response(method, path, query, header, body)
        if response is not None:
            return response
        target = header("X-Amz-Target") or ""
        if target.startswith(TARGET_PREFIX):
            with self.dynamodb.lock:
                fast = self.dynamodb.handle(target[len(TARGET_PREFIX) :], body, header)
                if fast is not None:
                    return fast
                environ = _environ(method, path, query, headers, body, client, self.port)
                return _call_wsgi(self._moto(), environ)
        environ = _environ(method, path, query, headers, body, client, self.port)
        return _call_wsgi(self._moto(), environ)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The WSGI app of the werkzeug front: the same routing as :meth:`dispatch`."""
        mounted = self._mounted(environ.get("PATH_INFO", ""))
        if mounted is not None:
            return mounted(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""

        def header(name: str) -> str | None:
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
            value = environ.get(key)
            return str(value) if value is not None else None

        request = (
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            header,
            body,
        )
        response = self._check_caller(*request) or self._sqs_response(*request)
        target = header("X-Amz-Target") or ""
        if response is None and target.startswith(TARGET_PREFIX):
            with self.dynamodb.lock:
                response = self.dynamodb.handle(target[len(TARGET_PREFIX) :], body, header)
                if response is None:
                    environ["wsgi.input"] = io.BytesIO(body)
                    return list(self._moto()(environ, start_response))
        if response is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self._moto()(environ, start_response)
        status, response_headers, payload = response
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [*response_headers, ("Content-Length", str(len(payload)))],
        )
        return [payload]


def _moto_dispatcher() -> WsgiApp:
    """moto's in-process WSGI dispatcher, with its host -> backend lookup memoized.

    moto resolves the backend for every request by listing its package directory and
    matching some 400 URL patterns (~5 ms, under a process-wide lock); the answer for a
    host never changes, so it is remembered (a put_log_events at the endpoint: 5.7 ms
    before, 4.3 ms after, measured from a separate process).
    """
    from localcloud.moto_compat import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    return Dispatcher()


# ----------------------------------------------------------------------------------------
# WSGI bridge to moto
# ----------------------------------------------------------------------------------------


def _environ(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    client: tuple[str, int],
    port: int,
) -> dict[str, Any]:
    from localcloud.moto_compat import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # PEP 3333: the undecoded path bytes as latin-1.
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": client[1],
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    preserved: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in ("content-length", "transfer-encoding"):
            continue
        if "_" in name:
            # As werkzeug does, never let an underscored header stand in for a dashed one;
            # moto keeps S3 metadata names with underscores (MotoRequestHandler's rule).
            if not should_preserve_original_header_name(name):
                continue
            preserved.setdefault(environ_key_for_header(name), name)
        key = environ_key_for_header(name)
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
    return environ


def _call_wsgi(app: WsgiApp, environ: dict[str, Any]) -> Response:
    started: dict[str, Any] = {}
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        started["status"] = status
        started["headers"] = headers
        return written.append

    result = app(environ, start_response)
    try:
        written.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status = int(str(started.get("status", "500")).split(" ", 1)[0])
    return status, list(started.get("headers", [])), b"".join(written)


# ----------------------------------------------------------------------------------------
# The threading front
# ----------------------------------------------------------------------------------------


# Every method a client of the AWS APIs sends; others answer 501 as before.
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"})
# The largest request body an AWS API takes in one request (S3 PutObject: 5 GiB) so that
# nothing a real client sends is refused; SQS (1 MiB messages, 10 per batch), DynamoDB
# (400 KB items, 16 MB batches) and CloudWatch Logs (1 MiB batches) are far below it.
MAX_BODY_BYTES = 5 * 1024 * 1024 * 1024
_PLAIN_TEXT = [("Content-Type", "text/plain")]


def _front_server(address: tuple[str, int], endpoint: AwsEndpoint) -> HttpServer:
    """The threading front: :class:`~localcloud.http11.HttpServer` answering with
    :meth:`AwsEndpoint.dispatch`, until the client or a 4xx closes the connection."""

    def respond(request: Request, sock: socket.socket, client: tuple[str, int]) -> bytes:
        if request.too_large:  # the body was not read: the connection is done
            return response_bytes(413, _PLAIN_TEXT, b"request body too large", close=True)
        head = request.method == "HEAD"
        close = not request.keep_alive
        # An HTTP/1.0 client keeps the connection only when the response says so.
        keep_alive_header = not close and request.version == "HTTP/1.0"
        if request.method not in _METHODS:
            status, headers, payload = 501, _PLAIN_TEXT, b"unsupported method"
        else:
            try:
                status, headers, payload = endpoint.dispatch(
                    request.method, request.target, request.headers, request.body, client
                )
            except Exception:
                logger.exception(
                    "local AWS endpoint failed on %s %s", request.method, request.target
                )
                status, headers, payload = 500, _PLAIN_TEXT, b"internal error"
        return response_bytes(
            status, headers, payload, head=head, close=close, keep_alive_header=keep_alive_header
        )

    def bad_request(error: BadRequestError) -> bytes:
        message = f"bad request: {error}".encode("latin-1", "replace")
        return response_bytes(error.status, _PLAIN_TEXT, message, close=True)

    return HttpServer(
        address, respond, bad_request=bad_request, max_body=MAX_BODY_BYTES, backlog=256
    )


# ----------------------------------------------------------------------------------------
# The werkzeug front (for comparison; moto's ThreadedMotoServer uses this server)
# ----------------------------------------------------------------------------------------


def _werkzeug_server_class() -> type[Any]:
    from werkzeug.serving import ThreadedWSGIServer

    from localcloud.moto_compat import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        disable_nagle_algorithm = True

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    class Server(ConnectionTracking, ThreadedWSGIServer):
        block_on_close = False

        def __init__(self, host: str, port: int, app: Any) -> None:
            self._init_tracking()
            super().__init__(host, port, app, handler=QuietHandler)

    return Server


def _WerkzeugServer(host: str, port: int, app: Any) -> Any:
    return _werkzeug_server_class()(host, port, app)
