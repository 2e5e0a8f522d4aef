"""Sound classes (heavy): speech, singing and music regions of the 16 kHz track; music and singing
become moments, and the speech chunks that hold only music leave the speech-to-text plan."""

from __future__ import annotations

from medialens.domain.assets import AuditEvent
from medialens.domain.steps import AssetRef, ClassifySoundsInput, SegmentsResult, SoundsResult, StepName
from medialens.errors import StepInputError
from medialens.media.audio.events import SoundEvents, event_passages, is_music_only
from medialens.pipeline.artifacts import artifact_uri, write_passage_batches
from medialens.pipeline.quality import record_label_quality
from medialens.services import Services

SOUNDS_OFF = "off"  # the model recorded when settings turn sound classes off


def classify_sounds(services: Services, asset: AssetRef, request: ClassifySoundsInput) -> SoundsResult:
    settings = services.settings
    plan = request.audio
    if not settings.sound_event_model:
        nothing = SegmentsResult(batches=[], passages=0)
        return SoundsResult(audio=plan, events=nothing, music_only_chunks=0, model=SOUNDS_OFF)
    # The detector's native library loads here, not with the catalogue: see pipeline/catalog.py.
    from medialens.ml.sound_events import get_sound_event_detector

    detector = get_sound_event_detector(settings)
    stored = services.registry.get(asset.asset_id)
    audio_uri = plan.audio_uri or (stored.artifacts.get("audio") if stored is not None else None)
    if not audio_uri:
        raise StepInputError(f"internal error in step {StepName.CLASSIFY_SOUNDS}: the prepared audio track is missing")
    with services.blobs.local_file(audio_uri) as wav:
        events = detector.detect_file(wav)
    skipped = [
        chunk.index
        for chunk in plan.chunks
        if is_music_only(
            events,
            chunk.start,
            chunk.end,
            max_voice_seconds=settings.sound_music_only_max_voice_seconds,
            min_confidence=settings.sound_event_min_confidence,
        )
    ]
    passages = [
        p.model_copy(update={"model_versions": {"sound_events": detector.version}})
        for p in event_passages(
            events, min_seconds=settings.sound_event_min_seconds, min_confidence=settings.sound_event_min_confidence
        )
    ]
    step, version = StepName.CLASSIFY_SOUNDS, detector.version
    uri = artifact_uri(services, asset.asset_id, step, version, "sounds.json")
    record = SoundEvents(
        model=version, duration_s=plan.duration_s, events=events, passages=passages, music_only_chunks=skipped
    )
    services.blobs.put_text(uri, record.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"sounds": uri})
    record_label_quality(services, asset.asset_id, step, version, (event.confidence for event in events))
    if skipped:
        detail = f"{len(skipped)} of {len(plan.chunks)} speech chunks hold only music: not transcribed"
        services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="sounds", detail=detail))
    kept = [chunk for chunk in plan.chunks if chunk.index not in skipped]
    batches = write_passage_batches(services, asset.asset_id, step, version, passages)
    return SoundsResult(
        audio=plan.model_copy(update={"chunks": kept}),
        events=SegmentsResult(batches=batches, passages=len(passages)),
        music_only_chunks=len(skipped),
        model=version,
    )
