"""Item reads and writes on moto's DynamoDB tables without moto's request path.

moto answers a conditional ``UpdateItem`` in 6-14 ms here, most of it re-parsing and
re-validating the expressions on every call; the task API makes two to four such calls
per task. :class:`DynamoFastPath` serves ``GetItem``, ``PutItem``, ``UpdateItem`` and
``DeleteItem`` directly on moto's table objects (so moto's ``Scan``, ``Query``,
``DescribeTable``, CloudFormation and every other call still see the same items), with
expressions parsed once per text (:mod:`.expressions`).

It answers only what it fully understands: a request that succeeds, or fails its
condition. Anything else (a validation error, a legacy parameter, a nested path, an
index on the table, ``ReturnConsumedCapacity``, ...) returns ``None`` and the endpoint
hands the request to moto unchanged. The tests compare both paths on the same requests.

Every DynamoDB request, fast or through moto, runs under :attr:`DynamoFastPath.lock`:
a conditional write is then atomic (moto itself does not lock), and moto never iterates
a table while an item is being written.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from typing import Any, cast

from localcloud.dynamodb.expressions import (
    Expression,
    Item,
    Scope,
    Unsupported,
    apply_update,
    check_value,
    evaluate,
    parse_condition,
    parse_update,
)
from localcloud.moto_compat import (
    DynamoItem,
    DynamoTable,
    DynamoType,
    JsonRESTError,
    LimitedSizeDict,
    dynamodb_backends,
    get_account_id_from,
)

Response = tuple[int, list[tuple[str, str]], bytes]
HeaderGetter = Callable[[str], str | None]

TARGET_PREFIX = "DynamoDB_20120810."
_CONDITION_FAILED = "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
# moto's limits (it allows 405,000 bytes per item; AWS documents 400 KB), on JSON text.
_ITEM_LIMIT_BYTES = 400_000
_KEY_LIMIT_BYTES = 1024
_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/dynamodb/aws4_request")
_COMMON = frozenset({"TableName", "Key", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"})
_EXPRESSIONS = frozenset(
    {
        "ConditionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "ReturnValues",
        "ReturnValuesOnConditionCheckFailure",
    }
)
_ALLOWED = {
    "GetItem": _COMMON | {"ConsistentRead"},
    "PutItem": (_COMMON - {"Key"}) | _EXPRESSIONS | {"Item"},
    "DeleteItem": _COMMON | _EXPRESSIONS,
    "UpdateItem": _COMMON | _EXPRESSIONS | {"UpdateExpression"},
}
_RETURN_VALUES = {
    "GetItem": frozenset({"NONE"}),
    "PutItem": frozenset({"NONE", "ALL_OLD"}),
    "DeleteItem": frozenset({"NONE", "ALL_OLD"}),
    "UpdateItem": frozenset({"NONE", "ALL_OLD", "ALL_NEW"}),
}


class _ConditionFailed(Exception):
    def __init__(self, old: Item | None) -> None:
        super().__init__("The conditional request failed")
        self.old = old


class DynamoFastPath:
    """Serves the four item operations on moto's tables; see the module docstring."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.lock = threading.Lock()
        self.served = 0
        self.handed_to_moto = 0

    def handle(self, operation: str, body: bytes, header: HeaderGetter) -> Response | None:
        """The answer to one request, or None to let moto answer it (call under ``lock``)."""
        if not self.enabled or operation not in _ALLOWED:
            return None
        try:
            request = json.loads(body)
            if not isinstance(request, dict) or not request.keys() <= _ALLOWED[operation]:
                raise Unsupported("parameters outside the fast path")
            _check_options(operation, request)
            table = _table(request, header)
            response = getattr(self, f"_{operation}")(request, table)
        except _ConditionFailed as failed:
            self.served += 1
            error: dict[str, Any] = {"__type": _CONDITION_FAILED, "message": str(failed)}
            if failed.old is not None:
                error["Item"] = failed.old
            return _respond(400, error)
        except (Unsupported, ValueError, JsonRESTError):
            # Nothing was written before any of these (moto's own lookups can raise
            # JsonRESTError): moto answers the request instead, errors included.
            self.handed_to_moto += 1
            return None
        self.served += 1
        return _respond(200, response)

    # --- operations ----------------------------------------------------------------------

    def _GetItem(self, request: dict[str, Any], table: DynamoTable) -> dict[str, Any]:
        if not isinstance(request.get("ConsistentRead", False), bool):
            raise Unsupported("ConsistentRead not a boolean")
        old = _current(table, request)
        return {"Item": old} if old is not None else {}

    def _PutItem(self, request: dict[str, Any], table: DynamoTable) -> dict[str, Any]:
        item = request.get("Item")
        if not isinstance(item, dict):
            raise Unsupported("Item missing")
        for value in item.values():
            check_value(value)
        key = {name: item.get(name) for name in _key_names(table)}
        _check_key(table, key)
        condition, names, values = _expressions(request, update=None)
        old = _current(table, {"Key": key})
        _check_condition(request, condition, Scope(old, names, values))
        _store(table, item)
        return _returned(request, old, item)

    def _DeleteItem(self, request: dict[str, Any], table: DynamoTable) -> dict[str, Any]:
        condition, names, values = _expressions(request, update=None)
        old = _current(table, request)
        _check_condition(request, condition, Scope(old, names, values))
        if old is not None:
            hash_key, range_key = _key_types(table, request["Key"])
            table.delete_item(hash_key, range_key)
        return _returned(request, old, None)

    def _UpdateItem(self, request: dict[str, Any], table: DynamoTable) -> dict[str, Any]:
        text = request.get("UpdateExpression")
        if not isinstance(text, str) or not text.strip():
            raise Unsupported("UpdateExpression missing")
        update = parse_update(text)
        condition, names, values = _expressions(request, update=update)
        old = _current(table, request)
        scope = Scope(old, names, values)
        key_names = _key_names(table)
        if any(path.name(names) in key_names for _, path, _ in update.root):
            raise Unsupported("an update of a key attribute")
        targets = [path.name(names) for _, path, _ in update.root]
        if len(set(targets)) != len(targets):
            raise Unsupported("overlapping document paths")
        _check_condition(request, condition, scope)
        new = apply_update(update.root, scope)
        new.update(request["Key"])
        _store(table, new)
        return _returned(request, old, new)


# --- helpers ---------------------------------------------------------------------------


def _table(request: dict[str, Any], header: HeaderGetter) -> DynamoTable:
    """The moto table the request names, in the signer's account and region."""
    match = _SCOPE.search(header("Authorization") or "")
    name = request.get("TableName")
    if match is None or not isinstance(name, str):
        raise Unsupported("unsigned request or no table name")
    access_key, region = match.groups()
    # The account as moto picks it (BaseResponse.get_current_account).
    account = (
        os.environ.get("MOTO_ACCOUNT_ID")
        or header("x-moto-account-id")
        or get_account_id_from(access_key)
    )
    table = dynamodb_backends[account][region].tables.get(name)
    if table is None or table.global_indexes or table.indexes:
        raise Unsupported("unknown table, or a table with indexes")
    return table


def _key_names(table: DynamoTable) -> set[str]:
    names = {table.hash_key_attr}
    if table.range_key_attr:
        names.add(table.range_key_attr)
    return names


def _store(table: DynamoTable, attributes: Item) -> None:
    """Write an item as moto's ``Table.put_item`` would, without its per-attribute re-sizing.

    moto's item dict recomputes the whole item's size on every attribute it stores
    (quadratic, ~45 % of a write here). The JSON text is an upper bound of the size moto
    computes (every value's text, names and type tags included), so an item whose JSON
    fits in the limit is one moto accepts; a bigger one goes to moto to be measured.
    """
    if len(json.dumps(attributes)) > _ITEM_LIMIT_BYTES:
        raise Unsupported("a large item: moto measures it")
    for name in _key_names(table):
        if len(json.dumps(attributes[name])) > _KEY_LIMIT_BYTES:
            raise Unsupported("a long key: moto measures it")
    hash_key, range_key = _key_types(table, attributes)
    values = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.__init__(values)
    for name, value in attributes.items():
        dict.__setitem__(values, name, DynamoType(value))
    item = cast("DynamoItem", DynamoItem.__new__(DynamoItem))
    item.hash_key, item.range_key, item.attrs = hash_key, range_key, values
    previous = table.get_item(hash_key, range_key)
    if range_key is None:
        table.items[hash_key] = item  # type: ignore[assignment]
    else:
        table.items[hash_key][range_key] = item
    if table.stream_shard is not None:
        table.stream_shard.add(previous, item)


def _check_key(table: DynamoTable, key: Mapping[str, Any]) -> None:
    if not isinstance(key, dict) or set(key) != _key_names(table):
        raise Unsupported("key does not match the table's schema")
    expected = {
        table.hash_key_attr: table.hash_key_type,
        table.range_key_attr: table.range_key_type,
    }
    for name, value in key.items():
        check_value(value)
        ((kind, inner),) = value.items()
        if kind != expected[name] or inner == "":
            raise Unsupported("key of the wrong type, or empty")


def _key_types(table: DynamoTable, key: Mapping[str, Any]) -> tuple[DynamoType, DynamoType | None]:
    range_name = table.range_key_attr
    return DynamoType(key[table.hash_key_attr]), DynamoType(key[range_name]) if range_name else None


def _current(table: DynamoTable, request: Mapping[str, Any]) -> Item | None:
    key = request.get("Key")
    _check_key(table, key or {})
    assert key is not None
    found = table.get_item(*_key_types(table, key))
    return None if found is None else dict(found.to_json()["Attributes"])


def _expressions(
    request: Mapping[str, Any], *, update: Expression | None
) -> tuple[Expression | None, dict[str, str], dict[str, Any]]:
    """The condition and placeholders; Unsupported unless each placeholder is defined and used."""
    text = request.get("ConditionExpression")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise Unsupported("empty ConditionExpression")
    condition = parse_condition(text) if text is not None else None
    names = request.get("ExpressionAttributeNames")
    values = request.get("ExpressionAttributeValues")
    used_names: set[str] = set()
    used_values: set[str] = set()
    for expression in (condition, update):
        if expression is not None:
            used_names |= expression.names
            used_values |= expression.values
    # DynamoDB rejects unused and undefined placeholders, and empty maps, alike.
    if (names is not None or used_names) and (
        not isinstance(names, dict) or set(names) != used_names
    ):
        raise Unsupported("names not exactly the ones used")
    if (values is not None or used_values) and (
        not isinstance(values, dict) or set(values) != used_values
    ):
        raise Unsupported("values not exactly the ones used")
    for value in (values or {}).values():
        check_value(value)
    if not all(isinstance(name, str) and name for name in (names or {}).values()):
        raise Unsupported("empty attribute name")
    return condition, names or {}, values or {}


def _check_options(operation: str, request: Mapping[str, Any]) -> None:
    """Unsupported unless the request asks only for returns the fast path gives."""
    operation_values = request.get("ReturnValues", "NONE")
    if (
        request.get("ReturnValuesOnConditionCheckFailure", "NONE") not in ("NONE", "ALL_OLD")
        or request.get("ReturnConsumedCapacity", "NONE") != "NONE"
    ):
        raise Unsupported("return options outside the fast path")
    if request.get("ReturnItemCollectionMetrics", "NONE") != "NONE":
        raise Unsupported("item collection metrics")
    if not isinstance(operation_values, str) or operation_values not in _RETURN_VALUES[operation]:
        raise Unsupported("ReturnValues outside the fast path")


def _check_condition(
    request: Mapping[str, Any], condition: Expression | None, scope: Scope
) -> None:
    """Raise _ConditionFailed (with the old item if asked for) when the condition is false."""
    if condition is not None and not evaluate(condition.root, scope):
        wants_old = request.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        raise _ConditionFailed(scope.item if wants_old else None)


def _returned(request: Mapping[str, Any], old: Item | None, new: Item | None) -> dict[str, Any]:
    wanted = request.get("ReturnValues", "NONE")
    if wanted == "ALL_OLD" and old is not None:
        return {"Attributes": old}
    if wanted == "ALL_NEW" and new is not None:
        return {"Attributes": new}
    return {}


def _respond(status: int, document: dict[str, Any]) -> Response:
    payload = json.dumps(document, separators=(",", ":")).encode()
    return (
        status,
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            # botocore checks this checksum when present, as it does against AWS.
            ("x-amz-crc32", str(zlib.crc32(payload))),
        ],
        payload,
    )
