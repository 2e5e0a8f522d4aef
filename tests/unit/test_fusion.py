"""Score fusion: exact values, bounds, dedupe and deterministic ordering."""

from __future__ import annotations

import math
import random

import pytest

from medialens.adapters.index.fusion import (
    language_routed_fusion,
    min_max_normalise,
    reciprocal_rank_fusion,
    weighted_fusion,
)
from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality
from medialens.domain.search import SearchHit

pytestmark = pytest.mark.unit


def scored(moment_id: str, score: float, language: str | None = None) -> SearchHit:
    return SearchHit(
        language=language,
        moment_id=moment_id,
        asset_id="asset-1",
        source="s3://drop/incoming/a.pdf",
        media_type=MediaType.DOCUMENT,
        modality=Modality.DOCUMENT,
        text=f"text of {moment_id}",
        pipeline_version="1",
        score=score,
    )


def ids(results: list[SearchHit]) -> list[str]:
    return [hit.moment_id for hit in results]


def test_min_max_normalise_maps_best_to_one_and_worst_to_zero() -> None:
    assert min_max_normalise([10.0, 5.0, 0.0]) == [1.0, 0.5, 0.0]
    assert min_max_normalise([3.0, 1.0]) == [1.0, 0.0]


def test_min_max_normalise_single_and_tied_scores_are_full_matches() -> None:
    assert min_max_normalise([]) == []
    assert min_max_normalise([7.3]) == [1.0]
    assert min_max_normalise([2.0, 2.0, 2.0]) == [1.0, 1.0, 1.0]


def test_min_max_normalise_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        min_max_normalise([1.0, math.inf])


def test_rrf_sums_reciprocal_ranks() -> None:
    keyword = [scored("a", 9.0), scored("b", 4.0), scored("c", 1.0)]
    semantic = [scored("c", 0.9), scored("d", 0.8)]
    fused = reciprocal_rank_fusion([keyword, semantic], k=60)
    scores = {hit.moment_id: hit.score for hit in fused}
    assert scores == pytest.approx({"a": 1 / 61, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 62})
    # b and d tie at 1/62 with the same best rank (2): moment_id decides.
    assert ids(fused) == ["c", "a", "b", "d"]


def test_rrf_ignores_raw_scores() -> None:
    low = [scored("a", 0.001), scored("b", 0.0001)]
    high = [scored("a", 1000.0), scored("b", 999.0)]
    assert [h.score for h in reciprocal_rank_fusion([low])] == [h.score for h in reciprocal_rank_fusion([high])]


def test_rrf_dedupes_within_a_list_keeping_the_better_rank() -> None:
    fused = reciprocal_rank_fusion([[scored("a", 3.0), scored("b", 2.0), scored("a", 1.0)]], k=0)
    assert ids(fused) == ["a", "b"]
    assert [hit.score for hit in fused] == pytest.approx([1.0, 0.5])


def test_rrf_order_does_not_depend_on_list_order() -> None:
    first = [scored("x", 1.0), scored("y", 0.5)]
    second = [scored("y", 1.0), scored("x", 0.5)]
    assert ids(reciprocal_rank_fusion([first, second])) == ids(reciprocal_rank_fusion([second, first])) == ["x", "y"]


def test_rrf_edge_cases() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[scored("a", 1.0)]], k=-1)


def test_weighted_blends_normalised_bm25_with_cosine() -> None:
    keyword = [scored("a", 4.0), scored("b", 2.0), scored("c", 1.0)]  # -> 1, 1/3, 0
    semantic = [scored("c", 0.9), scored("d", 0.8)]
    fused = weighted_fusion(keyword, semantic, alpha=0.5)
    assert ids(fused) == ["a", "c", "d", "b"]
    assert [hit.score for hit in fused] == pytest.approx([0.5, 0.45, 0.4, 1 / 6])


def test_weighted_alpha_is_the_semantic_weight() -> None:
    keyword = [scored("k1", 5.0), scored("k2", 1.0)]
    semantic = [scored("s1", 0.7), scored("s2", 0.6)]
    assert ids(weighted_fusion(keyword, semantic, alpha=1.0))[:2] == ["s1", "s2"]
    assert ids(weighted_fusion(keyword, semantic, alpha=0.0))[:1] == ["k1"]
    only_semantic = weighted_fusion(keyword, semantic, alpha=1.0)
    assert {hit.moment_id: hit.score for hit in only_semantic}["s1"] == pytest.approx(0.7)


def test_weighted_single_keyword_result_counts_as_full_match() -> None:
    fused = weighted_fusion([scored("a", 0.37)], [], alpha=0.25)
    assert [hit.score for hit in fused] == pytest.approx([0.75])


def test_weighted_tied_keyword_scores_all_normalise_to_one() -> None:
    fused = weighted_fusion([scored("b", 2.0), scored("a", 2.0)], [], alpha=0.5)
    assert [hit.score for hit in fused] == pytest.approx([0.5, 0.5])
    # Equal scores: the order of the input list (best rank) decides before moment_id.
    assert ids(fused) == ["b", "a"]


def test_weighted_tie_break_is_best_rank_then_moment_id() -> None:
    keyword = [scored("m-a", 10.0), scored("m-d", 2.0)]
    semantic = [scored("m-d", 1.0), scored("m-0", 1.0)]
    fused = weighted_fusion(keyword, semantic, alpha=0.5)
    assert [hit.score for hit in fused] == pytest.approx([0.5, 0.5, 0.5])
    # m-0 sorts first by id but its best rank is 2; m-a and m-d both reach rank 1.
    assert ids(fused) == ["m-a", "m-d", "m-0"]


def test_weighted_clamps_cosine_into_unit_interval() -> None:
    fused = weighted_fusion([], [scored("up", 1.0000002), scored("down", -0.4)], alpha=1.0)
    assert [hit.score for hit in fused] == [1.0, 0.0]


def test_weighted_dedupes_across_and_within_lists() -> None:
    keyword = [scored("a", 3.0), scored("a", 1.0), scored("b", 1.0)]
    semantic = [scored("a", 0.5), scored("b", 0.4), scored("b", 0.9)]
    fused = weighted_fusion(keyword, semantic)
    assert sorted(ids(fused)) == ["a", "b"]
    scores = {hit.moment_id: hit.score for hit in fused}
    # Within each list the first occurrence counts: b's cosine is 0.4, not 0.9.
    assert scores == pytest.approx({"a": 0.5 * 0.5 + 0.5 * 1.0, "b": 0.5 * 0.4 + 0.5 * 0.0})


def test_weighted_rejects_bad_alpha_and_scores() -> None:
    with pytest.raises(ValueError):
        weighted_fusion([], [], alpha=1.5)
    with pytest.raises(ValueError):
        weighted_fusion([scored("a", math.nan)], [])


@pytest.mark.parametrize("seed", range(20))
def test_fused_lists_are_sorted_unique_and_bounded(seed: int) -> None:
    rng = random.Random(seed)
    pool = [f"m{i:02d}" for i in range(30)]
    keyword = [scored(m, rng.uniform(0, 25)) for m in rng.sample(pool, rng.randint(0, 15))]
    keyword.sort(key=lambda hit: -hit.score)
    semantic = [scored(m, rng.uniform(-0.2, 1.0)) for m in rng.sample(pool, rng.randint(0, 15))]
    semantic.sort(key=lambda hit: -hit.score)
    expected_ids = {hit.moment_id for hit in (*keyword, *semantic)}
    for fused in (
        weighted_fusion(keyword, semantic, alpha=rng.random()),
        reciprocal_rank_fusion([keyword, semantic]),
    ):
        assert set(ids(fused)) == expected_ids
        assert len(ids(fused)) == len(expected_ids)
        assert [hit.score for hit in fused] == sorted((hit.score for hit in fused), reverse=True)
    weighted = weighted_fusion(keyword, semantic, alpha=0.5)
    assert all(0.0 <= hit.score <= 1.0 for hit in weighted)
    assert weighted == weighted_fusion(list(keyword), list(semantic), alpha=0.5)


def test_language_routing_fuses_both_encoders_for_english_and_only_the_multilingual_for_the_rest() -> None:
    english = [scored("e1", 0.9, "en"), scored("e2", 0.5, "en")]
    multilingual = [scored("sv1", 0.85, "sv"), scored("e2", 0.84, "en"), scored("e1", 0.80, "en")]
    fused = language_routed_fusion(english, multilingual)
    # min-max: multilingual sv1 1.0, e2 0.8, e1 0.0; english e1 1.0, e2 0.0.
    assert [(hit.moment_id, round(hit.score, 6)) for hit in fused] == [("sv1", 1.0), ("e1", 0.5), ("e2", 0.4)]


def test_language_routing_counts_unknown_language_as_english_and_a_missing_list_as_zero() -> None:
    english = [scored("u1", 0.7), scored("e1", 0.2, "en")]
    multilingual = [scored("e1", 0.9, "en"), scored("fr1", 0.5, "fr")]
    fused = {hit.moment_id: round(hit.score, 6) for hit in language_routed_fusion(english, multilingual, 0.25)}
    assert fused == {"u1": 0.25, "e1": 0.75, "fr1": 0.0}
    with pytest.raises(ValueError, match="english_weight"):
        language_routed_fusion(english, multilingual, 1.5)
