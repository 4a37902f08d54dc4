"""Queue attributes: the ones CreateQueue/SetQueueAttributes accept, validated as AWS does.

Values are normalised to the strings GetQueueAttributes returns (``"true"``, ``"300"``,
compact JSON for the policies) so an idempotent CreateQueue compares like with like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localcloud.sqs.errors import (
    SqsError,
    invalid_attribute_name,
    invalid_attribute_value,
    invalid_parameter_value,
)

MAX_MESSAGE_BYTES = 1_048_576
MAX_VISIBILITY_TIMEOUT_S = 43_200

# name -> (minimum, maximum)
INTEGER_ATTRIBUTES: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1_024, MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, MAX_VISIBILITY_TIMEOUT_S),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
BOOLEAN_ATTRIBUTES = frozenset({"FifoQueue", "ContentBasedDeduplication", "SqsManagedSseEnabled"})
ENUM_ATTRIBUTES: dict[str, frozenset[str]] = {
    "DeduplicationScope": frozenset({"messageGroup", "queue"}),
    "FifoThroughputLimit": frozenset({"perQueue", "perMessageGroupId"}),
}
# On a standard queue AWS does not know these at all ("Unknown Attribute ...") ...
FIFO_ONLY_UNKNOWN = frozenset({"FifoQueue", "ContentBasedDeduplication"})
# ... and these it knows but refuses ("You can specify the ... only when FifoQueue ...").
FIFO_ONLY_ATTRIBUTES = frozenset({"DeduplicationScope", "FifoThroughputLimit"})
JSON_ATTRIBUTES = frozenset({"Policy", "RedrivePolicy", "RedriveAllowPolicy"})
STRING_ATTRIBUTES = frozenset({"KmsMasterKeyId"})
# An empty value removes these (GetQueueAttributes no longer returns them).
CLEARED_BY_EMPTY = JSON_ATTRIBUTES | STRING_ATTRIBUTES
SETTABLE_ATTRIBUTES = (
    frozenset(INTEGER_ATTRIBUTES)
    | BOOLEAN_ATTRIBUTES
    | frozenset(ENUM_ATTRIBUTES)
    | JSON_ATTRIBUTES
    | STRING_ATTRIBUTES
)
COMPUTED_ATTRIBUTES = frozenset(
    {
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "CreatedTimestamp",
        "LastModifiedTimestamp",
        "QueueArn",
    }
)
READABLE_ATTRIBUTES = SETTABLE_ATTRIBUTES | COMPUTED_ATTRIBUTES | {"All"}

DEFAULTS: dict[str, str] = {
    "DelaySeconds": "0",
    "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "SqsManagedSseEnabled": "true",
}
FIFO_DEFAULTS: dict[str, str] = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalize(name: str, value: Any, *, fifo: bool) -> str:
    """Validate one settable attribute and return its canonical string form."""
    if name not in SETTABLE_ATTRIBUTES or (name in FIFO_ONLY_UNKNOWN and not fifo):
        raise invalid_attribute_name(f"Unknown Attribute {name}.")
    if name in FIFO_ONLY_ATTRIBUTES and not fifo:
        raise invalid_attribute_name(
            f"You can specify the {name} only when FifoQueue is set to true."
        )
    text = _text(value)
    if name in INTEGER_ATTRIBUTES:
        low, high = INTEGER_ATTRIBUTES[name]
        try:
            number = int(text)
        except ValueError:
            raise invalid_attribute_value(name) from None
        if not low <= number <= high:
            raise invalid_attribute_value(name)
        return str(number)
    if name in BOOLEAN_ATTRIBUTES:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise invalid_attribute_value(name)
        return lowered
    if name in ENUM_ATTRIBUTES:
        if text not in ENUM_ATTRIBUTES[name]:
            raise invalid_attribute_value(name)
        return text
    if name == "RedrivePolicy":
        return text if text == "" else normalize_redrive_policy(text)
    if name in JSON_ATTRIBUTES:
        if text == "":
            return ""
        try:
            document = json.loads(text)
        except ValueError:
            raise invalid_attribute_value(name) from None
        if name == "RedriveAllowPolicy":
            _check_redrive_allow_policy(text, document)
        return json.dumps(document, separators=(",", ":"))
    return text


def normalize_redrive_policy(text: str) -> str:
    """Check a RedrivePolicy document and return it in AWS's compact form."""

    def bad(reason: str) -> SqsError:
        return invalid_parameter_value(
            f"Value {text} for parameter RedrivePolicy is invalid. Reason: {reason}"
        )

    try:
        document = json.loads(text)
    except ValueError:
        raise bad("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise bad("Invalid JSON.")
    if "deadLetterTargetArn" not in document:
        raise bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
    if "maxReceiveCount" not in document:
        raise bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")
    raw_count = document["maxReceiveCount"]
    try:
        count = int(raw_count)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= 1000:
        raise bad(
            f"Invalid value for maxReceiveCount: {raw_count}, valid values are from 1 to 1000 "
            "both inclusive."
        )
    return json.dumps(
        {"deadLetterTargetArn": str(document["deadLetterTargetArn"]), "maxReceiveCount": count},
        separators=(",", ":"),
    )


def _check_redrive_allow_policy(text: str, document: Any) -> None:
    permission = document.get("redrivePermission") if isinstance(document, dict) else None
    if permission not in ("allowAll", "denyAll", "byQueue"):
        raise invalid_parameter_value(
            f"Value {text} for parameter RedriveAllowPolicy is invalid. Reason: Amazon SQS "
            "can't create the redrive allow policy, as it's in an unsupported format."
        )


def normalize_all(attributes: Mapping[str, Any], *, fifo: bool) -> dict[str, str]:
    """Validate and normalise a whole attribute map (order preserved)."""
    normalized = {name: normalize(name, value, fifo=fifo) for name, value in attributes.items()}
    if normalized.get("KmsMasterKeyId") and normalized.get("SqsManagedSseEnabled") == "true":
        raise invalid_attribute_name(
            "You can use one type of server-side encryption (SSE) at one time. You can either "
            "enable KMS SSE or SQS SSE."
        )
    return normalized
