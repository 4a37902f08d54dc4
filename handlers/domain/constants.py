"""Names and limits shared by the API and the processor.

The first three mirror ``cdk/contract.py``: the Lambda asset ships only ``handlers/``, so
they are copied here, and a unit test keeps both copies equal.
"""

from __future__ import annotations

from typing import Final

# --- mirrored from cdk/contract.py ---------------------------------------------------
FAULT_INJECTION_ENV: Final = "FAULT_INJECTION_ENABLED"
FAULT_INJECTION_HEADER: Final = "X-Fault-Injection"
MESSAGE_GROUP_ID: Final = "task-processing"

# --- API limits ------------------------------------------------------------------------
MAX_BODY_BYTES: Final = 16384
"""Largest accepted POST /tasks body, in bytes (16 KiB); larger bodies get 413."""

TITLE_MAX_CHARS: Final = 200
DESCRIPTION_MAX_CHARS: Final = 2000
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_CHARS: Final = 255
IDEMPOTENCY_WINDOW_SECONDS: Final = 24 * 60 * 60
"""How long an ``Idempotency-Key`` keeps answering with the first response."""

RETRY_AFTER_SECONDS: Final = 2
"""``Retry-After`` sent with 503 (queue unavailable) and 409 (same key still in flight)."""

# --- queue message ----------------------------------------------------------------------
SCHEMA_VERSION: Final = 1
"""Version of the task message body the API writes and the processor reads."""

# Names of the message attributes a poison message carries in the dead-letter queue.
DLQ_REASON_ATTRIBUTE: Final = "PoisonReason"
DLQ_DETAIL_ATTRIBUTE: Final = "PoisonDetail"
DLQ_SOURCE_MESSAGE_ID_ATTRIBUTE: Final = "SourceMessageId"
# How many times the source queue had delivered the message when it was forwarded.
DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE: Final = "SourceReceiveCount"
