"""SearchService: which index calls each mode makes, how lists are fused and hits mapped.

Both collaborators are test doubles defined here: ``FixedTableEmbedder`` maps known query texts
to vectors from a table (it is no model), and ``ScriptedIndex`` returns fixed ranked lists and
records what it was asked. Real engines are covered by the integration tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pytest

from medialens.adapters.index.base import MomentIndex
from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Moment, VectorField
from medialens.domain.search import SearchFilters, SearchHit, SearchMode, SearchQuery
from medialens.ml.base import FloatMatrix, TextEmbedder
from medialens.search import SearchService

pytestmark = pytest.mark.unit

QUERY = "vacation days"
QUERY_VECTOR = [0.6, 0.8, 0.0]


class FixedTableEmbedder(TextEmbedder):
    """Test double: looks texts up in a fixed table and counts loads and calls."""

    name = "fixed-table-test-double"

    def __init__(self, table: dict[str, list[float]]) -> None:
        super().__init__()
        self.table = table
        self.load_count = 0
        self.embedded: list[str] = []

    def _load(self) -> None:
        self.load_count += 1

    @property
    def version(self) -> str:
        return "fixed-table-test-double@0"

    @property
    def dimensions(self) -> int:
        return 3

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> FloatMatrix:
        assert self.loaded, "embed() before load()"
        self.embedded.extend(texts)
        return np.asarray([self.table[text] for text in texts], dtype=np.float32)


@dataclass
class ScriptedIndex(MomentIndex):
    """Test double: returns fixed ranked lists (truncated to k) and records every search."""

    keyword_hits: list[SearchHit] = field(default_factory=list)
    semantic_hits: list[SearchHit] = field(default_factory=list)
    english_hits: list[SearchHit] = field(default_factory=list)
    image_hits: list[SearchHit] = field(default_factory=list)
    keyword_calls: list[tuple[str, int, SearchFilters]] = field(default_factory=list)
    semantic_calls: list[tuple[list[float], int, SearchFilters, str | None]] = field(default_factory=list)
    truncate: bool = True

    def keyword(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        self.keyword_calls.append((text, k, filters))
        return self.keyword_hits[:k] if self.truncate else list(self.keyword_hits)

    def semantic(
        self,
        vector: Sequence[float],
        k: int,
        filters: SearchFilters,
        embedding_model: str | None = None,
        *,
        field: VectorField = VectorField.TEXT,
    ) -> list[SearchHit]:
        self.semantic_calls.append((list(vector), k, filters, embedding_model))
        hits = {
            VectorField.TEXT: self.semantic_hits,
            VectorField.ENGLISH: self.english_hits,
            VectorField.IMAGE: self.image_hits,
        }[field]
        return hits[:k] if self.truncate else list(hits)

    def upsert(self, moments: Sequence[Moment]) -> int:
        raise AssertionError("SearchService must not write")

    def delete_asset(self, asset_id: str) -> int:
        raise AssertionError("SearchService must not write")

    def delete_stale(self, asset_id: str, keep_ids: set[str]) -> int:
        raise AssertionError("SearchService must not write")

    def asset_moments(self, asset_id: str, limit: int = 200) -> list[Moment]:
        raise AssertionError("SearchService does not list moments")

    def count(self, asset_id: str | None = None) -> int:
        raise AssertionError("SearchService does not count")


def scored(moment_id: str, score: float) -> SearchHit:
    return SearchHit(
        moment_id=moment_id,
        asset_id=f"asset-{moment_id}",
        source=f"s3://drop/incoming/{moment_id}.mp4",
        media_type=MediaType.VIDEO,
        modality=Modality.SPEECH,
        text=f"said in {moment_id}",
        start=12.5,
        end=17.25,
        page=None,
        section="intro",
        vector=[1.0, 0.0, 0.0],
        pipeline_version="1",
        score=score,
    )


def make(index: ScriptedIndex, fusion: str = "weighted") -> tuple[SearchService, FixedTableEmbedder]:
    embedder = FixedTableEmbedder({QUERY: QUERY_VECTOR})
    return SearchService(index, embedder, fusion=fusion), embedder


def hit_ids(service: SearchService, mode: SearchMode, k: int = 10) -> list[str]:
    response = service.search(SearchQuery(text=QUERY, mode=mode, k=k))
    return [hit.moment_id for hit in response.hits]


def test_keyword_mode_never_touches_the_embedder() -> None:
    index = ScriptedIndex(keyword_hits=[scored("a", 8.0), scored("b", 6.0), scored("c", 2.0)])
    service, embedder = make(index)
    response = service.search(SearchQuery(text=QUERY, mode=SearchMode.KEYWORD, k=5))
    assert embedder.load_count == 0
    assert not embedder.loaded
    assert embedder.embedded == []
    assert index.semantic_calls == []
    assert index.keyword_calls == [(QUERY, 5, SearchFilters())]
    assert response.mode is SearchMode.KEYWORD
    assert response.query == QUERY
    assert response.took_ms >= 0.0
    # BM25 is scaled by the best score: 1.0 for the top hit, proportions kept.
    assert [hit.score for hit in response.hits] == pytest.approx([1.0, 0.75, 0.25])


def test_semantic_mode_embeds_the_query_once_and_returns_cosine() -> None:
    index = ScriptedIndex(semantic_hits=[scored("s1", 0.83), scored("s2", 0.41)])
    service, embedder = make(index)
    response = service.search(SearchQuery(text=QUERY, mode=SearchMode.SEMANTIC, k=2))
    assert embedder.embedded == [QUERY]
    assert index.keyword_calls == []
    [(vector, k, filters, embedding_model)] = index.semantic_calls
    assert vector == pytest.approx(QUERY_VECTOR)
    assert (k, filters) == (2, SearchFilters())
    assert embedding_model == "fixed-table-test-double@0"  # only vectors the query's model made
    assert [hit.score for hit in response.hits] == pytest.approx([0.83, 0.41])
    service.search(SearchQuery(text=QUERY, mode=SearchMode.SEMANTIC, k=2))
    assert embedder.load_count == 1  # loaded lazily, and only once


def test_hybrid_weighted_fuses_both_candidate_lists() -> None:
    index = ScriptedIndex(
        keyword_hits=[scored("a", 4.0), scored("b", 2.0), scored("c", 1.0)],  # minmax: 1, 1/3, 0
        semantic_hits=[scored("c", 0.9), scored("d", 0.8)],
    )
    service, embedder = make(index)
    response = service.search(SearchQuery(text=QUERY, mode=SearchMode.HYBRID, k=3))
    assert [hit.moment_id for hit in response.hits] == ["a", "c", "d"]
    assert [hit.score for hit in response.hits] == pytest.approx([0.5, 0.45, 0.4])
    # k * 4 candidates are fetched from each list before fusing.
    assert [call[1] for call in index.keyword_calls] == [12]
    assert [call[1] for call in index.semantic_calls] == [12]
    assert embedder.embedded == [QUERY]


def test_hybrid_rrf_fuses_by_rank() -> None:
    index = ScriptedIndex(
        keyword_hits=[scored("a", 4.0), scored("b", 2.0), scored("c", 1.0)],
        semantic_hits=[scored("c", 0.9), scored("d", 0.8)],
    )
    service, _ = make(index, fusion="rrf")
    response = service.search(SearchQuery(text=QUERY, mode=SearchMode.HYBRID, k=3))
    assert [hit.moment_id for hit in response.hits] == ["c", "a", "b"]
    assert [hit.score for hit in response.hits] == pytest.approx([1 / 63 + 1 / 61, 1 / 61, 1 / 62])


def test_filters_pass_through_to_every_index_call() -> None:
    filters = SearchFilters(media_types=[MediaType.VIDEO], asset_ids=["asset-a"], modalities=[Modality.SPEECH])
    index = ScriptedIndex(keyword_hits=[scored("a", 1.0)], semantic_hits=[scored("a", 0.5)])
    service, _ = make(index)
    for mode in SearchMode:
        service.search(SearchQuery(text=QUERY, mode=mode, k=4, filters=filters))
    assert [call[2] for call in index.keyword_calls] == [filters, filters]
    assert [call[2] for call in index.semantic_calls] == [filters, filters]


@pytest.mark.parametrize("mode", list(SearchMode))
def test_k_is_respected_even_when_the_index_returns_more(mode: SearchMode) -> None:
    many = [scored(f"m{i:02d}", 1.0 - i / 100) for i in range(30)]
    index = ScriptedIndex(keyword_hits=many, semantic_hits=list(reversed(many)), truncate=False)
    service, _ = make(index)
    assert len(hit_ids(service, mode, k=7)) == 7


def test_hits_carry_the_moment_fields() -> None:
    index = ScriptedIndex(keyword_hits=[scored("a", 3.0)])
    service, _ = make(index)
    [hit] = service.search(SearchQuery(text=QUERY, mode=SearchMode.KEYWORD, k=1)).hits
    stored = index.keyword_hits[0]
    # The hit is the moment the index returned, with the display score (BM25 / best BM25).
    assert hit.model_dump() == {**stored.model_dump(), "score": 1.0}
    assert (hit.asset_id, hit.start, hit.end, hit.section) == ("asset-a", 12.5, 17.25, "intro")


def test_empty_results_in_every_mode() -> None:
    service, _ = make(ScriptedIndex())
    for mode in SearchMode:
        assert hit_ids(service, mode) == []


def test_unknown_fusion_is_rejected() -> None:
    with pytest.raises(ValueError, match="fusion"):
        SearchService(ScriptedIndex(), FixedTableEmbedder({}), fusion="max")


class EnglishTableEmbedder(FixedTableEmbedder):
    name = "english-test-double"

    @property
    def version(self) -> str:
        return "english-test-double@0+int8"


def test_an_english_question_asks_both_encoders_and_another_language_only_the_multilingual() -> None:
    english_vector = [0.0, 0.6, 0.8]
    index = ScriptedIndex(
        semantic_hits=[scored("sv1", 0.85).model_copy(update={"language": "sv"}), scored("e1", 0.80)],
        english_hits=[scored("e1", 0.9)],
    )
    question = "how many vacation days do staff get each year"
    multilingual = FixedTableEmbedder({question: QUERY_VECTOR, "hur många semesterdagar får personalen": QUERY_VECTOR})
    english = EnglishTableEmbedder({question: english_vector})
    service = SearchService(index, multilingual, english_embedder=english)

    hits = service.search(SearchQuery(text=question, mode=SearchMode.SEMANTIC, k=2)).hits
    (across, in_english) = index.semantic_calls
    assert across[3] == "fixed-table-test-double@0" and in_english[3] == "english-test-double@0"
    assert in_english[0] == pytest.approx(english_vector)
    assert [hit.moment_id for hit in hits] == ["sv1", "e1"]  # e1: both encoders; sv1: the multilingual alone

    index.semantic_calls.clear()
    service.search(SearchQuery(text="hur många semesterdagar får personalen", mode=SearchMode.SEMANTIC, k=2))
    assert [call[3] for call in index.semantic_calls] == ["fixed-table-test-double@0"]
    assert english.embedded == [question]  # the Swedish question never reached the English encoder


class FixedImageTextEmbedder:
    """Test double for an image-text (CLIP-style) model: only its text side is asked at search time."""

    version = "tiny-clip@1+fp32"

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.loaded = False

    def load(self) -> None:
        self.loaded = True

    def embed_query(self, text: str) -> FloatMatrix:
        return np.asarray(self.table[text], dtype=np.float32)


def test_an_image_text_model_judges_the_pictures_of_visual_moments_and_nothing_else() -> None:
    picture_vector = [1.0, 0.0, 0.0]
    shown = scored("v1", 0.2).model_copy(update={"modality": Modality.VISUAL})
    other_shown = scored("v2", 0.5).model_copy(update={"modality": Modality.VISUAL})
    index = ScriptedIndex(
        # The label text of v1 reads poorly for the question, its picture reads best.
        semantic_hits=[scored("s1", 0.9), other_shown, scored("s2", 0.4), shown],
        image_hits=[shown.model_copy(update={"score": 0.31}), other_shown.model_copy(update={"score": 0.12})],
    )
    question = "a red bicycle"
    text = FixedTableEmbedder({question: QUERY_VECTOR})
    image = FixedImageTextEmbedder({question: picture_vector})
    service = SearchService(index, text, image_embedder=cast(Any, image), image_weight=0.6)

    hits = service.search(SearchQuery(text=question, mode=SearchMode.SEMANTIC, k=4)).hits
    (pictures, texts) = index.semantic_calls
    assert pictures[0] == pytest.approx(picture_vector) and pictures[3] == "tiny-clip@1"
    assert texts[3] == "fixed-table-test-double@0"
    scores = {hit.moment_id: hit.score for hit in hits}
    # Text min-max over 0.2..0.9; pictures over 0.12..0.31. s1 keeps its text score alone.
    assert scores["s1"] == pytest.approx(1.0)
    assert scores["v1"] == pytest.approx(0.6 * 1.0 + 0.4 * 0.0)
    assert scores["v2"] == pytest.approx(0.6 * 0.0 + 0.4 * (0.5 - 0.2) / 0.7)
    assert scores["s2"] == pytest.approx((0.4 - 0.2) / 0.7)

    index.semantic_calls.clear()
    SearchService(index, text).search(SearchQuery(text=question, mode=SearchMode.SEMANTIC, k=4))
    assert len(index.semantic_calls) == 1  # no image-text model: the text list alone, as before


def test_a_question_asked_again_is_not_embedded_again() -> None:
    index = ScriptedIndex(semantic_hits=[scored("m1", 0.9)])
    embedder = FixedTableEmbedder({QUERY: QUERY_VECTOR, "other": [0.0, 0.0, 1.0], "third": [0.0, 1.0, 0.0]})
    service = SearchService(index, embedder, query_cache_size=2)
    for _ in range(3):
        service.search(SearchQuery(text=QUERY, mode=SearchMode.SEMANTIC, k=1))
    assert embedder.embedded == [QUERY] and len(index.semantic_calls) == 3
    assert all(call[0] == pytest.approx(QUERY_VECTOR) for call in index.semantic_calls)
    assert (service.query_vectors.hits, service.query_vectors.misses) == (2, 1)
    # Bounded: the least recently asked question leaves first.
    for text in ("other", "third", QUERY):
        service.search(SearchQuery(text=text, mode=SearchMode.SEMANTIC, k=1))
    assert embedder.embedded == [QUERY, "other", "third", QUERY]

    uncached = FixedTableEmbedder({QUERY: QUERY_VECTOR})
    off = SearchService(index, uncached, query_cache_size=0)
    for _ in range(2):
        off.search(SearchQuery(text=QUERY, mode=SearchMode.SEMANTIC, k=1))
    assert uncached.embedded == [QUERY, QUERY]
