"""``MOCK`` integrations (the CORS preflight CDK generates)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from localcloud.apigw.responses import CONFIGURATION_ERROR, _gateway_error, _Outcome
from localcloud.http11 import Request
from localcloud.specs import ApiMethod, IntegrationResponse

_STATUS_IN_TEMPLATE = re.compile(r"""["']?statusCode["']?\s*:\s*["']?(\d{3})""")
_ORIGIN_TEST = re.compile(r'\$origin\s*==\s*"([^"]*)"')
_ORIGIN_OVERRIDE = re.compile(
    r"#set\(\s*\$context\.responseOverride\.header\.([A-Za-z0-9-]+)\s*=\s*\$origin\s*\)"
)


def _mock_response(
    method: ApiMethod, request: Request, path_params: Mapping[str, str], query: str
) -> _Outcome:
    """Answer a MOCK integration from its templates and integration responses."""
    templates = method.request_templates
    content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip()
    template = templates.get(content_type) or templates.get("application/json")
    if template is None and templates:
        template = next(iter(templates.values()))
    if template is None:
        status_code = "200"
    else:
        match = _STATUS_IN_TEMPLATE.search(template)
        if match is None:
            return _gateway_error(CONFIGURATION_ERROR)
        status_code = match.group(1)
    chosen = _select_integration_response(method.integration_responses, status_code)
    if chosen is None:
        return _gateway_error(CONFIGURATION_ERROR)
    query_params = dict(parse_qsl(query, keep_blank_values=True))
    headers: dict[str, str] = {}
    for target, source in chosen.response_parameters.items():
        prefix = "method.response.header."
        if not target.startswith(prefix):
            continue
        value = _parameter_value(source, request, path_params, query_params)
        if value is not None:
            headers[target[len(prefix) :]] = value
    body_template = chosen.response_templates.get("application/json")
    if body_template is None and chosen.response_templates:
        body_template = next(iter(chosen.response_templates.values()))
    body = b""
    if body_template:
        _apply_origin_template(body_template, request, headers)
        # Only plain-text templates become a body; VTL beyond CDK's CORS idiom is not run.
        if "$" not in body_template and "#" not in body_template:
            body = body_template.encode("utf-8")
    out_headers = list(headers.items())
    if not any(name.lower() == "content-type" for name in headers):
        out_headers.append(("Content-Type", "application/json"))
    return _Outcome(int(chosen.status_code), out_headers, body)


def _select_integration_response(
    responses: Iterable[IntegrationResponse], status_code: str
) -> IntegrationResponse | None:
    default = None
    for response in responses:
        if not response.selection_pattern:
            default = default or response
        elif re.fullmatch(response.selection_pattern, status_code):
            return response
    return default


def _parameter_value(
    source: str,
    request: Request,
    path_params: Mapping[str, str],
    query_params: Mapping[str, str],
) -> str | None:
    if len(source) >= 2 and source.startswith("'") and source.endswith("'"):
        return source[1:-1]  # a static value is quoted: "'*'"
    if source.startswith("method.request.header."):
        return request.header(source[len("method.request.header.") :])
    if source.startswith("method.request.querystring."):
        return query_params.get(source[len("method.request.querystring.") :])
    if source.startswith("method.request.path."):
        return path_params.get(source[len("method.request.path.") :])
    return None  # integration.response.* has nothing to offer for MOCK


def _apply_origin_template(template: str, request: Request, headers: dict[str, str]) -> None:
    """CDK's multi-origin CORS template: echo the Origin when it is one of the allowed."""
    override = _ORIGIN_OVERRIDE.search(template)
    if override is None:
        return
    origin = request.header("Origin")
    allowed = set(_ORIGIN_TEST.findall(template)) - {""}
    if origin and origin in allowed:
        headers[override.group(1)] = origin
