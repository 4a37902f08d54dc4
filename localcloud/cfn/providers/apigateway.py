"""API Gateway (REST, v1) resources, collected into one ``RestApiSpec`` per stage.

API Gateway is served by the local cloud itself, so these providers only record what
the template declares (ids are generated like AWS's). Once every stack is provisioned,
``build_rest_api_specs`` composes each stage's methods (paths from the resource tree,
Lambda proxy targets from the integration URIs, MOCK responses for CORS preflight),
throttling and access logging into the spec the local API Gateway front serves.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from localcloud.cfn.errors import TemplateError
from localcloud.cfn.providers.base import (
    ApiGatewayModel,
    Created,
    Provider,
    ProviderContext,
    ValidationContext,
    as_bool,
    require,
)
from localcloud.cfn.providers.lambda_ import function_name_of
from localcloud.specs import (
    ApiMethod,
    FunctionSpec,
    GatewayResponse,
    IntegrationResponse,
    RestApiSpec,
)

_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
_SUPPORTED_INTEGRATIONS: Final = ("AWS_PROXY", "MOCK")
# Authorizers (CUSTOM, COGNITO_USER_POOLS) would need code or a user pool we do not run:
# refused, never served unauthenticated.
_SUPPORTED_AUTHORIZATION: Final = ("NONE", "AWS_IAM")
# arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations
_LAMBDA_URI: Final = re.compile(r":lambda:path/[^/]+/functions/(?P<function>.+)/invocations$")
_DEFAULT_INTEGRATION_TIMEOUT_MS: Final = 29_000


def _new_id(length: int) -> str:
    return "".join(random.choices(_ID_ALPHABET, k=length))


def _model(ctx: ProviderContext) -> ApiGatewayModel:
    return ctx.state.apigateway


class RestApiProvider(Provider):
    """A REST API; ``Ref`` is its id (10 characters, like AWS's)."""

    resource_type = "AWS::ApiGateway::RestApi"
    attributes = frozenset({"RootResourceId", "RestApiId"})

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        if "Body" in properties or "BodyS3Location" in properties:
            raise ctx.error(
                "REST APIs defined by an OpenAPI body (SpecRestApi) are not supported by the "
                "local API Gateway; declare resources and methods"
            )

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        api_id, root_id = _new_id(10), _new_id(10)
        minimum = properties.get("MinimumCompressionSize")
        _model(ctx).apis[api_id] = {
            "name": str(properties.get("Name", ctx.logical_id)),
            "root_id": root_id,
            "minimum_compression_size": None if minimum is None else int(minimum),
            "stack": ctx.stack_name,
            "logical_id": ctx.logical_id,
        }
        return Created(
            physical_id=api_id, attributes={"RootResourceId": root_id, "RestApiId": api_id}
        )


class ResourceProvider(Provider):
    """One path part under a parent resource."""

    resource_type = "AWS::ApiGateway::Resource"
    attributes = frozenset({"ResourceId"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        resource_id = _new_id(6)
        _model(ctx).resources[resource_id] = (
            str(require(ctx, properties, "RestApiId")),
            str(require(ctx, properties, "ParentId")),
            str(require(ctx, properties, "PathPart")),
        )
        return Created(physical_id=resource_id, attributes={"ResourceId": resource_id})


class MethodProvider(Provider):
    """A method with its integration (Lambda proxy or MOCK)."""

    resource_type = "AWS::ApiGateway::Method"

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        integration = properties.get("Integration") or {}
        kind = ctx.try_resolve(integration.get("Type"))
        if isinstance(kind, str) and kind not in _SUPPORTED_INTEGRATIONS:
            raise ctx.error(
                f"integration type {kind!r} is not supported by the local API Gateway "
                f"(supported: {', '.join(_SUPPORTED_INTEGRATIONS)})",
                path="Properties.Integration.Type",
            )
        authorization = ctx.try_resolve(properties.get("AuthorizationType", "NONE"))
        if isinstance(authorization, str) and authorization not in _SUPPORTED_AUTHORIZATION:
            raise ctx.error(
                f"authorization type {authorization!r} is not supported by the local API "
                f"Gateway (supported: {', '.join(_SUPPORTED_AUTHORIZATION)})",
                path="Properties.AuthorizationType",
            )

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        method_id = _new_id(6)
        _model(ctx).methods.append(
            {
                "api_id": str(require(ctx, properties, "RestApiId")),
                "resource_id": str(require(ctx, properties, "ResourceId")),
                "properties": properties,
                "stack": ctx.stack_name,
                "logical_id": ctx.logical_id,
            }
        )
        return Created(physical_id=method_id)


class DeploymentProvider(Provider):
    """A deployment: the stages that point at it serve the methods."""

    resource_type = "AWS::ApiGateway::Deployment"
    attributes = frozenset({"DeploymentId"})

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        if "StageName" in properties:
            raise ctx.error(
                "a Deployment that creates its own stage (StageName) is not supported by the "
                "local API Gateway; declare an AWS::ApiGateway::Stage",
                path="Properties.StageName",
            )

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        deployment_id = _new_id(6)
        _model(ctx).deployments[deployment_id] = str(require(ctx, properties, "RestApiId"))
        return Created(physical_id=deployment_id, attributes={"DeploymentId": deployment_id})


class StageProvider(Provider):
    """A stage; ``Ref`` is the stage name."""

    resource_type = "AWS::ApiGateway::Stage"

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        stage_name = str(require(ctx, properties, "StageName"))
        _model(ctx).stages.append(
            {
                "api_id": str(require(ctx, properties, "RestApiId")),
                "stage_name": stage_name,
                "properties": properties,
                "stack": ctx.stack_name,
                "logical_id": ctx.logical_id,
            }
        )
        return Created(physical_id=stage_name)


class ApiKeyProvider(Provider):
    """An API key; its value is the template's ``Value`` or a generated one."""

    resource_type = "AWS::ApiGateway::ApiKey"
    attributes = frozenset({"APIKeyId"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        key_id = _new_id(10)
        model = _model(ctx)
        if as_bool(properties.get("Enabled", True)):
            model.api_keys[key_id] = str(properties.get("Value") or _new_id(40))
        for stage_key in properties.get("StageKeys") or ():
            model.stage_keys.append(
                (key_id, str(stage_key.get("RestApiId", "")), str(stage_key.get("StageName", "")))
            )
        return Created(physical_id=key_id, attributes={"APIKeyId": key_id})


class UsagePlanProvider(Provider):
    """A usage plan: which stages its keys open (its throttle and quota are not enforced)."""

    resource_type = "AWS::ApiGateway::UsagePlan"
    attributes = frozenset({"Id"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        plan_id = _new_id(6)
        _model(ctx).usage_plans[plan_id] = [
            (str(entry.get("ApiId", "")), str(entry.get("Stage", "")))
            for entry in properties.get("ApiStages") or ()
        ]
        return Created(physical_id=plan_id, attributes={"Id": plan_id})


class UsagePlanKeyProvider(Provider):
    """An API key in a usage plan."""

    resource_type = "AWS::ApiGateway::UsagePlanKey"
    attributes = frozenset({"Id"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        plan_id = str(require(ctx, properties, "UsagePlanId"))
        key_id = str(require(ctx, properties, "KeyId"))
        _model(ctx).usage_plan_keys.append((plan_id, key_id))
        physical_id = f"{key_id}:{plan_id}"
        return Created(physical_id=physical_id, attributes={"Id": physical_id})


# API Gateway's gateway response types (developer guide, "Gateway response types").
GATEWAY_RESPONSE_TYPES: Final = frozenset(
    {
        "ACCESS_DENIED", "API_CONFIGURATION_ERROR", "AUTHORIZER_CONFIGURATION_ERROR",
        "AUTHORIZER_FAILURE", "BAD_REQUEST_PARAMETERS", "BAD_REQUEST_BODY", "DEFAULT_4XX",
        "DEFAULT_5XX", "EXPIRED_TOKEN", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT",
        "INVALID_API_KEY", "INVALID_SIGNATURE", "MISSING_AUTHENTICATION_TOKEN",
        "QUOTA_EXCEEDED", "REQUEST_TOO_LARGE", "RESOURCE_NOT_FOUND", "THROTTLED",
        "UNAUTHORIZED", "UNSUPPORTED_MEDIA_TYPE", "WAF_FILTERED",
    }
)  # fmt: skip
_HEADER_PARAMETER: Final = re.compile(r"^gatewayresponse\.header\.(?P<name>[A-Za-z0-9-]+)$")
_STATIC_VALUE: Final = re.compile(r"^'(?P<value>[^']*)'$")
_TEMPLATE_VARIABLE: Final = re.compile(r"\$context\.[A-Za-z.]+")
TEMPLATE_VARIABLES: Final = frozenset(
    {
        "$context.error.message",
        "$context.error.messageString",
        "$context.error.responseType",
        "$context.requestId",
    }
)


class GatewayResponseProvider(Provider):
    """How the API answers its own errors of one type: status, static headers, body."""

    resource_type = "AWS::ApiGateway::GatewayResponse"

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        response_type = properties.get("ResponseType")
        if response_type not in GATEWAY_RESPONSE_TYPES:
            raise ctx.error(f"unknown gateway response type {response_type!r}")
        for name, value in (properties.get("ResponseParameters") or {}).items():
            if not _HEADER_PARAMETER.match(str(name)):
                raise ctx.error(f"response parameter {name!r} is not a gatewayresponse.header")
            if not isinstance(value, str) or not _STATIC_VALUE.match(value):
                raise ctx.error(
                    f"response parameter {name}: only static 'quoted' values are supported "
                    f"by the local API Gateway, got {value!r}"
                )
        for template in (properties.get("ResponseTemplates") or {}).values():
            unknown = set(_TEMPLATE_VARIABLE.findall(str(template))) - TEMPLATE_VARIABLES
            if unknown:
                raise ctx.error(
                    f"gateway response template variables {sorted(unknown)} are not supported "
                    "by the local API Gateway"
                )

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        api_id = str(require(ctx, properties, "RestApiId"))
        response_type = str(require(ctx, properties, "ResponseType"))
        _model(ctx).gateway_responses.setdefault(api_id, {})[response_type] = properties
        return Created(physical_id=f"{api_id}-{response_type}")


def _gateway_responses(model: ApiGatewayModel, api_id: str) -> tuple[GatewayResponse, ...]:
    responses = []
    for response_type, properties in sorted(model.gateway_responses.get(api_id, {}).items()):
        headers = {}
        for name, value in (properties.get("ResponseParameters") or {}).items():
            header = _HEADER_PARAMETER.match(str(name))
            static = _STATIC_VALUE.match(str(value))
            if header and static:
                headers[header.group("name")] = static.group("value")
        templates = properties.get("ResponseTemplates") or {}
        status = properties.get("StatusCode")
        responses.append(
            GatewayResponse(
                response_type=response_type,
                status_code=None if status is None else int(status),
                headers=headers,
                template=templates.get("application/json"),
            )
        )
    return tuple(responses)


class _RecordOnlyProvider(Provider):
    """API Gateway resources that change nothing the local front does (recorded only)."""

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        physical_id = str(properties.get("Name") or _new_id(6))
        return Created(
            physical_id=physical_id, attributes=dict.fromkeys(self.attributes, physical_id)
        )


class AccountProvider(_RecordOnlyProvider):
    """The account-wide CloudWatch role of API Gateway (no local effect)."""

    resource_type = "AWS::ApiGateway::Account"
    attributes = frozenset({"Id"})


class ModelProvider(_RecordOnlyProvider):
    """A request/response model; request bodies are validated by the handlers, not locally."""

    resource_type = "AWS::ApiGateway::Model"


class RequestValidatorProvider(_RecordOnlyProvider):
    """A request validator; recorded only (see ``ModelProvider``)."""

    resource_type = "AWS::ApiGateway::RequestValidator"
    attributes = frozenset({"RequestValidatorId"})


@dataclass(frozen=True)
class BuiltRestApi:
    """A stage ready to serve, and where it came from (for errors and progress)."""

    spec: RestApiSpec
    stack_name: str
    logical_id: str  # the Stage resource


def _resource_path(model: ApiGatewayModel, api_id: str, resource_id: str) -> str:
    root_id = model.apis[api_id]["root_id"]
    parts: list[str] = []
    seen: set[str] = set()
    current = resource_id
    while current != root_id:
        if current not in model.resources or current in seen:
            raise TemplateError(f"resource id {resource_id!r} is not part of REST API {api_id}")
        seen.add(current)
        _, parent, part = model.resources[current]
        parts.append(part)
        current = parent
    return "/" + "/".join(reversed(parts))


def _method(
    model: ApiGatewayModel, entry: Mapping[str, Any], functions: Mapping[str, FunctionSpec]
) -> ApiMethod:
    properties: Mapping[str, Any] = entry["properties"]
    integration: Mapping[str, Any] = properties.get("Integration") or {}
    kind = str(integration.get("Type", ""))
    path = _resource_path(model, entry["api_id"], entry["resource_id"])
    http_method = str(properties.get("HttpMethod", "")).upper()
    common: dict[str, Any] = {
        "resource_path": path,
        "http_method": http_method,
        "api_key_required": as_bool(properties.get("ApiKeyRequired", False)),
        "authorization_type": str(properties.get("AuthorizationType", "NONE")),
        "method_response_status_codes": tuple(
            str(response.get("StatusCode")) for response in properties.get("MethodResponses") or ()
        ),
        "integration_timeout_ms": int(
            integration.get("TimeoutInMillis", _DEFAULT_INTEGRATION_TIMEOUT_MS)
        ),
    }
    if kind == "AWS_PROXY":
        match = _LAMBDA_URI.search(str(integration.get("Uri", "")))
        if match is None:
            raise TemplateError(
                f"AWS_PROXY integration URI {integration.get('Uri')!r} does not invoke a Lambda "
                "function",
                path="Properties.Integration.Uri",
            )
        name = function_name_of(match.group("function"))
        if name not in functions:
            raise TemplateError(
                f"{http_method} {path} invokes function {name!r}, which this assembly does not "
                "deploy",
                path="Properties.Integration.Uri",
            )
        return ApiMethod(integration_type="AWS_PROXY", function_name=name, **common)
    if kind == "MOCK":
        return ApiMethod(
            integration_type="MOCK",
            request_templates=dict(integration.get("RequestTemplates") or {}),
            integration_responses=tuple(
                IntegrationResponse(
                    status_code=str(response.get("StatusCode")),
                    response_parameters={
                        str(k): str(v)
                        for k, v in (response.get("ResponseParameters") or {}).items()
                    },
                    response_templates={
                        str(k): str(v) for k, v in (response.get("ResponseTemplates") or {}).items()
                    },
                    selection_pattern=response.get("SelectionPattern"),
                )
                for response in integration.get("IntegrationResponses") or ()
            ),
            **common,
        )
    raise TemplateError(
        f"integration type {kind!r} is not supported by the local API Gateway "
        f"(supported: {', '.join(_SUPPORTED_INTEGRATIONS)})",
        path="Properties.Integration.Type",
    )


def _throttling(stage: Mapping[str, Any]) -> tuple[float | None, int | None]:
    rate: float | None = None
    burst: int | None = None
    for setting in stage["properties"].get("MethodSettings") or ():
        stage_wide = setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*"
        has_throttle = "ThrottlingRateLimit" in setting or "ThrottlingBurstLimit" in setting
        if stage_wide:
            if "ThrottlingRateLimit" in setting:
                rate = float(setting["ThrottlingRateLimit"])
            if "ThrottlingBurstLimit" in setting:
                burst = int(setting["ThrottlingBurstLimit"])
        elif has_throttle:
            raise TemplateError(
                "per-method throttling "
                f"({setting.get('HttpMethod')} {setting.get('ResourcePath')}) is not supported "
                "by the local API Gateway; throttle the whole stage (/*/*)",
                path="Properties.MethodSettings",
            )
    return rate, burst


def _api_keys(model: ApiGatewayModel, api_id: str, stage_name: str) -> tuple[str, ...]:
    plans = {plan for plan, stages in model.usage_plans.items() if (api_id, stage_name) in stages}
    key_ids = [key for plan, key in model.usage_plan_keys if plan in plans]
    key_ids += [key for key, api, stage in model.stage_keys if (api, stage) == (api_id, stage_name)]
    return tuple(dict.fromkeys(model.api_keys[key] for key in key_ids if key in model.api_keys))


def build_rest_api_specs(
    model: ApiGatewayModel, functions: Mapping[str, FunctionSpec]
) -> list[BuiltRestApi]:
    """One ``RestApiSpec`` per stage; ``functions`` maps names to the deployed functions."""
    built = []
    for stage in model.stages:
        api_id = stage["api_id"]
        try:
            if api_id not in model.apis:
                raise TemplateError(f"stage refers to REST API {api_id!r}, which is not deployed")
            rate, burst = _throttling(stage)
        except TemplateError as error:
            raise error.located(stack=stage["stack"], logical_id=stage["logical_id"]) from None
        methods = []
        for entry in model.methods:
            if entry["api_id"] != api_id:
                continue
            try:
                methods.append(_method(model, entry, functions))
            except TemplateError as error:
                raise error.located(stack=entry["stack"], logical_id=entry["logical_id"]) from None
        methods.sort(key=lambda method: (method.resource_path, method.http_method))
        access_log = stage["properties"].get("AccessLogSetting") or {}
        api = model.apis[api_id]
        spec = RestApiSpec(
            api_id=api_id,
            name=api["name"],
            stage_name=stage["stage_name"],
            methods=tuple(methods),
            throttling_rate_limit=rate,
            throttling_burst_limit=burst,
            access_log_group_arn=access_log.get("DestinationArn"),
            access_log_format=access_log.get("Format"),
            api_keys=_api_keys(model, api_id, stage["stage_name"]),
            minimum_compression_size=api["minimum_compression_size"],
            gateway_responses=_gateway_responses(model, api_id),
        )
        built.append(
            BuiltRestApi(spec=spec, stack_name=stage["stack"], logical_id=stage["logical_id"])
        )
    return built
