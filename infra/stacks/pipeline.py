"""The processing stack: queues, the state machine, Lambda functions, GPU workers, the search
API and monitoring. Everything here can be rebuilt from the data stack's state."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constructs.api import SearchApi
from infra.constructs.events import AdmissionEvents
from infra.constructs.functions import Functions, SharedResources
from infra.constructs.observability import Observability
from infra.constructs.queues import Queues
from infra.constructs.storage import model_store_uri
from infra.constructs.workers import HeavyWorkers
from infra.constructs.workflow import Workflow
from infra.naming import DataNames
from infra.stacks.data import DataStack


class PipelineStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, data: DataStack, **kwargs: object
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=config.cdk_environment(),
            description=f"medialens {config.name}: admission, workflow, workers, search API, monitoring",
            **kwargs,  # type: ignore[arg-type]
        )
        self.add_stack_dependency(data)
        # The data stack's resources by name (see infra/naming.py), not by cross-stack token.
        names = DataNames.of(self, config)
        drop = s3.Bucket.from_bucket_name(self, "DropBucket", names.drop_bucket)
        artifacts = s3.Bucket.from_bucket_name(self, "ArtifactsBucket", names.artifacts_bucket)
        assets = dynamodb.Table.from_table_attributes(
            self, "AssetsTable", table_name=names.assets_table, grant_index_permissions=True
        )
        self.observability = Observability(self, "Observability", config=config)
        self.queues = Queues(self, "Queues", config=config)
        self.workflow = Workflow(self, "Workflow", config=config, queues=self.queues, artifacts=artifacts)
        self.events = AdmissionEvents(
            self, "AdmissionEvents", drop=drop, queues=self.queues, state_machine=self.workflow.state_machine
        )
        shared = SharedResources(
            drop=drop,
            artifacts=artifacts,
            model_store_uri=model_store_uri(artifacts.bucket_name),
            assets=assets,
            queues=self.queues,
            state_machine=self.workflow.state_machine,
            search=data.search,
        )
        self.functions = Functions(self, "Functions", config=config, shared=shared)
        self.workers = HeavyWorkers(
            self,
            "HeavyWorkers",
            config=config,
            shared=shared,
            environment=self.functions.environment,
            alarm_topic=self.observability.topic,
        )
        if self.workers.endpoint is not None:
            self.functions.forward_heavy_steps(shared, self.workers.endpoint.endpoint)
        self.api = SearchApi(
            self, "SearchApi", config=config, handler=self.functions.api, voice_handler=self.functions.voice
        )
        self.observability.watch(
            queues=self.queues,
            functions=self.functions.all,
            state_machine=self.workflow.state_machine,
            api=self.api.api,
            gpu_metrics=self.workers.metrics,
        )
        cdk.CfnOutput(self, "ApiUrl", value=self.api.url)
        cdk.CfnOutput(self, "ApiInvokePolicyArn", value=self.api.invoke_policy.managed_policy_arn)
        cdk.CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        for name, work_queue in self.queues.by_name.items():
            cdk.CfnOutput(self, f"{name.capitalize()}QueueUrl", value=work_queue.queue.queue_url)
        cdk.CfnOutput(self, "DashboardName", value=config.prefix)
