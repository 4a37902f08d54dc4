"""What the CloudFormation engine hands to the local services.

The engine (``localcloud.cfn``) reads the synthesized templates, resolves intrinsics
and turns the resources the local cloud emulates itself (Lambda, event source mappings,
API Gateway, alarms) into these plain, resolved specs. The services
(``localcloud.lambda_service``, ``localcloud.lambda_service.esm``, ``localcloud.apigw``,
``localcloud.alarms``) consume only these, so neither side reads the other's code.
Everything here is already resolved: no intrinsic functions remain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class FunctionSpec:
    """An ``AWS::Lambda::Function`` as the Lambda service runs it."""

    logical_id: str
    stack_name: str
    function_name: str
    arn: str
    handler: str  # e.g. "handlers.api.handler"
    runtime: str  # e.g. "python3.12"
    code_dir: Path  # the asset directory (the Lambda task root)
    timeout_s: int = 3
    memory_mb: int = 128
    reserved_concurrency: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    role_arn: str = ""
    log_group_name: str = ""  # "/aws/lambda/<name>" unless LoggingConfig names one
    tracing_mode: str = "PassThrough"  # TracingConfig.Mode: "Active" or "PassThrough"


@dataclass(frozen=True)
class EventSourceMappingSpec:
    """An ``AWS::Lambda::EventSourceMapping`` from an SQS queue."""

    uuid: str
    function_name: str
    event_source_arn: str
    queue_url: str
    batch_size: int = 10
    maximum_batching_window_s: int = 0
    function_response_types: tuple[str, ...] = ()
    enabled: bool = True
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency


@dataclass(frozen=True)
class IntegrationResponse:
    """One MOCK integration response (what CDK emits for CORS preflight)."""

    status_code: str
    response_parameters: Mapping[str, str] = field(default_factory=dict)
    response_templates: Mapping[str, str] = field(default_factory=dict)
    selection_pattern: str | None = None


@dataclass(frozen=True)
class ApiMethod:
    """One method on one resource of a REST API."""

    resource_path: str  # "/tasks/{task_id}"
    http_method: str  # "GET", "POST", "OPTIONS", "ANY"
    integration_type: Literal["AWS_PROXY", "MOCK"]
    function_name: str | None = None  # for AWS_PROXY
    api_key_required: bool = False
    authorization_type: str = "NONE"
    request_templates: Mapping[str, str] = field(default_factory=dict)  # MOCK
    integration_responses: tuple[IntegrationResponse, ...] = ()  # MOCK
    method_response_status_codes: tuple[str, ...] = ()
    integration_timeout_ms: int = 29_000


@dataclass(frozen=True)
class GatewayResponse:
    """An ``AWS::ApiGateway::GatewayResponse``: how the API answers its own errors of one
    response type (``DEFAULT_4XX``, ``THROTTLED``, ...)."""

    response_type: str
    status_code: int | None = None  # None: the response type's own status
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> static value
    template: str | None = None  # the application/json body template


@dataclass(frozen=True)
class RestApiSpec:
    """An ``AWS::ApiGateway::RestApi`` with its resources, methods and deployed stage."""

    api_id: str
    name: str
    stage_name: str
    methods: tuple[ApiMethod, ...]
    throttling_rate_limit: float | None = None  # stage MethodSettings "/*/*"
    throttling_burst_limit: int | None = None
    access_log_group_arn: str | None = None
    access_log_format: str | None = None
    api_keys: tuple[str, ...] = ()  # key values, if the template declares any
    minimum_compression_size: int | None = None
    gateway_responses: tuple[GatewayResponse, ...] = ()


@dataclass(frozen=True)
class MetricDimension:
    name: str
    value: str


@dataclass(frozen=True)
class MetricQuery:
    """One entry of a metric-math alarm's ``Metrics``: a metric (``MetricStat``) or an
    ``expression`` over the other entries' ids."""

    id: str
    expression: str | None = None
    namespace: str = ""
    metric_name: str = ""
    dimensions: tuple[MetricDimension, ...] = ()
    statistic: str = ""
    period_s: int = 0
    return_data: bool = False


@dataclass(frozen=True)
class AlarmSpec:
    """An ``AWS::CloudWatch::Alarm``: on a single metric, or (``metrics`` not empty) on the
    one entry of a metric-math ``Metrics`` list that returns data; ``namespace``,
    ``metric_name``, ``dimensions`` and ``statistic`` are then empty, and ``period_s`` is
    the queries' period."""

    alarm_name: str
    namespace: str
    metric_name: str
    dimensions: tuple[MetricDimension, ...]
    statistic: str  # "Sum", "Maximum", ...
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison_operator: str  # "GreaterThanThreshold", ...
    treat_missing_data: str = "missing"
    actions_enabled: bool = True
    metrics: tuple[MetricQuery, ...] = ()


class LocalServices(Protocol):
    """What the CloudFormation engine calls to bring emulated resources to life.

    Resources that moto already serves (SQS through our engine, DynamoDB, IAM, Logs,
    CloudWatch alarms storage, ...) are created through boto3 by the engine itself;
    these hooks are for what the local cloud runs.
    """

    def add_function(self, spec: FunctionSpec) -> None: ...

    def add_event_source_mapping(self, spec: EventSourceMappingSpec) -> None: ...

    def add_rest_api(self, spec: RestApiSpec) -> str:
        """Serve the API; return its local invoke URL (``http://127.0.0.1:PORT/<stage>/``)."""
        ...

    def add_alarm(self, spec: AlarmSpec) -> None: ...


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one Lambda invocation, as the Invoke API reports it."""

    status_code: int  # 200 for an invocation that ran (even if the function errored), 429 throttled
    payload: bytes
    function_error: str | None = None  # "Unhandled" for errors, crashes and timeouts
    error_type: str | None = None  # e.g. "Sandbox.Timedout", "Runtime.ExitError"
    cold_start: bool = False
    duration_ms: float = 0.0
    log_tail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
