"""Drift statistics and the cost model, against answers worked out by hand."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from medialens.domain.assets import Asset, AssetStatus, MediaType, SourceObject, StageTiming, utcnow
from medialens.domain.quality import QUALITY_BINS, EmbeddingSummary, QualitySample, Signal
from medialens.insight.cost import asset_cost, summarize_costs
from medialens.insight.drift import (
    MIN_ITEMS,
    PSI_ALARM,
    chi_square_quantile,
    cosine_distance,
    jensen_shannon,
    mix_score,
    population_stability_index,
    psi_score,
    psi_threshold,
)
from medialens.insight.prices import Prices

pytestmark = pytest.mark.unit


def test_psi_of_a_known_shift() -> None:
    # Counts smoothed by half an item per bin: 50/50 -> 50.5/101 each; 90/10 -> 90.5/101, 10.5/101.
    p, q = (90.5 / 101, 10.5 / 101), (0.5, 0.5)
    expected = (p[0] - q[0]) * math.log(p[0] / q[0]) + (p[1] - q[1]) * math.log(p[1] / q[1])
    assert population_stability_index([50, 50], [90, 10]) == pytest.approx(expected)
    assert population_stability_index([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0)
    assert population_stability_index([100, 200, 300], [10, 20, 30]) < 0.01  # same shares, other totals
    # An empty bin is rare, not impossible: finite.
    assert math.isfinite(population_stability_index([100, 0], [50, 50]))
    with pytest.raises(ValueError, match="share their bins"):
        population_stability_index([1, 2], [1, 2, 3])


def test_jensen_shannon_is_zero_for_the_same_mix_and_one_for_disjoint_ones() -> None:
    assert jensen_shannon({"en": 3, "sv": 1}, {"en": 30, "sv": 10}) == pytest.approx(0.0)
    assert jensen_shannon({"en": 1}, {"sv": 1}) == pytest.approx(1.0)
    # {a: .5, b: .5} vs {a: 1}: M = {.75, .25}; JS = ½[KL(P||M) + KL(Q||M)] in bits.
    kl_p = 1.0 * math.log2(1 / 0.75)
    kl_q = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    assert jensen_shannon({"a": 1, "b": 1}, {"a": 4}) == pytest.approx((kl_p + kl_q) / 2)


def test_cosine_distance_of_known_vectors() -> None:
    assert cosine_distance([1, 0], [1, 0]) == pytest.approx(0.0)
    assert cosine_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert cosine_distance([1, 1], [1, 0]) == pytest.approx(1 - 1 / math.sqrt(2))


def test_scores_need_enough_items_and_flag_only_past_their_threshold() -> None:
    stable = [10] * QUALITY_BINS
    assert psi_score("asr_confidence", "whisper", stable, [1] * QUALITY_BINS) is None  # 10 items < MIN_ITEMS
    same = psi_score("asr_confidence", "whisper", stable, [5] * QUALITY_BINS)
    assert same is not None and same.score == pytest.approx(0.0) and not same.drifted
    confident = [0] * (QUALITY_BINS - 2) + [20, 80]  # clean speech: mass near 1
    unsure = [10, 30, 30, 20, 10] + [0] * (QUALITY_BINS - 5)  # noisy speech: mass near 0.2
    moved = psi_score("asr_word_probability", "whisper", confident, unsure)
    assert moved is not None and moved.drifted and moved.alarm and moved.score > 5
    watched = psi_score("asr_confidence", "whisper", confident, unsure)
    assert watched is not None and watched.drifted and not watched.alarm
    assert sum(unsure) >= MIN_ITEMS
    mix = mix_score("languages", {"en": 40}, {"sv": 40})
    assert mix is not None and mix.alarm and mix.score == pytest.approx(1.0)


def test_the_psi_threshold_grows_for_small_windows() -> None:
    # chi-square(9) at 99.9 % is 27.88; Wilson-Hilferty gives ~28.1.
    assert chi_square_quantile(9) == pytest.approx(27.88, rel=0.01)
    assert psi_threshold(10, 70, 70) == pytest.approx(chi_square_quantile(9) * 2 / 70)
    assert psi_threshold(10, 100_000, 100_000) == PSI_ALARM


def test_quality_samples_bin_values_and_add_up() -> None:
    sample = QualitySample.of(Signal.ASR_CONFIDENCE, "transcribe_chunk", "whisper", [0.0, 0.05, 0.95, 1.0, 1.7, -2])
    assert sample.counts[0] == 3 and sample.counts[-1] == 3 and sample.n == 6  # clipped into [0, 1]
    assert sample.mean == pytest.approx((0 + 0.05 + 0.95 + 1 + 1 + 0) / 6)
    assert sample.plus(sample).counts[-1] == 6
    centroid = EmbeddingSummary.of("minilm", [[1.0, 0.0], [0.0, 1.0]])
    assert centroid is not None and centroid.centroid == [0.5, 0.5] and centroid.n == 2
    merged = centroid.plus(EmbeddingSummary(model="minilm", centroid=[1.0, 1.0], n=2))
    assert merged.centroid == [0.75, 0.75] and merged.n == 4


def _asset(
    media: MediaType, timings: list[tuple[str, float, int]], size: int = 0, duration: float | None = None
) -> Asset:
    start = utcnow()
    asset = Asset(
        asset_id="a" + "0" * 23,
        source=SourceObject(bucket="drop", key="incoming/x", etag="e", size=size),
        pipeline_version="1",
        media_type=media,
        status=AssetStatus.SUCCEEDED,
        metadata={"details": {"duration_s": duration}} if duration else {},
    )
    for stage, seconds, batch in timings:
        asset.timings.append(
            StageTiming(stage=stage, started_at=start, ended_at=start + timedelta(seconds=seconds), batch_size=batch)
        )
    return asset


def test_cost_of_an_asset_from_its_stage_times_and_the_price_table() -> None:
    prices = Prices(
        lambda_gb_second=1.0,
        lambda_request=0.0,
        lambda_memory_gb=2.0,
        gpu_instance_hour=3600.0,  # $1 per GPU-second
        step_functions_transition=0.0,
        sqs_request=0.0,
        s3_put=0.0,
        s3_get=0.0,
        s3_gb_month=0.0,
        dynamodb_write=0.0,
        dynamodb_read=0.0,
    )
    # probe 1 s on Lambda (2 GB) + admission 0.3 s; transcription 8 s on the GPU, in a batch of 4 assets.
    asset = _asset(MediaType.AUDIO, [("probe", 1.0, 1), ("transcribe_chunk", 8.0, 4)], duration=1800)
    cost = asset_cost(asset, prices)
    assert cost.breakdown.lambda_usd == pytest.approx((1.0 + 0.3) * 2.0)
    assert cost.breakdown.gpu_usd == pytest.approx(8.0 / 4)
    assert cost.total_usd == pytest.approx(2.6 + 2.0)
    # Two transcriptions side by side share the instance's seconds as a batch does.
    beside = _asset(MediaType.AUDIO, [("transcribe_chunk", 8.0, 1)], duration=1800)
    beside.timings[0].shared_by = 2
    assert asset_cost(beside, prices).breakdown.gpu_usd == pytest.approx(8.0 / 2)
    summary = summarize_costs([asset, asset], prices)
    assert summary.media_hours == pytest.approx(1.0)
    assert summary.per_media_hour_usd == pytest.approx(2 * 4.6 / 1.0)
    assert summary.per_asset_usd == pytest.approx(4.6)
    assert summary.managed_per_media_hour_usd == pytest.approx(60 * (0.024 + 0.10))


def test_the_list_prices_put_an_hour_of_audio_at_cents() -> None:
    """One media hour: ~3 min of GPU time in batches of 4, and light steps worth a minute of Lambda."""
    timings = [("probe", 2, 1), ("prepare_audio", 30, 1), ("transcribe_chunk", 720, 4), ("embed_text", 20, 8)]
    summary = summarize_costs([_asset(MediaType.AUDIO, timings, size=60 * 1024**2, duration=3600)])
    assert summary.per_media_hour_usd is not None and 0.01 < summary.per_media_hour_usd < 0.2
    assert summary.per_media_hour_usd < summary.managed_per_media_hour_usd / 10
