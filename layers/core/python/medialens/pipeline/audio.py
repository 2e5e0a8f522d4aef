"""Speech: one decoding pass (16 kHz mono, VAD, chunk plan; light), a Map of chunk
transcriptions (heavy), and the stitch into a transcript, subtitles and speech moments (light)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from medialens.domain.steps import (
    AssetRef,
    AudioChunkRef,
    AudioPlan,
    BuildSpeechInput,
    PrepareAudioInput,
    SegmentsResult,
    StepName,
    TranscribeChunkInput,
    TranscribeResult,
)
from medialens.media.audio.chunking import ChunkingParams
from medialens.media.audio.prepare import PreparedAudio, prepare_speech_audio
from medialens.media.transcript import ChunkTranscript, speech_passages, stitch, to_srt, to_webvtt
from medialens.ml.asr import get_speech_recognizer
from medialens.pipeline.artifacts import artifact_uri, write_passage_batches
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
        chunks=chunks, duration_s=prepared.info.duration_s, speech_s=round(prepared.speech_s, 3), plan_uri=plan_uri
    )


def transcribe_chunk(services: Services, asset: AssetRef, request: TranscribeChunkInput) -> TranscribeResult:
    chunk = request.chunk
    recognizer = get_speech_recognizer(services.settings)
    with services.blobs.local_file(chunk.uri) as wav:
        transcript = recognizer.transcribe_wav(wav, offset_s=chunk.start, language=services.settings.speech_language)
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
    versions = {"speech": transcript.model_version, "vad": prepared.vad_model}
    passages = [
        passage.model_copy(update={"model_versions": versions, "language": transcript.language})
        for passage in speech_passages(
            transcript, min_s=settings.speech_passage_min_seconds, max_s=settings.speech_passage_max_seconds
        )
    ]
    batches = write_passage_batches(services, asset.asset_id, step, model or asset.pipeline_version, passages)
    return SegmentsResult(batches=batches, passages=len(passages))
