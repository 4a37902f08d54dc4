"""CloudWatch metric math, the subset alarms need: arithmetic and ``FILL``.

An expression is evaluated over time series that share one period grid (the alarm's
evaluation periods): each series is a list with one value per period, ``None`` where the
period has no datapoint. As in CloudWatch:

- ``a + b``, ``a - b``, ``a * b``, ``a / b`` between two series give a value only where
  both have one (use ``FILL`` to treat a missing datapoint as a number); between a series
  and a number, one per datapoint of the series; a division by zero gives no value;
- ``FILL(series, number)`` puts the number in every period the series has no value for;
- ``-x``, parentheses and numbers as usual; ids name the alarm's other queries (metrics or
  expressions).

Anything else (other functions, ``SEARCH``, ``METRICS()``, ...) is an
:class:`UnsupportedExpressionError` naming it, raised when the alarm is deployed, never a
silent wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

Series = list[float | None]
_TOKEN: Final = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/(),]))"
)
_FUNCTIONS: Final = frozenset({"FILL"})


class UnsupportedExpressionError(ValueError):
    """The expression uses something the local evaluator does not implement, or is malformed."""


@dataclass(frozen=True)
class _Node:
    kind: str  # "number", "id", "neg", "op", "fill"
    value: float = 0.0
    name: str = ""
    children: tuple[_Node, ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise UnsupportedExpressionError(
                f"metric math: unexpected {text[position : position + 10]!r} in {text!r}"
            )
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise UnsupportedExpressionError(
                f"metric math: expected {value or 'more'} in {self.text!r}"
            )
        self.index += 1
        return token

    def parse(self) -> _Node:
        node = self.sum()
        if self.peek() is not None:
            raise UnsupportedExpressionError(
                f"metric math: unexpected {self.peek()[1]!r} in {self.text!r}"  # type: ignore[index]
            )
        return node

    def sum(self) -> _Node:
        node = self.product()
        while (token := self.peek()) is not None and token[1] in "+-":
            self.take()
            node = _Node("op", name=token[1], children=(node, self.product()))
        return node

    def product(self) -> _Node:
        node = self.unary()
        while (token := self.peek()) is not None and token[1] in "*/":
            self.take()
            node = _Node("op", name=token[1], children=(node, self.unary()))
        return node

    def unary(self) -> _Node:
        token = self.peek()
        if token is not None and token[1] == "-":
            self.take()
            return _Node("neg", children=(self.unary(),))
        return self.atom()

    def atom(self) -> _Node:
        kind, value = self.take()
        if kind == "number":
            return _Node("number", value=float(value))
        if value == "(":
            node = self.sum()
            self.take(")")
            return node
        if kind != "name":
            raise UnsupportedExpressionError(f"metric math: unexpected {value!r} in {self.text!r}")
        if self.peek() == ("op", "("):
            if value.upper() not in _FUNCTIONS:
                raise UnsupportedExpressionError(
                    f"metric math function {value} is not supported locally "
                    f"(supported: {', '.join(sorted(_FUNCTIONS))} and + - * /)"
                )
            self.take("(")
            series = self.sum()
            self.take(",")
            filler = self.sum()
            self.take(")")
            if filler.kind not in ("number", "neg"):
                raise UnsupportedExpressionError(
                    f"metric math: FILL with something other than a number in {self.text!r}"
                )
            return _Node("fill", children=(series, filler))
        return _Node("id", name=value)


@lru_cache(maxsize=256)
def parse(expression: str) -> _Node:
    """Parse ``expression`` (cached per text); raises UnsupportedExpressionError."""
    return _Parser(expression).parse()


def ids_used(expression: str) -> frozenset[str]:
    """The query ids an expression refers to."""
    found: set[str] = set()

    def walk(node: _Node) -> None:
        if node.kind == "id":
            found.add(node.name)
        for child in node.children:
            walk(child)

    walk(parse(expression))
    return frozenset(found)


_OPS: Final[Mapping[str, Callable[[float, float], float | None]]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: None if b == 0 else a / b,
}


def evaluate(expression: str, series: Mapping[str, Sequence[float | None]], periods: int) -> Series:
    """The expression's value per period; ``series`` maps each id to its values (metrics
    and already-evaluated expressions alike)."""
    value = _evaluate(parse(expression), series, periods)
    return value if isinstance(value, list) else [value] * periods


def _evaluate(
    node: _Node, series: Mapping[str, Sequence[float | None]], periods: int
) -> Series | float:
    if node.kind == "number":
        return node.value
    if node.kind == "id":
        if node.name not in series:
            raise UnsupportedExpressionError(f"metric math: unknown id {node.name!r}")
        return list(series[node.name])
    if node.kind == "neg":
        inner = _evaluate(node.children[0], series, periods)
        return -inner if isinstance(inner, float) else [None if v is None else -v for v in inner]
    if node.kind == "fill":
        target = _evaluate(node.children[0], series, periods)
        filler = _evaluate(node.children[1], series, periods)
        assert isinstance(filler, float)
        if isinstance(target, float):
            return target
        return [filler if v is None else v for v in target]
    left = _evaluate(node.children[0], series, periods)
    right = _evaluate(node.children[1], series, periods)
    op = _OPS[node.name]
    if isinstance(left, float) and isinstance(right, float):
        result = op(left, right)
        return float("nan") if result is None else result
    lefts = left if isinstance(left, list) else [left] * periods
    rights = right if isinstance(right, list) else [right] * periods
    return [
        None if a is None or b is None else op(a, b) for a, b in zip(lefts, rights, strict=True)
    ]
