"""Forwarder Lambda: SQS batch from the heavy queue → one request on the SageMaker async endpoint
(``medialens.worker.forward``). A body that is not a step message fails alone (and is
dead-lettered in time); a batch the endpoint did not accept stays on the queue and is tried again."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import SQSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from medialens.domain.steps import StepMessage
from medialens.observability import count, get_logger, get_metrics, get_tracer
from medialens.services import get_services
from medialens.worker.forward import forward

logger = get_logger("medialens-forward")
metrics = get_metrics("medialens-forward")
tracer = get_tracer("medialens-forward")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=SQSEvent)
def handler(event: SQSEvent, context: LambdaContext) -> PartialItemFailureResponse:
    failed: list[str] = []
    messages: list[StepMessage] = []
    forwarding: list[str] = []
    for record in event.records:
        try:
            messages.append(StepMessage.model_validate_json(record.body))
            forwarding.append(record.message_id)
        except ValidationError:
            logger.error("not a step message: left for the dead-letter queue", extra={"message_id": record.message_id})
            failed.append(record.message_id)
    if messages:
        try:
            forwarded = forward(get_services(), messages)
        except Exception:
            logger.exception("heavy steps not forwarded", extra={"messages": len(messages)})
            failed += forwarding
        else:
            extra = {"inference_id": forwarded.inference_id, "messages": forwarded.messages}
            logger.info("heavy steps forwarded", extra=extra)
            count(metrics, "HeavyStepsForwarded", forwarded.messages)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
