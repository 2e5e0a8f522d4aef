"""The Step Functions state machine from ``statemachines/analyze_asset.asl.json``.

The ASL file is the single definition for AWS and local runs; its ``${...}`` placeholders are
filled here through DefinitionSubstitutions and locally by ``medialens.orchestration.provision``.
``substitution_values`` knows every value the pipeline can offer; synth fails naming any
placeholder it cannot fill, so a new placeholder in the ASL cannot reach AWS unfilled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.bundling import REPO_ROOT
from infra.config import EnvironmentConfig
from infra.constructs.queues import Queues
from medialens.orchestration import asl

ASL_FILE = REPO_ROOT / "statemachines" / asl.ASL_NAME


@dataclass(frozen=True)
class Substitution:
    value: str
    # A queue the state machine sends to when the definition uses this value.
    queue: sqs.IQueue | None = None


def substitution_values(queues: Queues, artifacts: s3.IBucket) -> dict[str, Substitution]:
    """Every value a placeholder may name: each work queue's URL/ARN/name (``LightQueueUrl``,
    ``HeavyQueueArn``, ...) and the artifacts bucket."""
    values: dict[str, Substitution] = {}
    for name, work_queue in queues.by_name.items():
        title = name.capitalize()
        queue = work_queue.queue
        values[f"{title}QueueUrl"] = Substitution(queue.queue_url, queue)
        values[f"{title}QueueArn"] = Substitution(queue.queue_arn, queue)
        values[f"{title}QueueName"] = Substitution(queue.queue_name, queue)
    values["ArtifactsBucket"] = Substitution(artifacts.bucket_name)
    return values


def definition_substitutions(
    values: dict[str, Substitution], definition: Path = ASL_FILE
) -> tuple[dict[str, str], list[Substitution]]:
    """The DefinitionSubstitutions for exactly the file's placeholders, and the substitutions used."""
    needed = asl.placeholders(definition.read_text(encoding="utf-8"))
    missing = sorted(needed - values.keys())
    if missing:
        raise ValueError(
            f"{definition.name} uses placeholders the CDK app cannot fill: {missing}; "
            "add them to infra/constructs/workflow.py substitution_values"
        )
    used = sorted(needed)
    return {name: values[name].value for name in used}, [values[name] for name in used]


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        queues: Queues,
        artifacts: s3.IBucket,
        definition: Path = ASL_FILE,
    ) -> None:
        super().__init__(scope, construct_id)
        substitutions, used = definition_substitutions(substitution_values(queues, artifacts), definition)
        name = f"{config.prefix}-analyze-asset"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # The /aws/vendedlogs/ prefix keeps Step Functions' log delivery out of the account's
            # size-limited CloudWatch Logs resource policy.
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "AnalyzeAsset",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(definition)),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        # Send rights to exactly the queues the definition names (a queue named twice: one grant).
        targets = {s.queue.node.path: s.queue for s in used if s.queue is not None}
        for queue in targets.values():
            queue.grant_send_messages(self.state_machine)
