"""X-Ray for the local Lambda service: trace headers, sampling, and the daemon.

On AWS, a function with active tracing runs next to an X-Ray daemon: the X-Ray SDK in the
function sends each finished (sub)segment as a UDP datagram to ``AWS_XRAY_DAEMON_ADDRESS``
(a header line ``{"format": "json", "version": 1}``, a newline, the segment document), and
the daemon uploads them with ``PutTraceSegments``, signed with the function's execution
role. A role without ``xray:PutTraceSegments`` loses its traces and nothing else: the
daemon's upload is refused and the segments are dropped; the function never knows.

:class:`XRayDaemon` does the same on 127.0.0.1: one UDP port per function (each sandbox has
its own daemon, with its function's role), one thread for all of them. Each segment is
checked against the role (:meth:`localcloud.identity.AccessLog.check`, action
``xray:PutTraceSegments`` on ``*``; a refusal is recorded like any other refused call) and
then stored in moto's X-Ray, where ``GetTraceSummaries`` and ``BatchGetTraces`` at the local
endpoint find it. A malformed datagram is logged and dropped. The Lambda service hands its
own segments over in process (:meth:`XRayDaemon.submit`, no datagram): the
``AWS::Lambda::Function`` segment with the function's role, as Lambda's runtime sends it
through the sandbox's daemon; the ``AWS::Lambda`` segment unchecked, as the Lambda service
records it with its own rights. They are uploaded at the daemon's next tick (0.2 s), in
batches, so the invocation pays a list append, not a wake-up of the daemon's thread.

Not emulated: the daemon's batching and its ``PutTelemetryRecords`` (the SDK never sends
telemetry; the daemon's own counters are not modelled), sampling rules other than X-Ray's
default one (:class:`Sampler`), and trace retention (moto keeps every segment until the
process ends).
"""

from __future__ import annotations

import json
import logging
import os
import random
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from localcloud.iam_policy import AccessDeniedError
from localcloud.identity import AccessLog, Principal

_LOG = logging.getLogger(__name__)

PUT_TRACE_SEGMENTS: Final = "xray:PutTraceSegments"
DATAGRAM_HEADER: Final = b'{"format": "json", "version": 1}'
_MAX_DATAGRAM: Final = 65_507  # the largest UDP payload over IPv4 (the SDK stays below)
_TICK_S: Final = 0.2  # how often the daemon uploads what the Lambda service submitted


# --- trace headers ---------------------------------------------------------------------


@dataclass(frozen=True)
class TraceHeader:
    """An ``X-Amzn-Trace-Id`` / ``_X_AMZN_TRACE_ID`` value: ``Root=...;Parent=...;Sampled=1``.

    ``sampled`` is None when the header carries no decision (the next service decides).
    """

    root: str
    parent: str | None = None
    sampled: bool | None = None

    @classmethod
    def parse(cls, value: str | None) -> TraceHeader | None:
        """The header's fields, or None when it has no usable ``Root``."""
        if not value:
            return None
        fields: dict[str, str] = {}
        for part in value.split(";"):
            key, _, field_value = part.strip().partition("=")
            fields[key.strip().lower()] = field_value.strip()
        root = fields.get("root", "")
        if not _valid_root(root):
            return None
        sampled = {"1": True, "0": False}.get(fields.get("sampled", ""))
        parent = fields.get("parent") or None
        return cls(root, parent, sampled)

    def __str__(self) -> str:
        text = f"Root={self.root}"
        if self.parent:
            text += f";Parent={self.parent}"
        if self.sampled is not None:
            text += f";Sampled={int(self.sampled)}"
        return text


def _valid_root(root: str) -> bool:
    version, _, rest = root.partition("-")
    epoch, _, unique = rest.partition("-")
    try:
        int(epoch, 16), int(unique, 16)
    except ValueError:
        return False
    return version == "1" and len(epoch) == 8 and len(unique) == 24


def new_root(epoch: float | None = None) -> str:
    """A new trace id: ``1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>``."""
    return f"1-{int(time.time() if epoch is None else epoch):08x}-{os.urandom(12).hex()}"


def new_segment_id() -> str:
    """A new segment id: 64 random bits, 16 hex digits."""
    return os.urandom(8).hex()


class Sampler:
    """X-Ray's default sampling rule: the first request each second (the reservoir), then
    5 % of the others (the fixed rate). Thread-safe.

    On AWS the reservoir is the rule's, shared by every service in the account and region;
    locally each sampler has its own (one per function).
    """

    def __init__(
        self,
        *,
        reservoir_per_second: int = 1,
        fixed_rate: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._reservoir = reservoir_per_second
        self._rate = fixed_rate
        self._clock = clock
        self._rand = rand
        self._lock = threading.Lock()
        self._second = -1
        self._taken = 0

    def sample(self) -> bool:
        """Whether to trace this request."""
        second = int(self._clock())
        with self._lock:
            if second != self._second:
                self._second, self._taken = second, 0
            if self._taken < self._reservoir:
                self._taken += 1
                return True
        return self._rand() < self._rate


# --- the daemon ------------------------------------------------------------------------

SegmentSink = Callable[[str], None]
"""Stores one segment document (JSON text) in X-Ray; raises ``ValueError`` if X-Ray
refuses it as malformed."""


def moto_segment_sink(region: str, account_id: str) -> SegmentSink:
    """Segments into moto's X-Ray of ``account_id``/``region`` in this process (what the
    local endpoint's ``GetTraceSummaries`` and ``BatchGetTraces`` read)."""
    from localcloud.moto_compat import xray_backends

    backend = xray_backends[account_id][region]

    def put(document: str) -> None:
        try:
            backend.process_segment(document)
        except Exception as error:  # moto's BadSegmentException: what X-Ray answers in
            # PutTraceSegments' UnprocessedTraceSegments
            raise ValueError(str(error) or type(error).__name__) from error

    return put


@dataclass
class DaemonStats:
    """What the daemon did with the datagrams it received."""

    received: int = 0  # datagrams (the functions' SDK)
    submitted: int = 0  # segments of the Lambda service (submit)
    stored: int = 0
    refused: int = 0  # the role may not PutTraceSegments: dropped, as on AWS
    malformed: int = 0  # not a header line and a JSON object, or X-Ray refused it


class XRayDaemon:
    """A local X-Ray daemon: one UDP port on 127.0.0.1 per function, uploading with its role.

    ``access`` enforces and records each role's use (None: everything is stored,
    unchecked). Use as a context manager or call :meth:`close`; the thread stops with it.
    """

    def __init__(self, sink: SegmentSink, *, access: AccessLog | None = None) -> None:
        self._sink = sink
        self._access = access
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._ports: dict[Principal, int] = {}
        self._sockets: list[socket.socket] = []
        self._refusals_logged: set[Principal] = set()
        self._closed = False
        self.stats = DaemonStats()
        # Segments the Lambda service submitted: (role or None, segment), uploaded per tick.
        self._submitted: deque[tuple[Principal | None, Mapping[str, Any]]] = deque()
        self._thread = threading.Thread(target=self._serve, name="xray-daemon", daemon=True)
        self._thread.start()

    def _bind(self, principal: Principal | None) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        self._sockets.append(sock)
        self._selector.register(sock, selectors.EVENT_READ, principal)
        return int(sock.getsockname()[1])

    def address_for(self, principal: Principal) -> str:
        """``127.0.0.1:PORT``, the daemon address of ``principal``'s function (stable)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the X-Ray daemon is closed")
            port = self._ports.get(principal)
            if port is None:
                port = self._ports[principal] = self._bind(principal)
        return f"127.0.0.1:{port}"

    def submit(self, principal: Principal | None, segment: Mapping[str, Any]) -> None:
        """A segment of the Lambda service's, uploaded at the next tick with ``principal``'s
        role (None: the service's own rights, unchecked). Cheap: the caller's thread only
        appends it."""
        if not self._closed:
            self._submitted.append((principal, segment))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and release every port. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._thread.join(timeout)
        for sock in self._sockets:
            sock.close()
        self._selector.close()

    def __enter__(self) -> XRayDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the daemon's thread -----------------------------------------------------------

    def _serve(self) -> None:
        while not self._closed:
            self._upload_submitted()
            for key, _events in self._selector.select(timeout=_TICK_S):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                while True:
                    try:
                        datagram = sock.recv(_MAX_DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    try:
                        self.handle(datagram, key.data)
                    except Exception:  # a bug here must not stop the daemon
                        _LOG.exception("X-Ray daemon: a datagram could not be handled")
        self._upload_submitted()

    def _upload_submitted(self) -> None:
        while self._submitted:
            principal, segment = self._submitted.popleft()
            self.stats.submitted += 1
            try:
                self.upload(json.dumps(segment), principal)
            except Exception:  # a bug here must not stop the daemon
                _LOG.exception("X-Ray daemon: a segment of the Lambda service was not uploaded")

    def handle(self, datagram: bytes, principal: Principal | None) -> bool:
        """Upload one datagram's segment with ``principal``'s role (None: the Lambda
        service's own segment, unchecked). True when X-Ray stored it."""
        self.stats.received += 1
        header, newline, body = datagram.partition(b"\n")
        document = _segment_document(header, body) if newline else None
        if document is None:
            self.stats.malformed += 1
            _LOG.warning(
                "X-Ray daemon: dropped a malformed datagram (%d bytes): %r",
                len(datagram),
                datagram[:80],
            )
            return False
        return self.upload(document, principal)

    def upload(self, document: str, principal: Principal | None) -> bool:
        """``PutTraceSegments`` of one segment document with ``principal``'s role (None:
        unchecked): True when X-Ray stored it; refused or rejected, it is dropped."""
        if principal is not None and self._access is not None:
            try:
                self._access.check(principal, PUT_TRACE_SEGMENTS, "*")
            except AccessDeniedError as error:
                self.stats.refused += 1
                if principal not in self._refusals_logged:  # once per role, not per segment
                    self._refusals_logged.add(principal)
                    _LOG.warning("X-Ray: traces of %s dropped: %s", principal.function_name, error)
                return False
        try:
            self._sink(document)
        except ValueError as error:
            self.stats.malformed += 1
            _LOG.warning("X-Ray daemon: X-Ray refused a segment: %s", error)
            return False
        self.stats.stored += 1
        return True


def _segment_document(header: bytes, body: bytes) -> str | None:
    """The segment JSON text, or None when the datagram is not the SDK's format."""
    try:
        parsed_header = json.loads(header)
        text = body.decode("utf-8")
        segment = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed_header, dict) or parsed_header.get("format") != "json":
        return None
    if not isinstance(segment, dict):
        return None
    return text
