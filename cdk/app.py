"""The CDK app: ``python -m cdk.app`` (what ``cdk.json`` runs) synthesizes the three stacks.

Context (``-c key=value`` on the CDK CLI, or ``synthesize(..., context)``):

- ``profile``: ``production`` (default) or ``ephemeral``;
- ``stack_prefix``: stack names are ``<prefix>-Queue|Api|Monitoring``
  (default ``TaskApi`` in production, ``ephemeral-<user>`` in ephemeral);
- ephemeral only: ``ttl_hours`` (default 4) or ``expires_at``, ``owner``, and the timing
  overrides listed in ``cdk.config.TIMING_OVERRIDES``;
- ``apigw_cloudwatch_role=false`` when the account already has its API Gateway logging role;
- ``cdk_nag=true`` to run the cdk-nag AwsSolutions checks during synth.

The app itself is built by ``cdk.build.build_app``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from cdk.bundling import BundlingError
from cdk.config import ConfigError, cdk_json_context, load_config


def cli_context() -> dict[str, Any]:
    """The context as the app will see it: ``cdk.json`` overridden by ``CDK_CONTEXT_JSON``."""
    passed = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    return {**cdk_json_context(), **passed}


def main() -> int:
    """Synthesize into ``CDK_OUTDIR`` (set by the CDK CLI or ``cdk.synth.synthesize``)."""
    try:
        # Check the context before importing aws_cdk (seconds of jsii start-up), so a bad
        # -c value fails at once; build_app checks it again from the App's own context.
        load_config(cli_context().get)
        from cdk.build import build_app

        build_app().app.synth()
    except (ConfigError, BundlingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
        # cdk-nag or CloudFormation validation findings: printed above by CDK, with the report.
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
