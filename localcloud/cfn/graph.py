"""Dependency ordering: a stable topological sort that names a cycle when there is one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class CycleError(ValueError):
    """The dependencies form a cycle; ``cycle`` lists it, first node repeated at the end."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("circular dependency: " + " -> ".join(self.cycle))


def topological_order(nodes: Sequence[str], depends_on: Mapping[str, set[str]]) -> list[str]:
    """``nodes`` ordered so each comes after everything it depends on.

    Ties keep the order of ``nodes`` (template order), so a deployment is reproducible.
    Dependencies on names outside ``nodes`` are ignored. Raises ``CycleError``.
    """
    known = set(nodes)
    position = {node: index for index, node in enumerate(nodes)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    order: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        # Iterative enough for templates (hundreds of resources): recursion depth is the
        # longest dependency chain, not the number of resources.
        mark = state.get(node)
        if mark == 2:
            return
        if mark == 1:
            raise CycleError([*path[path.index(node) :], node])
        state[node] = 1
        path.append(node)
        for dependency in sorted(depends_on.get(node, set()) & known, key=position.__getitem__):
            visit(dependency, path)
        path.pop()
        state[node] = 2
        order.append(node)

    for node in nodes:
        visit(node, [])
    return order
