"""Reading a CDK cloud assembly (``cdk.out``): stacks, their templates, and file assets.

Only what a deployment needs: the ``aws:cloudformation:stack`` artifacts of
``manifest.json`` (template file, stack name, tags, parameters, dependencies) and the
file assets of the ``*.assets.json`` manifests, so that the bucket and key a template
points at (``Code.S3Bucket``/``Code.S3Key``) lead back to the asset's directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from localcloud.cfn.errors import AssemblyError, TemplateError
from localcloud.cfn.graph import CycleError, topological_order

STACK_ARTIFACT: Final = "aws:cloudformation:stack"
ASSET_MANIFEST_ARTIFACT: Final = "cdk:asset-manifest"
NESTED_ASSEMBLY_ARTIFACT: Final = "cdk:cloud-assembly"
_UNKNOWN_ACCOUNT: Final = "unknown-account"
_UNKNOWN_REGION: Final = "unknown-region"


@dataclass(frozen=True)
class FileAsset:
    """A file asset: where it sits in the assembly, where CDK would upload it."""

    asset_id: str
    source_path: Path  # absolute; a directory (packaging "zip") or a file
    packaging: str  # "zip" (a directory zipped on upload) or "file"
    destinations: tuple[tuple[str, str], ...]  # (bucketName, objectKey), may hold ${AWS::...}


@dataclass(frozen=True)
class StackArtifact:
    """One ``aws:cloudformation:stack`` artifact with its parsed template."""

    artifact_id: str
    stack_name: str
    display_name: str
    template_path: Path
    template: Mapping[str, Any]
    dependencies: tuple[str, ...]  # artifact ids of the stacks it depends on
    tags: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, str] = field(default_factory=dict)
    account: str | None = None  # None when the stack is environment-agnostic
    region: str | None = None


def substitute_placeholders(text: str, *, account: str, region: str, partition: str = "aws") -> str:
    """Fill in the ``${AWS::AccountId}``, ``${AWS::Region}``, ``${AWS::Partition}`` CDK leaves."""
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", partition)
    )


@dataclass(frozen=True)
class CloudAssembly:
    """The stacks of a cloud assembly in deployment order, and its file assets."""

    directory: Path
    stacks: tuple[StackArtifact, ...]
    assets: tuple[FileAsset, ...]

    def find_asset(self, bucket: str, key: str, *, account: str, region: str) -> FileAsset | None:
        """The file asset CDK uploads to ``s3://bucket/key`` (placeholders substituted)."""
        for asset in self.assets:
            for raw_bucket, raw_key in asset.destinations:
                if (
                    substitute_placeholders(raw_key, account=account, region=region) == key
                    and substitute_placeholders(raw_bucket, account=account, region=region)
                    == bucket
                ):
                    return asset
        return None

    @classmethod
    def load(cls, directory: Path) -> CloudAssembly:
        """Read ``directory/manifest.json`` and everything it points at.

        Raises ``AssemblyError`` for an unreadable manifest or asset manifest and
        ``TemplateError`` (naming the stack) for a missing or malformed template.
        """
        directory = directory.resolve()
        manifest = _read_json(directory / "manifest.json", "cloud assembly manifest")
        artifacts = manifest.get("artifacts")
        if not isinstance(artifacts, dict):
            raise AssemblyError(f"{directory / 'manifest.json'} has no 'artifacts' object")
        nested = [
            key for key, art in artifacts.items() if art.get("type") == NESTED_ASSEMBLY_ARTIFACT
        ]
        if nested:
            raise AssemblyError(
                f"nested cloud assemblies (CDK Stages) are not supported by the local cloud: "
                f"{', '.join(nested)}"
            )
        assets: list[FileAsset] = []
        stacks: dict[str, StackArtifact] = {}
        for artifact_id, artifact in artifacts.items():
            kind = artifact.get("type")
            properties = artifact.get("properties") or {}
            if kind == ASSET_MANIFEST_ARTIFACT:
                assets.extend(_read_asset_manifest(directory, properties.get("file", "")))
            elif kind == STACK_ARTIFACT:
                stacks[artifact_id] = _read_stack(directory, artifact_id, artifact, properties)
        stack_dependencies = {
            artifact_id: {dep for dep in stack.dependencies if dep in stacks}
            for artifact_id, stack in stacks.items()
        }
        try:
            order = topological_order(list(stacks), stack_dependencies)
        except CycleError as error:
            raise AssemblyError(f"stacks depend on each other in a cycle: {error}") from None
        return cls(
            directory=directory,
            stacks=tuple(stacks[artifact_id] for artifact_id in order),
            assets=tuple(assets),
        )


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AssemblyError(f"cannot read {what} {path}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise AssemblyError(f"{what} {path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise AssemblyError(f"{what} {path} is not a JSON object")
    return data


def _read_asset_manifest(directory: Path, file_name: str) -> list[FileAsset]:
    data = _read_json(directory / file_name, "asset manifest")
    assets = []
    for asset_id, entry in (data.get("files") or {}).items():
        source = entry.get("source") or {}
        if "path" not in source:
            # Assets built by an executable have no path in the assembly; a template
            # referring to one fails later with "asset not found", naming the resource.
            continue
        destinations = tuple(
            (str(dest.get("bucketName", "")), str(dest.get("objectKey", "")))
            for dest in (entry.get("destinations") or {}).values()
        )
        assets.append(
            FileAsset(
                asset_id=asset_id,
                source_path=(directory / source["path"]).resolve(),
                packaging=str(source.get("packaging", "file")),
                destinations=destinations,
            )
        )
    return assets


def _environment(artifact: Mapping[str, Any]) -> tuple[str | None, str | None]:
    env = str(artifact.get("environment", ""))
    if not env.startswith("aws://"):
        return None, None
    account, _, region = env.removeprefix("aws://").partition("/")
    return (
        None if account in ("", _UNKNOWN_ACCOUNT) else account,
        None if region in ("", _UNKNOWN_REGION) else region,
    )


def _read_stack(
    directory: Path, artifact_id: str, artifact: Mapping[str, Any], properties: Mapping[str, Any]
) -> StackArtifact:
    stack_name = str(properties.get("stackName") or artifact_id)
    template_file = properties.get("templateFile")
    if not template_file:
        raise TemplateError("manifest entry has no templateFile", stack=stack_name)
    template_path = directory / str(template_file)
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(
            f"cannot read template {template_path}: {error.strerror or error}", stack=stack_name
        ) from None
    try:
        template = json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateError(
            f"template {template_path.name} is not valid JSON: {error}", stack=stack_name
        ) from None
    if not isinstance(template, dict):
        raise TemplateError(f"template {template_path.name} is not a JSON object", stack=stack_name)
    account, region = _environment(artifact)
    return StackArtifact(
        artifact_id=artifact_id,
        stack_name=stack_name,
        display_name=str(artifact.get("displayName") or artifact_id),
        template_path=template_path,
        template=template,
        dependencies=tuple(str(dep) for dep in artifact.get("dependencies") or ()),
        tags={str(k): str(v) for k, v in (properties.get("tags") or {}).items()},
        parameters={str(k): str(v) for k, v in (properties.get("parameters") or {}).items()},
        account=account,
        region=region,
    )
