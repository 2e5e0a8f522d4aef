"""The operations report: every figure ``medialens report`` prints, charts and the page shows, from
the assets of a window (their stage timings, quality summaries and outcomes).

- throughput: assets and media minutes finished per time bucket, and media minutes analysed per
  wall minute over the window;
- latency: p50/p95/p99 per stage, end to end per asset and per media minute; the batch sizes the
  heavy steps achieved;
- model errors: failed calls over calls, per stage, with the models that stage ran;
- quality: the confidence histograms per signal, model and language, with the reference window's;
- drift: each recent histogram, language mix, media-type mix and embedding centroid against its
  reference (``medialens.insight.drift``), and per time bucket;
- cost: ``medialens.insight.cost``.

The reference of a (signal, model) is the first ``reference_assets`` assets that have it, ever: the
first assets a model version saw after it was deployed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, Field

from medialens.domain.assets import Asset, AssetStatus, utcnow
from medialens.domain.quality import QUALITY_BINS, EmbeddingSummary, QualitySample
from medialens.insight.cost import CostSummary, media_seconds, summarize_costs
from medialens.insight.drift import PSI_ALARM, DriftScore, embedding_score, mix_score, psi_score
from medialens.insight.prices import DEFAULT_PRICES, Prices
from medialens.pipeline.catalog import CATALOG, WorkerClass

REFERENCE_ASSETS = 20
MAX_BUCKETS = 48


class Percentiles(BaseModel):
    count: int
    p50: float
    p95: float
    p99: float
    mean: float


def percentiles(values: Sequence[float]) -> Percentiles | None:
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    p50, p95, p99 = (round(float(v), 4) for v in np.percentile(array, [50, 95, 99]))
    return Percentiles(count=len(values), p50=p50, p95=p95, p99=p99, mean=round(float(array.mean()), 4))


class ThroughputBucket(BaseModel):
    start: datetime
    assets: int
    failed: int
    media_minutes: float


class StageLatency(BaseModel):
    stage: str
    worker: str
    seconds: Percentiles
    batch_mean: float | None = Field(description="Heavy steps: messages per call, on average.")
    batch_max: int | None


class StageErrors(BaseModel):
    stage: str
    calls: int
    failures: int
    rate: float
    models: list[str]


class QualityView(BaseModel):
    signal: str
    model: str
    language: str | None
    counts: list[int]
    n: int
    mean: float | None
    reference_counts: list[int] = Field(description="The reference window's histogram (the same bins).")


class DriftPoint(BaseModel):
    start: datetime
    score: float


class DriftSeries(BaseModel):
    signal: str
    model: str | None
    threshold: float
    points: list[DriftPoint]


class MetricSample(BaseModel):
    """One timestamped metric value (the embedded profile's metric store)."""

    at: datetime
    name: str
    dimensions: dict[str, str]
    value: float


class QueuePoint(BaseModel):
    at: datetime
    visible: float
    in_flight: float


class QueueView(BaseModel):
    queue: str
    max_visible: float
    max_in_flight: float
    max_wait_s: float | None = Field(description="Longest a message waited before a worker took it.")
    points: list[QueuePoint]


class RouteLatency(BaseModel):
    route: str
    milliseconds: Percentiles


class GpuView(BaseModel):
    device: str
    utilization_mean: float
    utilization_max: float
    memory_max_mib: float | None


QUEUE_DEPTH = "QueueDepth"  # sampled by the embedded runtime: dimensions queue, state
QUEUE_WAIT = "QueueMessageAge"  # seconds a message waited when a poller took it: dimension queue
SAMPLED_METRICS = (QUEUE_DEPTH, QUEUE_WAIT, "ApiLatency", "GpuUtilization", "GpuMemoryUsed")
API_RESPONSES = "ApiResponses_"


class OperationsReport(BaseModel):
    generated_at: datetime
    since: datetime
    until: datetime
    bucket_seconds: int
    assets: int
    by_status: dict[str, int]
    media_minutes: float
    wall_minutes: float
    media_minutes_per_wall_minute: float | None
    throughput: list[ThroughputBucket]
    stages: list[StageLatency]
    end_to_end_s: Percentiles | None
    seconds_per_media_minute: Percentiles | None
    errors: list[StageErrors]
    quality: list[QualityView]
    drift: list[DriftScore]
    drift_not_compared: list[str] = Field(description="What could not be compared yet, and why (too few items).")
    drift_over_time: list[DriftSeries]
    languages: dict[str, int]
    media_types: dict[str, int]
    cost: CostSummary
    queues: list[QueueView] = Field(default_factory=list, description="Sampled depth per queue (embedded runtime).")
    api_routes: list[RouteLatency] = Field(default_factory=list, description="API latency per route.")
    api_responses: dict[str, int] = Field(default_factory=dict, description="API answers per status class.")
    gpus: list[GpuView] = Field(default_factory=list, description="GPU use, where the heavy worker has one.")

    @property
    def alarms(self) -> list[DriftScore]:
        """The scores that raise an alarm."""
        return [score for score in self.drift if score.alarm]


def _bucket_seconds(span: timedelta) -> int:
    for seconds in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400):
        if span.total_seconds() / seconds <= MAX_BUCKETS:
            return seconds
    return 7 * 86400


def _bucket(at: datetime, since: datetime, size: int) -> datetime:
    return since + timedelta(seconds=size * int((at - since).total_seconds() // size))


def _finished(asset: Asset) -> bool:
    return asset.status in (AssetStatus.SUCCEEDED, AssetStatus.FAILED)


def _summed(samples: Sequence[QualitySample]) -> dict[tuple[str, str, str | None], QualitySample]:
    merged: dict[tuple[str, str, str | None], QualitySample] = {}
    for sample in samples:
        key = (sample.signal.value, sample.model, sample.language)
        merged[key] = merged[key].plus(sample) if key in merged else sample
    return merged


Key = tuple[str, str]  # (signal, model)
_K = TypeVar("_K")


def _accumulate(histograms: dict[_K, list[int]], key: _K, counts: Sequence[int]) -> None:
    """Adds ``counts`` bin by bin to the histogram under ``key`` (an empty one if new)."""
    existing = histograms.get(key, [0] * QUALITY_BINS)
    histograms[key] = [a + b for a, b in zip(existing, counts, strict=True)]


def _references(history: Sequence[Asset], size: int) -> tuple[dict[Key, list[int]], dict[Key, set[str]]]:
    """Per (signal, model): the summed histogram of the first ``size`` assets that have it, and
    those assets' ids (an asset may be in one signal's reference and not another's)."""
    counts: dict[Key, list[int]] = {}
    members: dict[Key, set[str]] = defaultdict(set)
    for asset in sorted(history, key=lambda a: a.created_at):
        for key in {(sample.signal.value, sample.model) for sample in asset.quality.samples}:
            if len(members[key]) < size:
                members[key].add(asset.asset_id)
        for sample in asset.quality.samples:
            key = (sample.signal.value, sample.model)
            if asset.asset_id in members[key]:
                _accumulate(counts, key, sample.counts)
    return counts, members


def _recent_samples(window: Sequence[Asset], members: dict[Key, set[str]]) -> Iterator[tuple[Asset, QualitySample]]:
    """The window's samples that are not part of their own signal's reference."""
    for asset in window:
        for sample in asset.quality.samples:
            if asset.asset_id not in members.get((sample.signal.value, sample.model), set()):
                yield asset, sample


def build_report(
    history: Sequence[Asset],
    since: datetime,
    until: datetime | None = None,
    *,
    prices: Prices = DEFAULT_PRICES,
    reference_assets: int = REFERENCE_ASSETS,
    samples: Sequence[MetricSample] = (),
) -> OperationsReport:
    """The report over the assets created in [since, until); ``history`` is every asset the
    registry holds (the references may predate the window); ``samples`` the metric store's
    samples of the window, where there is one."""
    until = until or utcnow()
    window = [a for a in history if since <= a.created_at < until]
    size = _bucket_seconds(until - since)

    # --- throughput ------------------------------------------------------------------------
    buckets: dict[datetime, ThroughputBucket] = {}
    finished = [a for a in window if _finished(a)]
    for asset in finished:
        start = _bucket(asset.updated_at, since, size)
        bucket = buckets.setdefault(start, ThroughputBucket(start=start, assets=0, failed=0, media_minutes=0.0))
        bucket.assets += 1
        bucket.failed += asset.status is AssetStatus.FAILED
        bucket.media_minutes += (media_seconds(asset) or 0.0) / 60
    media_minutes = sum((media_seconds(a) or 0.0) / 60 for a in finished if a.status is AssetStatus.SUCCEEDED)
    if finished:
        first = min(a.created_at for a in finished)
        last = max(a.updated_at for a in finished)
        wall_minutes = max((last - first).total_seconds() / 60, 1e-9)
    else:
        wall_minutes = 0.0

    # --- latency, batches and errors --------------------------------------------------------
    stage_seconds: dict[str, list[float]] = defaultdict(list)
    batches: dict[str, list[int]] = defaultdict(list)
    for asset in window:
        for timing in asset.timings:
            if timing.seconds is not None:
                stage_seconds[timing.stage].append(timing.seconds)
                batches[timing.stage].append(timing.batch_size)
    stages = []
    for stage, values in sorted(stage_seconds.items()):
        spec = next((s for name, s in CATALOG.items() if name.value == stage), None)
        heavy = spec is not None and spec.worker is WorkerClass.HEAVY
        summary = percentiles(values)
        assert summary is not None
        stages.append(
            StageLatency(
                stage=stage,
                worker=spec.worker.value if spec else "unknown",
                seconds=summary,
                batch_mean=round(float(np.mean(batches[stage])), 2) if heavy else None,
                batch_max=max(batches[stage]) if heavy else None,
            )
        )
    succeeded = [a for a in window if a.status is AssetStatus.SUCCEEDED]
    per_media_minute = [a.elapsed_seconds / ((media_seconds(a) or 0.0) / 60) for a in succeeded if media_seconds(a)]
    models_by_stage: dict[str, set[str]] = defaultdict(set)
    for asset in window:
        for sample in asset.quality.samples:
            models_by_stage[sample.stage].add(sample.model)
    calls = Counter(t.stage for a in window for t in a.timings)
    failures = Counter(a.stage for a in window if a.status is AssetStatus.FAILED and a.stage)
    errors = [
        StageErrors(
            stage=stage,
            calls=count,
            failures=failures[stage],
            rate=round(failures[stage] / count, 4),
            models=sorted(models_by_stage.get(stage, set())),
        )
        for stage, count in sorted(calls.items())
    ]

    # --- quality and drift ------------------------------------------------------------------
    references, members = _references(history, reference_assets)
    drift: list[DriftScore] = []
    not_compared: list[str] = []
    recent = list(_recent_samples(window, members))
    if any(a.quality.samples for a in window) and not recent:
        not_compared.append(f"every asset of this window is in the reference (the first {reference_assets} per model)")
    window_samples = _summed([s for a in window for s in a.quality.samples])
    quality = [
        QualityView(
            signal=signal,
            model=model,
            language=language,
            counts=sample.counts,
            n=sample.n,
            mean=round(sample.mean, 4) if sample.mean is not None else None,
            reference_counts=references.get((signal, model), [0] * QUALITY_BINS),
        )
        for (signal, model, language), sample in sorted(window_samples.items(), key=lambda kv: str(kv[0]))
    ]
    recent_by_model: dict[Key, list[int]] = {}
    for _, sample in recent:
        key = (sample.signal.value, sample.model)
        _accumulate(recent_by_model, key, sample.counts)
    for (signal, model), counts in sorted(recent_by_model.items()):
        score = psi_score(signal, model, references.get((signal, model)) or [0] * QUALITY_BINS, counts)
        _place(score, f"{signal} ({model}): too few items", drift, not_compared)

    reference_assets_sorted = sorted(history, key=lambda a: a.created_at)[:reference_assets]
    reference_ids = {a.asset_id for a in reference_assets_sorted}
    recent_mix = [a for a in window if a.asset_id not in reference_ids]
    languages_ref = Counter(a.quality.language for a in reference_assets_sorted if a.quality.language)
    languages_now = Counter(a.quality.language for a in recent_mix if a.quality.language)
    types_ref = Counter(a.media_type.value for a in reference_assets_sorted if a.media_type)
    types_now = Counter(a.media_type.value for a in recent_mix if a.media_type)
    for name, reference, now in (("languages", languages_ref, languages_now), ("media_types", types_ref, types_now)):
        score = mix_score(name, reference, now) if reference and now else None
        _place(score, f"{name}: too few assets", drift, not_compared)
    for model in sorted({e.model for a in history for e in a.quality.embeddings}):
        reference_vectors = [e for a in reference_assets_sorted for e in a.quality.embeddings if e.model == model]
        recent_vectors = [e for a in recent_mix for e in a.quality.embeddings if e.model == model]
        if reference_vectors and recent_vectors:
            score = embedding_score(model, *_centroid(reference_vectors), *_centroid(recent_vectors))
            _place(score, f"embeddings ({model}): too few moments", drift, not_compared)

    over_time = _drift_over_time(recent, references, since, size)

    return OperationsReport(
        generated_at=utcnow(),
        since=since,
        until=until,
        bucket_seconds=size,
        assets=len(window),
        by_status=dict(Counter(a.status.value for a in window)),
        media_minutes=round(media_minutes, 3),
        wall_minutes=round(wall_minutes, 3),
        media_minutes_per_wall_minute=round(media_minutes / wall_minutes, 3) if wall_minutes else None,
        throughput=sorted(buckets.values(), key=lambda b: b.start),
        stages=stages,
        end_to_end_s=percentiles([a.elapsed_seconds for a in finished]),
        seconds_per_media_minute=percentiles(per_media_minute),
        errors=errors,
        quality=quality,
        drift=drift,
        drift_not_compared=not_compared,
        drift_over_time=over_time,
        languages=dict(Counter(a.quality.language for a in window if a.quality.language)),
        media_types=dict(Counter(a.media_type.value for a in window if a.media_type)),
        cost=summarize_costs(window, prices),
        **_sampled(samples),
    )


def _sampled(samples: Sequence[MetricSample]) -> dict[str, object]:
    """Queues, API routes and status classes, and GPUs, from the metric store's samples."""
    depth: dict[str, dict[datetime, dict[str, float]]] = defaultdict(dict)
    peaks: dict[tuple[str, str], float] = defaultdict(float)
    waits: dict[str, list[float]] = defaultdict(list)
    latency: dict[str, list[float]] = defaultdict(list)
    responses: Counter[str] = Counter()
    gpu: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sample in samples:
        if sample.name == QUEUE_DEPTH:
            # One sampling round records both states within a second: one point per second.
            point = depth[sample.dimensions.get("queue", "?")].setdefault(sample.at.replace(microsecond=0), {})
            state = sample.dimensions.get("state", "visible")
            point[state] = sample.value
            key = (sample.dimensions.get("queue", "?"), state)
            peaks[key] = max(peaks[key], sample.value)
        elif sample.name == QUEUE_WAIT:
            waits[sample.dimensions.get("queue", "?")].append(sample.value)
        elif sample.name == "ApiLatency":
            latency[sample.dimensions.get("route", "other")].append(sample.value)
        elif sample.name.startswith(API_RESPONSES):
            responses[sample.name.removeprefix(API_RESPONSES)] += int(sample.value)
        elif sample.name in ("GpuUtilization", "GpuMemoryUsed"):
            gpu[sample.dimensions.get("device", "0")][sample.name].append(sample.value)
    queues = [
        QueueView(
            queue=queue,
            max_visible=peaks[(queue, "visible")],
            max_in_flight=peaks[(queue, "in_flight")],
            max_wait_s=round(max(waits[queue]), 3) if waits.get(queue) else None,
            points=[
                QueuePoint(at=at, visible=p.get("visible", 0.0), in_flight=p.get("in_flight", 0.0))
                for at, p in sorted(points.items())
            ],
        )
        for queue, points in sorted(depth.items())
    ]
    routes = [
        RouteLatency(route=route, milliseconds=summary)
        for route, values in sorted(latency.items())
        if (summary := percentiles(values)) is not None
    ]
    gpus = [
        GpuView(
            device=device,
            utilization_mean=round(float(np.mean(series["GpuUtilization"])), 2),
            utilization_max=max(series["GpuUtilization"]),
            memory_max_mib=max(series["GpuMemoryUsed"]) if series["GpuMemoryUsed"] else None,
        )
        for device, series in sorted(gpu.items())
        if series["GpuUtilization"]
    ]
    return {"queues": queues, "api_routes": routes, "api_responses": dict(responses), "gpus": gpus}


def _place(score: DriftScore | None, name: str, drift: list[DriftScore], not_compared: list[str]) -> None:
    if score is None:
        not_compared.append(name)
    else:
        drift.append(score)


def _centroid(summaries: Sequence[EmbeddingSummary]) -> tuple[list[float], int]:
    total = summaries[0]
    for summary in summaries[1:]:
        total = total.plus(summary)
    return total.centroid, total.n


def _drift_over_time(
    recent: Sequence[tuple[Asset, QualitySample]], references: dict[Key, list[int]], since: datetime, size: int
) -> list[DriftSeries]:
    per_bucket: dict[Key, dict[datetime, list[int]]] = defaultdict(dict)
    for asset, sample in recent:
        start = _bucket(asset.created_at, since, size)
        key = (sample.signal.value, sample.model)
        _accumulate(per_bucket[key], start, sample.counts)
    series = []
    for (signal, model), buckets in sorted(per_bucket.items()):
        reference = references.get((signal, model))
        if not reference:
            continue
        points = []
        for start, counts in sorted(buckets.items()):
            score = psi_score(signal, model, reference, counts)
            if score is not None:
                points.append(DriftPoint(start=start, score=score.score))
        if points:
            series.append(DriftSeries(signal=signal, model=model, threshold=PSI_ALARM, points=points))
    return series
