"""SQS: one work queue per worker class (ingest, light, heavy), each with its dead-letter queue.

Same shape as ``medialens.orchestration.provision.provision_queues`` (the local profiles): a
message received ``max_receive_count`` times without being deleted moves to ``<queue>-dlq``,
where the DLQ handler fails its waiting task and archives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import EnvironmentConfig
from medialens.orchestration.provision import DLQ_RETENTION_S
from medialens.settings import Settings

# Lambda's guidance for SQS event sources: visibility timeout at least six times the function
# timeout, so a batch retried after throttling is not redelivered while still running.
VISIBILITY_PER_FUNCTION_TIMEOUT = 6
INGEST_TIMEOUT_S = 60
DLQ_HANDLER_TIMEOUT_S = 60
# The GPU worker sets its own visibility on receive and extends it while a batch runs.
HEAVY_VISIBILITY_S = 300
WORK_RETENTION = cdk.Duration.days(4)


@dataclass(frozen=True)
class WorkQueue:
    name: str  # ingest | light | heavy: the settings field is MEDIALENS_<NAME>_QUEUE
    queue: sqs.Queue
    dead_letter: sqs.Queue


class Queues(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.max_receive_count = Settings.model_fields["max_receive_count"].default
        visibility_s = {
            "ingest": INGEST_TIMEOUT_S * VISIBILITY_PER_FUNCTION_TIMEOUT,
            "light": config.functions.light_timeout_s * VISIBILITY_PER_FUNCTION_TIMEOUT,
            "heavy": HEAVY_VISIBILITY_S,
        }
        self.by_name: dict[str, WorkQueue] = {}
        for name, seconds in visibility_s.items():
            title = name.capitalize()
            dead_letter = sqs.Queue(
                self,
                f"{title}DeadLetter",
                retention_period=cdk.Duration.seconds(DLQ_RETENTION_S),
                visibility_timeout=cdk.Duration.seconds(DLQ_HANDLER_TIMEOUT_S * VISIBILITY_PER_FUNCTION_TIMEOUT),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self,
                title,
                retention_period=WORK_RETENTION,
                visibility_timeout=cdk.Duration.seconds(seconds),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter, max_receive_count=self.max_receive_count),
            )
            self.by_name[name] = WorkQueue(name=name, queue=queue, dead_letter=dead_letter)

    @property
    def ingest(self) -> WorkQueue:
        return self.by_name["ingest"]

    @property
    def light(self) -> WorkQueue:
        return self.by_name["light"]

    @property
    def heavy(self) -> WorkQueue:
        return self.by_name["heavy"]
