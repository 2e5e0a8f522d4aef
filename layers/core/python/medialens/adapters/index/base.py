"""The index interface every backend implements; search logic (fusion) lives outside backends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from medialens.domain.moments import Moment, VectorField
from medialens.domain.search import SearchFilters, SearchHit


class MomentIndex(ABC):
    @abstractmethod
    def upsert(self, moments: Sequence[Moment]) -> int:
        """Insert or replace by ``moment_id``; returns how many were written."""

    @abstractmethod
    def delete_asset(self, asset_id: str) -> int:
        """Remove every moment of an asset; returns how many were removed."""

    @abstractmethod
    def delete_stale(self, asset_id: str, keep_ids: set[str]) -> int:
        """Remove an asset's moments not in ``keep_ids`` (a re-run that produced fewer)."""

    @abstractmethod
    def keyword(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        """BM25 over moment text, best first (``score`` is the BM25 score)."""

    @abstractmethod
    def semantic(
        self,
        vector: Sequence[float],
        k: int,
        filters: SearchFilters,
        embedding_model: str | None = None,
        *,
        field: VectorField = VectorField.TEXT,
    ) -> list[SearchHit]:
        """k-NN by cosine similarity over normalised vectors, best first (``score`` is the cosine).
        ``embedding_model`` (a ``vector_space``): only vectors that model made; a vector from
        another model is noise to this query, however close it happens to lie. ``field``: which
        of a moment's vectors to search (``VectorField``: the multilingual text vector, the
        English-trained one, or an image-text model's image vector); a backend without the field
        returns nothing."""

    @abstractmethod
    def asset_moments(self, asset_id: str, limit: int = 200) -> list[Moment]:
        """One asset's moments in reading order (page, then time), without vectors, at most ``limit``."""

    @abstractmethod
    def count(self, asset_id: str | None = None) -> int:
        """Moments in the index, or of one asset."""

    def optimize(self) -> None:  # noqa: B027 - optional hook: compaction, index (re)builds
        """Compact and (re)build secondary indexes; backends that need no upkeep do nothing."""
