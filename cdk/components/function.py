"""A Python Lambda function with its own log group and an explicitly written role."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk.components.common import acknowledge, log_group
from cdk.config import StackConfig


class TaskFunction(Construct):
    """Python 3.12 Lambda with tracing, a retained-per-profile log group and a least-privilege role.

    The role's permissions are one inline policy that starts with writing to the function's
    own log group and X-Ray, and grows only through :meth:`allow`. The function sees the role
    as immutable, so CDK helpers (event sources, tracing) cannot add statements behind the
    stack's back: what the template holds is exactly what the stacks wrote. Inline policies
    also exist as soon as the role does, which the SQS event source mapping checks on creation.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        function_name: str,
        handler: str,
        code: lambda_.Code,
        description: str,
        timeout_s: int,
        memory_mb: int,
        environment: Mapping[str, str],
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = log_group(self, "LogGroup", config, f"/aws/lambda/{function_name}")
        self.policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogGroup",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="XRayTracing",
                    actions=["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                    resources=["*"],
                ),
            ]
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {function_name}",
            inline_policies={"Permissions": self.policy},
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=code,
            role=self.role.without_policy_updates(),
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(timeout_s),
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            environment=dict(environment),
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions, "
            "so AWS requires Resource '*'; every other statement is scoped to one resource.",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "The architecture spec pins the Lambda runtime to Python 3.12, a supported "
            "(not deprecated) runtime.",
        )

    def allow(self, *statements: iam.PolicyStatement) -> None:
        """Add statements to the function's role (the only way it gains permissions)."""
        self.policy.add_statements(*statements)
