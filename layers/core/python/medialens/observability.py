"""Powertools logger/metrics/tracer, configured once per process.

On Lambda they write JSON logs and EMF metrics to stdout (CloudWatch). The local runtime sets
``MEDIALENS_LOG_FILE`` so the same structured logs go to a file instead of the user's terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from functools import cache
from pathlib import Path
from typing import TextIO

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

NAMESPACE = "medialens"


@cache
def get_logger(service: str) -> Logger:
    """One Logger per service: Powertools configures a service's logger only once, and a second
    instance over the same underlying logger would have no formatter."""
    return Logger(service=service, logger_handler=_Destination(), level=os.environ.get("LOG_LEVEL", "INFO"))


class _Destination(logging.StreamHandler):  # type: ignore[type-arg]
    """Stdout (Lambda, containers), or the file named by MEDIALENS_LOG_FILE when it is set. Decided
    per record, because modules create their loggers at import, before the CLI sets the file."""

    _files: dict[str, TextIO] = {}
    _lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        path = os.environ.get("MEDIALENS_LOG_FILE")
        if not path:
            # Assigned, not setStream(): that would flush the previous stream, which a test runner
            # may have closed since (it swaps sys.stdout per test).
            self.stream = sys.stdout
        else:
            with self._lock:
                if path not in self._files:
                    self._files[path] = Path(path).open("a", encoding="utf-8")  # noqa: SIM115 - open for the process
                self.stream = self._files[path]
        super().emit(record)


@cache
def get_metrics(service: str) -> Metrics:
    return Metrics(namespace=NAMESPACE, service=service)


def count(metrics: Metrics, name: str, value: float = 1) -> None:
    """Adds a Count metric, unless metrics are off (locally): Powertools still buffers them then,
    and prints the buffer to stdout every 100 values."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def stage_latency(stage: str, seconds: float) -> None:
    """EMF ``StageLatency`` (ms, dimension ``stage``), which the dashboard's p95 alarms read.
    ``single_metric`` does not look at POWERTOOLS_METRICS_DISABLED, so this does."""
    if is_metrics_disabled():
        return
    with single_metric(
        name="StageLatency", unit=MetricUnit.Milliseconds, value=seconds * 1000, namespace=NAMESPACE
    ) as m:
        m.add_dimension(name="stage", value=stage)


@cache
def get_tracer(service: str) -> Tracer:
    return Tracer(service=service)
