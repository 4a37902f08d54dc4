"""The REST API (v1): POST /tasks and GET /tasks/{task_id} on the API function."""

from __future__ import annotations

from aws_cdk import Duration, Fn
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from cdk.components.common import acknowledge, log_group, stateful_removal_policy
from cdk.config import StackConfig

CORS_ALLOWED_METHODS = ("GET", "POST", "OPTIONS")
CORS_ALLOWED_HEADERS = (*apigw.Cors.DEFAULT_HEADERS, "Idempotency-Key")
# Static values of API Gateway response parameters are single-quoted.
GATEWAY_RESPONSE_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "'*'",
    "Access-Control-Allow-Headers": "'" + ",".join(CORS_ALLOWED_HEADERS) + "'",
    "Access-Control-Allow-Methods": "'" + ",".join(CORS_ALLOWED_METHODS) + "'",
}


class TaskRestApi(Construct):
    """Regional REST API with CORS, stage throttling, JSON access logs and X-Ray tracing.

    Every method is a Lambda proxy integration on one function; CORS preflight (OPTIONS) is
    answered by API Gateway itself (MOCK integrations). Throttling applies to the whole
    stage (method settings ``/*/*``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = config.stack_prefix
        self.access_logs = log_group(self, "AccessLogs", config, f"/aws/apigateway/{prefix}-access")
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{prefix}-tasks",
            description="Task API: accepts tasks and reports their status",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logs need the account-level CloudWatch role; it is an
            # AWS::ApiGateway::Account resource plus a role, not a custom resource.
            cloud_watch_role=config.apigw_cloudwatch_role,
            cloud_watch_role_removal_policy=stateful_removal_policy(config),
            deploy_options=apigw.StageOptions(
                stage_name=config.stage_name,
                throttling_rate_limit=config.throttling_rate_limit,
                throttling_burst_limit=config.throttling_burst_limit,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=apigw.Cors.ALL_ORIGINS,
                allow_methods=list(CORS_ALLOWED_METHODS),
                allow_headers=list(CORS_ALLOWED_HEADERS),
                max_age=Duration.hours(1),
            ),
        )
        # The stack emits the URL under the contract's key (ApiUrl); drop RestApi's own copy.
        self.api.node.try_remove_child("Endpoint")
        # API Gateway writes execution logs to a group it would otherwise create itself,
        # unmanaged and kept forever; declaring it gives it retention and a removal policy.
        self.execution_logs = log_group(
            self,
            "ExecutionLogs",
            config,
            Fn.join(
                "", ["API-Gateway-Execution-Logs_", self.api.rest_api_id, f"/{config.stage_name}"]
            ),
        )
        self.api.deployment_stage.node.add_dependency(self.execution_logs)

        # API Gateway's own errors (403 unknown route, 429 throttled, 502/504, 413...) carry
        # the CORS headers too, so a browser client sees the status instead of an opaque
        # CORS failure. Every 4xx/5xx type inherits these two.
        for construct_id, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                construct_id,
                type=response_type,
                response_headers=dict(GATEWAY_RESPONSE_CORS_HEADERS),
            )

        # IAM (SigV4) authorization on every task method: the caller needs execute-api:Invoke
        # on the method's ARN (docs/decisions/api-authentication.md). The CORS preflight
        # (OPTIONS, generated above) stays open: browsers never sign it.
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        tasks = self.api.root.add_resource("tasks")
        tasks.add_method("POST", integration, authorization_type=apigw.AuthorizationType.IAM)
        tasks.add_resource("{task_id}").add_method(
            "GET", integration, authorization_type=apigw.AuthorizationType.IAM
        )

        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "The API Lambda validates every request and returns field-level errors (spec: "
            "input validation in Lambda); a gateway validator would answer in another shape.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "The spec's API has no WAF; every task method requires IAM (SigV4) authorization "
            "and stage throttling bounds what an authorized caller can send.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "IAM (SigV4) authorization, not a Cognito user pool: the API's clients are "
            "machines holding AWS credentials (docs/decisions/api-authentication.md).",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch role uses the AWS-managed policy AWS "
            "documents for exactly this purpose.",
        )

    @property
    def url(self) -> str:
        """The invoke URL of the deployed stage, ending in ``/``."""
        return self.api.url
