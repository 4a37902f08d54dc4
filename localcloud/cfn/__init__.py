"""The local CloudFormation engine: deploy a CDK cloud assembly onto the local cloud.

``deploy_assembly(cdk_out, endpoint_url=..., region=..., services=...)`` reads the
assembly, validates it, creates every resource in dependency order (boto3 at the local
endpoint for SQS, DynamoDB, IAM, Logs, CloudWatch; specs handed to ``LocalServices``
for Lambda, event source mappings, API Gateway and alarm evaluation) and returns a
``DeployedAssembly`` whose ``outputs`` have the ``cdk deploy --outputs-file`` shape.
"""

from localcloud.cfn.assembly import CloudAssembly, FileAsset, StackArtifact
from localcloud.cfn.engine import (
    DEFAULT_ACCOUNT_ID,
    DeployedAssembly,
    DeployedStack,
    deploy_assembly,
    rewrite_api_urls,
)
from localcloud.cfn.errors import (
    AssemblyError,
    CfnError,
    DeployError,
    TemplateError,
    UnsupportedResourceError,
)
from localcloud.cfn.intrinsics import NO_VALUE, Resolver
from localcloud.cfn.providers import SUPPORTED_TYPES
from localcloud.cfn.providers.base import DeployedResource, preload_clients

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "NO_VALUE",
    "SUPPORTED_TYPES",
    "AssemblyError",
    "CfnError",
    "CloudAssembly",
    "DeployError",
    "DeployedAssembly",
    "DeployedResource",
    "DeployedStack",
    "FileAsset",
    "Resolver",
    "StackArtifact",
    "TemplateError",
    "UnsupportedResourceError",
    "deploy_assembly",
    "preload_clients",
    "rewrite_api_urls",
]
