"""``AWS::SQS::Queue`` and ``AWS::SQS::QueuePolicy`` through the SQS API of the endpoint."""

from __future__ import annotations

import json
from typing import Any, Final

from localcloud.cfn.providers.base import (
    Clients,
    Created,
    DeployedResource,
    Provider,
    ProviderContext,
    as_bool,
    require,
)
from localcloud.cfn.providers.errors import ignore_missing

# Template property -> queue attribute. Values are sent as strings, as the API wants them.
_ATTRIBUTES: Final = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
_MAX_QUEUE_NAME: Final = 80


def _attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class QueueProvider(Provider):
    """A queue; ``Ref`` is its URL."""

    resource_type = "AWS::SQS::Queue"
    attributes = frozenset({"Arn", "QueueName", "QueueUrl"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        fifo = as_bool(properties.get("FifoQueue", False))
        name = properties.get("QueueName") or ctx.generate_name(
            _MAX_QUEUE_NAME, suffix=".fifo" if fifo else ""
        )
        attributes = {
            key: _attribute_value(properties[key]) for key in _ATTRIBUTES if key in properties
        }
        if not fifo:
            attributes.pop("FifoQueue", None)  # "false" is rejected by SQS for standard queues
        tags = ctx.tags(properties.get("Tags"))
        response = ctx.clients.sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags)  # type: ignore[arg-type]
        url = response["QueueUrl"]
        arn = ctx.arn("sqs", name)
        ctx.state.queue_urls_by_arn[arn] = url
        return Created(
            physical_id=url,
            attributes={"Arn": arn, "QueueName": name, "QueueUrl": url},
            cleanup={"QueueUrl": url},
        )

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        with ignore_missing():
            clients.sqs.delete_queue(QueueUrl=resource.cleanup["QueueUrl"])


class QueuePolicyProvider(Provider):
    """A queue policy: the ``Policy`` attribute of each queue it names."""

    resource_type = "AWS::SQS::QueuePolicy"
    attributes = frozenset({"Id"})

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        queues = require(ctx, properties, "Queues")
        document = require(ctx, properties, "PolicyDocument")
        if not isinstance(queues, list):
            raise ctx.error("Queues must be a list of queue URLs", path="Properties.Queues")
        policy = document if isinstance(document, str) else json.dumps(document)
        for url in queues:
            ctx.clients.sqs.set_queue_attributes(QueueUrl=str(url), Attributes={"Policy": policy})
        physical_id = ctx.generate_name(128)
        return Created(
            physical_id=physical_id,
            attributes={"Id": physical_id},
            cleanup={"Queues": [str(url) for url in queues]},
        )

    def delete(self, clients: Clients, resource: DeployedResource) -> None:
        for url in resource.cleanup["Queues"]:
            with ignore_missing():
                clients.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
