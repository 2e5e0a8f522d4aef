"""Search API Lambda: API Gateway (REST, proxy integration) event → the API resolver → response."""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from medialens.api.app import current_app, route_of
from medialens.api.edge import refusal
from medialens.observability import emit, get_logger, get_metrics, get_tracer
from medialens.services import get_services
from medialens.settings import get_settings
from medialens.voice import VOICE_SERVICE, preload

# Only searches publish metrics: a request for an asset or /health has none, which is fine.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = get_logger("medialens-api")
metrics = get_metrics("medialens-api")
tracer = get_tracer("medialens-api")

if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    # Load the query embedding models during the Lambda init phase, not in the first search.
    # A failure here is reported by /health and by the first semantic query, not at import.
    try:
        services = get_services()
        for embedder in (services.embedder, services.english_embedder):
            if embedder is not None:
                embedder.load()
    except Exception:
        logger.exception("query embedding model did not load at init")
    if os.environ.get("POWERTOOLS_SERVICE_NAME") == VOICE_SERVICE:
        # The voice function (the same handler in the image with the models): load them now too.
        try:
            preload(get_settings())
        except Exception:
            logger.exception("voice models did not load at init")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    response = refusal(event) or current_app().resolve(event, context)
    status = int(response.get("statusCode", 500))
    route = route_of(str(event.get("path") or ""))
    emit("ApiLatency", MetricUnit.Milliseconds, (time.perf_counter() - started) * 1000, {"route": route})
    emit(f"ApiResponses_{status // 100}xx", MetricUnit.Count, 1)
    return response
