"""A tiny real CDK app: the three stacks the harness expects, for the real CDK CLI on moto.

Stands in for ``cdk/app.py`` (whose stacks need Lambda bundling and assets): same stack
names, the same ephemeral tags from the same context keys, the contract's required outputs.
``BootstraplessSynthesizer`` because moto has no bootstrap stack or asset bucket.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns

from cdk import contract
from cdk.naming import stack_names

OUTPUT_STACK = {
    contract.TASK_QUEUE_URL: "Queue",
    contract.DEAD_LETTER_QUEUE_URL: "Queue",
    contract.TASKS_TABLE_NAME: "Queue",
    contract.API_URL: "Api",
    contract.DASHBOARD_NAME: "Monitoring",
}


def main() -> None:
    """Synthesize the three stacks for ``-c stack_prefix``."""
    app = cdk.App()
    prefix = str(app.node.try_get_context("stack_prefix"))
    if app.node.try_get_context("profile") != "ephemeral":
        raise SystemExit("tiny app: expected -c profile=ephemeral")
    # Stack tags as stack props, as cdk/app.py does (cdk.json sets explicitStackTags).
    tags = {
        "ephemeral": "true",
        "expires-at": str(app.node.try_get_context("expires_at")),
        "owner": str(app.node.try_get_context("owner")),
    }
    for suffix, name in stack_names(prefix).items():
        stack = cdk.Stack(
            app, name, stack_name=name, synthesizer=cdk.BootstraplessSynthesizer(), tags=tags
        )
        topic = sns.Topic(stack, "Topic")
        for key, owner in OUTPUT_STACK.items():
            if owner == suffix:
                cdk.CfnOutput(stack, key, value=f"{key}-{topic.topic_name}")
    app.synth()


if __name__ == "__main__":
    main()
