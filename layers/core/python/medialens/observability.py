"""Powertools logger/metrics/tracer, configured once per process.

On Lambda they write JSON logs and EMF metrics to stdout (CloudWatch). The local runtime sets
``MEDIALENS_LOG_FILE`` so the same structured logs go to a file instead of the user's terminal,
and attaches a local metric sink (``set_local_sink``): with metrics off (the embedded profile)
every metric goes there instead of EMF, under the same names (``medialens.insight.metrics``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Protocol, TextIO

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


class MetricSink(Protocol):
    """Where metrics go when EMF is off: the embedded profile's metric store."""

    def record(self, name: str, value: float, dimensions: Mapping[str, str]) -> None: ...


_local_sink: MetricSink | None = None


def set_local_sink(sink: MetricSink | None) -> None:
    global _local_sink  # one sink per process, attached by the local runtime
    _local_sink = sink


def emit(name: str, unit: MetricUnit, value: float, dimensions: Mapping[str, str] | None = None) -> None:
    """One metric now: EMF with its dimensions when metrics are on (``single_metric`` does not
    look at POWERTOOLS_METRICS_DISABLED, so this does), else the local sink, if any."""
    if not is_metrics_disabled():
        with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
            for key, dimension in (dimensions or {}).items():
                metric.add_dimension(name=key, value=dimension)
    elif _local_sink is not None:
        _local_sink.record(name, value, dict(dimensions or {}))


def record_local(name: str, value: float, dimensions: Mapping[str, str] | None = None) -> None:
    """A sample only the embedded runtime takes (queue depth, message age): AWS has its own."""
    if _local_sink is not None:
        _local_sink.record(name, value, dict(dimensions or {}))


def count(metrics: Metrics, name: str, value: float = 1) -> None:
    """Adds a Count metric to the handler's batch, unless metrics are off (locally: Powertools
    still buffers them then, and prints the buffer every 100 values); then the local sink."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    elif _local_sink is not None:
        _local_sink.record(name, value, {})


def stage_latency(stage: str, seconds: float) -> None:
    """``StageLatency`` (ms, dimension ``stage``), which the dashboard's p95 alarms read."""
    emit("StageLatency", MetricUnit.Milliseconds, seconds * 1000, {"stage": stage})


@cache
def get_tracer(service: str) -> Tracer:
    return Tracer(service=service)
