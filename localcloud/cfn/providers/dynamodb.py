"""``AWS::DynamoDB::Table`` through the DynamoDB API of the endpoint."""

from __future__ import annotations

from typing import Any, Final

from localcloud.cfn.providers.base import (
    Clients,
    Created,
    DeployedResource,
    Provider,
    ProviderContext,
    as_bool,
    require,
    tag_list,
    undo_on_error,
)
from localcloud.cfn.providers.errors import ignore_missing

_MAX_TABLE_NAME: Final = 255
_INDEX_KEYS: Final = (
    "IndexName",
    "KeySchema",
    "Projection",
    "ProvisionedThroughput",
    "OnDemandThroughput",
)


def _index(entry: dict[str, Any]) -> dict[str, Any]:
    # CloudFormation index entries carry extras (ContributorInsightsSpecification, ...)
    # that CreateTable does not accept.
    return {key: entry[key] for key in _INDEX_KEYS if key in entry}


class TableProvider(Provider):
    """A table, with TTL and point-in-time recovery applied after creation as AWS does."""

    resource_type = "AWS::DynamoDB::Table"
    attributes = frozenset({"Arn", "StreamArn"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        name = properties.get("TableName") or ctx.generate_name(_MAX_TABLE_NAME)
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": require(ctx, properties, "AttributeDefinitions"),
            "KeySchema": require(ctx, properties, "KeySchema"),
            "BillingMode": properties.get("BillingMode", "PROVISIONED"),
        }
        if "ProvisionedThroughput" in properties:
            request["ProvisionedThroughput"] = properties["ProvisionedThroughput"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if properties.get(key):
                request[key] = [_index(entry) for entry in properties[key]]
        stream = properties.get("StreamSpecification")
        if stream:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        sse = properties.get("SSESpecification")
        if sse:
            request["SSESpecification"] = {
                "Enabled": as_bool(sse.get("SSEEnabled", False)),
                **({"SSEType": sse["SSEType"]} if "SSEType" in sse else {}),
                **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
            }
        if "TableClass" in properties:
            request["TableClass"] = properties["TableClass"]
        tags = ctx.tags(properties.get("Tags"))
        if tags:
            request["Tags"] = tag_list(tags)
        dynamodb = ctx.clients.dynamodb
        description = dynamodb.create_table(**request)["TableDescription"]
        attributes: dict[str, Any] = {
            "Arn": description.get("TableArn") or ctx.arn("dynamodb", f"table/{name}")
        }
        if description.get("LatestStreamArn"):
            attributes["StreamArn"] = description["LatestStreamArn"]
        created = Created(physical_id=name, attributes=attributes, cleanup={"TableName": name})
        with undo_on_error(self, ctx, created):
            ttl = properties.get("TimeToLiveSpecification")
            if ttl and as_bool(ttl.get("Enabled", False)):
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": True,
                    },
                )
            pitr = properties.get("PointInTimeRecoverySpecification")
            if pitr and as_bool(pitr.get("PointInTimeRecoveryEnabled", False)):
                dynamodb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
        return created

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        with ignore_missing():
            clients.dynamodb.delete_table(TableName=resource.cleanup["TableName"])
