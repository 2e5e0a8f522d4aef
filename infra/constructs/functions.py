"""Lambda functions: ingest, light (worker), dlq and the search API, all on Python 3.12 with
the Powertools layer and the project's own layer (``layers/core``, bundled without Docker).

Each function's code is its ``functions/<name>/`` folder (``index.handler`` re-exports the
library's handler); their configuration is environment variables named after
``medialens.settings.Settings`` fields (see ``settings_environment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.bundling import REPO_ROOT, core_layer_code
from infra.config import EnvironmentConfig, SearchFlavour
from infra.constructs.events import DROP_PREFIX
from infra.constructs.queues import DLQ_HANDLER_TIMEOUT_S, INGEST_TIMEOUT_S, Queues
from infra.constructs.search import Search
from infra.images import container_image
from infra.nag import LAMBDA_BASIC_EXECUTION, acknowledge
from medialens.uploads.base import UPLOADS_FOLDER
from medialens.worker.forward import INPUT_PREFIX as FORWARD_INPUT_PREFIX

FUNCTIONS_DIR = REPO_ROOT / "functions"
RUNTIME = lambda_.Runtime.PYTHON_3_12
API_TIMEOUT_S = 29  # API Gateway REST's integration limit
INSIGHT_TIMEOUT_S = 300  # reads the registry's assets of a day and builds the report
FORWARD_TIMEOUT_S = 30  # an S3 write and one API call; the heavy queue's visibility covers six
POWERTOOLS_PARAMETER = "/aws/service/powertools/python/x86_64/python3.12/{version}"


@dataclass(frozen=True)
class SharedResources:
    """What every function and worker is configured with."""

    drop: s3.IBucket
    artifacts: s3.IBucket
    model_store_uri: str
    assets: dynamodb.ITable
    queues: Queues
    state_machine: sfn.IStateMachine
    search: Search


def settings_environment(shared: SharedResources, config: EnvironmentConfig) -> dict[str, str]:
    """Environment for Lambda and the GPU workers; every name is a ``Settings`` field
    (``MEDIALENS_<FIELD>``) or alias (``OPENSEARCH_URL``), checked by the infra tests."""
    queues = shared.queues
    environment = {
        # Without an endpoint URL the settings would pick the embedded (local files) profile.
        "MEDIALENS_PROFILE": "aws",
        # Lambda's only writable path; the model store caches pulled models under it.
        "MEDIALENS_HOME": "/tmp/medialens",
        "MEDIALENS_DROP_BUCKET": shared.drop.bucket_name,
        "MEDIALENS_DROP_PREFIX": DROP_PREFIX,
        "MEDIALENS_ARTIFACTS_BUCKET": shared.artifacts.bucket_name,
        "MEDIALENS_ASSETS_TABLE": shared.assets.table_name,
        "MEDIALENS_INGEST_QUEUE": queues.ingest.queue.queue_url,
        "MEDIALENS_LIGHT_QUEUE": queues.light.queue.queue_url,
        "MEDIALENS_HEAVY_QUEUE": queues.heavy.queue.queue_url,
        "MEDIALENS_STATE_MACHINE_ARN": shared.state_machine.state_machine_arn,
        "MEDIALENS_MAX_RECEIVE_COUNT": str(queues.max_receive_count),
        "MEDIALENS_MODEL_STORE_URI": shared.model_store_uri,
        "MEDIALENS_INDEX_BACKEND": "opensearch",
        "OPENSEARCH_URL": shared.search.url,
    }
    if config.search.flavour is SearchFlavour.DOMAIN and config.search.instance_count == 1:
        # A replica can never be allocated on a one-node domain: the index would stay yellow.
        environment["MEDIALENS_OPENSEARCH_REPLICAS"] = "0"
    return environment


class Functions(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, shared: SharedResources
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.shared = shared
        self.environment = settings_environment(shared, config)
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, POWERTOOLS_PARAMETER.format(version=config.powertools_layer_version)
        )
        powertools = lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", layer_arn)
        self.core_layer = lambda_.LayerVersion(
            self,
            "CoreLayer",
            code=core_layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="medialens library and its dependencies (Powertools and the AWS SDK excluded)",
        )
        # Layer order is not ours to choose (the recognizeLayerVersion flag sorts them), and need
        # not be: the core layer carries no module the Powertools layer has.
        self.layers = [powertools, self.core_layer]
        self.forward: lambda_.Function | None = None  # forward_heavy_steps, with the SageMaker endpoint
        cfg = config.functions
        reserve = cfg.reserve_concurrency
        queues = shared.queues

        self.ingest = self._function(
            "ingest",
            timeout_s=INGEST_TIMEOUT_S,
            memory_mb=512,
            reserved=cfg.ingest_concurrency if reserve else None,
        )
        self.ingest.add_event_source(
            sources.SqsEventSource(
                queues.ingest.queue,
                batch_size=10,
                max_batching_window=cdk.Duration.seconds(1),
                report_batch_item_failures=True,
                max_concurrency=cfg.ingest_concurrency,
            )
        )
        shared.drop.grant_read(self.ingest)
        # A removed or superseded revision takes its derived files and moments with it.
        shared.artifacts.grant_read(self.ingest)
        shared.artifacts.grant_delete(self.ingest)
        shared.assets.grant_read_write_data(self.ingest)
        shared.state_machine.grant_start_execution(self.ingest)

        self.light = self._function(
            "light",
            timeout_s=cfg.light_timeout_s,
            memory_mb=cfg.light_memory_mb,
            reserved=cfg.light_concurrency if reserve else None,
        )
        # One step per invocation: steps vary from milliseconds (finalize) to minutes (extraction),
        # and a batch would make a quick step wait behind a slow one.
        self.light.add_event_source(
            sources.SqsEventSource(
                queues.light.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=cfg.light_concurrency
            )
        )
        shared.drop.grant_read(self.light)
        shared.artifacts.grant_read_write(self.light)
        shared.assets.grant_read_write_data(self.light)
        shared.state_machine.grant_task_response(self.light)

        self.dlq = self._function(
            "dlq",
            timeout_s=DLQ_HANDLER_TIMEOUT_S,
            memory_mb=512,
            reserved=cfg.dlq_concurrency if reserve else None,
        )
        for work_queue in queues.by_name.values():
            self.dlq.add_event_source(
                sources.SqsEventSource(
                    work_queue.dead_letter,
                    batch_size=10,
                    report_batch_item_failures=True,
                    max_concurrency=cfg.dlq_concurrency,
                )
            )
        shared.drop.grant_read(self.dlq)
        shared.artifacts.grant_put(self.dlq)  # archives under dead-letters/
        shared.assets.grant_read_write_data(self.dlq)
        shared.state_machine.grant_task_response(self.dlq)

        self.api = self._function(
            "api",
            timeout_s=API_TIMEOUT_S,
            memory_mb=cfg.api_memory_mb,
            reserved=cfg.api_reserved_concurrency if reserve else None,
        )
        shared.drop.grant_read(self.api)  # presigned media links, reprocess
        # Presigned upload POSTs and part PUTs act with this right, on the uploads folder only.
        shared.drop.grant_put(self.api, f"{DROP_PREFIX}{UPLOADS_FOLDER}/*")
        shared.artifacts.grant_read(self.api)  # presigned artifact links, the model store
        shared.artifacts.grant_delete(self.api)  # delete an asset's derived files
        shared.assets.grant_read_write_data(self.api)
        shared.state_machine.grant_start_execution(self.api)  # reprocess

        # The voice routes: the API's own handler in a container image that holds the models.
        self.voice = self._image_function(
            "voice",
            container_image(self, "VoiceImage", "voice"),
            timeout_s=API_TIMEOUT_S,
            memory_mb=cfg.voice_memory_mb,
            reserved=cfg.voice_reserved_concurrency if reserve else None,
        )
        shared.drop.grant_read(self.voice)  # presigned media links of the hits
        shared.artifacts.grant_read(self.voice)
        shared.assets.grant_read_data(self.voice)

        # The hourly operations report: drift, model error rates, throughput and cost as metrics.
        self.insight = self._function(
            "insight", timeout_s=INSIGHT_TIMEOUT_S, memory_mb=1024, reserved=1 if reserve else None
        )
        shared.assets.grant_read_data(self.insight)
        events.Rule(
            self,
            "InsightSchedule",
            description="medialens: publish the operations report's metrics",
            schedule=events.Schedule.rate(cdk.Duration.hours(1)),
            targets=[targets.LambdaFunction(self.insight, retry_attempts=0)],
        )

        roles = [self.ingest.role, self.light.role, self.api.role, self.voice.role]
        shared.search.grant(self, roles)  # type: ignore[arg-type]

    @property
    def all(self) -> Mapping[str, lambda_.Function]:
        functions = {
            "ingest": self.ingest,
            "light": self.light,
            "dlq": self.dlq,
            "api": self.api,
            "voice": self.voice,
            "insight": self.insight,
        }
        return functions | ({"forward": self.forward} if self.forward is not None else {})

    def forward_heavy_steps(self, shared: SharedResources, endpoint: sagemaker.CfnEndpoint) -> lambda_.Function:
        """The heavy queue's consumer when heavy steps run on the SageMaker async endpoint: each
        batch becomes one InvokeEndpointAsync request (``medialens.worker.forward``)."""
        self.forward = self._function("forward", timeout_s=FORWARD_TIMEOUT_S, memory_mb=512, reserved=None)
        self.forward.add_environment("MEDIALENS_SAGEMAKER_ENDPOINT", endpoint.attr_endpoint_name)
        self.forward.add_event_source(
            sources.SqsEventSource(
                shared.queues.heavy.queue,
                batch_size=10,
                max_batching_window=cdk.Duration.seconds(5),  # fuller requests: the GPU batches them
                report_batch_item_failures=True,
            )
        )
        shared.artifacts.grant_put(self.forward, f"{FORWARD_INPUT_PREFIX}/*")
        self.forward.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:InvokeEndpointAsync"], resources=[endpoint.ref])
        )
        return self.forward

    def _image_function(
        self, name: str, image: ecr_assets.DockerImageAsset, *, timeout_s: int, memory_mb: int, reserved: int | None
    ) -> lambda_.Function:
        function = lambda_.DockerImageFunction(
            self,
            name.capitalize(),
            code=lambda_.DockerImageCode.from_ecr(image.repository, tag_or_digest=image.image_tag),
            **self._options(name, timeout_s=timeout_s, memory_mb=memory_mb, reserved=reserved),
        )
        self._acknowledge_basic_execution(function)
        return function

    def _function(self, name: str, *, timeout_s: int, memory_mb: int, reserved: int | None) -> lambda_.Function:
        function = lambda_.Function(
            self,
            name.capitalize(),
            runtime=RUNTIME,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=["__pycache__", "*.pyc"]),
            layers=self.layers,
            **self._options(name, timeout_s=timeout_s, memory_mb=memory_mb, reserved=reserved),
        )
        self._acknowledge_basic_execution(function)
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to Python 3.12: the Powertools layer parameter and the core layer's wheels are built "
            "and tested for 3.12; moving runtimes is a deliberate upgrade, not drift.",
        )
        return function

    def _options(self, name: str, *, timeout_s: int, memory_mb: int, reserved: int | None) -> dict[str, Any]:
        """What every function shares, zip or image: X-Ray, its log group, the settings environment."""
        return {
            "description": f"medialens {name} ({self.config.name})",
            "architecture": lambda_.Architecture.X86_64,
            "memory_size": memory_mb,
            "timeout": cdk.Duration.seconds(timeout_s),
            "tracing": lambda_.Tracing.ACTIVE,
            "reserved_concurrent_executions": reserved,
            "log_group": logs.LogGroup(
                self,
                f"{name.capitalize()}Logs",
                retention=self.config.log_retention,
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
            "environment": {
                **self.environment,
                "POWERTOOLS_SERVICE_NAME": f"medialens-{name}",
                "POWERTOOLS_METRICS_NAMESPACE": "medialens",
                "LOG_LEVEL": "INFO",
            },
        }

    @staticmethod
    def _acknowledge_basic_execution(function: lambda_.Function) -> None:
        acknowledge(
            function,
            "AwsSolutions-IAM4",
            "AWSLambdaBasicExecutionRole only allows writing this function's logs.",
            findings=[LAMBDA_BASIC_EXECUTION],
        )

    def roles(self) -> list[iam.IRole]:
        return [f.role for f in self.all.values() if f.role is not None]
