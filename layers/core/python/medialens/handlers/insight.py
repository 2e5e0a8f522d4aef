"""Scheduled Lambda (hourly): builds the operations report over the last day from the registry
and publishes its report-level metrics (drift per signal, drift alarms, model error rate per
stage, confidence means, throughput, end-to-end p95, cost per media hour) for the dashboard and
the drift and model-error alarms."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from medialens.domain.assets import utcnow
from medialens.insight.metrics import publish
from medialens.insight.report import build_report
from medialens.observability import get_logger, get_metrics, get_tracer
from medialens.services import get_services

WINDOW = timedelta(days=1)

logger = get_logger("medialens-insight")
metrics = get_metrics("medialens-insight")
tracer = get_tracer("medialens-insight")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    until = utcnow()
    report = build_report(get_services().registry.iter_all(), until - WINDOW, until)
    emitted = publish(report)
    alarms = [f"{score.signal} ({score.model or 'mix'})" for score in report.alarms]
    logger.info(
        "operations report published", extra={"assets": report.assets, "metrics": len(emitted), "alarms": alarms}
    )
    return {"assets": report.assets, "metrics": len(emitted), "drift_alarms": alarms}
