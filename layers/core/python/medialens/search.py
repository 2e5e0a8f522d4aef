"""The search service: one query in, ranked hits out, the same for the CLI, the API and any
index backend. Backends return raw scores; the mode, fusion and display scaling live here."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from medialens.adapters.index.base import MomentIndex
from medialens.adapters.index.fusion import (
    DEFAULT_RRF_K,
    image_routed_fusion,
    language_routed_fusion,
    reciprocal_rank_fusion,
    weighted_fusion,
)
from medialens.domain.moments import VectorField, vector_space
from medialens.domain.search import SearchFilters, SearchHit, SearchMode, SearchQuery, SearchResponse
from medialens.ml.base import TextEmbedder
from medialens.ml.language import guess_language

if TYPE_CHECKING:  # a type only: the image-text runtime loads where one is configured
    from medialens.ml.clip import ImageTextEmbedder

FUSIONS = ("weighted", "rrf")

# Hybrid search fuses this many candidates per list for each hit it returns: a moment ranked
# modestly by both lists can still surface above one ranked high by only one of them.
HYBRID_CANDIDATES_PER_HIT = 4

# Each encoder's list is min-max normalised before the two are fused: over at least this many
# candidates, so the scale (and with it the order) does not change with the k a caller asks for.
ROUTED_CANDIDATES = 50


class QueryVectorCache:
    """The vectors of recent questions, by (model version, question): a question asked again (a
    page reloaded, a shared link, the API's popular searches) costs no model call. A bounded LRU,
    safe across the threads of one process; ``size`` 0 keeps nothing."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self.size = size
        self.hits = self.misses = 0
        self._vectors: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, text: str, embed: Callable[[], list[float]]) -> list[float]:
        key = (model, text)
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
                return vector
            self.misses += 1
        vector = embed()  # outside the lock: two threads may embed the same question once each
        if self.size:
            with self._lock:
                self._vectors[key] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return vector


def display_keyword_scores(hits: Sequence[SearchHit]) -> list[SearchHit]:
    """BM25 divided by the best BM25 of the query: the top hit shows 1.0, the rest keep their
    proportion. (Min-max scaling would show the last real match as 0.0.)"""
    if not hits:
        return []
    best = max(hit.score for hit in hits)
    if best <= 0.0:
        return [hit.model_copy(update={"score": 1.0}) for hit in hits]
    return [hit.model_copy(update={"score": min(max(hit.score / best, 0.0), 1.0)}) for hit in hits]


class SearchService:
    """Runs keyword (BM25), semantic (cosine k-NN) or hybrid (both, fused) searches.

    Semantic search asks the multilingual ``embedder`` (every language in one space); an English
    question also asks the ``english_embedder`` over the moments it embedded, and the two lists
    are fused (``language_routed_fusion``): English-trained models rank English text better, and
    the multilingual one is what finds the answer in another language.

    With an ``image_embedder`` (a CLIP-style model the deployment supplied), its text encoder
    also asks the pictures of VISUAL moments, fused with the text list (``image_routed_fusion``).

    The embedders are loaded on the first semantic or hybrid query, so a process that only
    serves keyword searches never reads model weights.
    """

    def __init__(
        self,
        index: MomentIndex,
        embedder: TextEmbedder,
        fusion: str = "weighted",
        *,
        english_embedder: TextEmbedder | None = None,
        image_embedder: ImageTextEmbedder | None = None,
        image_weight: float = 0.6,
        alpha: float = 0.5,
        rrf_k: int = DEFAULT_RRF_K,
        query_cache_size: int = 1024,
    ) -> None:
        """``fusion``: "weighted" (``alpha`` = semantic weight) or "rrf" (constant ``rrf_k``);
        ``query_cache_size``: questions whose vectors are kept (0: none)."""
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must be within [0, 1]")
        if rrf_k < 0:
            raise ValueError("rrf_k must be >= 0")
        if not 0.0 <= image_weight <= 1.0:
            raise ValueError("image_weight must be within [0, 1]")
        self.index = index
        self.embedder = embedder
        self.english_embedder = english_embedder
        self.image_embedder = image_embedder
        self.image_weight = image_weight
        self.fusion = fusion
        self.alpha = alpha
        self.rrf_k = rrf_k
        self.query_vectors = QueryVectorCache(query_cache_size)

    def _query_vector(self, embedder: TextEmbedder | ImageTextEmbedder, text: str) -> list[float]:
        def embed() -> list[float]:
            embedder.load()  # idempotent; the first call pays for reading the weights
            return [float(x) for x in embedder.embed_query(text)]

        return self.query_vectors.get(embedder.version, text, embed)

    def _semantic(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        if self.image_embedder is None:
            return self._text_semantic(text, k, filters)
        candidates = max(k * HYBRID_CANDIDATES_PER_HIT, ROUTED_CANDIDATES)
        image = self.image_embedder
        question = self._query_vector(image, text)
        pictures = self.index.semantic(
            question, candidates, filters, vector_space(image.version), field=VectorField.IMAGE
        )
        return image_routed_fusion(pictures, self._text_semantic(text, candidates, filters), self.image_weight)[:k]

    def _text_semantic(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        # Moments embedded by an earlier model stay findable by keyword until they are re-run.
        english = self.english_embedder
        if english is None or guess_language(text) != "en":
            vector = self._query_vector(self.embedder, text)
            return self.index.semantic(vector, k, filters, embedding_model=vector_space(self.embedder.version))
        candidates = max(k * HYBRID_CANDIDATES_PER_HIT, ROUTED_CANDIDATES)
        across = self.index.semantic(
            self._query_vector(self.embedder, text), candidates, filters, vector_space(self.embedder.version)
        )
        in_english = self.index.semantic(
            self._query_vector(english, text),
            candidates,
            filters,
            vector_space(english.version),
            field=VectorField.ENGLISH,
        )
        return language_routed_fusion(in_english, across)[:k]

    def _hybrid(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        candidates = k * HYBRID_CANDIDATES_PER_HIT
        keyword = self.index.keyword(text, candidates, filters)
        semantic = self._semantic(text, candidates, filters)
        if self.fusion == "rrf":
            fused = reciprocal_rank_fusion([keyword, semantic], k=self.rrf_k)
        else:
            fused = weighted_fusion(keyword, semantic, alpha=self.alpha)
        return fused[:k]

    def search(self, query: SearchQuery) -> SearchResponse:
        started = time.perf_counter()
        if query.mode is SearchMode.KEYWORD:
            scored = display_keyword_scores(self.index.keyword(query.text, query.k, query.filters))
        elif query.mode is SearchMode.SEMANTIC:
            scored = self._semantic(query.text, query.k, query.filters)
        else:
            scored = self._hybrid(query.text, query.k, query.filters)
        # A backend may return more than asked; the response never does.
        hits = scored[: query.k]
        took_ms = (time.perf_counter() - started) * 1000.0
        return SearchResponse(query=query.text, mode=query.mode, hits=hits, took_ms=took_ms)
