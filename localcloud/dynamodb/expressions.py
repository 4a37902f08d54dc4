"""DynamoDB condition and update expressions, for top-level attributes, on wire-format values.

Values are DynamoDB JSON (``{"S": "x"}``, ``{"N": "1"}``, ...) and items are dicts of them.
Parsing is cached per expression text; placeholders (``#name``, ``:value``) are resolved
when an expression is evaluated. Anything outside the supported subset (nested paths,
list indexes, repeated clauses, a type error DynamoDB reports as a ValidationException,
...) raises :class:`Unsupported`: the caller then hands the whole request to moto, which
answers it (including every validation error) as before. So this module only ever has to
be right about requests that succeed or fail their condition.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from localcloud.moto_compat import ReservedKeywords

Value = dict[str, Any]
Item = dict[str, Value]

_RESERVED = frozenset(word.upper() for word in ReservedKeywords.get_reserved_keywords())
_TOKEN = re.compile(
    r"\s*(?:(?P<op><>|<=|>=|[=<>(),+\-])|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_CONDITION_FUNCTIONS = frozenset(
    {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains"}
)
_SCALARS = frozenset({"S", "N", "B"})
_SETS = {"SS": "S", "NS": "N", "BS": "B"}
_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"})
# DynamoDB numbers: 38 significant digits.
_NUMBERS = Context(prec=38)


class Unsupported(Exception):
    """Outside the supported subset, or an error only moto should report."""


# --- tokens -----------------------------------------------------------------------------


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise Unsupported(f"unexpected character at {position}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Tokens:
    def __init__(self, text: str) -> None:
        self._items = _tokenize(text)
        self._index = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self._index + offset
        return self._items[index] if index < len(self._items) else None

    def next(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end of expression")
        self._index += 1
        return token

    def at_op(self, op: str) -> bool:
        return self.peek() == ("op", op)

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].upper() == word

    def expect_op(self, op: str) -> None:
        if self.next() != ("op", op):
            raise Unsupported(f"expected {op!r}")

    @property
    def done(self) -> bool:
        return self._index >= len(self._items)


# --- operands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """A top-level attribute: a raw name or a ``#placeholder``."""

    token: str

    def name(self, names: Mapping[str, str]) -> str:
        if not self.token.startswith("#"):
            return self.token
        if self.token not in names:
            raise Unsupported(f"undefined name {self.token}")
        return names[self.token]


@dataclass(frozen=True)
class Placeholder:
    """A ``:value`` placeholder."""

    token: str


@dataclass(frozen=True)
class Size:
    """``size(path)``."""

    path: Path


Operand = Path | Placeholder | Size


@dataclass(frozen=True)
class Expression:
    """A parsed expression and the placeholders it uses."""

    root: Any
    names: frozenset[str] = field(default_factory=frozenset)
    values: frozenset[str] = field(default_factory=frozenset)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _Tokens(text)
        self.names: set[str] = set()
        self.values: set[str] = set()

    def path(self) -> Path:
        kind, text = self.tokens.next()
        if kind == "name":
            self.names.add(text)
        elif kind != "word" or text.upper() in _RESERVED:
            raise Unsupported(f"not an attribute path: {text}")
        # A nested path (``a.b``, ``a[0]``) never gets here: the tokenizer rejects . and [.
        return Path(text)

    def operand(self) -> Operand:
        kind, text = self.tokens.peek() or ("", "")
        if kind == "value":
            self.tokens.next()
            self.values.add(text)
            return Placeholder(text)
        if kind == "word" and text == "size" and self.tokens.peek(1) == ("op", "("):
            self.tokens.next()
            self.tokens.expect_op("(")
            path = self.path()
            self.tokens.expect_op(")")
            return Size(path)
        return self.path()

    # condition := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | primary
    def condition(self) -> Any:
        left = self._and()
        while self.tokens.at_word("OR"):
            self.tokens.next()
            left = ("or", left, self._and())
        return left

    def _and(self) -> Any:
        left = self._not()
        while self.tokens.at_word("AND"):
            self.tokens.next()
            left = ("and", left, self._not())
        return left

    def _not(self) -> Any:
        if self.tokens.at_word("NOT"):
            self.tokens.next()
            return ("not", self._not())
        return self._primary()

    def _primary(self) -> Any:
        if self.tokens.at_op("("):
            self.tokens.next()
            inner = self.condition()
            self.tokens.expect_op(")")
            if inner[0] == "group":
                raise Unsupported("redundant parentheses")  # DynamoDB rejects ((x))
            return ("group", inner)
        kind, text = self.tokens.peek() or ("", "")
        if kind == "word" and text in _CONDITION_FUNCTIONS and self.tokens.peek(1) == ("op", "("):
            self.tokens.next()
            self.tokens.next()
            arguments: list[Operand] = [self.path()]
            while self.tokens.at_op(","):
                self.tokens.next()
                argument = self.operand()
                if isinstance(argument, Size):
                    raise Unsupported(f"size() as an argument of {text}")
                arguments.append(argument)
            self.tokens.expect_op(")")
            expected = 1 if text in ("attribute_exists", "attribute_not_exists") else 2
            if len(arguments) != expected:
                raise Unsupported(f"{text} takes {expected} arguments")
            return ("call", text, tuple(arguments))
        left = self.operand()
        if self.tokens.at_word("BETWEEN"):
            self.tokens.next()
            low = self.operand()
            if not self.tokens.at_word("AND"):
                raise Unsupported("BETWEEN without AND")
            self.tokens.next()
            return ("between", left, low, self.operand())
        if self.tokens.at_word("IN"):
            self.tokens.next()
            self.tokens.expect_op("(")
            options = [self.operand()]
            while self.tokens.at_op(","):
                self.tokens.next()
                options.append(self.operand())
            self.tokens.expect_op(")")
            return ("in", left, tuple(options))
        kind, op = self.tokens.next()
        if kind != "op" or op not in _COMPARATORS:
            raise Unsupported(f"expected a comparator, got {op!r}")
        return ("compare", op, left, self.operand())

    # update := (SET actions | REMOVE paths | ADD pairs | DELETE pairs)+, each at most once
    def update(self) -> list[tuple[str, Path, Any]]:
        actions: list[tuple[str, Path, Any]] = []
        seen: set[str] = set()
        while not self.tokens.done:
            kind, word = self.tokens.next()
            clause = word.upper()
            if kind != "word" or clause not in ("SET", "REMOVE", "ADD", "DELETE"):
                raise Unsupported(f"expected a clause, got {word!r}")
            if clause in seen:
                raise Unsupported(f"{clause} used twice")
            seen.add(clause)
            while True:
                path = self.path()
                if clause == "SET":
                    self.tokens.expect_op("=")
                    actions.append(("set", path, self._set_value()))
                elif clause == "REMOVE":
                    actions.append(("remove", path, None))
                else:
                    value = self.operand()
                    if not isinstance(value, Placeholder):
                        raise Unsupported(f"{clause} takes a value placeholder")
                    actions.append((clause.lower(), path, value))
                if not self.tokens.at_op(","):
                    break
                self.tokens.next()
        if not actions:
            raise Unsupported("empty update expression")
        return actions

    def _set_value(self) -> Any:
        left = self._set_operand()
        if self.tokens.at_op("+") or self.tokens.at_op("-"):
            _, op = self.tokens.next()
            return (op, left, self._set_operand())
        return left

    def _set_operand(self) -> Any:
        kind, text = self.tokens.peek() or ("", "")
        functions = ("if_not_exists", "list_append")
        if kind == "word" and text in functions and self.tokens.peek(1) == ("op", "("):
            self.tokens.next()
            self.tokens.next()
            first = self.path() if text == "if_not_exists" else self._set_operand()
            self.tokens.expect_op(",")
            second = self._set_operand()
            self.tokens.expect_op(")")
            return (text, first, second)
        operand = self.operand()
        if isinstance(operand, Size):
            raise Unsupported("size() in an update")
        return operand

    def finish(self, root: Any) -> Expression:
        if not self.tokens.done:
            raise Unsupported(f"unexpected {self.tokens.peek()!r}")
        return Expression(root, frozenset(self.names), frozenset(self.values))


@lru_cache(maxsize=512)
def parse_condition(text: str) -> Expression:
    """A ConditionExpression (cached by text)."""
    parser = _Parser(text)
    return parser.finish(parser.condition())


@lru_cache(maxsize=512)
def parse_update(text: str) -> Expression:
    """An UpdateExpression (cached by text): a list of (action, path, value) tuples."""
    parser = _Parser(text)
    return parser.finish(tuple(parser.update()))


# --- values -----------------------------------------------------------------------------


def number(text: Any) -> Decimal:
    """A DynamoDB number; Unsupported when DynamoDB would reject it."""
    if not isinstance(text, str):
        raise Unsupported("number not a string")
    try:
        result = Decimal(text)
    except InvalidOperation:
        raise Unsupported("not a number") from None
    if not result.is_finite() or len(result.as_tuple().digits) > 38:
        raise Unsupported("number out of range")
    if result and not Decimal("1e-130") <= abs(result) < Decimal("1e126"):
        raise Unsupported("number out of range")
    return result


def format_number(value: Decimal) -> str:
    """As DynamoDB returns numbers: no exponent, no trailing zeros."""
    text = format(value.normalize(_NUMBERS), "f")
    return "0" if text in ("-0", "0") else text


def check_value(value: Any, *, depth: int = 0) -> None:
    """Unsupported unless ``value`` is a well-formed attribute value DynamoDB accepts."""
    if not isinstance(value, dict) or len(value) != 1 or depth > 32:
        raise Unsupported("malformed attribute value")
    ((kind, inner),) = value.items()
    if kind not in _TYPES:
        raise Unsupported(f"unknown type {kind}")
    if kind == "S" and not isinstance(inner, str):
        raise Unsupported("S not a string")
    if kind == "N":
        number(inner)
    elif kind == "B":
        _binary(inner)
    elif kind == "BOOL" and not isinstance(inner, bool):
        raise Unsupported("BOOL not a boolean")
    elif kind == "NULL" and inner is not True:
        raise Unsupported("NULL not true")
    elif kind == "L":
        if not isinstance(inner, list):
            raise Unsupported("L not a list")
        for element in inner:
            check_value(element, depth=depth + 1)
    elif kind == "M":
        if not isinstance(inner, dict):
            raise Unsupported("M not a map")
        for element in inner.values():
            check_value(element, depth=depth + 1)
    elif kind in _SETS:
        if not isinstance(inner, list) or not inner:
            raise Unsupported("empty or malformed set")
        for element in inner:
            check_value({_SETS[kind]: element}, depth=depth + 1)
        if len(set(_set_members(value))) != len(inner):
            raise Unsupported("duplicates in a set")


def _binary(text: Any) -> bytes:
    if not isinstance(text, str):
        raise Unsupported("B not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise Unsupported("B not base64") from None


def _scalar(value: Value) -> tuple[str, Any]:
    ((kind, inner),) = value.items()
    if kind == "N":
        return kind, number(inner)
    if kind == "B":
        return kind, _binary(inner)
    return kind, inner


def _set_members(value: Value) -> list[Any]:
    ((kind, inner),) = value.items()
    element = _SETS[kind]
    return [_scalar({element: member})[1] for member in inner]


def _equal(left: Value | None, right: Value | None) -> bool:
    if left is None or right is None:
        return left is right
    left_kind, right_kind = next(iter(left)), next(iter(right))
    if left_kind != right_kind:
        return False
    if left_kind in _SCALARS:
        return _scalar(left) == _scalar(right)
    if left_kind in ("BOOL", "NULL"):
        return left == right
    raise Unsupported("comparing documents or sets")


def _ordered(op: str, left: Value | None, right: Value | None) -> bool:
    if left is None or right is None:
        return False
    left_kind, left_value = _scalar(left)
    right_kind, right_value = _scalar(right)
    if left_kind != right_kind or left_kind not in _SCALARS:
        return False
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return compare[op](left_value, right_value)


# --- evaluation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """An item and the request's placeholders."""

    item: Item | None
    names: Mapping[str, str]
    values: Mapping[str, Value]

    def resolve(self, operand: Operand) -> Value | None:
        if isinstance(operand, Placeholder):
            if operand.token not in self.values:
                raise Unsupported(f"undefined value {operand.token}")
            return self.values[operand.token]
        if isinstance(operand, Size):
            found = self.resolve(operand.path)
            if found is None:
                return None
            ((kind, inner),) = found.items()
            if kind == "S":
                return {"N": str(len(inner))}
            if kind == "B":
                return {"N": str(len(_binary(inner)))}
            if kind in ("L", "M", "SS", "NS", "BS"):
                return {"N": str(len(inner))}
            raise Unsupported(f"size() of {kind}")
        if self.item is None:
            return None
        return self.item.get(operand.name(self.names))


def evaluate(node: Any, scope: Scope) -> bool:
    """A parsed condition against ``scope`` (every branch, so every placeholder is checked)."""
    kind = node[0]
    if kind in ("or", "and"):
        first, second = evaluate(node[1], scope), evaluate(node[2], scope)
        return (first or second) if kind == "or" else (first and second)
    if kind == "not":
        return not evaluate(node[1], scope)
    if kind == "group":
        return evaluate(node[1], scope)
    if kind == "compare":
        _, op, left_node, right_node = node
        left, right = scope.resolve(left_node), scope.resolve(right_node)
        if op == "=":
            return _equal(left, right)
        if op == "<>":
            return not _equal(left, right)
        return _ordered(op, left, right)
    if kind == "between":
        _, subject, low, high = node
        value, lower, upper = (scope.resolve(n) for n in (subject, low, high))
        if lower is None or upper is None or _ordered(">", lower, upper):
            raise Unsupported("BETWEEN bounds DynamoDB rejects")
        if next(iter(lower)) != next(iter(upper)):
            raise Unsupported("BETWEEN bounds of two types")
        return _ordered(">=", value, lower) and _ordered("<=", value, upper)
    if kind == "in":
        value = scope.resolve(node[1])
        options = [scope.resolve(option) for option in node[2]]
        return value is not None and any(_equal(value, option) for option in options)
    return _call(node[1], node[2], scope)


def _call(function: str, arguments: tuple[Operand, ...], scope: Scope) -> bool:
    subject = scope.resolve(arguments[0])
    if function == "attribute_exists":
        return subject is not None
    if function == "attribute_not_exists":
        return subject is None
    argument = scope.resolve(arguments[1])
    if argument is None:
        return False
    if function == "attribute_type":
        wanted = argument.get("S")
        if wanted not in _TYPES:
            raise Unsupported("attribute_type needs a type name")
        return subject is not None and next(iter(subject)) == wanted
    if function == "begins_with":
        if next(iter(argument)) not in ("S", "B"):
            raise Unsupported("begins_with needs S or B")
        if subject is None or next(iter(subject)) != next(iter(argument)):
            return False
        prefix = _scalar(argument)[1]
        return bool(_scalar(subject)[1].startswith(prefix))
    # contains
    if subject is None:
        return False
    subject_kind = next(iter(subject))
    argument_kind = next(iter(argument))
    if subject_kind == "S" and argument_kind == "S":
        return bool(argument["S"] in subject["S"])
    if subject_kind in _SETS and argument_kind == _SETS[subject_kind]:
        return _scalar(argument)[1] in _set_members(subject)
    if subject_kind == "L":
        if argument_kind not in _SCALARS:
            raise Unsupported("contains() of a document in a list")
        return any(
            next(iter(element)) == argument_kind and _equal(element, argument)
            for element in subject["L"]
        )
    return False


def _set_value(node: Any, scope: Scope) -> Value:
    if isinstance(node, (Path, Placeholder)):
        found = scope.resolve(node)
        if found is None:
            raise Unsupported("SET refers to a missing attribute")
        return found
    kind = node[0]
    if kind == "if_not_exists":
        existing = scope.resolve(node[1])
        return existing if existing is not None else _set_value(node[2], scope)
    left, right = _set_value(node[1], scope), _set_value(node[2], scope)
    if kind == "list_append":
        if "L" not in left or "L" not in right:
            raise Unsupported("list_append of a non-list")
        return {"L": [*left["L"], *right["L"]]}
    if "N" not in left or "N" not in right:
        raise Unsupported("arithmetic on a non-number")
    total = (
        _NUMBERS.add(number(left["N"]), number(right["N"]))
        if kind == "+"
        else _NUMBERS.subtract(number(left["N"]), number(right["N"]))
    )
    return {"N": format_number(number(format_number(total)))}


def apply_update(actions: tuple[tuple[str, Path, Any], ...], scope: Scope) -> Item:
    """The item after the update; every operand reads the item as it was before."""
    result: Item = dict(scope.item or {})
    for action, path, operand in actions:
        name = path.name(scope.names)
        if action == "set":
            result[name] = _set_value(operand, scope)
        elif action == "remove":
            result.pop(name, None)
        else:
            value = scope.resolve(operand)
            assert value is not None
            _add_or_delete(action, name, value, scope, result)
    return result


def _add_or_delete(action: str, name: str, value: Value, scope: Scope, result: Item) -> None:
    existing = scope.item.get(name) if scope.item else None
    kind = next(iter(value))
    if action == "add" and kind == "N":
        if existing is None:
            result[name] = {"N": format_number(number(value["N"]))}
        elif "N" in existing:
            total = _NUMBERS.add(number(existing["N"]), number(value["N"]))
            result[name] = {"N": format_number(number(format_number(total)))}
        else:
            raise Unsupported("ADD to a non-number")
        return
    if kind not in _SETS:
        raise Unsupported(f"{action.upper()} of {kind}")
    if existing is None:
        if action == "add":
            result[name] = value
        return
    if next(iter(existing)) != kind:
        raise Unsupported(f"{action.upper()} across set types")
    present = _set_members(existing)
    change = _set_members(value)
    members = list(zip(present, existing[kind], strict=True))
    if action == "add":
        keep = [raw for _, raw in members]
        keep += [
            raw for parsed, raw in zip(change, value[kind], strict=True) if parsed not in present
        ]
    else:
        keep = [raw for parsed, raw in members if parsed not in change]
    if keep:
        result[name] = {kind: keep}
    else:
        result.pop(name, None)
