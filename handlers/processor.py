"""The processor function: ``handlers.processor.handler``, fed by the FIFO task queue.

Powertools' ``SqsFifoPartialProcessor`` handles the records of a batch in order and stops
at the first failure: that record and every record after it are reported in
``batchItemFailures`` so the queue redelivers them, in order. What one record does is
:func:`handlers.domain.processing.process_delivery`.

Metrics (EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE``): ``TasksProcessed``,
``DuplicateDeliveries``, ``ProcessingFailures``, ``TasksFailed`` (given up on the last
attempt) and ``PoisonMessages``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers.adapters.aws import dynamodb_client, sqs_client
from handlers.adapters.dynamodb import DynamoTaskTable
from handlers.adapters.sqs import SqsDeadLetters
from handlers.domain.clock import MonotonicUtcClock
from handlers.domain.faults import fault_injection_enabled
from handlers.domain.processing import Delivery, Outcome, process_delivery
from handlers.settings import ProcessorSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# An invocation with no application metric (a CORS preflight, an attempt cut short) is
# normal here; powertools would print a UserWarning into the function's log for each.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
batch = SqsFifoPartialProcessor()

# Past the deadline, so Lambda (not this code) ends an invocation told to time out.
_TIMEOUT_OVERSHOOT_S = 5.0
_CRASH_EXIT_CODE = 70
# Indirections the unit tests replace: a real sleep or exit would stall or end pytest.
_sleep = time.sleep
_exit = os._exit


class LambdaFaultEffects:
    """Timeouts and crashes done for real: they end the invocation, as in production."""

    def __init__(self, context: LambdaContext | None) -> None:
        self._context = context

    def time_out(self) -> None:
        """Sleep until Lambda kills the invocation for exceeding its timeout."""
        remaining_ms = self._context.get_remaining_time_in_millis() if self._context else 0
        logger.warning(
            "fault injection: sleeping past the deadline", extra={"remaining_ms": remaining_ms}
        )
        _sleep(remaining_ms / 1000 + _TIMEOUT_OVERSHOOT_S)

    def crash(self) -> NoReturn:
        """End the process now, without cleanup, as a segfault or OOM kill would."""
        logger.warning("fault injection: crashing the process")
        _exit(_CRASH_EXIT_CODE)


@dataclass(frozen=True)
class _Services:
    settings: ProcessorSettings
    ledger: DynamoTaskTable
    dead_letters: SqsDeadLetters
    clock: MonotonicUtcClock


@cache
def _services() -> _Services:
    settings = ProcessorSettings.from_env()
    return _Services(
        settings=settings,
        ledger=DynamoTaskTable(dynamodb_client(), settings.tasks_table_name),
        dead_letters=SqsDeadLetters(sqs_client(), settings.dead_letter_queue_url),
        clock=MonotonicUtcClock(),
    )


def reset_dependencies() -> None:
    """Forget the clients and settings (tests change the environment between cases)."""
    _services.cache_clear()


def delivery_of(record: SQSRecord) -> Delivery:
    """The domain's view of an SQS record."""
    attributes = record.attributes
    return Delivery(
        message_id=record.message_id,
        body=record.body or "",
        receive_count=int(attributes.approximate_receive_count),
        sequence_number=attributes.sequence_number,
        message_group_id=attributes.message_group_id,
    )


def _task_id_hint(body: str) -> str | None:
    """The task id for log correlation, when the body is readable enough to have one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    task_id = data.get("task_id") if isinstance(data, dict) else None
    return task_id if isinstance(task_id, str) else None


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> Outcome:
    """Process one record; raising marks it (and the rest of the batch) failed."""
    services = _services()
    settings = services.settings
    delivery = delivery_of(record)
    logger.set_correlation_id(_task_id_hint(delivery.body))
    logger.append_keys(message_id=delivery.message_id, receive_count=delivery.receive_count)
    try:
        outcome = process_delivery(
            delivery,
            ledger=services.ledger,
            dead_letters=services.dead_letters,
            effects=LambdaFaultEffects(lambda_context),
            clock=services.clock,
            fault_injection=fault_injection_enabled(settings.fault_injection_flag),
            max_receive_count=settings.max_receive_count,
        )
    except Exception:
        final = delivery.receive_count >= settings.max_receive_count
        metrics.add_metric(name="ProcessingFailures", unit=MetricUnit.Count, value=1)
        if final:
            metrics.add_metric(name="TasksFailed", unit=MetricUnit.Count, value=1)
        logger.exception("processing failed", extra={"final_attempt": final})
        raise
    metric = {
        Outcome.COMPLETED: "TasksProcessed",
        Outcome.DUPLICATE: "DuplicateDeliveries",
        Outcome.POISON: "PoisonMessages",
        # Its last allowed attempt failed: the task is FAILED and in the DLQ.
        Outcome.DEAD_LETTERED: "TasksFailed",
    }[outcome]
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    if outcome is Outcome.DEAD_LETTERED:
        metrics.add_metric(name="ProcessingFailures", unit=MetricUnit.Count, value=1)
    logger.info("record handled", extra={"outcome": outcome.value})
    return outcome


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source mapping with ReportBatchItemFailures)."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch, context=context
    )
