"""Telling "already gone" apart from real failures when deleting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from botocore.exceptions import ClientError

_MISSING_CODES: Final = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "ResourceNotFoundException",
        "ResourceNotFound",
        "NoSuchEntity",
        "NotFoundException",
        "ValidationError",  # CloudWatch DeleteAlarms/DeleteDashboards of an unknown name
    }
)


def is_missing(error: ClientError) -> bool:
    """Whether a ``ClientError`` says the resource does not exist."""
    return error.response.get("Error", {}).get("Code", "") in _MISSING_CODES


@contextmanager
def ignore_missing() -> Iterator[None]:
    """Swallow a ``ClientError`` saying the resource is already gone; re-raise anything else."""
    try:
        yield
    except ClientError as error:
        if not is_missing(error):
            raise
