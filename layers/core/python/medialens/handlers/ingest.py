"""Ingest Lambda: SQS batch of admission events (S3 objects created or deleted, executions that
ended badly) → assets, executions and removals."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from medialens.admission import handle, parse_events
from medialens.observability import count, get_logger, get_metrics, get_tracer
from medialens.services import get_services

logger = get_logger("medialens-ingest")
metrics = get_metrics("medialens-ingest")
tracer = get_tracer("medialens-ingest")
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    services = get_services()
    for event in parse_events(record.body):
        outcome, asset_id = handle(services, event)
        logger.info("admission", extra={"outcome": outcome, "asset_id": asset_id, "event": type(event).__name__})
        count(metrics, f"Admission_{outcome.value}")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
