"""Cost per processed item, from what each asset's analysis measurably used and the price table.

Per asset:
- light steps and admission run on Lambda: their stage seconds times the functions' memory (GB-s),
  plus one request each;
- heavy steps run on the GPU worker: stage seconds divided by the batch the call served (a
  batch of n messages shares the instance's time n ways) times the instance price;
- the workflow: state transitions, estimated as ``TRANSITIONS_PER_STEP`` per step run plus the
  fixed start, choice and finish states;
- SQS: send, receive and delete per step message; S3 and DynamoDB: the requests each step makes
  (its output and artifacts; the stage's start, end and artifacts on the registry row) and the
  source's storage for a month.

The index's fixed capacity (OpenSearch) is a monthly cost, shown beside the per-item figures,
not spread over them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from medialens.domain.assets import Asset
from medialens.insight.prices import DEFAULT_PRICES, Prices
from medialens.pipeline.catalog import CATALOG, WorkerClass

TRANSITIONS_PER_STEP = 3  # a Task state and the Choice/Pass states around it, on average
FIXED_TRANSITIONS = 4  # start, the first choice, finalize's success, end
ADMISSION_SECONDS = 0.3  # the ingest function per object (measured locally: ~0.1-0.3 s)
S3_PUTS_PER_STEP = 2  # the kept step output and its artifact batch
S3_GETS_PER_STEP = 2  # the step's input artifacts
REGISTRY_WRITES_PER_STEP = 3  # start, end, artifacts
REGISTRY_READS_PER_STEP = 3  # each write reads the row first (optimistic concurrency)
SQS_REQUESTS_PER_STEP = 3  # send, receive, delete
GB = 1024**3

_HEAVY = {name.value for name, spec in CATALOG.items() if spec.worker is WorkerClass.HEAVY}


class CostBreakdown(BaseModel):
    lambda_usd: float = 0.0
    gpu_usd: float = 0.0
    workflow_usd: float = 0.0
    queues_usd: float = 0.0
    storage_usd: float = 0.0
    registry_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return (
            self.lambda_usd + self.gpu_usd + self.workflow_usd + self.queues_usd + self.storage_usd + self.registry_usd
        )

    def plus(self, other: CostBreakdown) -> CostBreakdown:
        return CostBreakdown(
            **{name: getattr(self, name) + getattr(other, name) for name in CostBreakdown.model_fields}
        )


class AssetCost(BaseModel):
    asset_id: str
    media_type: str | None
    media_seconds: float | None = Field(description="Length of the audio or video, when it has one.")
    breakdown: CostBreakdown
    total_usd: float


def asset_cost(asset: Asset, prices: Prices = DEFAULT_PRICES) -> AssetCost:
    light_seconds = ADMISSION_SECONDS
    light_requests = 1
    gpu_seconds = 0.0
    steps = 0
    for timing in asset.timings:
        seconds = timing.seconds
        if seconds is None:
            continue
        steps += 1
        if timing.stage in _HEAVY:
            gpu_seconds += timing.worker_seconds or 0.0
        else:
            light_seconds += seconds
            light_requests += 1
    breakdown = CostBreakdown(
        lambda_usd=light_seconds * prices.lambda_memory_gb * prices.lambda_gb_second
        + light_requests * prices.lambda_request,
        gpu_usd=gpu_seconds * prices.gpu_instance_hour / 3600,
        workflow_usd=(steps * TRANSITIONS_PER_STEP + FIXED_TRANSITIONS) * prices.step_functions_transition,
        queues_usd=(steps + 1) * SQS_REQUESTS_PER_STEP * prices.sqs_request,
        storage_usd=steps * (S3_PUTS_PER_STEP * prices.s3_put + S3_GETS_PER_STEP * prices.s3_get)
        + asset.source.size / GB * prices.s3_gb_month,
        registry_usd=(steps + 1)
        * (REGISTRY_WRITES_PER_STEP * prices.dynamodb_write + REGISTRY_READS_PER_STEP * prices.dynamodb_read),
    )
    return AssetCost(
        asset_id=asset.asset_id,
        media_type=asset.media_type.value if asset.media_type else None,
        media_seconds=media_seconds(asset),
        breakdown=breakdown,
        total_usd=breakdown.total_usd,
    )


def media_seconds(asset: Asset) -> float | None:
    details = asset.metadata.get("details") or {}
    value = details.get("duration_s") if isinstance(details, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


class CostSummary(BaseModel):
    assets: int
    total_usd: float
    breakdown: CostBreakdown
    per_asset_usd: float | None
    per_media_hour_usd: float | None = Field(description="Audio and video: their cost over their hours.")
    per_thousand_images_usd: float | None
    per_million_narrated_characters_usd: float | None
    media_hours: float
    images: int
    narrated_characters: int
    fixed_month_usd: float = Field(description="Capacity paid whatever is processed (the index).")
    managed_per_media_hour_usd: float = Field(description="Transcribe + Rekognition Video for an hour of video.")
    managed_per_thousand_images_usd: float
    managed_per_million_characters_usd: float


def summarize_costs(assets: Sequence[Asset], prices: Prices = DEFAULT_PRICES) -> CostSummary:
    costs = [asset_cost(asset, prices) for asset in assets]
    total = CostBreakdown()
    for cost in costs:
        total = total.plus(cost.breakdown)
    timed = [c for c in costs if c.media_type in ("audio", "video") and c.media_seconds]
    hours = sum(c.media_seconds or 0.0 for c in timed) / 3600
    images = [c for c in costs if c.media_type == "image"]
    narrated = [(a, c) for a, c in zip(assets, costs, strict=True) if isinstance(a.metadata.get("narration"), dict)]
    characters = sum(int(a.metadata["narration"].get("characters", 0)) for a, _ in narrated)
    # The voice runs on the heavy worker: a narrated document's GPU time (its narration, and the
    # embedding of its passages) is what its characters cost.
    narration_usd = sum(c.breakdown.gpu_usd for _, c in narrated)
    return CostSummary(
        assets=len(costs),
        total_usd=total.total_usd,
        breakdown=total,
        per_asset_usd=total.total_usd / len(costs) if costs else None,
        per_media_hour_usd=sum(c.total_usd for c in timed) / hours if hours else None,
        per_thousand_images_usd=1000 * sum(c.total_usd for c in images) / len(images) if images else None,
        per_million_narrated_characters_usd=1e6 * narration_usd / characters if characters else None,
        media_hours=round(hours, 4),
        images=len(images),
        narrated_characters=characters,
        fixed_month_usd=prices.opensearch_month,
        managed_per_media_hour_usd=60 * (prices.transcribe_minute + prices.rekognition_video_minute),
        managed_per_thousand_images_usd=1000 * prices.rekognition_image,
        managed_per_million_characters_usd=prices.polly_neural_million_characters,
    )
