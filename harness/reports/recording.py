"""What each scenario said to the stack: its HTTP requests and AWS calls, bounded and redacted.

Nothing in the drivers knows about this. The plugin installs two hooks for the length of
a pytest session:

- a wrapper around ``requests.Session.send``, the one method every ``requests`` call goes
  through (the API driver's session included);
- handlers on botocore's event system (``provide-client-params``, ``after-call``,
  ``after-call-error``), added to ``botocore.handlers.BUILTIN_HANDLERS`` so every botocore
  session created afterwards, boto3's default one included, gives them to its clients,
  and to the default session if it already exists.

Both record only while a :class:`CallLog` is active, and only calls made on the thread
that activated it: the local stack runs in the same process and its own threads (alarm
evaluation, event source mappings, metrics) talk to the same endpoint all the time.
Polls collapse: a call identical to one of the last three rows (same operation, same
request, same status) adds to that row's count instead of adding a row. A scenario keeps at most
:data:`MAX_CALLS` rows and every excerpt is cut at :data:`EXCERPT_CHARS`. Header values,
parameters and JSON fields whose names say they hold a secret are replaced, and so are
AWS access key ids anywhere in the text.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MAX_CALLS = 150
"""Rows kept per scenario; later calls are counted, not kept."""
EXCERPT_CHARS = 1500
"""Characters kept of each request or response body."""
REDACTED = "<redacted>"
_POLL_WINDOW = 3

_SECRET_NAME = re.compile(
    r"authorization|cookie|password|passwd|secret|token|credential|signature|api[-_]?key"
    r"|private[-_]?key|session[-_]?key",
    re.IGNORECASE,
)
# "name": "value" pairs in JSON text whose name says secret.
_SECRET_JSON_FIELD = re.compile(
    r'("(?:[^"\\]*(?:' + _SECRET_NAME.pattern + r')[^"\\]*)"\s*:\s*)"(?:[^"\\]|\\.)*"',
    re.IGNORECASE,
)
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{12,}\b")


@dataclass
class Call:
    """One request to the stack (or a run of identical ones), as the report shows it."""

    kind: str  # "http" | "aws"
    method: str  # HTTP method, or the AWS service
    target: str  # path (with query), or the AWS operation
    status: str  # "200", "400 ValidationError", "no answer: ConnectionError"
    at_s: float  # seconds from the scenario's start to the first of these calls
    duration_s: float  # summed over ``count``
    request: str
    response: str
    count: int = 1

    @property
    def ok(self) -> bool:
        """A 2xx or 3xx answer."""
        return self.status[:1] in {"2", "3"}


class CallLog:
    """The calls of one scenario, recorded while active on the thread that activated it."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.omitted = 0
        self.paused = False
        self._started = time.monotonic()
        self._thread = threading.get_ident()

    def records_here(self) -> bool:
        """Whether a call made now, on this thread, belongs to this log."""
        return not self.paused and threading.get_ident() == self._thread

    def add(
        self,
        *,
        kind: str,
        method: str,
        target: str,
        status: str,
        started: float,
        request: str,
        response: str,
    ) -> None:
        """Record one call (``started`` from ``time.monotonic()``); polls collapse."""
        now = time.monotonic()
        request = excerpt(request)
        key = (kind, method, target, status, request)
        # A poll loop alternates a few calls (queue depth, then the task): any of the last
        # rows that is the same call counts it again.
        for row in self.calls[-_POLL_WINDOW:]:
            if (row.kind, row.method, row.target, row.status, row.request) == key:
                row.count += 1
                row.duration_s += now - started
                row.response = excerpt(response)
                return
        if len(self.calls) >= MAX_CALLS:
            self.omitted += 1
            return
        self.calls.append(
            Call(
                kind=kind,
                method=method,
                target=target,
                status=status,
                at_s=started - self._started,
                duration_s=now - started,
                request=request,
                response=excerpt(response),
            )
        )


_active: CallLog | None = None


@contextmanager
def recording() -> Iterator[CallLog]:
    """Record the calls made on this thread until the block ends."""
    global _active
    log = CallLog()
    previous, _active = _active, log
    try:
        yield log
    finally:
        _active = previous


@contextmanager
def paused() -> Iterator[None]:
    """Calls made in this block are nobody's (the report's own reads of the stack)."""
    log = _active
    if log is None:
        yield
        return
    was, log.paused = log.paused, True
    try:
        yield
    finally:
        log.paused = was


def _current() -> CallLog | None:
    log = _active
    return log if log is not None and log.records_here() else None


# --- redaction and excerpts --------------------------------------------------------------


def redact_text(text: str) -> str:
    """``text`` with secret-named JSON fields and AWS access key ids replaced."""
    text = _SECRET_JSON_FIELD.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    return _ACCESS_KEY_ID.sub(REDACTED, text)


def redact_value(value: Any) -> Any:
    """A copy of ``value`` whose secret-named mapping keys hold :data:`REDACTED`."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if _SECRET_NAME.search(str(key)) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` redacted and cut to ``limit`` characters, saying how much was left out."""
    text = redact_text(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _json(value: Any) -> str:
    return json.dumps(redact_value(value), default=str, ensure_ascii=False, sort_keys=True)


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return f"({len(body)} bytes, not UTF-8)"
    if isinstance(body, str):
        return body
    return f"({type(body).__name__} body)"


# --- HTTP: requests.Session.send ---------------------------------------------------------


def _headers_line(headers: Mapping[str, str]) -> str:
    shown = {
        name: REDACTED if _SECRET_NAME.search(name) else value
        for name, value in headers.items()
        if name.lower() not in {"accept", "accept-encoding", "connection", "user-agent"}
    }
    return "\n".join(f"{name}: {value}" for name, value in shown.items())


def _path_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


def _record_http(
    request: Any, response: Any, error: BaseException | None, started: float, streamed: bool
) -> None:
    log = _current()
    if log is None:
        return
    head = _headers_line(dict(request.headers or {}))
    body = _body_text(request.body)
    sent = f"{head}\n\n{body}" if head and body else head or body
    if error is not None:
        status, answer = f"no answer: {type(error).__name__}", str(error)
    else:
        status = str(response.status_code)
        answer = "(streamed: not read)" if streamed else _body_text(response.content)
    log.add(
        kind="http",
        method=str(request.method),
        target=_path_of(str(request.url)),
        status=status,
        started=started,
        request=sent,
        response=answer,
    )


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        if _current() is None:
            return original(self, request, **kwargs)
        started = time.monotonic()
        try:
            response = original(self, request, **kwargs)
        except Exception as exc:
            _record_http(request, None, exc, started, False)
            raise
        _record_http(request, response, None, started, bool(kwargs.get("stream")))
        return response

    send.__wrapped__ = original  # type: ignore[attr-defined]
    return send


# --- AWS: botocore events ----------------------------------------------------------------

_CONTEXT_KEY = "task_api_report"


def _on_params(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if _current() is not None:
        service = model.service_model.service_name
        context[_CONTEXT_KEY] = (time.monotonic(), _json(params), service, model.name)


def _on_response(
    http_response: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any
) -> None:
    log, stash = _current(), context.pop(_CONTEXT_KEY, None)
    if log is None or stash is None:
        return
    started, request, service, operation = stash
    status = str(getattr(http_response, "status_code", "") or "")
    error = parsed.get("Error") if isinstance(parsed, Mapping) else None
    if isinstance(error, Mapping) and error.get("Code"):
        status = f"{status} {error['Code']}".strip()
    answer = {key: value for key, value in parsed.items() if key != "ResponseMetadata"}
    log.add(
        kind="aws",
        method=service,
        target=operation,
        status=status,
        started=started,
        request=request,
        response=_json(answer),
    )


def _on_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    log, stash = _current(), context.pop(_CONTEXT_KEY, None)
    if log is None or stash is None:
        return
    started, request, service, operation = stash
    log.add(
        kind="aws",
        method=service,
        target=operation,
        status=f"no answer: {type(exception).__name__}",
        started=started,
        request=request,
        response=str(exception),
    )


_BOTOCORE_HANDLERS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("provide-client-params", _on_params),
    ("after-call", _on_response),
    ("after-call-error", _on_error),
)


@contextmanager
def hooks_installed() -> Iterator[None]:
    """Install the HTTP and AWS hooks; remove them when the block ends."""
    import boto3
    import botocore.handlers
    import requests

    original_send = requests.Session.send
    requests.Session.send = _wrap_send(original_send)  # type: ignore[method-assign]
    botocore.handlers.BUILTIN_HANDLERS.extend(_BOTOCORE_HANDLERS)
    default = boto3.DEFAULT_SESSION
    if default is not None:
        for event, handler in _BOTOCORE_HANDLERS:
            default.events.register(event, handler)
    try:
        yield
    finally:
        requests.Session.send = original_send  # type: ignore[method-assign]
        for entry in _BOTOCORE_HANDLERS:
            while entry in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.remove(entry)
        if default is not None:
            for event, handler in _BOTOCORE_HANDLERS:
                default.events.unregister(event, handler)
