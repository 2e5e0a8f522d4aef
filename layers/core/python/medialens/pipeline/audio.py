"""Speech: one decoding pass (16 kHz mono, VAD, chunk plan; light), the spoken language from
several windows of speech (heavy), a Map of chunk transcriptions in it (heavy), and the stitch
into a transcript, subtitles and speech moments (light)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from medialens.domain.assets import Asset, AuditEvent
from medialens.domain.moments import Passage
from medialens.domain.steps import (
    AssetRef,
    AudioChunkRef,
    AudioPlan,
    BuildSpeechInput,
    IdentifyLanguageInput,
    LanguageWindow,
    PrepareAudioInput,
    SegmentsResult,
    SpokenLanguage,
    StepName,
    TranscribeChunkInput,
    TranscribeResult,
)
from medialens.media.audio.chunking import ChunkingParams
from medialens.media.audio.prepare import PreparedAudio, prepare_speech_audio
from medialens.media.audio.wav import read_wav
from medialens.media.transcript import (
    ChunkTranscript,
    models_between,
    speech_passages,
    stitch,
    to_srt,
    to_webvtt,
)
from medialens.ml.asr import cascade_configured, chunk_recognizer, get_speech_recognizer, most_likely
from medialens.pipeline.artifacts import artifact_uri, with_passed_on, write_passage_batches
from medialens.pipeline.quality import record_transcript_quality
from medialens.services import Services


def prepare_audio(services: Services, asset: AssetRef, _: PrepareAudioInput) -> AudioPlan:
    """Decodes the first audio stream once while finding speech; uploads the 16 kHz track and the
    chunks that hold speech (silent chunks are not transcribed at all)."""
    settings = services.settings
    chunking = ChunkingParams(target_s=settings.speech_chunk_seconds, overlap_s=settings.speech_chunk_overlap_seconds)
    step, version = StepName.PREPARE_AUDIO, asset.pipeline_version
    with services.blobs.local_file(asset.source.uri) as source, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepared = prepare_speech_audio(source, work, chunking=chunking)
        audio_uri = artifact_uri(services, asset.asset_id, step, version, prepared.audio_file)
        services.blobs.put_file(audio_uri, work / prepared.audio_file, "audio/wav")
        chunks = []
        for chunk in prepared.chunks:
            if not chunk.has_speech or chunk.file is None:
                continue
            uri = artifact_uri(services, asset.asset_id, step, version, chunk.file)
            services.blobs.put_file(uri, work / chunk.file, "audio/wav")
            chunks.append(AudioChunkRef(index=chunk.index, uri=uri, start=chunk.start, end=chunk.end))
    plan_uri = artifact_uri(services, asset.asset_id, step, version, "plan.json")
    services.blobs.put_text(plan_uri, prepared.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"audio": audio_uri})
    return AudioPlan(
        chunks=chunks,
        duration_s=prepared.info.duration_s,
        speech_s=round(prepared.speech_s, 3),
        plan_uri=plan_uri,
        audio_uri=audio_uri,
    )


def language_windows(chunks: list[AudioChunkRef], count: int) -> list[AudioChunkRef]:
    """Up to ``count`` chunks spread evenly over the recording, first and last included."""
    if len(chunks) <= count:
        return list(chunks)
    if count == 1:
        return [chunks[len(chunks) // 2]]
    step = (len(chunks) - 1) / (count - 1)
    return [chunks[round(i * step)] for i in range(count)]


def decide_language(
    windows: list[LanguageWindow], probabilities: list[dict[str, float]], minimum: float
) -> SpokenLanguage:
    """The language whose probability, averaged over the windows, is highest; undecided (None)
    when that mean stays under ``minimum``: the windows disagree (two languages) or none is sure."""
    if not probabilities:
        return SpokenLanguage(language=None, probability=0.0, source="no speech")
    mean: dict[str, float] = {}
    for distribution in probabilities:
        for language, probability in distribution.items():
            mean[language] = mean.get(language, 0.0) + probability / len(probabilities)
    best, probability = most_likely(mean)
    decided = probability >= minimum
    return SpokenLanguage(
        language=best if decided else None,
        probability=round(probability, 4),
        source="detected" if decided else "undecided",
        windows=windows,
    )


def identify_language(services: Services, asset: AssetRef, request: IdentifyLanguageInput) -> SpokenLanguage:
    """The asset's spoken language, once, before its chunks are transcribed: the uploader's hint,
    or what several windows of speech spread over the recording say (the first 30 s of a
    recording often are music, a jingle or another speaker); speech that fits in one chunk is
    left to that chunk."""
    settings = services.settings
    hint = asset.source.options.language or settings.speech_language
    if hint:
        spoken = SpokenLanguage(language=hint, probability=1.0, source="hint")
    elif len(request.audio.chunks) == 1 and not cascade_configured(settings):
        # Its chunk detects the language from the same first 30 s of speech a window would read
        # (one encoder pass instead of two); BuildSpeechSegments records what it found. With a
        # cascade the decision must come first: it picks the chunk's model.
        spoken = SpokenLanguage(language=None, probability=0.0, source="chunk")
    else:
        recognizer = get_speech_recognizer(settings)
        windows: list[LanguageWindow] = []
        probabilities: list[dict[str, float]] = []
        for chunk in language_windows(request.audio.chunks, settings.language_windows):
            with services.blobs.local_file(chunk.uri) as wav:
                audio = read_wav(wav, 0.0, settings.language_window_seconds)
            distribution = recognizer.language_probabilities(audio)
            language, probability = most_likely(distribution)
            end = min(chunk.end, chunk.start + settings.language_window_seconds)
            windows.append(LanguageWindow(start=chunk.start, end=end, language=language, probability=probability))
            probabilities.append(distribution)
        spoken = decide_language(windows, probabilities, settings.language_min_probability)

    def record(stored: Asset) -> None:
        stored.metadata["spoken_language"] = spoken.model_dump(mode="json")

    services.registry.mutate(asset.asset_id, record)
    if spoken.source != "chunk":  # that one is told once the chunk has said it
        _tell_language(services, asset.asset_id, spoken)
    return spoken


def _tell_language(services: Services, asset_id: str, spoken: SpokenLanguage) -> None:
    detail = (
        f"{spoken.language or 'undecided'} ({spoken.source}, p={spoken.probability:.2f}, {len(spoken.windows)} windows)"
    )
    services.registry.add_event(AuditEvent(asset_id=asset_id, kind="language", detail=detail))


def _record_chunk_language(services: Services, asset_id: str, transcripts: list[ChunkTranscript]) -> None:
    """Where the one chunk identified the asset's language (source "chunk"), what it found; once
    (a retried step finds it recorded)."""
    stored = services.registry.get(asset_id)
    earlier = (stored.metadata.get("spoken_language") or {}) if stored else {}
    heard = next((chunk for chunk in transcripts if chunk.language), None)
    if earlier.get("source") != "chunk" or earlier.get("windows") or heard is None or heard.language is None:
        return
    probability = round(heard.language_probability or 0.0, 4)
    window = LanguageWindow(
        start=heard.offset_s,
        end=heard.offset_s + min(heard.duration_s, services.settings.language_window_seconds),
        language=heard.language,
        probability=probability,
    )
    spoken = SpokenLanguage(language=heard.language, probability=probability, source="chunk", windows=[window])

    def record(asset: Asset) -> None:
        asset.metadata["spoken_language"] = spoken.model_dump(mode="json")

    services.registry.mutate(asset_id, record)
    _tell_language(services, asset_id, spoken)


def chunk_seconds(request: TranscribeChunkInput) -> float:
    """A transcription's work, for ordering the chunks a worker runs side by side."""
    return request.chunk.end - request.chunk.start


def transcribe_chunk(services: Services, asset: AssetRef, request: TranscribeChunkInput) -> TranscribeResult:
    """One chunk in the asset's language: English through the cascade when one is configured (the
    fast model, and the full model over what it was unsure of), any other language and an
    undecided chunk (which identifies its own) by the full model."""
    chunk = request.chunk
    language = request.language or services.settings.speech_language
    recognizer = chunk_recognizer(services.settings, language)
    with services.blobs.local_file(chunk.uri) as wav:
        transcript = recognizer.transcribe_wav(wav, offset_s=chunk.start, language=language)
    name = f"chunk-{chunk.index:04d}.json"
    uri = artifact_uri(services, asset.asset_id, StepName.TRANSCRIBE_CHUNK, recognizer.version, name)
    services.blobs.put_text(uri, transcript.model_dump_json())
    return TranscribeResult(
        index=chunk.index,
        uri=uri,
        words=len(transcript.words),
        language=transcript.language,
        model=recognizer.version,
    )


def _language_at(transcripts: list[ChunkTranscript], passage: Passage) -> str | None:
    """The language of the chunk that holds the middle of ``passage``: when the asset's language
    was undecided each chunk identified its own, and a passage is said in its chunk's."""
    if passage.start is None or passage.end is None:
        return None
    middle = (passage.start + passage.end) / 2
    for chunk in transcripts:
        if chunk.language and chunk.offset_s <= middle <= chunk.offset_s + chunk.duration_s:
            return chunk.language
    return None


def build_speech_segments(services: Services, asset: AssetRef, request: BuildSpeechInput) -> SegmentsResult:
    """Stitches the chunks (no word lost or doubled at a cut) into transcript.json, .vtt and .srt,
    and cuts the transcript into 5-20 s sentence windows: the speech moments."""
    prepared = PreparedAudio.model_validate_json(services.blobs.get_text(request.audio.plan_uri))
    by_index = {
        result.index: ChunkTranscript.model_validate_json(services.blobs.get_text(result.uri))
        for result in request.transcribed
    }
    # With no speech nothing was transcribed: the (empty) outputs are keyed by pipeline version.
    model = request.transcribed[0].model if request.transcribed else ""
    silent = {
        c.index: ChunkTranscript(offset_s=c.start, duration_s=c.duration, model_version=model) for c in prepared.chunks
    }
    transcripts = [by_index.get(chunk.index) or silent[chunk.index] for chunk in prepared.chunks]
    transcript = stitch(transcripts, prepared.chunks)
    _record_chunk_language(services, asset.asset_id, transcripts)
    step = StepName.BUILD_SPEECH_SEGMENTS
    artifacts = {}
    for name, body, kind in (
        ("transcript.json", transcript.model_dump_json(), "application/json"),
        ("transcript.vtt", to_webvtt(transcript), "text/vtt"),
        ("transcript.srt", to_srt(transcript), "application/x-subrip"),
    ):
        uri = artifact_uri(services, asset.asset_id, step, model or asset.pipeline_version, name)
        services.blobs.put_text(uri, body, kind)
        artifacts[name.replace(".", "_")] = uri
    services.registry.add_artifacts(asset.asset_id, artifacts)
    record_transcript_quality(services, asset.asset_id, transcript)
    settings = services.settings
    # Each moment names the recognizers that made its words: with a cascade, the fast model, the
    # full model where it re-ran an unsure stretch, or both.
    passages = [
        passage.model_copy(
            update={
                "model_versions": {
                    "speech": models_between(transcript, passage.start or 0.0, passage.end or 0.0),
                    "vad": prepared.vad_model,
                },
                "language": _language_at(transcripts, passage) or transcript.language,
            }
        )
        for passage in speech_passages(
            transcript, min_s=settings.speech_passage_min_seconds, max_s=settings.speech_passage_max_seconds
        )
    ]
    batches = write_passage_batches(services, asset.asset_id, step, model or asset.pipeline_version, passages)
    return with_passed_on(request.passed_on, batches, len(passages))
