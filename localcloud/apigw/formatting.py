"""Access-log formatting and the ``$context`` values API Gateway derives."""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from localcloud.xray import TraceHeader, new_root

_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]*[A-Za-z0-9_])")


def _format_access_log(template: str, context: Mapping[str, Any]) -> str:
    """Resolve ``$context.*`` variables; unknown or empty ones log as ``-`` (as AWS does)."""

    def replace(match: re.Match[str]) -> str:
        value = context.get(match.group(1))
        return "-" if value is None or value == "" else str(value)

    return _CONTEXT_VARIABLE.sub(replace, template)


# Request headers API Gateway does not pass to a proxy integration (absent from every
# AWS-recorded event): hop-by-hop headers and the body's framing.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def _path_parameters(resource_path: str, path: str) -> dict[str, str]:
    """The path parameters of ``path`` (as sent, percent-encoding kept) for the resource
    that matched: ``{name}`` takes one segment, ``{name+}`` the rest of the path without
    its trailing slash (inner ``//`` kept), as AWS's recorded events show."""
    params: dict[str, str] = {}
    remaining = path.lstrip("/")
    for segment in (s for s in resource_path.split("/") if s):
        if segment.endswith("+}"):
            params[segment[1:-2]] = remaining.rstrip("/")
            break
        value, _, remaining = remaining.partition("/")
        if segment.startswith("{"):
            params[segment[1:-1]] = value
    return params


def _request_time(epoch: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


def _trace_header(incoming: str | None, epoch: float) -> str:
    """The ``X-Amzn-Trace-Id`` API Gateway passes to the integration: the caller's trace
    continued with its sampling decision, or a new root with no decision (the function's
    tracing decides). The stage's own segment is not emulated, so the caller's ``Parent``
    stays the parent."""
    parsed = TraceHeader.parse(incoming)
    if parsed is None:
        return f"Root={new_root(epoch)}"
    return str(parsed)


def _api_key_id(api_key: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_OID, api_key).hex[:10]


def _log_group_name(arn: str | None) -> str | None:
    """``arn:aws:logs:r:a:log-group:NAME[:*]`` -> ``NAME``; a bare name passes through."""
    if not arn:
        return None
    if ":log-group:" not in arn:
        return arn
    name = arn.split(":log-group:", 1)[1]
    return name[:-2] if name.endswith(":*") else name


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
