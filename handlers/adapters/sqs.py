"""The task queue (for the API) and the dead-letter queue (for the processor's poison)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from botocore.exceptions import BotoCoreError, ClientError

from handlers.domain.constants import (
    DLQ_DETAIL_ATTRIBUTE,
    DLQ_REASON_ATTRIBUTE,
    DLQ_SOURCE_MESSAGE_ID_ATTRIBUTE,
    DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE,
    MESSAGE_GROUP_ID,
)
from handlers.domain.submission import QueueUnavailableError

if TYPE_CHECKING:
    from types_boto3_sqs.client import SQSClient

    from handlers.domain.messages import PoisonReason
    from handlers.domain.processing import Delivery

# SQS attribute values allow only some characters; keep the detail printable and short.
_UNSAFE_ATTRIBUTE_CHARS: Final = re.compile(r"[^\x20-\x7e]")
_MAX_DETAIL_CHARS: Final = 1000


class SqsTaskQueue:
    """Sends task messages to the FIFO task queue, all in one message group."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, *, body: str, deduplication_id: str) -> None:
        """Send one message; any AWS error becomes QueueUnavailableError (-> 503)."""
        try:
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=body,
                MessageGroupId=MESSAGE_GROUP_ID,
                # Explicit, so two submissions with identical content stay two tasks
                # even though the queue has content-based deduplication switched on.
                MessageDeduplicationId=deduplication_id,
            )
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailableError(str(exc)) from exc


class SqsDeadLetters:
    """Forwards poison messages to the FIFO dead-letter queue with the reason attached."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send_poison(self, delivery: Delivery, reason: PoisonReason, detail: str) -> None:
        """Send the body unchanged; the message id as deduplication id makes retries safe."""
        safe_detail = _UNSAFE_ATTRIBUTE_CHARS.sub("?", detail)[:_MAX_DETAIL_CHARS] or "-"
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=delivery.body,
            MessageGroupId=delivery.message_group_id or MESSAGE_GROUP_ID,
            MessageDeduplicationId=delivery.message_id,
            MessageAttributes={
                DLQ_REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason.value},
                DLQ_DETAIL_ATTRIBUTE: {"DataType": "String", "StringValue": safe_detail},
                DLQ_SOURCE_MESSAGE_ID_ATTRIBUTE: {
                    "DataType": "String",
                    "StringValue": delivery.message_id,
                },
                DLQ_SOURCE_RECEIVE_COUNT_ATTRIBUTE: {
                    "DataType": "Number",
                    "StringValue": str(delivery.receive_count),
                },
            },
        )
