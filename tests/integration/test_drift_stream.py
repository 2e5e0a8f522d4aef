"""Drift on a real model's confidence: Whisper transcribes clean espeak-ng speech as the reference
window; then either more clean speech (no alarm) or the same speech under heavy noise (an alarm on
ASR confidence). The quality goes through the step's own recorder into a real registry, and the
report reads it back."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from medialens.domain.assets import Asset, AssetStatus, MediaType, SourceObject, utcnow
from medialens.insight.report import build_report
from medialens.media.audio.decode import load_audio
from medialens.media.transcript import Transcript
from medialens.ml.asr import FasterWhisperRecognizer
from medialens.ml.store.store import ModelStore
from medialens.pipeline.quality import record_transcript_quality
from medialens.services import Services
from medialens.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENTENCES = [
    "The quarterly review moves to Thursday afternoon.",
    "Please send the budget numbers to finance by Friday.",
    "The warehouse robot carries two hundred kilograms.",
    "Our pilot customers in Gothenburg receive it first.",
    "Remember to book the meeting room for the launch.",
    "The support team answers every ticket within a day.",
    "New employees receive a laptop on their first morning.",
    "The parking garage closes at ten in the evening.",
    "Safety glasses are required in the assembly hall.",
    "The next release adds search in seven languages.",
    "Travel must be booked through the company portal.",
    "The cafeteria serves lunch from eleven until two.",
]
VOICES = ["en-us", "en-gb", "en-us+m3"]  # both windows hear the same speakers


@pytest.fixture(scope="module")
def recognizer(model_store: ModelStore) -> FasterWhisperRecognizer:
    return FasterWhisperRecognizer(model_store, "whisper-tiny-en", device="cpu", cpu_threads=2, batch_size=0)


def speech(folder: Path, voice: str, order: int) -> np.ndarray:
    wav = folder / f"{voice.replace('+', '-')}-{order}.wav"
    sentences = SENTENCES[order:] + SENTENCES[:order]  # the same sentences, in another order
    # A pause after each sentence, so the recogniser gives each its own segment: 24 per clip.
    text = "<speak>" + ' <break time="1500ms"/> '.join(sentences + sentences[::-1]) + "</speak>"
    subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", "155", "-w", str(wav), text], check=True)
    return load_audio(wav)


def with_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    power = float(np.mean(audio**2))
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), audio.shape)
    return (audio + noise).astype(np.float32)


def transcribe(recognizer: FasterWhisperRecognizer, audio: np.ndarray) -> Transcript:
    chunk = recognizer.transcribe(audio, language="en")
    return Transcript(
        language=chunk.language,
        language_probability=chunk.language_probability,
        duration_s=chunk.duration_s,
        model_version=chunk.model_version,
        segments=chunk.segments,
    )


@pytest.fixture(scope="module")
def clean_clips(
    recognizer: FasterWhisperRecognizer, tmp_path_factory: pytest.TempPathFactory
) -> list[tuple[np.ndarray, Transcript]]:
    """Six clean clips and their transcripts, made once: both cases start from the same reference
    (the first three) and the clean case goes on with the other three."""
    folder = tmp_path_factory.mktemp("drift-speech")
    clips = [speech(folder, voice, 0) for voice in VOICES] + [speech(folder, voice, 5) for voice in VOICES]
    return [(audio, transcribe(recognizer, audio)) for audio in clips]


def analyse(services: Services, transcript: Transcript, size: int, n: int) -> None:
    """An asset as the audio branch leaves it: its transcript's quality recorded by the step's recorder."""
    asset = Asset(
        asset_id=f"a{n:023d}",
        source=SourceObject(bucket="drop", key=f"incoming/clip-{n}.wav", etag=f"e{n}", size=size),
        pipeline_version="1",
        media_type=MediaType.AUDIO,
        status=AssetStatus.SUCCEEDED,
        created_at=utcnow() - timedelta(minutes=30 - n),
    )
    services.registry.create_if_absent(asset)
    record_transcript_quality(services, asset.asset_id, transcript)


@pytest.mark.parametrize("noisy", [False, True], ids=["clean-after-clean", "noisy-after-clean"])
def test_asr_confidence_drift_raises_an_alarm_only_when_the_audio_degrades(
    recognizer: FasterWhisperRecognizer,
    clean_clips: list[tuple[np.ndarray, Transcript]],
    tmp_path: Path,
    noisy: bool,
) -> None:
    services = Services(Settings(home=tmp_path))
    for n, (audio, transcript) in enumerate(clean_clips[:3]):  # the reference: the first assets the model saw
        analyse(services, transcript, len(audio) * 2, n)
    for n, (audio, transcript) in enumerate(clean_clips[3:], start=3):
        heard = transcribe(recognizer, with_noise(audio, -6.0, n)) if noisy else transcript
        analyse(services, heard, len(audio) * 2, n)

    report = build_report(services.registry.iter_all(), utcnow() - timedelta(hours=1), reference_assets=3)
    for d in report.drift:
        print(f"{'noisy' if noisy else 'clean'} after clean: {d.signal} PSI {d.score} > {d.threshold}? n={d.recent_n}")
    (asr,) = [d for d in report.drift if d.signal == "asr_word_probability"]
    assert asr.reference_n >= 300 and asr.recent_n >= 300
    assert asr.drifted is noisy
    drifted = {d.signal for d in report.alarms}
    assert drifted == ({"asr_word_probability"} if noisy else set())
    if noisy:  # the per-segment signals moved too (scored and charted; they raise no alarm)
        segment_scores = [d for d in report.drift if d.signal in ("asr_confidence", "no_speech_probability")]
        assert len(segment_scores) == 2 and all(d.drifted and not d.alarm for d in segment_scores)
    views = {(q.signal, q.language) for q in report.quality}
    assert ("asr_confidence", "en") in views and ("no_speech_probability", "en") in views
