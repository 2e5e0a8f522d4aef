"""Every CloudWatch metric medialens emits, defined once: the emitters use these names, the CDK
dashboard draws a widget for each (a test holds both to this table), and ``publish`` turns an
operations report into the report-level metrics the drift and model-error alarms read.

A family's name has one placeholder (``Step_{step}``) filled from a closed set of values, so the
dashboard can list every member.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from pydantic import BaseModel, ConfigDict

from medialens.admission import Admission
from medialens.domain.quality import Signal
from medialens.domain.search import SearchMode
from medialens.domain.steps import StepName
from medialens.insight.report import OperationsReport
from medialens.observability import NAMESPACE


class MetricSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    unit: MetricUnit
    description: str
    dimension: str | None = None  # at most one, with its closed set of values
    values: tuple[str, ...] = ()
    search_dimension: str | None = None  # a dimension whose values are open: the dashboard searches
    statistic: str = "Sum"  # how the dashboard reads it
    emitted_by: str  # the module that emits it

    def names(self) -> list[str]:
        """The metric names this spec stands for (a family expands its placeholder)."""
        if "{" in self.name:
            return [self.name.format(**{self.name.split("{")[1].split("}")[0]: v}) for v in self.values]
        return [self.name]


_STAGES = tuple(step.value for step in StepName if step is not StepName.MARK_FAILED)

METRICS: tuple[MetricSpec, ...] = (
    # --- the pipeline, as it runs ------------------------------------------------------------
    MetricSpec(
        name="Admission_{outcome}",
        unit=MetricUnit.Count,
        description="Drop-bucket events by what admission did with them.",
        values=tuple(outcome.value for outcome in Admission),
        emitted_by="medialens.handlers.ingest",
    ),
    MetricSpec(
        name="Step_{step}",
        unit=MetricUnit.Count,
        description="Light step messages handled, per step.",
        values=_STAGES,
        emitted_by="medialens.handlers.light",
    ),
    MetricSpec(
        name="StageLatency",
        unit=MetricUnit.Milliseconds,
        description="Wall time of one stage of one asset.",
        dimension="stage",
        values=_STAGES,
        statistic="p95",
        emitted_by="medialens.observability",
    ),
    MetricSpec(
        name="DeadLetteredMessages",
        unit=MetricUnit.Count,
        description="Step messages that used up their receives.",
        emitted_by="medialens.handlers.dlq",
    ),
    MetricSpec(
        name="HeavyStepsForwarded",
        unit=MetricUnit.Count,
        description="Heavy messages sent to the SageMaker async endpoint.",
        emitted_by="medialens.handlers.forward",
    ),
    # --- the API -----------------------------------------------------------------------------
    MetricSpec(
        name="Search_{mode}",
        unit=MetricUnit.Count,
        description="Searches by mode.",
        values=tuple(mode.value for mode in SearchMode),
        emitted_by="medialens.api.routes",
    ),
    MetricSpec(
        name="ApiLatency",
        unit=MetricUnit.Milliseconds,
        description="Time to answer one API request inside the function, per documented route.",
        search_dimension="route",
        statistic="p95",
        emitted_by="medialens.handlers.api",
    ),
    MetricSpec(
        name="ApiResponses_{status_class}",
        unit=MetricUnit.Count,
        description="API answers by status class.",
        values=("2xx", "3xx", "4xx", "5xx"),
        emitted_by="medialens.handlers.api",
    ),
    MetricSpec(
        name="SearchLatency",
        unit=MetricUnit.Milliseconds,
        description="Time to answer a search inside the API function.",
        statistic="p95",
        emitted_by="medialens.api.routes",
    ),
    # --- the GPU worker ---------------------------------------------------------------------------
    MetricSpec(
        name="GpuUtilization",
        unit=MetricUnit.Percent,
        description="GPU busy time, sampled by the heavy worker where it has a GPU (NVML).",
        search_dimension="device",
        statistic="Average",
        emitted_by="medialens.worker.gpu",
    ),
    MetricSpec(
        name="GpuMemoryUsed",
        unit=MetricUnit.Megabytes,
        description="GPU memory in use (MiB), sampled with the utilisation.",
        search_dimension="device",
        statistic="Maximum",
        emitted_by="medialens.worker.gpu",
    ),
    # --- the operations report, published every hour (medialens.handlers.insight) -------------
    MetricSpec(
        name="DriftRatio",
        unit=MetricUnit.NoUnit,
        description="Drift score over its alarm threshold (1 = the threshold), per compared signal.",
        dimension="signal",
        values=(*(s.value for s in Signal), "languages", "media_types", "embeddings"),
        statistic="Maximum",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="DriftAlarms",
        unit=MetricUnit.Count,
        description="Signals whose drift raises an alarm in the last day.",
        statistic="Maximum",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="ModelErrorRate",
        unit=MetricUnit.Percent,
        description="Failed calls over calls in the last day, per stage.",
        dimension="stage",
        values=_STAGES,
        statistic="Maximum",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="ConfidenceMean",
        unit=MetricUnit.NoUnit,
        description="Mean of a model-quality signal over the last day (all models and languages).",
        dimension="signal",
        values=tuple(s.value for s in Signal),
        statistic="Average",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="SpeechFallbackRate",
        unit=MetricUnit.Percent,
        description="Share of the audio a speech cascade's full model transcribed again over the last day (the "
        "mean over chunks of Signal.ASR_FALLBACK), per fast model.",
        search_dimension="model",
        statistic="Average",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="MediaMinutesPerWallMinute",
        unit=MetricUnit.NoUnit,
        description="Media minutes analysed per wall minute over the last day.",
        statistic="Average",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="EndToEndP95",
        unit=MetricUnit.Seconds,
        description="p95 of admission-to-finish time per asset over the last day.",
        statistic="Maximum",
        emitted_by="medialens.insight.metrics",
    ),
    MetricSpec(
        name="CostPerMediaHour",
        unit=MetricUnit.NoUnit,
        description="USD per analysed hour of audio and video over the last day (the price table's).",
        statistic="Average",
        emitted_by="medialens.insight.metrics",
    ),
)


def spec_for(name: str) -> MetricSpec:
    for spec in METRICS:
        if name in spec.names():
            return spec
    raise KeyError(f"{name} is not in medialens.insight.metrics.METRICS")


def all_names() -> list[str]:
    return [name for spec in METRICS for name in spec.names()]


def report_metrics(report: OperationsReport) -> Iterator[tuple[str, float, dict[str, str]]]:
    """(name, value, dimensions) of every report-level metric the report has a value for."""
    ratios: dict[str, float] = {}
    for score in report.drift:
        ratio = score.score / score.threshold if score.threshold else 0.0
        ratios[score.signal] = max(ratios.get(score.signal, 0.0), ratio)
    for signal, ratio in sorted(ratios.items()):
        yield "DriftRatio", round(ratio, 4), {"signal": signal}
    yield "DriftAlarms", float(len(report.alarms)), {}
    for errors in report.errors:
        yield "ModelErrorRate", round(100 * errors.rate, 3), {"stage": errors.stage}
    sums: dict[str, tuple[float, int]] = {}
    for view in report.quality:
        total, n = sums.get(view.signal, (0.0, 0))
        sums[view.signal] = (total + (view.mean or 0.0) * view.n, n + view.n)
    for signal, (total, n) in sorted(sums.items()):
        if n:
            yield "ConfidenceMean", round(total / n, 4), {"signal": signal}
    fallbacks: dict[str, tuple[float, int]] = {}  # per fast model, over its languages
    for view in report.quality:
        if view.signal == Signal.ASR_FALLBACK.value:
            total, n = fallbacks.get(view.model, (0.0, 0))
            fallbacks[view.model] = (total + (view.mean or 0.0) * view.n, n + view.n)
    for model, (total, n) in sorted(fallbacks.items()):
        if n:
            yield "SpeechFallbackRate", round(100 * total / n, 3), {"model": model}
    if report.media_minutes_per_wall_minute is not None:
        yield "MediaMinutesPerWallMinute", report.media_minutes_per_wall_minute, {}
    if report.end_to_end_s is not None:
        yield "EndToEndP95", report.end_to_end_s.p95, {}
    if report.cost.per_media_hour_usd is not None:
        yield "CostPerMediaHour", round(report.cost.per_media_hour_usd, 5), {}


def publish(report: OperationsReport) -> Sequence[tuple[str, float, dict[str, str]]]:
    """Emits the report-level metrics as EMF (nothing when metrics are off); what it emitted."""
    emitted = list(report_metrics(report))
    if is_metrics_disabled():
        return emitted
    for name, value, dimensions in emitted:
        with single_metric(name=name, unit=spec_for(name).unit, value=value, namespace=NAMESPACE) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)
    return emitted
