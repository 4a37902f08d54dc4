"""The local Lambda service: functions run by the official runtime interface client.

See :mod:`localcloud.lambda_service.service` for what is emulated and how.
"""

from localcloud.lambda_service.service import (
    MAX_PAYLOAD_BYTES,
    FunctionStats,
    LambdaService,
    LambdaServiceClosedError,
    lambda_environment,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "FunctionStats",
    "LambdaService",
    "LambdaServiceClosedError",
    "lambda_environment",
]
