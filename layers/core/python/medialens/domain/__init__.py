"""Pydantic models for everything that crosses a boundary: events, messages, artifacts, API."""

from medialens.domain.assets import Asset, AssetStatus, AuditEvent, MediaType, SourceObject, StageTiming
from medialens.domain.messages import (
    AssetRef,
    EmbedInput,
    EmbedResult,
    ExecutionInput,
    ExtractResult,
    FailureInfo,
    IndexInput,
    IndexResult,
    PassageBatchRef,
    ProbeResult,
    StepMessage,
    StepName,
)
from medialens.domain.moments import Modality, Moment, Passage
from medialens.domain.search import SearchFilters, SearchHit, SearchMode, SearchQuery, SearchResponse

__all__ = [
    "Asset",
    "AssetRef",
    "AssetStatus",
    "AuditEvent",
    "EmbedInput",
    "EmbedResult",
    "ExecutionInput",
    "ExtractResult",
    "FailureInfo",
    "IndexInput",
    "IndexResult",
    "MediaType",
    "Modality",
    "Moment",
    "Passage",
    "PassageBatchRef",
    "ProbeResult",
    "SearchFilters",
    "SearchHit",
    "SearchMode",
    "SearchQuery",
    "SearchResponse",
    "SourceObject",
    "StageTiming",
    "StepMessage",
    "StepName",
]
