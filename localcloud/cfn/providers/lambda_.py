"""``AWS::Lambda::Function``, ``EventSourceMapping``, ``Permission``: specs for local services.

The local cloud runs functions itself, so nothing is created through boto3 here: each
resource becomes a resolved spec (``FunctionSpec``, ``EventSourceMappingSpec``) that
the engine hands to ``LocalServices`` once every stack has been provisioned.
"""

from __future__ import annotations

import tempfile
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from localcloud.cfn.assembly import FileAsset
from localcloud.cfn.intrinsics import as_string
from localcloud.cfn.providers.base import (
    Created,
    Provider,
    ProviderContext,
    ValidationContext,
    as_bool,
    require,
)
from localcloud.specs import EventSourceMappingSpec, FunctionSpec

_MAX_FUNCTION_NAME: Final = 64
_SQS_DEFAULT_BATCH_SIZE: Final = 10


def function_name_of(reference: str) -> str:
    """The function name in a name, a full ARN or a partial ARN (``123:function:name``)."""
    if ":function:" in reference:
        return reference.split(":function:", 1)[1].split(":", 1)[0]
    return reference


def _asset_dir(ctx: ProviderContext, asset: FileAsset) -> Path:
    source = asset.source_path
    if source.is_dir():
        return source
    if source.is_file() and zipfile.is_zipfile(source):
        # A prebuilt .zip asset: unpack it once, as Lambda would, into a directory the
        # deployment removes on destroy.
        target = Path(tempfile.mkdtemp(prefix=f"cfn-asset-{asset.asset_id[:12]}-"))
        ctx.state.temp_dirs.append(target)
        with zipfile.ZipFile(source) as archive:
            archive.extractall(target)
        return target
    raise ctx.error(
        f"asset {asset.asset_id} points at {source}, which is neither a directory nor a zip file",
        path="Properties.Code",
    )


def _find_asset(bucket: str, key: str, ctx: ProviderContext | ValidationContext) -> FileAsset:
    asset = ctx.assembly.find_asset(bucket, key, account=ctx.account_id, region=ctx.region)
    if asset is None:
        raise ctx.error(
            f"the code asset s3://{bucket}/{key} is not in the cloud assembly "
            f"{ctx.assembly.directory} (no asset manifest lists it)",
            path="Properties.Code",
        )
    if not asset.source_path.exists():
        raise ctx.error(
            f"the code asset s3://{bucket}/{key} should be at {asset.source_path}, "
            "which does not exist (incomplete cdk.out?)",
            path="Properties.Code",
        )
    return asset


class FunctionProvider(Provider):
    """A function, as a ``FunctionSpec``; ``Ref`` is its name."""

    resource_type = "AWS::Lambda::Function"
    attributes = frozenset({"Arn"})

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        code = properties.get("Code")
        if not isinstance(code, dict):
            raise ctx.error("required property 'Code' is missing", path="Properties.Code")
        if "ImageUri" in code or properties.get("PackageType") == "Image":
            raise ctx.error("container image functions are not supported by the local cloud")
        runtime = ctx.try_resolve(properties.get("Runtime"))
        if isinstance(runtime, str) and not runtime.startswith("python"):
            raise ctx.error(
                f"runtime {runtime!r} is not supported: the local Lambda service runs Python "
                "functions (python3.x) only",
                path="Properties.Runtime",
            )
        if "S3Key" in code:
            bucket = ctx.try_resolve(code.get("S3Bucket"))
            key = ctx.try_resolve(code.get("S3Key"))
            if isinstance(bucket, str) and isinstance(key, str):
                _find_asset(bucket, key, ctx)

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        name = str(properties.get("FunctionName") or ctx.generate_name(_MAX_FUNCTION_NAME))
        arn = ctx.arn("lambda", f"function:{name}")
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        environment = {
            str(key): as_string(value, f"environment variable {key}")
            for key, value in variables.items()
        }
        logging_config = properties.get("LoggingConfig") or {}
        reserved = properties.get("ReservedConcurrentExecutions")
        spec = FunctionSpec(
            logical_id=ctx.logical_id,
            stack_name=ctx.stack_name,
            function_name=name,
            arn=arn,
            handler=str(require(ctx, properties, "Handler")),
            runtime=str(require(ctx, properties, "Runtime")),
            code_dir=self._code_dir(
                ctx, require(ctx, properties, "Code"), str(properties["Runtime"])
            ),
            timeout_s=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            reserved_concurrency=None if reserved is None else int(reserved),
            environment=environment,
            role_arn=str(properties.get("Role", "")),
            log_group_name=str(logging_config.get("LogGroup") or f"/aws/lambda/{name}"),
            tracing_mode=str((properties.get("TracingConfig") or {}).get("Mode") or "PassThrough"),
        )
        ctx.emit(spec)
        return Created(physical_id=name, attributes={"Arn": arn})

    def _code_dir(self, ctx: ProviderContext, code: Mapping[str, Any], runtime: str) -> Path:
        if "S3Key" in code:
            asset = _find_asset(str(code.get("S3Bucket", "")), str(code["S3Key"]), ctx)
            return _asset_dir(ctx, asset)
        if "ZipFile" in code:
            # Inline code: CloudFormation writes it to index.py (Python) in the task root.
            target = Path(tempfile.mkdtemp(prefix=f"cfn-inline-{ctx.logical_id[:20]}-"))
            ctx.state.temp_dirs.append(target)
            (target / ("index.py" if runtime.startswith("python") else "index.js")).write_text(
                str(code["ZipFile"]), encoding="utf-8"
            )
            return target
        raise ctx.error("Code has neither S3Bucket/S3Key nor ZipFile", path="Properties.Code")


class EventSourceMappingProvider(Provider):
    """An SQS event source mapping, as an ``EventSourceMappingSpec``; ``Ref`` is its UUID."""

    resource_type = "AWS::Lambda::EventSourceMapping"
    attributes = frozenset({"Id", "EventSourceMappingArn"})

    def validate(self, ctx: ValidationContext, properties: Mapping[str, Any]) -> None:
        if "FilterCriteria" in properties:
            raise ctx.error(
                "event filtering (FilterCriteria) is not supported by the local event source "
                "mapping",
                path="Properties.FilterCriteria",
            )

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        source_arn = str(require(ctx, properties, "EventSourceArn"))
        parts = source_arn.split(":")
        if len(parts) < 6 or parts[2] != "sqs":
            raise ctx.error(
                f"event source {source_arn} is not an SQS queue; the local cloud maps SQS only",
                path="Properties.EventSourceArn",
            )
        queue_url = (
            ctx.state.queue_urls_by_arn.get(source_arn)
            or ctx.clients.sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
                "QueueUrl"
            ]
        )
        mapping_id = str(uuid.uuid4())
        scaling = properties.get("ScalingConfig") or {}
        maximum_concurrency = scaling.get("MaximumConcurrency")
        spec = EventSourceMappingSpec(
            uuid=mapping_id,
            function_name=function_name_of(str(require(ctx, properties, "FunctionName"))),
            event_source_arn=source_arn,
            queue_url=queue_url,
            batch_size=int(properties.get("BatchSize", _SQS_DEFAULT_BATCH_SIZE)),
            maximum_batching_window_s=int(properties.get("MaximumBatchingWindowInSeconds", 0)),
            function_response_types=tuple(
                str(item) for item in properties.get("FunctionResponseTypes") or ()
            ),
            enabled=as_bool(properties.get("Enabled", True)),
            maximum_concurrency=None if maximum_concurrency is None else int(maximum_concurrency),
        )
        ctx.emit(spec)
        return Created(
            physical_id=mapping_id,
            attributes={
                "Id": mapping_id,
                "EventSourceMappingArn": ctx.arn("lambda", f"event-source-mapping:{mapping_id}"),
            },
        )


class PermissionProvider(Provider):
    """A resource policy statement: recorded only (resource policies are not evaluated)."""

    resource_type = "AWS::Lambda::Permission"

    def create(self, ctx: ProviderContext, properties: dict[str, Any]) -> Created:
        return Created(physical_id=ctx.generate_name(128))
