"""Light-worker Lambda: SQS batch of step messages → step logic → SendTaskSuccess/Failure."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from medialens.domain.steps import StepMessage
from medialens.observability import count, get_logger, get_metrics, get_tracer
from medialens.services import get_services
from medialens.worker.tasks import TaskRunner

logger = get_logger("medialens-light")
metrics = get_metrics("medialens-light")
tracer = get_tracer("medialens-light")
processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    message = StepMessage.model_validate_json(record.body)
    logger.append_keys(asset_id=message.asset.asset_id, step=message.step.value)
    TaskRunner(get_services()).run(message)
    count(metrics, f"Step_{message.step.value}")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
