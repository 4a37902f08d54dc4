"""``AWS::Logs::LogGroup`` through the CloudWatch Logs API of the endpoint."""

from __future__ import annotations

from typing import Any, Final

from localcloud.cfn.providers.base import (
    Clients,
    Created,
    DeployedResource,
    Provider,
    ProviderContext,
    undo_on_error,
)
from localcloud.cfn.providers.errors import ignore_missing

_MAX_LOG_GROUP_NAME: Final = 512


class LogGroupProvider(Provider):
    """A log group with its retention and tags; ``Ref`` is its name."""

    resource_type = "AWS::Logs::LogGroup"
    attributes = frozenset({"Arn"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        name = str(properties.get("LogGroupName") or ctx.generate_name(_MAX_LOG_GROUP_NAME))
        request: dict[str, Any] = {"logGroupName": name}
        tags = ctx.tags(properties.get("Tags"))
        if tags:
            request["tags"] = tags
        if "KmsKeyId" in properties:
            request["kmsKeyId"] = properties["KmsKeyId"]
        ctx.clients.logs.create_log_group(**request)
        created = Created(
            physical_id=name,
            # The ARN CloudFormation returns for a log group ends in ":*".
            attributes={"Arn": ctx.arn("logs", f"log-group:{name}:*")},
            cleanup={"LogGroupName": name},
        )
        if "RetentionInDays" in properties:
            with undo_on_error(self, ctx, created):
                ctx.clients.logs.put_retention_policy(
                    logGroupName=name, retentionInDays=int(properties["RetentionInDays"])
                )
        return created

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        with ignore_missing():
            clients.logs.delete_log_group(logGroupName=resource.cleanup["LogGroupName"])
