"""One provider per supported resource type; anything else is an error naming the type."""

from __future__ import annotations

from typing import Any, Final

from localcloud.cfn.providers.apigateway import (
    AccountProvider,
    ApiKeyProvider,
    DeploymentProvider,
    GatewayResponseProvider,
    MethodProvider,
    ModelProvider,
    RequestValidatorProvider,
    ResourceProvider,
    RestApiProvider,
    StageProvider,
    UsagePlanKeyProvider,
    UsagePlanProvider,
)
from localcloud.cfn.providers.base import Created, Provider, ProviderContext
from localcloud.cfn.providers.cloudwatch import AlarmProvider, DashboardProvider
from localcloud.cfn.providers.dynamodb import TableProvider
from localcloud.cfn.providers.iam import ManagedPolicyProvider, PolicyProvider, RoleProvider
from localcloud.cfn.providers.lambda_ import (
    EventSourceMappingProvider,
    FunctionProvider,
    PermissionProvider,
)
from localcloud.cfn.providers.logs import LogGroupProvider
from localcloud.cfn.providers.sqs import QueuePolicyProvider, QueueProvider


class CdkMetadataProvider(Provider):
    """``AWS::CDK::Metadata``: CDK's version analytics, nothing to create."""

    resource_type = "AWS::CDK::Metadata"

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        return Created(physical_id=f"{ctx.stack_name}-{ctx.logical_id}")


PROVIDERS: Final[dict[str, Provider]] = {
    provider.resource_type: provider
    for provider in (
        QueueProvider(),
        QueuePolicyProvider(),
        TableProvider(),
        RoleProvider(),
        PolicyProvider(),
        ManagedPolicyProvider(),
        LogGroupProvider(),
        AlarmProvider(),
        DashboardProvider(),
        FunctionProvider(),
        EventSourceMappingProvider(),
        PermissionProvider(),
        RestApiProvider(),
        ResourceProvider(),
        MethodProvider(),
        DeploymentProvider(),
        StageProvider(),
        GatewayResponseProvider(),
        AccountProvider(),
        ModelProvider(),
        RequestValidatorProvider(),
        ApiKeyProvider(),
        UsagePlanProvider(),
        UsagePlanKeyProvider(),
        CdkMetadataProvider(),
    )
}
"""Resource type -> provider."""

SUPPORTED_TYPES: Final = frozenset(PROVIDERS)

__all__ = ["PROVIDERS", "SUPPORTED_TYPES", "Provider"]
