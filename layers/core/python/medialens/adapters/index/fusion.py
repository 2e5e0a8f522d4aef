"""Score fusion shared by every index backend: pure functions over ranked ``SearchHit`` lists.

Both functions dedupe by ``moment_id`` (the first, best-ranked occurrence in a list counts) and
order their output by fused score, then by the best rank the moment reached in any input list,
then by ``moment_id``, so equal inputs always give the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from medialens.domain.moments import Modality
from medialens.domain.search import SearchHit

DEFAULT_RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks


@dataclass(slots=True)
class _Candidate:
    hit: SearchHit
    best_rank: int
    score: float = 0.0
    ranks: dict[int, int] = field(default_factory=dict)  # list index -> 1-based rank there
    scores: dict[int, float] = field(default_factory=dict)  # list index -> raw score there


def _first_occurrences(results: Sequence[SearchHit]) -> list[SearchHit]:
    """Drops repeats of a ``moment_id`` within one list, keeping the earlier (better) one."""
    seen: set[str] = set()
    unique: list[SearchHit] = []
    for hit in results:
        if hit.moment_id not in seen:
            seen.add(hit.moment_id)
            unique.append(hit)
    return unique


def _unique_and_finite(*result_lists: Sequence[SearchHit]) -> list[list[SearchHit]]:
    """Each list without repeats (see ``_first_occurrences``); a score that is not finite is an error."""
    unique = [_first_occurrences(results) for results in result_lists]
    if not all(math.isfinite(hit.score) for results in unique for hit in results):
        raise ValueError("scores must be finite")
    return unique


def _normalised_by_id(results: Sequence[SearchHit]) -> dict[str, float]:
    """``min_max_normalise`` of the list's scores, by moment id."""
    return dict(zip((hit.moment_id for hit in results), min_max_normalise([hit.score for hit in results]), strict=True))


def _collect(result_lists: Iterable[Sequence[SearchHit]]) -> dict[str, _Candidate]:
    """Every distinct moment with its best 1-based rank and, per list, its raw score."""
    candidates: dict[str, _Candidate] = {}
    for list_index, results in enumerate(result_lists):
        for rank, hit in enumerate(_first_occurrences(results), start=1):
            candidate = candidates.get(hit.moment_id)
            if candidate is None:
                candidate = candidates[hit.moment_id] = _Candidate(hit, rank)
            candidate.best_rank = min(candidate.best_rank, rank)
            candidate.ranks[list_index] = rank
            candidate.scores[list_index] = hit.score
    return candidates


def _ordered(candidates: Iterable[_Candidate]) -> list[SearchHit]:
    ranked = sorted(candidates, key=lambda c: (-c.score, c.best_rank, c.hit.moment_id))
    return [c.hit.model_copy(update={"score": c.score}) for c in ranked]


def min_max_normalise(scores: Sequence[float]) -> list[float]:
    """Maps scores linearly onto [0, 1], best to 1.0 and worst to 0.0.

    When every score is equal (one result, or a tie across the whole list) each gets 1.0: they
    are all the best match the list has, and 0.0 would wrongly read as "no match".
    """
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError("scores must be finite")
    if high == low:
        return [1.0] * len(scores)
    span = high - low
    return [(score - low) / span for score in scores]


def reciprocal_rank_fusion(result_lists: Sequence[Sequence[SearchHit]], k: int = DEFAULT_RRF_K) -> list[SearchHit]:
    """Reciprocal rank fusion: ``score = sum(1 / (k + rank))`` over the lists a moment is in.

    Only ranks matter, so lists with incomparable scores (BM25, cosine) fuse without tuning.
    Scores are the raw RRF sums, at most ``len(result_lists) / (k + 1)``; best first.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    candidates = _collect(result_lists)
    for candidate in candidates.values():
        candidate.score = sum(1.0 / (k + rank) for rank in candidate.ranks.values())
    return _ordered(candidates.values())


def weighted_fusion(keyword: Sequence[SearchHit], semantic: Sequence[SearchHit], alpha: float = 0.5) -> list[SearchHit]:
    """Convex blend ``alpha * cosine + (1 - alpha) * minmax(bm25)``, scores in [0, 1], best first.

    ``alpha`` is the semantic weight (1.0 = semantic only, 0.0 = keyword only). BM25 is min-max
    normalised within ``keyword`` (see :func:`min_max_normalise` for single results and ties);
    cosine similarity is used as is, clamped to [0, 1] since a negative cosine means unrelated.
    A moment missing from a list gets 0 from that list.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be within [0, 1]")
    keyword, semantic = _unique_and_finite(keyword, semantic)
    candidates = _collect([keyword, semantic])
    keyword_scores = _normalised_by_id(keyword)
    for moment_id, candidate in candidates.items():
        cosine = candidate.scores.get(1)
        semantic_part = min(max(cosine, 0.0), 1.0) if cosine is not None else 0.0
        blended = alpha * semantic_part + (1.0 - alpha) * keyword_scores.get(moment_id, 0.0)
        # Rounding in the blend must not leak past the documented bounds.
        candidate.score = min(max(blended, 0.0), 1.0)
    return _ordered(candidates.values())


def routed_fusion(
    specialist: Sequence[SearchHit],
    general: Sequence[SearchHit],
    covers: Callable[[SearchHit], bool],
    specialist_weight: float = 0.5,
) -> list[SearchHit]:
    """Two semantic lists for one question: a ``general`` one over every moment and a
    ``specialist`` one over the moments it ``covers`` (and can judge better).

    A covered moment scores ``specialist_weight * minmax(specialist) + (1 - specialist_weight) *
    minmax(general)``; any other moment ``minmax(general)`` alone, so the specialist, which cannot
    judge it, never holds it back. Scores in [0, 1], best first; a moment missing from a list
    gets 0 from it.
    """
    if not 0.0 <= specialist_weight <= 1.0:
        raise ValueError("the specialist's weight must be within [0, 1]")
    specialist, general = _unique_and_finite(specialist, general)
    by_specialist, by_general = _normalised_by_id(specialist), _normalised_by_id(general)
    candidates = _collect([general, specialist])
    for moment_id, candidate in candidates.items():
        base = by_general.get(moment_id, 0.0)
        if covers(candidate.hit):
            fused = specialist_weight * by_specialist.get(moment_id, 0.0) + (1.0 - specialist_weight) * base
        else:
            fused = base
        candidate.score = min(max(fused, 0.0), 1.0)
    return _ordered(candidates.values())


def language_routed_fusion(
    english: Sequence[SearchHit], multilingual: Sequence[SearchHit], english_weight: float = 0.5
) -> list[SearchHit]:
    """Semantic search with two encoders, for an English question: an English-trained one that
    ranks English text best, and a multilingual one that puts every language in one space.
    ``routed_fusion`` with the English encoder judging the moments in English (or of unknown
    language); a moment in another language keeps its multilingual score alone."""
    if not 0.0 <= english_weight <= 1.0:
        raise ValueError("english_weight must be within [0, 1]")
    return routed_fusion(english, multilingual, lambda hit: hit.language in (None, "en"), english_weight)


def image_routed_fusion(
    image: Sequence[SearchHit], text: Sequence[SearchHit], image_weight: float = 0.6
) -> list[SearchHit]:
    """Semantic search with an image-text model too: its text encoder's question against the
    pictures of VISUAL moments (``image``), fused with the text encoders' list (``text``). A
    VISUAL moment scores by both, any other moment by its text alone (``routed_fusion``)."""
    return routed_fusion(image, text, lambda hit: hit.modality is Modality.VISUAL, image_weight)
