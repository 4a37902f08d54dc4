"""The output contract: the one place that names the stack outputs.

Every target (a real ``cdk deploy --outputs-file`` or the local stack) ends in the same
JSON, ``{StackName: {OutputKey: value}}``. The CDK stacks emit these keys, the local
cloud writes them, and the harness reads only them.
"""

from __future__ import annotations

from typing import Final

# Emitted by the CDK stacks.
API_URL: Final = "ApiUrl"
API_ID: Final = "ApiId"
API_FUNCTION_NAME: Final = "ApiFunctionName"
TASK_QUEUE_URL: Final = "TaskQueueUrl"
TASK_QUEUE_ARN: Final = "TaskQueueArn"
DEAD_LETTER_QUEUE_URL: Final = "DeadLetterQueueUrl"
TASKS_TABLE_NAME: Final = "TasksTableName"
IDEMPOTENCY_TABLE_NAME: Final = "IdempotencyTableName"
PROCESSOR_FUNCTION_NAME: Final = "ProcessorFunctionName"
API_ERRORS_ALARM_NAME: Final = "ApiErrorsAlarmName"
PROCESSOR_ERRORS_ALARM_NAME: Final = "ProcessorErrorsAlarmName"
DLQ_ALARM_NAME: Final = "DlqAlarmName"
DASHBOARD_NAME: Final = "DashboardName"
PROFILE: Final = "Profile"

# Added by the local stack only: where boto3 clients point, and the region to use.
AWS_ENDPOINT_URL: Final = "AwsEndpointUrl"
REGION: Final = "Region"
# Added by the local stack only: API clients' credentials (IAM users of the local cloud).
# The invoker may call execute-api:Invoke on the API; the other key is valid but may not.
API_ACCESS_KEY_ID: Final = "ApiAccessKeyId"
API_SECRET_ACCESS_KEY: Final = "ApiSecretAccessKey"  # noqa: S105 - an output key's name
API_NO_INVOKE_ACCESS_KEY_ID: Final = "ApiNoInvokeAccessKeyId"
API_NO_INVOKE_SECRET_ACCESS_KEY: Final = "ApiNoInvokeSecretAccessKey"  # noqa: S105

STACK_OUTPUTS: Final = (
    API_URL,
    API_ID,
    API_FUNCTION_NAME,
    TASK_QUEUE_URL,
    TASK_QUEUE_ARN,
    DEAD_LETTER_QUEUE_URL,
    TASKS_TABLE_NAME,
    IDEMPOTENCY_TABLE_NAME,
    PROCESSOR_FUNCTION_NAME,
    API_ERRORS_ALARM_NAME,
    PROCESSOR_ERRORS_ALARM_NAME,
    DLQ_ALARM_NAME,
    DASHBOARD_NAME,
    PROFILE,
)
REQUIRED_OUTPUTS: Final = (API_URL, TASK_QUEUE_URL, DEAD_LETTER_QUEUE_URL, TASKS_TABLE_NAME)
LOCAL_OUTPUTS: Final = (AWS_ENDPOINT_URL, REGION)

# Names shared by the handlers, the CDK app and the harness.
FAULT_INJECTION_ENV: Final = "FAULT_INJECTION_ENABLED"
FAULT_INJECTION_HEADER: Final = "X-Fault-Injection"
MESSAGE_GROUP_ID: Final = "task-processing"


def flatten(outputs: dict[str, dict[str, str]]) -> dict[str, str]:
    """Merge ``{StackName: {OutputKey: value}}`` into one mapping; a key seen twice is an error."""
    merged: dict[str, str] = {}
    for stack_name, values in outputs.items():
        for key, value in values.items():
            if key in merged and merged[key] != value:
                raise ValueError(
                    f"output {key!r} differs between stacks (seen again in {stack_name})"
                )
            merged[key] = value
    return merged
