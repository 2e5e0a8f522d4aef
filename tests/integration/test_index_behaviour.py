"""What every ``MomentIndex`` backend must do, checked the same way on each: LanceDB always, and
OpenSearch when ``OPENSEARCH_URL`` names a real cluster (marker ``opensearch``; skipped without
one, since no OpenSearch server can run here). Search modes above the index (fusion) run through
``SearchService``, exactly as the API uses them.

    OPENSEARCH_URL=http://localhost:9200 .venv/bin/pytest tests/integration/test_index_behaviour.py -m opensearch
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from medialens.adapters.index.base import MomentIndex
from medialens.adapters.index.lance import LanceMomentIndex
from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Moment
from medialens.domain.search import SearchFilters, SearchHit, SearchMode, SearchQuery
from medialens.ml.base import FloatMatrix, TextEmbedder
from medialens.search import SearchService
from medialens.settings import Settings

pytestmark = pytest.mark.integration

# Read at import: the suite-wide fixture removes OPENSEARCH_URL from each test's environment.
REAL_OPENSEARCH = os.environ.get("OPENSEARCH_URL")
DIMS = 8
NO_FILTER = SearchFilters()

BACKENDS = [
    pytest.param("lancedb", id="lancedb"),
    pytest.param(
        "opensearch",
        id="opensearch",
        marks=[
            pytest.mark.opensearch,
            pytest.mark.skipif(not REAL_OPENSEARCH, reason="set OPENSEARCH_URL to run against a real cluster"),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MomentIndex]:
    if request.param == "lancedb":
        yield LanceMomentIndex(tmp_path / "index", dimensions=DIMS, maintain_after_small_fragments=None)
        return
    from medialens.adapters.index.opensearch import OpenSearchMomentIndex

    settings = Settings(
        opensearch_url=REAL_OPENSEARCH,
        index_name=f"medialens-test-{uuid.uuid4().hex[:12]}",
        opensearch_replicas=0,  # a one-node test cluster stays green
    )
    backend = OpenSearchMomentIndex.from_settings(settings, dimensions=DIMS)
    yield backend
    backend.client.indices.delete(index=backend.index, ignore_unavailable=True)
    if not backend.config.serverless:
        backend.client.indices.delete_index_template(name=backend.config.template_name, ignore=[404])


def unit(*values: float) -> list[float]:
    vector = np.zeros(DIMS)
    vector[: len(values)] = values
    return [float(x) for x in vector / np.linalg.norm(vector)]


def make(
    moment_id: str,
    text: str,
    vector: Sequence[float] | None,
    *,
    asset_id: str = "asset-a",
    media_type: MediaType = MediaType.DOCUMENT,
    modality: Modality = Modality.DOCUMENT,
    page: int | None = None,
    start: float | None = None,
    language: str | None = "en",
) -> Moment:
    return Moment(
        moment_id=moment_id,
        asset_id=asset_id,
        source=f"s3://medialens-drop/incoming/{asset_id}",
        media_type=media_type,
        modality=modality,
        text=text,
        page=page,
        start=start,
        end=None if start is None else start + 5.0,
        language=language,
        vector=list(vector) if vector is not None else None,
        model_versions={"text_embedding": "test@1"},
        pipeline_version="1",
    )


CORPUS = [
    make("d1", "Full-time employees receive 25 vacation days per year.", unit(1, 0.1), page=2),
    make("d2", "Expense reports are due within 30 days of the purchase.", unit(0.1, 1), page=3),
    make("d3", "Vacation requests go to your manager; vacation planning happens in January.", unit(0.9, 0.3), page=4),
    make(
        "s1",
        "The quarterly launch review moves to Thursday.",
        unit(0, 0, 1),
        asset_id="asset-b",
        media_type=MediaType.VIDEO,
        modality=Modality.SPEECH,
        start=12.0,
        language="sv",
    ),
    make(
        "s2",
        "LAUNCH checklist shown on screen",
        unit(0, 0.2, 0.9),
        asset_id="asset-b",
        media_type=MediaType.VIDEO,
        modality=Modality.SCREEN_TEXT,
        start=30.0,
    ),
    make("n1", "A caption without any embedding about vacations", None, asset_id="asset-c", page=1, language=None),
]


@pytest.fixture
def filled(index: MomentIndex) -> MomentIndex:
    assert index.upsert(CORPUS) == len(CORPUS)
    return index


def ids(hits: Sequence[SearchHit]) -> list[str]:
    return [hit.moment_id for hit in hits]


def test_upsert_replaces_by_moment_id_and_counts(index: MomentIndex) -> None:
    assert index.count() == 0 and index.keyword("vacation", 5, NO_FILTER) == []
    index.upsert(CORPUS)
    assert index.count() == 6 and index.count("asset-b") == 2 and index.count("nobody") == 0
    changed = CORPUS[0].model_copy(update={"text": "Employees receive 30 holiday days per year."})
    assert index.upsert([changed]) == 1
    assert index.count() == 6
    assert "d1" not in ids(index.keyword("vacation", 10, NO_FILTER))
    (hit,) = index.keyword("holiday", 10, NO_FILTER)
    assert hit.moment_id == "d1" and hit.text == changed.text and hit.page == 2
    assert index.upsert([]) == 0


def test_keyword_is_bm25_stemmed_case_insensitive_or(filled: MomentIndex) -> None:
    hits = filled.keyword("Vacations", 10, NO_FILTER)
    # Stemmed: "vacation", "vacations"; the moment that says it twice (and short) ranks first.
    assert set(ids(hits)) == {"d1", "d3", "n1"} and ids(hits)[0] == "d3"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and hits[-1].score > 0
    assert set(ids(filled.keyword("launch", 10, NO_FILTER))) == {"s1", "s2"}  # "LAUNCH" matches too
    # Any term may match (OR): one word of the query is enough.
    assert set(ids(filled.keyword("purchase zebra", 10, NO_FILTER))) == {"d2"}
    assert filled.keyword("the of and", 10, NO_FILTER) == []  # stop words only
    assert len(filled.keyword("vacation", 2, NO_FILTER)) == 2


def test_semantic_ranks_by_cosine_like_brute_force(filled: MomentIndex) -> None:
    query = unit(1, 0.2)
    hits = filled.semantic(query, 5, NO_FILTER)
    vectors: dict[str, npt.NDArray[np.float64]] = {m.moment_id: np.asarray(m.vector) for m in CORPUS if m.vector}
    expected = sorted(vectors, key=lambda mid: -float(np.dot(vectors[mid], query)))
    assert ids(hits) == expected[:5]
    for hit in hits:
        assert hit.score == pytest.approx(float(np.dot(vectors[hit.moment_id], query)), abs=2e-3)
    assert hits[0].vector is None  # hits do not carry vectors back
    # Unnormalised query vectors are normalised.
    assert ids(filled.semantic([5 * x for x in query], 2, NO_FILTER)) == expected[:2]


@pytest.mark.parametrize(
    ("filters", "keyword_ids", "semantic_ids"),
    [
        (SearchFilters(media_types=[MediaType.VIDEO]), {"s1", "s2"}, {"s1", "s2"}),
        (SearchFilters(modalities=[Modality.SCREEN_TEXT]), {"s2"}, {"s2"}),
        (SearchFilters(asset_ids=["asset-a", "asset-c"]), {"d1", "d2", "d3", "n1"}, {"d1", "d2", "d3"}),
        (SearchFilters(media_types=[MediaType.DOCUMENT], asset_ids=["asset-b"]), set(), set()),
        (SearchFilters(media_types=[MediaType.IMAGE]), set(), set()),
        (SearchFilters(languages=["sv"]), {"s1"}, {"s1"}),
        (SearchFilters(languages=["en", "sv"], media_types=[MediaType.VIDEO]), {"s1", "s2"}, {"s1", "s2"}),
    ],
)
def test_filters_apply_before_ranking(
    filled: MomentIndex, filters: SearchFilters, keyword_ids: set[str], semantic_ids: set[str]
) -> None:
    words = "vacation days purchase launch checklist caption"
    assert set(ids(filled.keyword(words, 10, filters))) == keyword_ids
    assert set(ids(filled.semantic(unit(1, 0.1), 10, filters))) == semantic_ids


def test_filters_are_not_applied_after_a_top_k(filled: MomentIndex) -> None:
    # The two nearest moments are videos: filtered to documents, k=2 still finds two.
    documents = SearchFilters(media_types=[MediaType.DOCUMENT])
    hits = filled.semantic(unit(0, 0, 1), 2, documents)
    assert len(hits) == 2 and all(hit.media_type is MediaType.DOCUMENT for hit in hits)
    # "vacation" ranks the documents first: filtered to speech, k=1 still finds the speech moment.
    speech = filled.keyword("vacation launch", 1, SearchFilters(modalities=[Modality.SPEECH]))
    assert ids(speech) == ["s1"]


def test_a_query_meets_only_the_vectors_its_own_model_made(index: MomentIndex) -> None:
    """After a change of embedding model, moments not yet re-run hold vectors of the old model:
    semantic search skips them (their cosine to the new query means nothing); keyword finds them."""
    current = make("new", "vacation days per year", unit(0, 1))
    current.model_versions = {"text_embedding": "e5@1+int8"}
    older = make("old", "vacation days per year, older analysis", unit(1))
    older.model_versions = {"text_embedding": "minilm@1+int8"}
    index.upsert([current, older])
    assert set(ids(index.semantic(unit(1), 10, NO_FILTER))) == {"new", "old"}
    assert ids(index.semantic(unit(1), 10, NO_FILTER, embedding_model="e5@1")) == ["new"]
    assert ids(index.semantic(unit(1), 10, NO_FILTER, embedding_model="minilm@1")) == ["old"]
    assert set(ids(index.keyword("vacation", 10, NO_FILTER))) == {"new", "old"}


def test_chinese_and_japanese_text_is_found_by_keyword(index: MomentIndex) -> None:
    """No spaces between words: both backends index character bigrams (Lucene's CJK way)."""
    index.upsert(
        [
            make("zh", "广州市房地产中介协会分析", unit(1), language="zh"),
            make("ja", "ポイ捨て禁止! 清潔できれいな港区を", unit(0, 1), language="ja"),
        ]
    )
    assert ids(index.keyword("广州房地产", 5, NO_FILTER)) == ["zh"]
    assert ids(index.keyword("港区", 5, NO_FILTER)) == ["ja"]


def test_moments_without_vectors_are_found_by_keyword_only(filled: MomentIndex) -> None:
    assert "n1" in ids(filled.keyword("caption", 5, NO_FILTER))
    assert "n1" not in ids(filled.semantic(unit(1), 10, NO_FILTER))


def test_delete_asset_and_delete_stale(filled: MomentIndex) -> None:
    assert filled.delete_stale("asset-a", {"d1", "d3"}) == 1
    assert filled.count("asset-a") == 2 and "d2" not in ids(filled.keyword("purchase", 5, NO_FILTER))
    assert filled.delete_stale("asset-a", {"d1", "d3"}) == 0
    assert filled.delete_asset("asset-b") == 2
    assert filled.count("asset-b") == 0 and filled.count() == 3
    assert filled.keyword("launch", 5, NO_FILTER) == []
    assert filled.delete_asset("asset-b") == 0
    assert filled.delete_stale("asset-c", set()) == 1 and filled.count() == 2


class TableEmbedder(TextEmbedder):
    """Query vectors from a table: hybrid search without a model."""

    name = "table"

    def __init__(self, table: dict[str, list[float]]) -> None:
        super().__init__()
        self.table = table

    def _load(self) -> None:
        pass

    @property
    def version(self) -> str:
        return "test@1+fp32"  # the model that made the corpus's vectors (see make)

    @property
    def dimensions(self) -> int:
        return DIMS

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> FloatMatrix:
        return np.asarray([self.table[text] for text in texts], dtype=np.float32)


def test_search_service_modes_over_the_backend(filled: MomentIndex) -> None:
    """The fusion above the index sees the same raw scores from every backend."""
    embedder = TableEmbedder({"time off each year": unit(1, 0.05), "product launch": unit(0, 0.1, 1)})
    service = SearchService(filled, embedder, fusion="weighted", alpha=0.5)
    keyword = service.search(SearchQuery(text="vacation", mode=SearchMode.KEYWORD, k=3))
    assert keyword.hits[0].moment_id == "d3" and keyword.hits[0].score == 1.0
    semantic = service.search(SearchQuery(text="time off each year", mode=SearchMode.SEMANTIC, k=2))
    assert [h.moment_id for h in semantic.hits] == ["d1", "d3"]
    hybrid = service.search(SearchQuery(text="product launch", mode=SearchMode.HYBRID, k=3))
    assert {h.moment_id for h in hybrid.hits[:2]} == {"s1", "s2"} and 0.0 <= hybrid.hits[-1].score <= 1.0
    filtered = service.search(
        SearchQuery(
            text="product launch",
            mode=SearchMode.HYBRID,
            k=3,
            filters=SearchFilters(modalities=[Modality.SCREEN_TEXT]),
        )
    )
    assert [h.moment_id for h in filtered.hits] == ["s2"]
    assert filtered.hits[0].start == 30.0 and filtered.hits[0].media_type is MediaType.VIDEO


def test_listing_an_assets_moments_in_reading_order(filled: MomentIndex) -> None:
    assert [m.moment_id for m in filled.asset_moments("asset-a")] == ["d1", "d2", "d3"]
    assert [m.moment_id for m in filled.asset_moments("asset-b", limit=1)] == ["s1"]
