"""Video's visual branch: shots and keyframes (heavy), OCR of keyframe batches (heavy, batched
across messages and assets), and on-screen text spans (light)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel

from medialens.domain.steps import (
    AssetRef,
    BuildScreenTextInput,
    DetectShotsInput,
    KeyframeBatchRef,
    RecognizeTextInput,
    RecognizeTextResult,
    SegmentsResult,
    ShotsResult,
    StepCall,
    StepName,
)
from medialens.media.screen_text import FrameText, ScreenText, merge_screen_text
from medialens.pipeline.artifacts import artifact_uri, read_jsonl, write_jsonl, write_passage_batches
from medialens.pipeline.quality import record_ocr_quality
from medialens.services import Services

if TYPE_CHECKING:
    from medialens.media.ocr_lines import OcrLine

KEYFRAMES_PER_BATCH = 32  # a Map item: one heavy message's worth of OCR
MIN_SCREEN_TEXT_CHARS = 3


class KeyframeRecord(BaseModel):
    """A stored keyframe as OCR needs it: its timing and where its JPEG is."""

    index: int
    time: float
    start: float
    until: float
    shot_index: int
    jpeg_uri: str


def detect_shots(services: Services, asset: AssetRef, _: DetectShotsInput) -> ShotsResult:
    """Shots and deduplicated keyframes; keyframe JPEGs and the manifest become artifacts."""
    # The decoder (the media extra) loads here, not with the catalogue: see pipeline/catalog.py.
    from medialens.media.shots import VideoOptions, analyze_video

    with services.blobs.local_file(asset.source.uri) as path:
        analysis = analyze_video(path, VideoOptions.from_settings(services.settings))
    step, version = StepName.DETECT_SHOTS, asset.pipeline_version
    records = []
    for keyframe in analysis.keyframes:
        uri = artifact_uri(services, asset.asset_id, step, version, f"keyframes/{keyframe.file_name}")
        services.blobs.put_bytes(uri, keyframe.jpeg, "image/jpeg")
        records.append(KeyframeRecord(**keyframe.model_dump(include=set(KeyframeRecord.model_fields)), jpeg_uri=uri))
    manifest_uri = artifact_uri(services, asset.asset_id, step, version, "keyframes.json")
    services.blobs.put_text(manifest_uri, analysis.model_dump_json())
    batches = []
    for index, begin in enumerate(range(0, len(records), KEYFRAMES_PER_BATCH)):
        chunk = records[begin : begin + KEYFRAMES_PER_BATCH]
        uri = artifact_uri(services, asset.asset_id, step, version, f"keyframes-{index:04d}.jsonl")
        write_jsonl(services, uri, chunk)
        batches.append(KeyframeBatchRef(index=index, uri=uri, count=len(chunk)))
    services.registry.add_artifacts(asset.asset_id, {"keyframes": manifest_uri})
    return ShotsResult(
        shots=len(analysis.shots),
        keyframes=len(analysis.keyframes),
        candidates=analysis.candidates,
        skipped_duplicates=analysis.skipped_duplicates,
        manifest_uri=manifest_uri,
        keyframe_batches=batches,
    )


def load_keyframe_batches(
    services: Services, batches: Sequence[KeyframeBatchRef]
) -> list[list[KeyframeRecord] | Exception]:
    """Each batch's keyframe records, or the error that costs that message alone (the batch's
    file is gone: its asset was removed meanwhile)."""
    loaded: list[list[KeyframeRecord] | Exception] = []
    for batch in batches:
        try:
            loaded.append(read_jsonl(services, batch.uri, KeyframeRecord))
        except FileNotFoundError as error:
            loaded.append(error)
    return loaded


def recognize_text(
    services: Services, calls: Sequence[StepCall[RecognizeTextInput]]
) -> list[RecognizeTextResult | Exception]:
    """OCR of every call's keyframes through one recogniser, in shared chunks."""
    from medialens.ml.ocr import get_text_recognizer  # see detect_shots

    recognizer = get_text_recognizer(services.settings, keyframes=True)
    loaded = load_keyframe_batches(services, [call.input.batch for call in calls])
    pending = [record for records in loaded if not isinstance(records, Exception) for record in records]
    lines: list[list[OcrLine]] = []
    for begin in range(0, len(pending), KEYFRAMES_PER_BATCH):
        chunk = pending[begin : begin + KEYFRAMES_PER_BATCH]
        lines += recognizer.recognize([services.blobs.get_bytes(record.jpeg_uri) for record in chunk])
    read = iter(lines)
    results: list[RecognizeTextResult | Exception] = []
    for call, records in zip(calls, loaded, strict=True):
        if isinstance(records, Exception):
            results.append(records)
            continue
        frames = [FrameText(time=r.time, start=r.start, until=r.until, lines=next(read)) for r in records]
        batch = call.input.batch
        name = f"frames-{batch.index:04d}.jsonl"
        uri = artifact_uri(services, call.asset.asset_id, StepName.RECOGNIZE_TEXT, recognizer.version, name)
        write_jsonl(services, uri, frames)
        results.append(RecognizeTextResult(index=batch.index, uri=uri, count=len(frames), model=recognizer.version))
    return results


def build_screen_text(services: Services, asset: AssetRef, request: BuildScreenTextInput) -> SegmentsResult:
    """Per-keyframe OCR merged over time into SCREEN_TEXT passages (ocr.json keeps both)."""
    ocr = request.ocr
    frames = sorted(
        (frame for result in ocr for frame in read_jsonl(services, result.uri, FrameText)), key=lambda f: f.time
    )
    model = ocr[0].model if ocr else asset.pipeline_version  # no keyframes: nothing was read
    passages = [
        passage
        for passage in merge_screen_text(frames, min_confidence=services.settings.ocr_min_confidence)
        # Two-character readings ("13", a clock's digits) are noise as moments; ocr.json keeps them.
        if sum(ch.isalnum() for ch in passage.text) >= MIN_SCREEN_TEXT_CHARS
    ]
    passages = [p.model_copy(update={"model_versions": {"ocr": model}}) for p in passages]
    step = StepName.BUILD_SCREEN_TEXT
    uri = artifact_uri(services, asset.asset_id, step, model, "ocr.json")
    services.blobs.put_text(uri, ScreenText(ocr_model=model, frames=frames, passages=passages).model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"ocr": uri})
    record_ocr_quality(services, asset.asset_id, StepName.RECOGNIZE_TEXT, model, (f.lines for f in frames))
    batches = write_passage_batches(services, asset.asset_id, step, model, passages)
    return SegmentsResult(batches=batches, passages=len(passages))
