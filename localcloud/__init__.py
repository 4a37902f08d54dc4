"""localcloud: AWS services emulated on 127.0.0.1 for a serverless app, no account, no Docker.

The public API is what this module exports (``__all__``) plus its public submodules
(names without a leading underscore); see ``localcloud/README.md``. The names load on
first use (PEP 562): importing ``localcloud`` costs nothing, so a caller can overlap the
services' imports with other work (:func:`warm_up`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module defining it
_EXPORTS: dict[str, str] = {
    # the AWS endpoint: the SQS engine + moto, one URL
    "AwsEndpoint": "localcloud.endpoint",
    "DEFAULT_REGION": "localcloud.sqs.engine",
    "set_fifo_quota": "localcloud.sqs.engine",
    # services running what a template declares
    "LambdaService": "localcloud.lambda_service",
    "LambdaControlPlane": "localcloud.lambda_service.control_plane",
    "EventSourceMappingService": "localcloud.lambda_service.esm",
    "ApiGatewayService": "localcloud.apigw",
    "AlarmService": "localcloud.alarms",
    "QueueMetricsPublisher": "localcloud.metrics",
    # what the CloudFormation engine hands the services
    "AlarmSpec": "localcloud.specs",
    "EventSourceMappingSpec": "localcloud.specs",
    "FunctionSpec": "localcloud.specs",
    "InvokeResult": "localcloud.specs",
    "LocalServices": "localcloud.specs",
    "RestApiSpec": "localcloud.specs",
    # the CloudFormation engine
    "DeployedAssembly": "localcloud.cfn",
    "deploy_assembly": "localcloud.cfn",
    "plan_update": "localcloud.cfn.update",
    "apply_update": "localcloud.cfn.update",
    # clients
    "local_client": "localcloud.clients",
    "InProcessCloudWatchClient": "localcloud.inprocess",
    "InProcessLogsClient": "localcloud.inprocess",
    "InProcessSqsClient": "localcloud.sqs.protocol",
    "QueueDepth": "localcloud.sqs.engine",
    # start-up
    "warm_up": "localcloud.warm",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from localcloud.alarms import AlarmService as AlarmService
    from localcloud.apigw import ApiGatewayService as ApiGatewayService
    from localcloud.cfn import DeployedAssembly as DeployedAssembly
    from localcloud.cfn import deploy_assembly as deploy_assembly
    from localcloud.cfn.update import apply_update as apply_update
    from localcloud.cfn.update import plan_update as plan_update
    from localcloud.clients import local_client as local_client
    from localcloud.endpoint import AwsEndpoint as AwsEndpoint
    from localcloud.inprocess import InProcessCloudWatchClient as InProcessCloudWatchClient
    from localcloud.inprocess import InProcessLogsClient as InProcessLogsClient
    from localcloud.lambda_service import LambdaService as LambdaService
    from localcloud.lambda_service.control_plane import LambdaControlPlane as LambdaControlPlane
    from localcloud.lambda_service.esm import EventSourceMappingService as EventSourceMappingService
    from localcloud.metrics import QueueMetricsPublisher as QueueMetricsPublisher
    from localcloud.specs import AlarmSpec as AlarmSpec
    from localcloud.specs import EventSourceMappingSpec as EventSourceMappingSpec
    from localcloud.specs import FunctionSpec as FunctionSpec
    from localcloud.specs import InvokeResult as InvokeResult
    from localcloud.specs import LocalServices as LocalServices
    from localcloud.specs import RestApiSpec as RestApiSpec
    from localcloud.sqs.engine import DEFAULT_REGION as DEFAULT_REGION
    from localcloud.sqs.engine import QueueDepth as QueueDepth
    from localcloud.sqs.engine import set_fifo_quota as set_fifo_quota
    from localcloud.sqs.protocol import InProcessSqsClient as InProcessSqsClient
    from localcloud.warm import warm_up as warm_up


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'localcloud' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return list(__all__)
