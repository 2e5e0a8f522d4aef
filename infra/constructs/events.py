"""Admission's events → the ingest queue: the drop bucket's "Object Created" and "Object Deleted"
under ``incoming/`` (the rule ``medialens.orchestration.provision`` creates locally; EventBridge
also covers CompleteMultipartUpload, so large uploads need nothing extra), and the analysis
executions that FAILED, TIMED_OUT or were ABORTED, so an asset whose workflow ended without its
MarkFailed step still ends FAILED."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.queues import Queues
from medialens.admission import DROP_EVENT_TYPES, EXECUTION_STATUS_CHANGE, FAILED_EXECUTION_STATES
from medialens.settings import Settings

DROP_PREFIX: str = Settings.model_fields["drop_prefix"].default


class AdmissionEvents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        drop: s3.IBucket,
        queues: Queues,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.drop_rule = events.Rule(
            self,
            "DropObjectChanges",
            description="Uploads under the drop prefix start an analysis; deletions remove what it found",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=list(DROP_EVENT_TYPES),
                detail={"bucket": {"name": [drop.bucket_name]}, "object": {"key": [{"prefix": DROP_PREFIX}]}},
            ),
        )
        self.execution_rule = events.Rule(
            self,
            "ExecutionsEndedBadly",
            description="Executions that failed, timed out or were aborted: their asset must end FAILED",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=[EXECUTION_STATUS_CHANGE],
                detail={"stateMachineArn": [state_machine.state_machine_arn], "status": list(FAILED_EXECUTION_STATES)},
            ),
        )
        for rule in (self.drop_rule, self.execution_rule):
            rule.add_target(
                targets.SqsQueue(
                    queues.ingest.queue,
                    # Undeliverable events land with the ingest dead letters: archived by the DLQ
                    # handler and counted by the dead-letter alarm, like admissions that failed.
                    dead_letter_queue=queues.ingest.dead_letter,
                    retry_attempts=185,
                    max_event_age=cdk.Duration.hours(24),
                )
            )
