"""Dead-letter Lambda: a step message that used up its receives fails its waiting task at once,
so the execution ends FAILED with a reason instead of hanging until its timeout. The message is
archived under ``dead-letters/`` in the artifacts bucket for inspection; reprocessing the asset
is the redrive (a redriven task token would be dead by then)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from medialens.adapters.storage.base import join_uri
from medialens.admission import ObjectCreated, asset_for_event, parse_events
from medialens.domain.steps import StepMessage
from medialens.errors import DeadLetteredError
from medialens.observability import count, get_logger, get_metrics, get_tracer
from medialens.services import get_services
from medialens.worker.tasks import TaskAnswerer

logger = get_logger("medialens-dlq")
metrics = get_metrics("medialens-dlq")
tracer = get_tracer("medialens-dlq")
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    services = get_services()
    queue = record.event_source_arn.rsplit(":", 1)[-1] if record.event_source_arn else "unknown-queue"
    archive = join_uri(services.settings.artifacts_bucket, "dead-letters", queue, f"{record.message_id}.json")
    services.blobs.put_text(
        archive,
        json.dumps({"queue": queue, "attributes": dict(record.attributes.raw_event), "body": record.body}),
    )
    count(metrics, "DeadLetteredMessages")
    receives = record.attributes.approximate_receive_count
    try:
        message = StepMessage.model_validate_json(record.body)
    except ValidationError:
        if not _fail_admission(record.body, receives, queue, archive):
            # Nothing waits on it and it names no upload: the archive keeps it for inspection.
            logger.error("dead-lettered message is neither a step nor an S3 event", extra={"archive": archive})
        return
    error = DeadLetteredError(
        f"step {message.step.value} was never answered: a worker crashed or timed out on each delivery "
        f"(receive count {receives}), so its message was dead-lettered from {queue}; archived at {archive}"
    )
    services.registry.record_error(message.asset.asset_id, error.error_name, error.reason, stage=message.step.value)
    TaskAnswerer(services).failure(message.task_token, error.error_name, error.reason)


def _fail_admission(body: str, receives: str, queue: str, archive: str) -> bool:
    """An "Object Created" event that could not be admitted still becomes a FAILED asset, so the
    upload shows in status instead of vanishing."""
    try:
        events = parse_events(body)
    except ValueError:
        return False
    services = get_services()
    # A removal or a workflow's end that could not be handled leaves nothing to show: the archive
    # and the dead-letter alarm are its record.
    for event in events:
        if not isinstance(event, ObjectCreated):
            continue
        if event.key.endswith("/") or not event.key.startswith(services.settings.drop_prefix):
            continue
        asset = asset_for_event(services, event)
        services.registry.create_if_absent(asset)
        services.registry.mark_failed(
            asset.asset_id,
            DeadLetteredError.error_name,
            f"admission failed {receives} times; the event was dead-lettered from {queue} and archived at {archive}",
        )
    return True


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
