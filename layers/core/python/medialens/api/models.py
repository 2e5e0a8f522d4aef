"""What the search API accepts and answers: pydantic models that also generate its OpenAPI.

Domain models (``Asset``, ``Moment``, ``SearchHit``) stay internal; these are the public shapes,
with links a browser can open instead of ``s3://`` URIs. A moment's own fields reach them by name
(``api.presenters.shown``), never copied one by one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from medialens.domain.assets import AssetStatus, MediaType
from medialens.domain.moments import Modality
from medialens.domain.search import MAX_QUERY_CHARS, SearchMode
from medialens.voice import MAX_SPEECH_CHARACTERS

MAX_PAGE_SIZE = 100
# Pages are cut from the top of one ranking: SearchQuery serves at most this many hits a query.
MAX_SEARCH_WINDOW = 100
# Every list a request may carry is bounded: one request must not cost the others their turn.
MAX_FILTER_VALUES = 100
AssetId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field in a request is a mistake


# --- errors -------------------------------------------------------------------------------------


class FieldError(ApiModel):
    location: str = Field(description="Where the value was: query, path, body or header.")
    field: str = Field(description="Dotted name of the field, empty for the whole body.")
    message: str
    type: str = Field(description="Machine-readable reason, e.g. missing, string_too_long.")


class ErrorDetail(ApiModel):
    status: int
    code: str = Field(description="Stable machine-readable code, e.g. not_found, query_too_long.")
    message: str
    fields: list[FieldError] = Field(default_factory=list, description="Per-field problems (400 only).")


class ErrorResponse(ApiModel):
    """Every error answer of the API, whatever the route."""

    error: ErrorDetail
    request_id: str | None = None


# --- search -------------------------------------------------------------------------------------


LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="ISO 639-1 (or -3) code, e.g. sv.")]


class SearchFiltersBody(ApiModel):
    media_types: list[MediaType] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Only these media types (any of)."
    )
    modalities: list[Modality] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Only these modalities (any of)."
    )
    asset_ids: list[AssetId] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Only moments of these assets (any of)."
    )
    languages: list[LanguageCode] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="Only moments said or written in these languages."
    )


class SearchRequest(ApiModel):
    """``POST /search``: the same search as ``GET /search``, with the parameters in a JSON body."""

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        pattern=r"\S",  # not blank
        description=f"What was said or shown. Longer than {MAX_QUERY_CHARS} characters: 413.",
    )
    mode: SearchMode = SearchMode.HYBRID
    k: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE, description="Hits per page.")
    filters: SearchFiltersBody = Field(default_factory=SearchFiltersBody)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page of this same search.")


class Highlight(ApiModel):
    start: int = Field(ge=0, description="Offset of the first highlighted character in the snippet.")
    end: int = Field(ge=0, description="Offset just past the last highlighted character.")


class MomentView(ApiModel):
    """A moment: where it sits in its asset and what it says."""

    moment_id: str
    modality: Modality
    start: float | None = Field(default=None, description="Seconds into the media (audio, video).")
    end: float | None = None
    page: int | None = Field(default=None, description="Page of a document (1-based).")
    section: str | None = Field(default=None, description="The heading a document passage sits under.")
    text: str = Field(description="The whole moment text.")
    confidence: float | None = Field(default=None, description="How sure the model that read it was (0..1).")
    model_versions: dict[str, str] = Field(
        default_factory=dict,
        description="The models that made the moment, by role (speech, vad, ocr, text_embedding): a document "
        "moment with an ocr model was read from the page's picture, not its text layer.",
    )
    narration_start: float | None = Field(
        default=None, description="Seconds into the document's narration where this is said (narrated uploads)."
    )
    narration_end: float | None = None
    language: str | None = Field(default=None, description="What was said or written is in this language, when known.")


class MomentHit(MomentView):
    asset_id: str
    source: str = Field(description="s3:// URI of the source object.")
    file_name: str
    media_type: MediaType
    snippet: str = Field(description="The part of the text around the match, with … where it was cut.")
    highlights: list[Highlight] = Field(description="Query terms found in the snippet.")
    score: float = Field(description="Keyword: BM25 / best BM25; semantic: cosine; hybrid: fused, 0..1.")
    media_url: str | None = Field(description="Where a browser can fetch the source object.")
    open_url: str | None = Field(description="media_url at the moment: #page=N for PDFs, #t=start for media.")
    thumbnail_url: str | None = Field(
        default=None, description="The image itself, or for video the keyframe stored for the moment's time."
    )
    narration_url: str | None = Field(
        default=None, description="The document's narration (MP3), when its upload asked for one."
    )


class SearchPage(ApiModel):
    query: str
    mode: SearchMode
    k: int
    offset: int = Field(description="Rank of the first hit of this page, 0-based.")
    hits: list[MomentHit]
    next_cursor: str | None = Field(description="Pass with the same search for the next page; null at the end.")
    took_ms: float


class HeardView(ApiModel):
    text: str = Field(description="What the speech-to-text model heard: the query that was searched.")
    language: str | None
    language_probability: float | None
    duration_s: float
    model: str
    took_ms: float


class VoiceSearchPage(SearchPage):
    heard: HeardView


# --- speech -------------------------------------------------------------------------------------


class SpeechRequest(ApiModel):
    text: str = Field(min_length=1, max_length=MAX_SPEECH_CHARACTERS, pattern=r"\S", description="What to say.")
    language: str | None = Field(
        default=None,
        max_length=16,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
        description="The text's language (default: the voice's own); languages the neural voice does not "
        "speak use espeak-ng's voice.",
    )
    format: Literal["mp3", "wav"] = Field(default="mp3", description="Audio format of the answer.")


# --- assets -------------------------------------------------------------------------------------


class AssetSummary(ApiModel):
    asset_id: str
    source: str
    file_name: str
    media_type: MediaType | None
    status: AssetStatus
    stage: str | None = Field(description="The stage running now, or the one that failed.")
    error_code: str | None
    error_reason: str | None = Field(description="Why the asset failed, in words a person can act on.")
    moment_count: int
    size: int
    created_at: datetime
    updated_at: datetime
    seconds: float = Field(description="From admission to the last status change.")
    media_url: str | None
    stalled: str | None = Field(
        default=None,
        description="Why this unfinished asset is not moving, when known: no runner is processing it, "
        "or its workflow ended without recording an outcome.",
    )
    warnings: list[str] = Field(
        default_factory=list, description="What to look at although it succeeded (e.g. a poor narration)."
    )


class AssetPage(ApiModel):
    assets: list[AssetSummary]
    next_cursor: str | None


class ArtifactLink(ApiModel):
    name: str
    uri: str
    url: str | None = Field(description="Presigned S3 URL on AWS, a `medialens serve` URL locally.")


class StageTimingView(ApiModel):
    stage: str
    started_at: datetime
    ended_at: datetime | None


class AuditEventView(ApiModel):
    kind: str
    detail: str
    at: datetime


class AssetDetail(AssetSummary):
    etag: str
    version_id: str | None
    pipeline_version: str
    execution_name: str | None
    metadata: dict[str, Any]
    timings: list[StageTimingView]
    stage_seconds: dict[str, float]
    artifacts: list[ArtifactLink]
    events: list[AuditEventView]
    moments_indexed: int = Field(description="Moments of this asset in the index now.")
    moments: list[MomentView] = Field(description="The asset's moments in reading order (up to moments_limit).")


class ReprocessResult(ApiModel):
    asset_id: str
    status: AssetStatus
    execution_name: str
    attempt: int


class DeleteResult(ApiModel):
    asset_id: str
    moments_removed: int
    artifacts_removed: int


# --- health -------------------------------------------------------------------------------------


class HealthCheck(ApiModel):
    ok: bool
    detail: str
    ms: float


class HealthReport(ApiModel):
    status: Literal["ok", "unhealthy"]
    checks: dict[str, HealthCheck]
    error: ErrorDetail | None = Field(default=None, description="Set when unhealthy (503).")
