"""The workflow's contract: execution input, the step message each worker receives, step results.

The state machine sends ``StepMessage`` bodies (``TaskToken`` from ``$$.Task.Token``); a worker
parses ``input`` into the step's own model and answers SendTaskSuccess with the step's result.
Everything here stays small: bulky data travels as ``s3://`` references to artifacts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from medialens.domain.assets import MediaType, SourceObject


class StepName(StrEnum):
    PROBE = "probe"
    EXTRACT_DOCUMENT = "extract_document"
    EMBED_TEXT = "embed_text"
    INDEX_MOMENTS = "index_moments"
    FINALIZE = "finalize"
    MARK_FAILED = "mark_failed"
    # Video and image branches.
    DETECT_SHOTS = "detect_shots"
    RECOGNIZE_TEXT = "recognize_text"
    BUILD_SCREEN_TEXT = "build_screen_text"
    ANALYZE_IMAGE = "analyze_image"
    # Speech (audio files and the audio track of videos).
    PREPARE_AUDIO = "prepare_audio"
    TRANSCRIBE_CHUNK = "transcribe_chunk"
    BUILD_SPEECH_SEGMENTS = "build_speech_segments"
    MERGE_SEGMENTS = "merge_segments"


class AssetRef(BaseModel):
    """The execution's identity of the asset; travels in every step message."""

    asset_id: str
    source: SourceObject
    pipeline_version: str


class ExecutionInput(BaseModel):
    asset: AssetRef


class StepMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    task_token: str = Field(alias="TaskToken")
    step: StepName
    asset: AssetRef
    input: dict[str, Any] = Field(default_factory=dict)


class ProbeResult(BaseModel):
    media_type: MediaType
    mime_type: str
    extension: str
    size: int
    details: dict[str, Any] = Field(default_factory=dict)


class PassageBatchRef(BaseModel):
    index: int
    uri: str
    count: int


class ExtractResult(BaseModel):
    batches: list[PassageBatchRef]
    passages: int
    pages: int | None = None
    characters: int


class SegmentsResult(BaseModel):
    """What every analysis branch ends with: passages to embed, in batches (the Map's items)."""

    batches: list[PassageBatchRef]
    passages: int


class KeyframeBatchRef(BaseModel):
    index: int
    uri: str = Field(description="JSON lines of keyframes (media.shots.Keyframe) with their JPEG URIs")
    count: int


class ShotsResult(BaseModel):
    shots: int
    keyframes: int
    candidates: int
    skipped_duplicates: int
    manifest_uri: str
    keyframe_batches: list[KeyframeBatchRef]


class RecognizeTextResult(BaseModel):
    index: int
    uri: str = Field(description="JSON lines of media.screen_text.FrameText, one per keyframe")
    count: int
    model: str


class AudioChunkRef(BaseModel):
    index: int
    uri: str
    start: float
    end: float


class AudioPlan(BaseModel):
    chunks: list[AudioChunkRef]
    duration_s: float
    speech_s: float
    plan_uri: str


class TranscribeResult(BaseModel):
    index: int
    uri: str = Field(description="the chunk's transcript (media.transcript.ChunkTranscript) as JSON")
    words: int
    language: str | None = None
    model: str


class EmbedInput(BaseModel):
    batch: PassageBatchRef
    media_type: MediaType


class EmbedResult(BaseModel):
    uri: str
    count: int
    model: str


class IndexInput(BaseModel):
    embedded: list[EmbedResult]


class IndexResult(BaseModel):
    indexed: int
    removed_stale: int = 0


class FailureInfo(BaseModel):
    """What a Catch puts at ``$.error``. moto returns Cause as null, so workers also record reasons."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(default="States.TaskFailed", alias="Error")
    cause: str | None = Field(default=None, alias="Cause")
