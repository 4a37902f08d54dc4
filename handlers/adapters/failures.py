"""AWS errors as the processor's failure codes (what GET shows for a FAILED task).

A module of its own so the API, which records no failure codes, does not load the
processor's domain at its cold start.
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import BotoCoreError, ClientError

from handlers.domain.processing import FailureCode

_THROTTLING: Final = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
    }
)
_ACCESS_DENIED: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "KMSAccessDeniedException",
    }
)


def classify_aws_error(exc: BaseException) -> str:
    """A short failure code for an exception: what GET may show instead of its text (an
    AWS error message can carry ARNs and account ids)."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLING:
            return FailureCode.THROTTLED.value
        if code in _ACCESS_DENIED:
            return FailureCode.ACCESS_DENIED.value
        if status >= 500 or code in ("InternalServerError", "ServiceUnavailable"):
            return FailureCode.DEPENDENCY_UNAVAILABLE.value
        return FailureCode.DEPENDENCY_ERROR.value
    if isinstance(exc, BotoCoreError):  # timeouts, connection errors
        return FailureCode.DEPENDENCY_UNAVAILABLE.value
    return FailureCode.INTERNAL_ERROR.value
