"""The English cascade with real models, through the TranscribeChunk step: clean English speech
stays with whisper-tiny-en, speech under heavy noise is re-run by whisper-base where tiny.en was
unsure (and the transcript says which model made what), and other languages, undecided chunks, and
English without a fast model configured (the default) go to whisper-base directly.

Speech is espeak-ng's in a few voices; the noise is white, at an SNR over the whole clip."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medialens.domain.assets import SourceObject
from medialens.domain.steps import AssetRef, AudioChunkRef, TranscribeChunkInput, TranscribeResult
from medialens.media.audio.decode import load_audio
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.wav import write_wav
from medialens.media.transcript import ChunkTranscript
from medialens.ml.base import reset_models
from medialens.ml.store.store import ModelStore
from medialens.pipeline.audio import transcribe_chunk
from medialens.services import Services
from medialens.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY, BASE = "whisper-tiny-en@1+int8", "whisper-base@1+int8"

SENTENCES = (
    "The night shift loads the delivery vans before the sun comes up.",
    "Every parcel is weighed and scanned at the packing station.",
    "Drivers check the tyre pressure and the brakes before they leave.",
    "The warehouse manager reads the weather report every morning.",
    "Fragile boxes travel on the top shelf of the trailer.",
    "A second team unloads the returns in the afternoon.",
    "Our customers can follow their orders on the website.",
    "The office closes early on the last Friday of the month.",
    "New staff spend their first week with an experienced driver.",
    "The coffee machine in the kitchen was repaired yesterday.",
    "Please keep the fire doors closed at all times.",
    "The holiday schedule is posted next to the lifts.",
)
# Voices tiny.en hears clearly (its mean word probability 0.89-0.91 per segment at 140 words a
# minute; the British voices gave 0.84-0.87, at the threshold): the fast path is what is tested.
VOICES = ("en-us", "en-us+f2", "en-us+m3")


def _speak(folder: Path, name: str, voice: str, text: str, speed: int = 140) -> np.ndarray:
    wav = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    return load_audio(wav)


def _with_noise(audio: np.ndarray, snr_db: float, seed: int = 7) -> np.ndarray:
    power = float(np.mean(audio**2))
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), audio.shape)
    return (audio + noise).astype(np.float32)


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory, audio_samples: object) -> np.ndarray:
    """About 70 s: four sentences in each of three voices, with pauses between them."""
    folder = tmp_path_factory.mktemp("cascade-speech")
    parts = []
    for n, voice in enumerate(VOICES):
        text = "<speak>" + ' <break time="900ms"/> '.join(SENTENCES[4 * n : 4 * n + 4]) + "</speak>"
        parts += [_speak(folder, f"en-{n}", voice, text), np.zeros(SAMPLE_RATE, dtype=np.float32)]
    return np.concatenate([np.zeros(SAMPLE_RATE // 2, dtype=np.float32), *parts])


@pytest.fixture(scope="module")
def services(model_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The cascade turned on (it is off by default), at its default threshold."""
    home = tmp_path_factory.mktemp("cascade-home")
    settings = Settings(home=home, model_cache=model_store.cache_dir, speech_fast_model="whisper-tiny-en")
    assert settings.speech_model == "whisper-base" and settings.speech_fast_min_word_probability == 0.85
    reset_models()
    yield Services(settings)
    reset_models()


def _transcribe(
    services: Services, audio: np.ndarray, language: str | None, offset: float = 60.0
) -> tuple[TranscribeResult, ChunkTranscript]:
    """TranscribeChunk on ``audio`` as the chunk starting ``offset`` s into a recording."""
    wav = write_wav(services.settings.home / f"chunk-{language}-{len(audio)}.wav", audio)
    uri = services.artifact_uri("a" * 24, "prepare_audio", "1", wav.name)
    services.blobs.put_file(uri, wav, "audio/wav")
    asset = AssetRef(
        asset_id="a" * 24,
        source=SourceObject(bucket="drop", key="incoming/talk.wav", etag="e", size=1),
        pipeline_version="1",
    )
    chunk = AudioChunkRef(index=3, uri=uri, start=offset, end=offset + len(audio) / SAMPLE_RATE)
    result = transcribe_chunk(services, asset, TranscribeChunkInput(chunk=chunk, language=language))
    return result, ChunkTranscript.model_validate_json(services.blobs.get_text(result.uri))


def _tokens(transcript: ChunkTranscript) -> list[str]:
    return [t for t in (re.sub(r"[^\w']", "", w.text.casefold()) for w in transcript.words) if t]


def test_clean_english_speech_stays_with_the_fast_model(services: Services, english: np.ndarray) -> None:
    result, transcript = _transcribe(services, english, "en")
    assert result.model == f"{TINY},{BASE}"  # the cascade's chunk artifacts are keyed by both models
    assert f"/{TINY},{BASE}/" in result.uri
    fallback = transcript.fallback
    assert fallback is not None and (fallback.fast_model, fallback.full_model) == (TINY, BASE)
    print(f"clean: {fallback.model_dump(exclude={'spans'})}")
    # Fast: no segment of tiny.en's was unsure; at most speech it skipped (where one voice hands
    # over to the next, its batched window may end early) was heard again, under 30 % of the audio.
    assert fallback.segments >= 2 and fallback.rerun_segments == 0 and fallback.whole_chunks == 0
    assert fallback.rate <= 0.3 and fallback.rerun_seconds <= 0.3 * fallback.seconds
    made_by_tiny = [w for s in transcript.segments if s.model == TINY for w in s.words]
    assert len(made_by_tiny) >= 0.7 * len(transcript.words)
    tokens = _tokens(transcript)
    for spoken in ("delivery", "parcel", "brakes", "weather", "trailer", "afternoon", "website", "coffee", "schedule"):
        assert spoken in tokens, (spoken, tokens)
    # Absolute times: the chunk began 60 s into the recording.
    assert all(60.0 <= w.start <= w.end <= 60.0 + transcript.duration_s + 0.05 for w in transcript.words)
    assert transcript.language == "en"


def test_heavily_noisy_speech_falls_back_to_the_full_model(services: Services, english: np.ndarray) -> None:
    result, transcript = _transcribe(services, _with_noise(english, -6.0), "en")
    fallback = transcript.fallback
    assert fallback is not None
    print(f"-6 dB: {fallback.model_dump(exclude={'spans'})}")
    assert fallback.rerun_segments >= 1 and fallback.rerun_seconds > 0
    assert fallback.spans and all(
        60.0 <= start < end <= 60.0 + fallback.seconds + 1e-3 for start, end in fallback.spans
    )
    by_base = [s for s in transcript.segments if s.model == BASE]
    assert by_base, [(s.model, s.text) for s in transcript.segments]
    assert BASE in transcript.model_version.split(",") and result.model == f"{TINY},{BASE}"
    assert {s.model for s in transcript.segments} <= {TINY, BASE}
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts)
    # What base re-ran lies inside what it heard.
    for segment in by_base:
        assert any(start - 1e-3 <= segment.start and segment.end <= end + 0.5 for start, end in fallback.spans)


def test_other_languages_and_undecided_chunks_go_straight_to_the_full_model(
    services: Services, english: np.ndarray, tmp_path: Path
) -> None:
    german = _speak(
        tmp_path,
        "de",
        "de",
        "Guten Morgen, heute sprechen wir über die neuen Roboter im Lager und wie sie unsere Arbeit verändern.",
        speed=150,
    )
    result, transcript = _transcribe(services, german, "de")
    assert result.model == BASE and transcript.model_version == BASE and transcript.fallback is None
    assert transcript.language == "de" and {"morgen", "sprechen", "lager"} <= set(_tokens(transcript))
    assert all(s.model is None for s in transcript.segments)
    # Undecided: the chunk identifies its own language, which only the full model can.
    result, transcript = _transcribe(services, english, None)
    assert result.model == BASE and transcript.fallback is None and transcript.language == "en"
    assert {"parcel", "trailer", "coffee"} <= set(_tokens(transcript))


def test_without_a_fast_model_english_goes_to_the_full_model(services: Services, english: np.ndarray) -> None:
    assert Settings().speech_fast_model is None  # the default: no cascade
    plain = Services(services.settings.model_copy(update={"speech_fast_model": None}))
    result, transcript = _transcribe(plain, english[: 20 * SAMPLE_RATE], "en")
    assert result.model == BASE and transcript.fallback is None and transcript.model_version == BASE
