"""Build the CDK app in this process: config, Lambda asset, the three stacks, cdk-nag.

``cdk.app`` (the entry point the CLI runs) and the tests call :func:`build_app`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cdk.node import put_node_on_path

# jsii starts `node` from PATH when aws_cdk is first imported: use the virtualenv's Node 24.
put_node_on_path()

import aws_cdk as cdk  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from cdk.bundling import LambdaAsset, build_lambda_asset  # noqa: E402
from cdk.config import StackConfig, cdk_json_context, load_config  # noqa: E402
from cdk.naming import stack_names  # noqa: E402
from cdk.stacks import ApiStack, MonitoringStack, QueueStack  # noqa: E402


@dataclass(frozen=True)
class TaskApiApp:
    """The app with its config and its three stacks (for tests and tooling)."""

    app: cdk.App
    config: StackConfig
    asset: LambdaAsset
    queue: QueueStack
    api: ApiStack
    monitoring: MonitoringStack

    @property
    def stacks(self) -> tuple[cdk.Stack, ...]:
        """The stacks in deployment order."""
        return (self.queue, self.api, self.monitoring)


def lambda_code(asset: LambdaAsset) -> lambda_.Code:
    """A fresh ``Code`` for one stack (CDK binds each asset code object to a single stack)."""
    # Our own content hash: CDK need not fingerprint the tens of MB of dependencies on every synth.
    return lambda_.Code.from_asset(
        str(asset.path), asset_hash=asset.asset_hash, asset_hash_type=cdk.AssetHashType.CUSTOM
    )


def environment() -> cdk.Environment:
    """The target account and region when the CDK CLI knows them, else environment-agnostic."""
    return cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: Path | None = None,
    asset: LambdaAsset | None = None,
    nag: bool | None = None,
    now: datetime | None = None,
) -> TaskApiApp:
    """Build the app. ``context`` is context given in code (tests); ``-c`` values from the CLI
    (``CDK_CONTEXT_JSON``) take precedence over it, as over ``cdk.json``."""
    app = cdk.App(
        # cdk.json's context (feature flags) as defaults, so that tests and `synthesize()`
        # see what the CLI sees; the CLI's own context (-c, CDK_CONTEXT_JSON) takes precedence.
        context={**cdk_json_context(), **(context or {})},
        outdir=str(outdir) if outdir else None,
        # No AWS::CDK::Metadata resource: the templates the local stack runs and the ones
        # `cdk deploy` runs stay the same whatever the CLI's version-reporting setting.
        analytics_reporting=False,
    )
    config = load_config(app.node.try_get_context, now=now)
    asset = asset or build_lambda_asset()
    names = stack_names(config.stack_prefix)
    common: dict[str, Any] = {
        "env": environment(),
        # Stack tags: CloudFormation applies them to every taggable resource it creates,
        # and the reaper finds expired ephemeral stacks by them.
        "tags": config.tags(),
        # Deployable with a standard `cdk bootstrap`; the CLI itself checks the bootstrap
        # version, so the template needs no SSM-parameter rule (which the local cloud lacks).
        "synthesizer": cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    }
    suffix = f"(profile {config.profile}, prefix {config.stack_prefix})"
    queue = QueueStack(
        app,
        names["Queue"],
        stack_name=names["Queue"],
        description=f"Task API queues, tables and processor {suffix}",
        config=config,
        code=lambda_code(asset),
        **common,
    )
    api = ApiStack(
        app,
        names["Api"],
        stack_name=names["Api"],
        description=f"Task API REST API and API Lambda {suffix}",
        config=config,
        code=lambda_code(asset),
        task_queue=queue.task_queue,
        tasks_table=queue.tasks_table,
        idempotency_table=queue.idempotency_table,
        **common,
    )
    monitoring = MonitoringStack(
        app,
        names["Monitoring"],
        stack_name=names["Monitoring"],
        description=f"Task API dashboard and alarms {suffix}",
        config=config,
        api_name=api.api_name,
        api_function=api.api_function,
        processor_function=queue.processor_function,
        task_queue=queue.task_queue,
        dead_letter_queue=queue.dead_letter_queue,
        **common,
    )
    if config.destroy_on_delete:
        # Everything, including roles, the API Gateway account setting and log groups.
        cdk.RemovalPolicies.of(app).destroy()
    run_nag = _truthy(app.node.try_get_context("cdk_nag")) if nag is None else nag
    if run_nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return TaskApiApp(app, config, asset, queue, api, monitoring)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes"}
