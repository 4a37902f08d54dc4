"""Routing a request over a REST API's resources (literal, ``{param}``, ``{proxy+}``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from localcloud.specs import ApiMethod


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, _Node] | None = None
    resource_path: str | None = None  # set when a resource with methods ends here


class _Router:
    """Resource tree of one REST API; match the most specific resource with methods."""

    def __init__(self, methods: Iterable[ApiMethod]) -> None:
        self.root = _Node()
        self.methods: dict[str, dict[str, ApiMethod]] = {}
        for method in methods:
            path = _normalise_resource(method.resource_path)
            self.methods.setdefault(path, {})[method.http_method.upper()] = method
            self._insert(path)

    def _insert(self, path: str) -> None:
        node = self.root
        segments = [s for s in path.split("/") if s]
        for index, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index != len(segments) - 1:
                    raise ValueError(f"greedy path variable must be last: {path!r}")
                if node.greedy is None:
                    node.greedy = (segment[1:-2], _Node())
                node = node.greedy[1]
            elif segment.startswith("{") and segment.endswith("}"):
                if node.param is None:
                    node.param = (segment[1:-1], _Node())
                elif node.param[0] != segment[1:-1]:
                    raise ValueError(f"two path variables at one level: {path!r}")
                node = node.param[1]
            else:
                node = node.literal.setdefault(segment, _Node())
        node.resource_path = path

    def match(self, segments: list[str]) -> tuple[str, dict[str, str]] | None:
        """``(resource_path, path_parameters)`` for decoded path segments, or None."""
        return self._match(self.root, segments, 0, {})

    def _match(
        self, node: _Node, segments: list[str], index: int, params: dict[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        if index == len(segments):
            return (node.resource_path, params) if node.resource_path else None
        segment = segments[index]
        child = node.literal.get(segment)
        if child is not None:
            found = self._match(child, segments, index + 1, params)
            if found:
                return found
        if node.param is not None:
            name, child = node.param
            found = self._match(child, segments, index + 1, {**params, name: segment})
            if found:
                return found
        if node.greedy is not None:
            name, child = node.greedy
            if child.resource_path:
                return child.resource_path, {**params, name: "/".join(segments[index:])}
        return None


def _normalise_resource(path: str) -> str:
    return "/" + "/".join(s for s in path.split("/") if s)


def _resource_id(api_id: str, resource_path: str) -> str:
    # Stable per resource, shaped like API Gateway's 6-character resource ids.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{api_id}{resource_path}").hex[:6]
