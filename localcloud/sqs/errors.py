"""The errors SQS returns, with the codes and messages AWS uses.

SQS speaks the JSON protocol with the ``awsQueryCompatible`` trait: an error carries a
JSON ``__type`` (the modelled shape, e.g. ``QueueDoesNotExist``) and an
``x-amzn-query-error`` header with the historical query-protocol code (e.g.
``AWS.SimpleQueueService.NonExistentQueue``), which botocore reports as the error code.
For the two common validation errors AWS's ``__type`` names an exception that the model
does not have (``InvalidParameterValueException``, ``MissingRequiredParameterException``,
recorded from AWS); SDKs that read ``__type`` see those names.
"""

from __future__ import annotations


class SqsError(Exception):
    """An SQS API error: ``shape`` is the JSON ``__type``, ``code`` the query-protocol code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        shape: str | None = None,
        status: int = 400,
        sender_fault: bool = True,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.shape = shape or code
        self.status = status
        self.sender_fault = sender_fault


def invalid_parameter_value(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message, shape="InvalidParameterValueException")


def missing_parameter(name: str) -> SqsError:
    return SqsError(
        "MissingParameter",
        f"The request must contain the parameter {name}.",
        shape="MissingRequiredParameterException",
    )


NON_EXISTENT_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"
# What the query protocol says instead of "The specified queue does not exist." (recorded).
NON_EXISTENT_QUEUE_QUERY_MESSAGE = "The specified queue does not exist for this wsdl version."


def queue_does_not_exist() -> SqsError:
    return SqsError(
        NON_EXISTENT_QUEUE, "The specified queue does not exist.", shape="QueueDoesNotExist"
    )


def queue_name_exists(attribute: str) -> SqsError:
    return SqsError(
        "QueueAlreadyExists",
        "A queue already exists with the same name and a different value for attribute "
        f"{attribute}",
        shape="QueueNameExists",
    )


def invalid_attribute_name(message: str) -> SqsError:
    return SqsError("InvalidAttributeName", message)


def queue_deleted_recently() -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another with "
        "the same name.",
        shape="QueueDeletedRecently",
    )


def invalid_attribute_value(attribute: str, reason: str | None = None) -> SqsError:
    message = f"Invalid value for the parameter {attribute}."
    if reason:
        message = f"Invalid value for the parameter {attribute}. Reason: {reason}"
    return SqsError("InvalidAttributeValue", message)


def receipt_handle_is_invalid(handle: str) -> SqsError:
    return SqsError(
        "ReceiptHandleIsInvalid",
        f'The input receipt handle "{handle}" is not a valid receipt handle.',
    )


def receipt_handle_expired(handle: str) -> SqsError:
    return invalid_parameter_value(
        f"Value {handle} for parameter ReceiptHandle is invalid. "
        "Reason: The receipt handle has expired."
    )


def message_not_inflight() -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.MessageNotInflight",
        "The message referred to is not in flight.",
        shape="MessageNotInflight",
    )


def empty_batch(action: str) -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.EmptyBatchRequest",
        f"There should be at least one {action}RequestEntry in the request.",
        shape="EmptyBatchRequest",
    )


def too_many_entries(count: int) -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        f"Maximum number of entries per request are 10. You have sent {count}.",
        shape="TooManyEntriesInBatchRequest",
    )


def batch_ids_not_distinct(entry_id: str) -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        f"Id {entry_id} repeated.",
        shape="BatchEntryIdsNotDistinct",
    )


def invalid_batch_entry_id() -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
        "It can be at most 80 letters long.",
        shape="InvalidBatchEntryId",
    )


def batch_request_too_long(limit: int, size: int) -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.BatchRequestTooLong",
        f"Batch requests cannot be longer than {limit} bytes. You have sent {size} bytes.",
        shape="BatchRequestTooLong",
    )


def invalid_message_contents() -> SqsError:
    return SqsError(
        "InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | "
        "#x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
    )


def purge_in_progress(queue_name: str) -> SqsError:
    return SqsError(
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        f"Only one PurgeQueue operation on {queue_name} is allowed every 60 seconds.",
        shape="PurgeQueueInProgress",
        status=403,
    )


def throttled() -> SqsError:
    # What a non-high-throughput FIFO queue returns beyond 300 transactions per second per
    # API action (SQS developer guide, "Troubleshoot FIFO throttling issues").
    return SqsError("ThrottlingException", "Rate exceeded")


def resource_not_found(message: str) -> SqsError:
    return SqsError("ResourceNotFoundException", message, status=404)
