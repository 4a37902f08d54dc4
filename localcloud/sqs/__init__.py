"""A local SQS that behaves like AWS SQS (FIFO included): engine, wire protocol, clock.

``SqsEngine`` holds the state and the rules; ``protocol`` speaks SQS's JSON and query
protocols on top of it; :mod:`localcloud.endpoint` serves both on one local URL with
moto's other services.
"""

from localcloud.sqs.clock import Clock, FakeClock, SystemClock
from localcloud.sqs.engine import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    BatchError,
    MoveTaskInfo,
    Queue,
    QueueDepth,
    ReceivedMessage,
    SendEntry,
    SendResult,
    SqsEngine,
)
from localcloud.sqs.errors import SqsError

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "BatchError",
    "Clock",
    "FakeClock",
    "MoveTaskInfo",
    "Queue",
    "QueueDepth",
    "ReceivedMessage",
    "SendEntry",
    "SendResult",
    "SqsEngine",
    "SqsError",
    "SystemClock",
]
