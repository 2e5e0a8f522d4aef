"""Search requests and answers, shared by the CLI, the API and both index backends."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Moment

MAX_QUERY_CHARS = 1000


class SearchMode(StrEnum):
    KEYWORD = "keyword"
    SEMANTIC = "semantic"
    HYBRID = "hybrid"


class SearchFilters(BaseModel):
    media_types: list[MediaType] | None = None
    asset_ids: list[str] | None = None
    modalities: list[Modality] | None = None
    languages: list[str] | None = None

    @property
    def empty(self) -> bool:
        return not (self.media_types or self.asset_ids or self.modalities or self.languages)


class SearchQuery(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    mode: SearchMode = SearchMode.HYBRID
    k: int = Field(default=10, ge=1, le=100)
    filters: SearchFilters = Field(default_factory=SearchFilters)


class SearchHit(Moment):
    """A moment a search found, as the index holds it (without its vector), with its score: BM25
    or cosine from a backend; scaled (keyword) or fused (hybrid) by the search service."""

    score: float


class SearchResponse(BaseModel):
    query: str
    mode: SearchMode
    hits: list[SearchHit]
    took_ms: float
