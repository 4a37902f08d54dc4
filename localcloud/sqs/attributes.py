"""Message attributes: validation, size and the MD5 digests SQS returns.

A message attribute is kept in its wire shape, ``{"DataType": ..., "StringValue": ...}``
or ``{"DataType": ..., "BinaryValue": bytes}``.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from localcloud.sqs.errors import invalid_parameter_value

MessageAttributes = dict[str, dict[str, Any]]

MAX_ATTRIBUTES = 10
_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")
_DATA_TYPE = re.compile(r"^(String|Number|Binary)(\..+)?$")
# Characters SQS accepts in bodies and string values (XML 1.0 minus the surrogates).
_INVALID_CHARS = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
SYSTEM_ATTRIBUTE_NAMES = frozenset({"AWSTraceHeader"})


def has_invalid_characters(text: str) -> bool:
    """Whether ``text`` holds a character SQS refuses in a message."""
    return _INVALID_CHARS.search(text) is not None


def validate_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise the error SQS gives for the first invalid message attribute."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise invalid_parameter_value(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{MAX_ATTRIBUTES}]."
        )
    for name, value in attributes.items():
        lowered = name.lower()
        if not _NAME.match(name) or ".." in name:
            raise invalid_parameter_value(
                f"Message (user) attribute '{name}' is invalid. Attribute name can contain "
                "A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters."
            )
        if lowered.startswith(("aws.", "amazon.")) or name.startswith(".") or name.endswith("."):
            raise invalid_parameter_value(
                "You can't use message attribute names beginning with 'AWS.' or 'Amazon.'. "
                "These strings are reserved for internal use. Additionally, they cannot start "
                "or end with '.'."
            )
        data_type = value.get("DataType")
        if not data_type:
            raise invalid_parameter_value(
                f"The message attribute '{name}' must contain non-empty message attribute type."
            )
        if not _DATA_TYPE.match(data_type) or len(data_type) > 256:
            raise invalid_parameter_value(
                f"The type of message (user) attribute '{name}' is invalid. You must use only "
                "the following supported type prefixes: Binary, Number, String."
            )
        base = data_type.split(".", 1)[0]
        kind = "Binary" if base == "Binary" else "String"
        field = f"{kind}Value"
        if value.get(field) is None:
            raise invalid_parameter_value(
                f"The message attribute '{name}' with type '{base}' must use field '{kind}'."
            )
        if len(value[field]) == 0:
            raise invalid_parameter_value(
                f"Message (user) attribute '{name}' must contain a non-empty value of type "
                f"'{base}'."
            )
        if base != "Binary":
            string = value[field]
            if has_invalid_characters(string):
                raise invalid_parameter_value(
                    f"Message (user) attribute '{name}' value contains invalid characters."
                )
            if base == "Number" and not _is_number(string):
                raise invalid_parameter_value(
                    f"Can't cast the value of message (user) attribute '{name}' to a number."
                )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def attributes_size(attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes the attributes add to a message: name, type and value of each."""
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        if "BinaryValue" in value and value["BinaryValue"] is not None:
            size += len(value["BinaryValue"])
        else:
            size += len(str(value.get("StringValue", "")).encode())
    return size


def _length_prefixed(digest: Any, data: bytes) -> None:
    digest.update(struct.pack("!I", len(data)))
    digest.update(data)


def attributes_md5(attributes: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The MD5 SQS computes over message attributes (sorted by name), or None if empty."""
    if not attributes:
        return None
    digest = hashlib.md5()  # noqa: S324 - the SQS wire format, not a security use
    for name in sorted(attributes):
        value = attributes[name]
        data_type = str(value["DataType"])
        _length_prefixed(digest, name.encode())
        _length_prefixed(digest, data_type.encode())
        if data_type.startswith("Binary"):
            digest.update(b"\x02")
            _length_prefixed(digest, bytes(value["BinaryValue"]))
        else:
            digest.update(b"\x01")
            _length_prefixed(digest, str(value["StringValue"]).encode())
    return digest.hexdigest()


def select_attributes(attributes: MessageAttributes, names: Iterable[str]) -> MessageAttributes:
    """The attributes a ReceiveMessage asked for: ``All``, ``*``, ``.*``, ``prefix.*``
    (``Hel.*`` selects ``Hello`` and ``Help.Me``, as recorded) or exact names."""
    wanted = list(names)
    if not wanted or not attributes:
        return {}
    if "All" in wanted or "*" in wanted or ".*" in wanted:
        return attributes
    exact = set(wanted)
    prefixes = tuple(name[:-2] for name in wanted if name.endswith(".*"))
    return {
        key: value
        for key, value in attributes.items()
        if key in exact or (prefixes and key.startswith(prefixes))
    }
