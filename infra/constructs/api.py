"""The search API: API Gateway REST (regional, IAM-authenticated with SigV4) proxying every path
to the API Lambda, whose Powertools resolver does the routing and validation; the two voice routes
(POST /speech, POST /search/voice) go to the voice function, the same resolver in a container
image with the models. Audio travels as binary (``audio/*`` binary media types: send
``Accept: audio/mpeg`` to /speech). Stage throttling, JSON access logs, execution logs for errors,
X-Ray. ``invoke_policy`` is a managed policy to attach to the people and services that may call it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.nag import acknowledge

STAGE = "v1"
# Request and response bodies of these types pass as bytes (a recorded question, spoken audio).
BINARY_MEDIA_TYPES = ("audio/*", "application/octet-stream")


class SearchApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        handler: lambda_.IFunction,
        voice_handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-search",
            description="medialens search: find the moment where X is said or shown",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(BINARY_MEDIA_TYPES),
            # Access logs need the account's API Gateway CloudWatch role (one per account and region).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=config.api.rate_limit,
                throttling_burst_limit=config.api.burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
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
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies may quote private media text
                metrics_enabled=True,
                tracing_enabled=True,
            ),
        )
        integration = apigw.LambdaIntegration(handler, proxy=True)
        iam_auth = apigw.AuthorizationType.IAM
        self.api.root.add_method("ANY", integration, authorization_type=iam_auth)
        self.api.root.add_proxy(
            default_integration=integration,
            any_method=True,
            default_method_options=apigw.MethodOptions(authorization_type=iam_auth),
        )
        # The voice routes. /search needs its own ANY (to the API function): once the resource
        # exists, API Gateway no longer sends /search to the proxy.
        voice = apigw.LambdaIntegration(voice_handler, proxy=True)
        search = self.api.root.add_resource("search")
        search.add_method("ANY", integration, authorization_type=iam_auth)
        search.add_resource("voice").add_method("POST", voice, authorization_type=iam_auth)
        self.api.root.add_resource("speech").add_method("POST", voice, authorization_type=iam_auth)

        self.invoke_policy = iam.ManagedPolicy(
            self,
            "InvokePolicy",
            description=f"Call the {config.prefix} search API (attach to users and roles)",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"], resources=[self.api.arn_for_execute_api(stage=STAGE)]
                )
            ],
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "A proxy API: the Lambda's Powertools resolver validates every request against its pydantic "
            "models (422 with the field errors); API Gateway has no models to validate against.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "Every method requires SigV4 (IAM) and the stage is throttled; a WAF web ACL (~$6/month plus "
            "requests) adds nothing for callers that must hold AWS credentials.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "Authorization is IAM (SigV4) on every method, not Cognito: callers are the CLI, services and "
            "operators with AWS credentials.",
        )
        role = self.api.node.try_find_child("CloudWatchRole")
        if role is not None:
            acknowledge(
                role,
                "AwsSolutions-IAM4",
                "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-managed policy API Gateway documents for "
                "its account-level logging role.",
                findings=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                ],
            )

    @property
    def url(self) -> str:
        return self.api.url
