"""Creates the pipeline's AWS resources on an emulator (moto, LocalStack): the same queues,
dead-letter queues, state machine and S3 → EventBridge → SQS admission that CDK deploys.

The embedded profile provisions only orchestration (SQS, Step Functions) on its in-process moto;
the emulated-AWS profile provisions storage too (buckets, the DynamoDB table, the event rule).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from medialens import aws
from medialens.adapters.registry.dynamodb import table_definition
from medialens.admission import drop_event_pattern
from medialens.orchestration import asl
from medialens.settings import Settings

LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/medialens-local-state-machine"
DLQ_RETENTION_S = 14 * 24 * 3600
INGEST_RULE = "medialens-drop-object-changes"


@dataclass
class Resources:
    queue_urls: dict[str, str] = field(default_factory=dict)  # name -> URL, dead-letter queues included
    dead_letter_urls: dict[str, str] = field(default_factory=dict)  # source queue name -> its DLQ URL
    state_machine_arn: str = ""


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}-dlq"


def substitutions(resources: Resources, settings: Settings) -> dict[str, str]:
    """The same keys CDK passes as DefinitionSubstitutions."""
    return {
        "LightQueueUrl": resources.queue_urls[settings.light_queue],
        "HeavyQueueUrl": resources.queue_urls[settings.heavy_queue],
    }


def _queue_arn(settings: Settings, url: str) -> str:
    attributes = aws.sqs(settings).get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def provision_queues(settings: Settings, resources: Resources) -> None:
    sqs = aws.sqs(settings)
    for name in (settings.ingest_queue, settings.light_queue, settings.heavy_queue):
        dlq_name = dead_letter_queue_name(name)
        dlq_url = sqs.create_queue(QueueName=dlq_name, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)})[
            "QueueUrl"
        ]
        redrive = {
            "deadLetterTargetArn": _queue_arn(settings, dlq_url),
            "maxReceiveCount": settings.max_receive_count,
        }
        url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(settings.visibility_timeout_s),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        resources.queue_urls[name] = url
        resources.queue_urls[dlq_name] = dlq_url
        resources.dead_letter_urls[name] = dlq_url


DefinitionTransform = Callable[[dict[str, Any]], None]


def provision_state_machine(
    settings: Settings, resources: Resources, transform: DefinitionTransform | None = None
) -> None:
    sfn = aws.stepfunctions(settings)
    definition = asl.render(substitutions(resources, settings))
    if transform is not None:  # tests shorten timeouts of the real definition
        document = json.loads(definition)
        transform(document)
        definition = json.dumps(document)
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    if settings.state_machine_name in existing:
        arn = existing[settings.state_machine_name]
        sfn.update_state_machine(stateMachineArn=arn, definition=definition)
    else:
        arn = sfn.create_state_machine(
            name=settings.state_machine_name, definition=definition, roleArn=LOCAL_ROLE_ARN, type="STANDARD"
        )["stateMachineArn"]
    resources.state_machine_arn = arn


def provision_storage(settings: Settings, resources: Resources) -> None:
    """Buckets, the registry table and drop-bucket admission (S3 → EventBridge → ingest queue)."""
    s3 = aws.s3(settings)
    for bucket in (settings.drop_bucket, settings.artifacts_bucket):
        try:
            if settings.region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={"LocationConstraint": settings.region},  # type: ignore[typeddict-item]
                )
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    dynamodb = aws.dynamodb(settings)
    try:
        dynamodb.create_table(**table_definition(settings.assets_table))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    s3.put_bucket_notification_configuration(
        Bucket=settings.drop_bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    events = aws.events(settings)
    pattern = drop_event_pattern(settings)
    events.put_rule(Name=INGEST_RULE, EventPattern=json.dumps(pattern), State="ENABLED")
    ingest_url = resources.queue_urls[settings.ingest_queue]
    events.put_targets(Rule=INGEST_RULE, Targets=[{"Id": "ingest-queue", "Arn": _queue_arn(settings, ingest_url)}])


def provision(
    settings: Settings, *, storage: bool, definition_transform: DefinitionTransform | None = None
) -> Resources:
    resources = Resources()
    provision_queues(settings, resources)
    provision_state_machine(settings, resources, definition_transform)
    if storage:
        provision_storage(settings, resources)
    return resources
