"""The processor function: ``handlers.processor.handler``, fed by the FIFO task queue.

Powertools' ``SqsFifoPartialProcessor`` handles the records of a batch in order and stops
at the first failure: that record and every record after it are reported in
``batchItemFailures`` so the queue redelivers them, in order. What one record does is
:class:`handlers.domain.processing.Processor`.

A batch whose every record failed is reported the same way (``batchItemFailures`` lists
them all) instead of raising: the queue treats both alike, and the invocation is not a
Lambda error, so the processor-errors alarm (Lambda ``Errors`` + ``ProcessingFailures``)
counts each failed record once. Lambda ``Errors`` then counts only what this code cannot
report itself: crashes, timeouts, initialization errors.

Metrics (EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service``):
``TasksProcessed``, ``DuplicateDeliveries``, ``ProcessingFailures`` (records that failed
in this code: retried ones and last attempts), ``TasksFailed`` (dead-lettered tasks),
``PoisonMessages``, ``UnknownTaskMessages`` and ``DroppedMessages`` (a CANCELLED task's
message).
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

from handlers.adapters.aws import TRACED_LIBRARIES, dynamodb_client, sqs_client
from handlers.adapters.failures import classify_aws_error
from handlers.adapters.ledger import DynamoTaskLedger
from handlers.adapters.sqs import SqsDeadLetters
from handlers.domain.clock import MonotonicUtcClock
from handlers.domain.faults import fault_injection_enabled
from handlers.domain.messages import TaskMessage
from handlers.domain.processing import AttemptFailedError, Delivery, Outcome, Processor, Result
from handlers.settings import ProcessorSettings

logger = Logger()
tracer = Tracer(patch_modules=TRACED_LIBRARIES)
metrics = Metrics()
# Every message is read with it: build its validator during init, not on the first message.
TaskMessage.model_rebuild()
# An invocation with no application metric (a CORS preflight, an attempt cut short) is
# normal here; powertools would print a UserWarning into the function's log for each.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
batch = SqsFifoPartialProcessor()
# Report an all-failed batch in batchItemFailures instead of raising (see the docstring).
batch.raise_on_entire_batch_failure = False

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
    ledger: DynamoTaskLedger
    dead_letters: SqsDeadLetters
    clock: MonotonicUtcClock


@cache
def _services() -> _Services:
    settings = ProcessorSettings.from_env()
    return _Services(
        settings=settings,
        ledger=DynamoTaskLedger(
            dynamodb_client(), settings.tasks_table_name, attempt_budget=settings.attempt_budget
        ),
        dead_letters=SqsDeadLetters(sqs_client(), settings.dead_letter_queue_url),
        clock=MonotonicUtcClock(),
    )


def reset_dependencies() -> None:
    """Forget the clients and settings (tests change the environment between cases)."""
    _services.cache_clear()


def delivery_of(record: SQSRecord, invocation: str = "") -> Delivery:
    """The domain's view of an SQS record, delivered to the invocation ``invocation``."""
    attributes = record.attributes
    return Delivery(
        message_id=record.message_id,
        body=record.body or "",
        receive_count=int(attributes.approximate_receive_count),
        sequence_number=attributes.sequence_number,
        message_group_id=attributes.message_group_id,
        invocation=invocation,
    )


def _task_id_hint(body: str) -> str | None:
    """The task id for log correlation, when the body is readable enough to have one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    task_id = data.get("task_id") if isinstance(data, dict) else None
    return task_id if isinstance(task_id, str) else None


_METRICS: dict[Outcome, tuple[str, ...]] = {
    Outcome.COMPLETED: ("TasksProcessed",),
    Outcome.DUPLICATE: ("DuplicateDeliveries",),
    Outcome.POISON: ("PoisonMessages",),
    # This attempt failed and was the last: a failed record, and a failed task.
    Outcome.DEAD_LETTERED: ("ProcessingFailures", "TasksFailed"),
    # The last attempt had ended without a result: already counted (Lambda Errors).
    Outcome.EXHAUSTED: ("TasksFailed",),
    Outcome.UNKNOWN_TASK: ("UnknownTaskMessages",),
    Outcome.DROPPED: ("DroppedMessages",),
}


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> Outcome:
    """Process one record; raising marks it (and the rest of the batch) failed."""
    services = _services()
    settings = services.settings
    invocation = lambda_context.aws_request_id if lambda_context is not None else ""
    delivery = delivery_of(record, invocation)
    logger.set_correlation_id(_task_id_hint(delivery.body))
    logger.append_keys(message_id=delivery.message_id, receive_count=delivery.receive_count)
    processor = Processor(
        ledger=services.ledger,
        dead_letters=services.dead_letters,
        effects=LambdaFaultEffects(lambda_context),
        clock=services.clock,
        fault_injection=fault_injection_enabled(settings.fault_injection_flag),
        attempt_budget=settings.attempt_budget,
        classify=classify_aws_error,
    )
    try:
        result: Result = processor.process(delivery)
    except AttemptFailedError as failed:
        metrics.add_metric(name="ProcessingFailures", unit=MetricUnit.Count, value=1)
        # The full error goes to the log only; the task records the short code.
        logger.error(
            "attempt failed; the task will be retried",
            extra={"error_code": failed.code},
            exc_info=failed.cause,
        )
        raise
    except Exception:
        # Before an attempt could start (e.g. the start write itself failed): the record
        # failed all the same and is retried.
        metrics.add_metric(name="ProcessingFailures", unit=MetricUnit.Count, value=1)
        logger.exception("processing failed before an attempt started")
        raise
    for metric in _METRICS[result.outcome]:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    if result.error is not None:
        logger.error(
            "last attempt failed; the task is FAILED and in the dead-letter queue",
            extra={"error_code": result.failure_code},
            exc_info=result.error,
        )
    elif result.outcome is Outcome.EXHAUSTED:
        logger.error(
            "attempts exhausted by an attempt that never finished; the task is FAILED and in "
            "the dead-letter queue",
            extra={"error_code": result.failure_code},
        )
    logger.info("record handled", extra={"outcome": result.outcome.value})
    return result.outcome


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Lambda entry point (SQS event source mapping with ReportBatchItemFailures)."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch, context=context
    )
