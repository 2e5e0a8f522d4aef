"""The workflow's contract: the execution input, the message each worker receives, and every
step's input and output.

The state machine sends ``StepMessage`` bodies (``TaskToken`` from ``$$.Task.Token``); the task
runner validates ``input`` into the step's input model (the catalogue in
``medialens.pipeline.catalog`` says which) and answers SendTaskSuccess with the step's output.
Everything here stays small: bulky data travels as ``s3://`` references to artifacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from medialens.domain.assets import MediaType, SourceObject
from medialens.domain.speech import Narration


class StepName(StrEnum):
    PROBE = "probe"
    REUSE_ANALYSIS = "reuse_analysis"
    EXTRACT_DOCUMENT = "extract_document"
    EXTRACT_OFFICE = "extract_office"
    EMBED_TEXT = "embed_text"
    INDEX_MOMENTS = "index_moments"
    FINALIZE = "finalize"
    MARK_FAILED = "mark_failed"
    # Video and image branches.
    DETECT_SHOTS = "detect_shots"
    RECOGNIZE_TEXT = "recognize_text"
    BUILD_SCREEN_TEXT = "build_screen_text"
    LABEL_KEYFRAMES = "label_keyframes"
    BUILD_SHOT_LABELS = "build_shot_labels"
    ANALYZE_IMAGE = "analyze_image"
    # Speech (audio files and the audio track of videos).
    PREPARE_AUDIO = "prepare_audio"
    CLASSIFY_SOUNDS = "classify_sounds"
    IDENTIFY_LANGUAGE = "identify_language"
    TRANSCRIBE_CHUNK = "transcribe_chunk"
    BUILD_SPEECH_SEGMENTS = "build_speech_segments"
    # Scanned pages of documents.
    RECOGNIZE_PAGES = "recognize_pages"
    BUILD_PAGE_TEXT = "build_page_text"
    # Documents uploaded with narration asked for.
    NARRATE_DOCUMENT = "narrate_document"


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
    input: dict[str, Any] = Field(default_factory=dict, description="Validated into the step's input model.")


class StepInput(BaseModel):
    """Base of every step's input. A field the state machine sends that the step does not read is
    ignored, so a definition deployed ahead of its workers still runs (tests/unit/test_step_catalog
    keeps the definition from sending what no step reads)."""

    model_config = ConfigDict(extra="ignore")


Input = TypeVar("Input", bound=StepInput)


@dataclass(frozen=True, slots=True)
class StepCall(Generic[Input]):
    """One message as a batching step receives it: whose asset, and its validated input."""

    asset: AssetRef
    input: Input


# --- shared shapes --------------------------------------------------------------------------------


class PassageBatchRef(BaseModel):
    """A JSON-lines artifact of passages to embed: one item of the embedding Map."""

    source: str = Field(description="The step that wrote the batch: names its embedded moments artifact.")
    index: int
    uri: str
    count: int


class SegmentsResult(BaseModel):
    """What every analysis path ends with: its passages to embed, in batches."""

    batches: list[PassageBatchRef]
    passages: int


class KeyframeBatchRef(BaseModel):
    index: int
    uri: str = Field(description="JSON lines of keyframes (pipeline.video.KeyframeRecord) with their JPEG URIs")
    count: int


class AudioChunkRef(BaseModel):
    index: int
    uri: str
    start: float
    end: float


class FailureInfo(BaseModel):
    """What a Catch puts at ``$.error``. moto returns Cause as null, so workers also record reasons."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(default="States.TaskFailed", alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


# --- probe ------------------------------------------------------------------------------------------


class ProbeInput(StepInput):
    pass


class ReuseAnalysisInput(StepInput):
    pass


class ProbeResult(BaseModel):
    media_type: MediaType
    mime_type: str
    extension: str
    size: int
    details: dict[str, Any] = Field(default_factory=dict)


# --- documents and images ---------------------------------------------------------------------------


class ExtractDocumentInput(StepInput):
    probe: ProbeResult


class PageBatchRef(BaseModel):
    """Pages of the asset's PDF (1-based) to read with OCR: one item of the page-reading Map."""

    index: int
    pages: list[int] = Field(min_length=1)


class ExtractResult(SegmentsResult):
    """The text layer's passages, and the pages whose text has to be read from their picture."""

    pages: int | None = None
    characters: int
    ocr_pages: int = Field(default=0, description="How many pages need OCR (the state machine's choice)")
    page_batches: list[PageBatchRef] = Field(default_factory=list)


class RecognizePagesInput(StepInput):
    batch: PageBatchRef


class RecognizePagesResult(BaseModel):
    index: int
    uri: str = Field(description="JSON lines of media.documents.pages.PageText, one per page")
    count: int
    model: str


class BuildPageTextInput(StepInput):
    extract: ExtractResult
    pages: list[RecognizePagesResult]


class AnalyzeImageInput(StepInput):
    pass


# --- video: shots, OCR of keyframes, on-screen text -----------------------------------------------------


class DetectShotsInput(StepInput):
    pass


class ShotsResult(BaseModel):
    shots: int
    keyframes: int
    candidates: int
    skipped_duplicates: int
    manifest_uri: str
    keyframe_batches: list[KeyframeBatchRef]


class RecognizeTextInput(StepInput):
    batch: KeyframeBatchRef


class RecognizeTextResult(BaseModel):
    index: int
    uri: str = Field(description="JSON lines of media.screen_text.FrameText, one per keyframe")
    count: int
    model: str


class BuildScreenTextInput(StepInput):
    ocr: list[RecognizeTextResult]


class LabelKeyframesInput(StepInput):
    batch: KeyframeBatchRef


class LabelKeyframesResult(BaseModel):
    index: int
    uri: str = Field(description="JSON lines of media.visual.FrameLabels, one per keyframe")
    count: int
    model: str
    image_model: str | None = Field(default=None, description="The image-text model that embedded the keyframes.")


class BuildShotLabelsInput(StepInput):
    labels: list[LabelKeyframesResult]
    manifest_uri: str = Field(description="The shots and keyframes (media.shots.VideoAnalysis) as JSON")
    passed_on: list[SegmentsResult] = Field(
        default_factory=list,
        description="Outputs of the branch's earlier steps (its screen text), answered with this step's own.",
    )


# --- speech ----------------------------------------------------------------------------------------------


class PrepareAudioInput(StepInput):
    pass


class AudioPlan(BaseModel):
    chunks: list[AudioChunkRef]
    duration_s: float
    speech_s: float
    plan_uri: str
    audio_uri: str | None = Field(default=None, description="The whole track, 16 kHz mono WAV.")


class IdentifyLanguageInput(StepInput):
    audio: AudioPlan


class LanguageWindow(BaseModel):
    """One stretch of speech the language was identified on."""

    start: float
    end: float
    language: str
    probability: float


class SpokenLanguage(BaseModel):
    """The language an asset's speech is transcribed in: the uploader's hint, what several windows
    of speech agree on, or undecided (each chunk then identifies its own: mixed languages). Speech
    in one chunk is identified as that chunk is transcribed (source "chunk"): a window of its own
    would read the same first 30 s twice."""

    language: str | None = Field(description="ISO 639-1; None: undecided, each chunk identifies its own.")
    probability: float = Field(description="Mean probability of ``language`` over the windows (1.0 for a hint).")
    source: Literal["hint", "detected", "undecided", "chunk", "no speech"]
    windows: list[LanguageWindow] = Field(default_factory=list)


class TranscribeChunkInput(StepInput):
    chunk: AudioChunkRef
    language: str | None = Field(default=None, description="The asset's spoken language; None: detect per chunk.")


class TranscribeResult(BaseModel):
    index: int
    uri: str = Field(description="the chunk's transcript (media.transcript.ChunkTranscript) as JSON")
    words: int
    language: str | None = None
    model: str


class ClassifySoundsInput(StepInput):
    audio: AudioPlan


class SoundsResult(BaseModel):
    """Speech, singing and music regions as moments, and the plan the speech-to-text follows:
    the chunks holding music and no voice are taken out of it."""

    audio: AudioPlan
    events: SegmentsResult
    music_only_chunks: int = Field(description="Chunks the voice-activity detector kept that hold only music.")
    model: str


class BuildSpeechInput(StepInput):
    audio: AudioPlan
    transcribed: list[TranscribeResult]
    passed_on: list[SegmentsResult] = Field(
        default_factory=list,
        description="Outputs of the branch's earlier steps (its sound events), answered with this step's own.",
    )


# --- narration (documents uploaded with it asked for) ------------------------------------------------------


class AnalysisOutputs(BaseModel):
    """``$.segments``: every output of the analysis path (each its passage batches)."""

    outputs: list[SegmentsResult]


class NarrateDocumentInput(StepInput):
    segments: AnalysisOutputs


class NarrateResult(AnalysisOutputs):
    """The same outputs, their passages now knowing where they are said in the narration."""

    narration: Narration


# --- embedding, indexing, the end ------------------------------------------------------------------------


class EmbedInput(StepInput):
    batch: PassageBatchRef
    media_type: MediaType


class EmbedResult(BaseModel):
    uri: str
    count: int
    model: str


class IndexInput(StepInput):
    embedded: list[list[EmbedResult]] = Field(description="Per analysis output (a branch), its embedded batches.")


class ReuseResult(BaseModel):
    """The content's hash and analysis key; when an asset already analysed under that key was
    found, its moments copied for this asset (the shape IndexMoments reads) and who it was."""

    content_sha256: str
    analysis_key: str
    reused: bool = False
    reused_from: str | None = None
    embedded: list[list[EmbedResult]] = Field(default_factory=list)


class IndexResult(BaseModel):
    indexed: int
    removed_stale: int = 0


class FinalizeInput(StepInput):
    indexed: IndexResult


class MarkFailedInput(StepInput):
    error: FailureInfo = Field(default_factory=FailureInfo)


class TerminalResult(BaseModel):
    status: str
    reason: str | None = None
