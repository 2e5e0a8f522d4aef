"""Admission: S3 "Object Created" events for ``incoming/`` in the drop bucket → EventBridge
rule → the ingest queue, the same rule ``medialens.orchestration.provision`` creates locally.
EventBridge also covers CompleteMultipartUpload, so large uploads need nothing extra."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.queues import Queues
from medialens.settings import Settings

DROP_PREFIX: str = Settings.model_fields["drop_prefix"].default


class DropEvents(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, drop: s3.IBucket, queues: Queues) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "ObjectCreated",
            description="Uploads under the drop prefix start an analysis",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [drop.bucket_name]}, "object": {"key": [{"prefix": DROP_PREFIX}]}},
            ),
        )
        self.rule.add_target(
            targets.SqsQueue(
                queues.ingest.queue,
                # Undeliverable events land with the ingest dead letters: archived by the DLQ
                # handler and counted by the dead-letter alarm, like admissions that failed.
                dead_letter_queue=queues.ingest.dead_letter,
                retry_attempts=185,
                max_event_age=cdk.Duration.hours(24),
            )
        )
