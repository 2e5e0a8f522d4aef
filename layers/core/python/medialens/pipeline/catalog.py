"""The step catalogue: one row per step of the workflow, and the only place a step is wired.

A row names the step (``StepName``, as the state machine's messages do), the function that runs
it, its input and output models, the worker class whose queue the state machine sends it to, and
its batching policy. The task runner, the SageMaker ``/invocations`` entry and the ASL
consistency test all read this table: the runner validates a message's input into the step's
model and hands the function a typed object.

Adding a step: write its function in a module of this package (input and output models in
``medialens.domain.steps``), add its row here and its Task state in
``statemachines/analyze_asset.asl.json`` (``docs/architecture.md`` shows one).

Every step module imports without the ``media`` extra (PyAV, OpenCV, Pillow): the media modules
import those where they decode, so the light Lambda, whose layer lacks them, loads this whole
table and pays for a decoder only in a step that uses one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from medialens.domain.steps import (
    AnalyzeImageInput,
    AssetRef,
    AudioPlan,
    BuildPageTextInput,
    BuildScreenTextInput,
    BuildShotLabelsInput,
    BuildSpeechInput,
    ClassifySoundsInput,
    DetectShotsInput,
    EmbedInput,
    EmbedResult,
    ExtractDocumentInput,
    ExtractResult,
    FinalizeInput,
    IdentifyLanguageInput,
    IndexInput,
    IndexResult,
    LabelKeyframesInput,
    LabelKeyframesResult,
    MarkFailedInput,
    NarrateDocumentInput,
    NarrateResult,
    PrepareAudioInput,
    ProbeInput,
    ProbeResult,
    RecognizePagesInput,
    RecognizePagesResult,
    RecognizeTextInput,
    RecognizeTextResult,
    ReuseAnalysisInput,
    ReuseResult,
    SegmentsResult,
    ShotsResult,
    SoundsResult,
    SpokenLanguage,
    StepCall,
    StepInput,
    StepName,
    TerminalResult,
    TranscribeChunkInput,
    TranscribeResult,
)
from medialens.errors import StepInputError
from medialens.ml.asr import speech_workers
from medialens.pipeline import (
    audio,
    documents,
    embed,
    finalize,
    images,
    index,
    narration,
    probe,
    reuse,
    sounds,
    video,
    visual,
)
from medialens.services import Services
from medialens.settings import Settings

Input = TypeVar("Input", bound=StepInput)
Output = TypeVar("Output", bound=BaseModel)


class WorkerClass(StrEnum):
    """Whose queue the state machine sends the step to."""

    LIGHT = "light"  # Lambda behind the light queue, one message per invocation
    HEAVY = "heavy"  # the inference worker: collects messages across executions and assets


class Batching(StrEnum):
    PER_MESSAGE = "per_message"  # each message runs, is timed and is answered on its own
    ACROSS_MESSAGES = "across_messages"  # one call serves every message of the step a worker collected


StepFunction = Callable[[Services, AssetRef, Input], Output]
BatchFunction = Callable[[Services, Sequence[StepCall[Input]]], Sequence[Output | Exception]]
Outcome = BaseModel | Exception


@dataclass(frozen=True)
class StepSpec(Generic[Input, Output]):
    """One row of the catalogue. A step has either ``run`` (one message at a time) or
    ``run_batch`` (every collected message in one call; heavy steps only)."""

    name: StepName
    input: type[Input]
    output: type[Output]
    worker: WorkerClass
    run: StepFunction[Input, Output] | None = None
    run_batch: BatchFunction[Input, Output] | None = None
    # A bookkeeping step (mark_failed) is not a stage: it gets no timing and records no error of
    # its own, so the stage and the reason an asset failed with stay the ones shown.
    bookkeeping: bool = False
    # A per-message heavy step whose model serves several calls at once: the worker runs up to
    # this many of the messages it collected side by side (None: one after another).
    concurrency: Callable[[Settings], int] | None = None
    # Such a step's estimate of one call's work (seconds of audio, say): the largest start first,
    # so a group does not end on one long call with the other cores idle (longest first).
    work: Callable[[Input], float] | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.run_batch is None):
            raise ValueError(f"step {self.name} needs exactly one of run and run_batch")
        if self.run_batch is not None and self.worker is not WorkerClass.HEAVY:
            raise ValueError(f"step {self.name}: only heavy workers collect messages to batch")
        if self.concurrency is not None and (self.run is None or self.worker is not WorkerClass.HEAVY):
            raise ValueError(f"step {self.name}: only per-message heavy steps run messages side by side")
        if self.work is not None and self.concurrency is None:
            raise ValueError(f"step {self.name}: only steps that run messages side by side order them by work")

    def side_by_side(self, settings: Settings) -> int:
        """How many of a collected group's messages the worker runs at once."""
        return max(1, self.concurrency(settings)) if self.concurrency is not None else 1

    @property
    def batching(self) -> Batching:
        return Batching.PER_MESSAGE if self.run is not None else Batching.ACROSS_MESSAGES

    def call(self, asset: AssetRef, raw_input: dict[str, Any]) -> StepCall[Input]:
        """The message's input validated into the step's model."""
        try:
            return StepCall(asset=asset, input=self.input.model_validate(raw_input))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'input'}: {e['msg']}" for e in error.errors()
            )
            raise StepInputError(
                f"internal error in step {self.name}: its input does not match {self.input.__name__} ({problems})"
            ) from error

    def execute(self, services: Services, calls: Sequence[StepCall[Input]]) -> list[Outcome]:
        """Runs the calls: one batch call, or one call each; a failure is the outcome of its call
        (of every call, when a batch call itself fails)."""
        if self.run_batch is not None:
            try:
                outcomes: list[Outcome] = list(self.run_batch(services, calls))
                if len(outcomes) != len(calls):
                    raise RuntimeError(f"step {self.name} answered {len(outcomes)} of {len(calls)} calls")
            except Exception as error:  # noqa: BLE001 - the batch failed for every message in it
                return [error] * len(calls)
            return outcomes
        assert self.run is not None
        results: list[Outcome] = []
        for call in calls:
            try:
                results.append(self.run(services, call.asset, call.input))
            except Exception as error:  # noqa: BLE001 - answered per message
                results.append(error)
        return results


LIGHT, HEAVY = WorkerClass.LIGHT, WorkerClass.HEAVY

CATALOG: dict[StepName, StepSpec[Any, Any]] = {
    spec.name: spec
    for spec in (
        StepSpec(StepName.PROBE, ProbeInput, ProbeResult, LIGHT, run=probe.probe),
        StepSpec(StepName.REUSE_ANALYSIS, ReuseAnalysisInput, ReuseResult, LIGHT, run=reuse.reuse_analysis),
        StepSpec(StepName.EXTRACT_DOCUMENT, ExtractDocumentInput, ExtractResult, LIGHT, run=documents.extract_document),
        StepSpec(StepName.EXTRACT_OFFICE, ExtractDocumentInput, ExtractResult, HEAVY, run=documents.extract_office),
        StepSpec(
            StepName.RECOGNIZE_PAGES,
            RecognizePagesInput,
            RecognizePagesResult,
            HEAVY,
            run_batch=documents.recognize_pages,
        ),
        StepSpec(StepName.BUILD_PAGE_TEXT, BuildPageTextInput, SegmentsResult, LIGHT, run=documents.build_page_text),
        StepSpec(StepName.ANALYZE_IMAGE, AnalyzeImageInput, SegmentsResult, HEAVY, run=images.analyze_image),
        StepSpec(StepName.DETECT_SHOTS, DetectShotsInput, ShotsResult, HEAVY, run=video.detect_shots),
        StepSpec(
            StepName.RECOGNIZE_TEXT, RecognizeTextInput, RecognizeTextResult, HEAVY, run_batch=video.recognize_text
        ),
        StepSpec(StepName.BUILD_SCREEN_TEXT, BuildScreenTextInput, SegmentsResult, LIGHT, run=video.build_screen_text),
        StepSpec(
            StepName.LABEL_KEYFRAMES,
            LabelKeyframesInput,
            LabelKeyframesResult,
            HEAVY,
            run_batch=visual.label_keyframes,
        ),
        StepSpec(StepName.BUILD_SHOT_LABELS, BuildShotLabelsInput, SegmentsResult, LIGHT, run=visual.build_shot_labels),
        StepSpec(StepName.PREPARE_AUDIO, PrepareAudioInput, AudioPlan, LIGHT, run=audio.prepare_audio),
        StepSpec(StepName.CLASSIFY_SOUNDS, ClassifySoundsInput, SoundsResult, HEAVY, run=sounds.classify_sounds),
        StepSpec(StepName.IDENTIFY_LANGUAGE, IdentifyLanguageInput, SpokenLanguage, HEAVY, run=audio.identify_language),
        StepSpec(
            StepName.TRANSCRIBE_CHUNK,
            TranscribeChunkInput,
            TranscribeResult,
            HEAVY,
            run=audio.transcribe_chunk,
            concurrency=speech_workers,
            work=audio.chunk_seconds,
        ),
        StepSpec(
            StepName.BUILD_SPEECH_SEGMENTS, BuildSpeechInput, SegmentsResult, LIGHT, run=audio.build_speech_segments
        ),
        StepSpec(StepName.NARRATE_DOCUMENT, NarrateDocumentInput, NarrateResult, HEAVY, run=narration.narrate_document),
        StepSpec(StepName.EMBED_TEXT, EmbedInput, EmbedResult, HEAVY, run_batch=embed.embed_text),
        StepSpec(StepName.INDEX_MOMENTS, IndexInput, IndexResult, LIGHT, run=index.index_moments),
        StepSpec(StepName.FINALIZE, FinalizeInput, TerminalResult, LIGHT, run=finalize.finalize),
        StepSpec(
            StepName.MARK_FAILED, MarkFailedInput, TerminalResult, LIGHT, run=finalize.mark_failed, bookkeeping=True
        ),
    )
}
