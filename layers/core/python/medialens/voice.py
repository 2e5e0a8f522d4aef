"""Voice services for the API and the CLI: speak a text (sentence by sentence, so the first audio
is ready after the first sentence) and hear a spoken question (then search with what was heard).

Both run the models of the heavy worker (the Piper voice, Whisper) in the process that answers:
``medialens serve`` locally, the voice function on AWS (docs/deploy.md).
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from medialens.errors import InvalidMediaError
from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio
from medialens.media.speech_marks import SENTENCE_GAP_S, faded, speakable, split_sentences
from medialens.settings import Settings

# What a spoken question may be: the formats browsers record and people send.
VOICE_CONTENT_TYPES = frozenset(
    {
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/mpeg",
        "audio/mp3",
        "audio/webm",
        "audio/ogg",
        "audio/mp4",
        "audio/x-m4a",
        "audio/flac",
        "application/octet-stream",
    }
)


VOICE_SERVICE = "medialens-voice"  # the voice function's POWERTOOLS_SERVICE_NAME (infra)
SPEECH_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}
# The longest text spoken in one request (~3 minutes of speech); narration has no such limit.
MAX_SPEECH_CHARACTERS = 3000


class AudioTooLargeError(InvalidMediaError):
    """A spoken question over the size limit."""


class HeardQuestion(BaseModel):
    """What the speech-to-text model heard in a spoken question."""

    text: str
    language: str | None = None
    language_probability: float | None = None
    duration_s: float
    model: str
    took_ms: float = Field(description="Decoding and transcription time.")


def speak(settings: Settings, text: str, language: str | None = None, audio_format: str = "mp3") -> Iterator[bytes]:
    """``text`` as audio, yielded as it is made: the container's header and the first sentence
    first, then a block per sentence. MP3 frames stand alone; WAV is written with an open length
    (as streaming WAV writers do), which players read to the end of the stream."""
    from medialens.media.audio.encode import AudioEncoder, pcm16
    from medialens.ml.speech_synthesis import get_speech_synthesizer

    text = text.strip()
    if not text:
        raise InvalidMediaError("there is no text to speak")
    if len(text) > MAX_SPEECH_CHARACTERS:
        raise InvalidMediaError(f"the text has {len(text):,} characters; the limit is {MAX_SPEECH_CHARACTERS:,}")
    if audio_format not in ("mp3", "wav"):
        raise InvalidMediaError(f"unknown audio format {audio_format!r}: mp3 or wav")
    synthesizer = get_speech_synthesizer(settings, language)
    rate = synthesizer.sample_rate
    if audio_format == "wav":
        yield _open_wav_header(rate)
    sink = io.BytesIO()
    encoder = AudioEncoder(sink, rate, "mp3", settings.narration_bitrate_kbps) if audio_format == "mp3" else None
    for number, sentence in enumerate(split_sentences(text)):
        samples = synthesizer.synthesize([speakable(sentence.text)])[0]
        if not len(samples):
            continue
        samples = faded(samples, rate)
        if number:
            samples = _with_leading_silence(samples, rate, SENTENCE_GAP_S)
        if encoder is None:
            yield pcm16(samples).astype("<i2").tobytes()
            continue
        encoder.write(samples)
        yield _drain(sink)
    if encoder is not None:
        encoder.close()
        yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _with_leading_silence(samples: FloatAudio, rate: int, seconds: float) -> FloatAudio:
    return np.concatenate([np.zeros(round(seconds * rate), dtype=np.float32), samples])


def _open_wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "until the end" (0xFFFFFFFF)."""
    unknown = (0xFFFFFFFF).to_bytes(4, "little")
    return (
        b"RIFF"
        + unknown
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + sample_rate.to_bytes(4, "little")
        + (sample_rate * 2).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + unknown
    )


def preload(settings: Settings) -> None:
    """Loads the voice and the speech-to-text model (a voice function's init phase), so the first
    request does not pay for them."""
    from medialens.ml.asr import get_speech_recognizer
    from medialens.ml.speech_synthesis import get_speech_synthesizer

    get_speech_synthesizer(settings).load()
    get_speech_recognizer(settings).load()


def finished_wav(data: bytes) -> bytes:
    """A whole streamed WAV (``speak``'s open-ended sizes) with its real sizes, as a file has them."""
    riff = (len(data) - 8).to_bytes(4, "little")
    samples = (len(data) - 44).to_bytes(4, "little")
    return data[:4] + riff + data[8:40] + samples + data[44:]


def hear(settings: Settings, data: bytes, suffix: str = ".bin", language: str | None = None) -> HeardQuestion:
    """Transcribes a spoken question (any format FFmpeg decodes: WAV, MP3, WebM/Opus, ...)."""
    from medialens.media.audio.decode import load_audio
    from medialens.ml.asr import get_speech_recognizer

    if not data:
        raise InvalidMediaError("the request has no audio")
    if len(data) > settings.voice_query_max_bytes:
        raise AudioTooLargeError(
            f"the audio is {len(data) / 2**20:.1f} MiB; the limit is {settings.voice_query_max_bytes / 2**20:.0f} MiB"
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medialens-voice-") as folder:
        path = Path(folder) / f"question{suffix}"
        path.write_bytes(data)
        try:
            audio = load_audio(path, max_duration_s=settings.voice_query_max_seconds)
        except ValueError as error:
            raise InvalidMediaError(
                f"the question is longer than {settings.voice_query_max_seconds:.0f} s: ask something shorter"
            ) from error
    recognizer = get_speech_recognizer(settings)
    transcript = recognizer.transcribe(audio, language=language, quick=True)
    text = " ".join(segment.text.strip() for segment in transcript.segments).strip()
    return HeardQuestion(
        text=text,
        language=transcript.language,
        language_probability=transcript.language_probability,
        duration_s=round(len(audio) / SAMPLE_RATE, 3),
        model=recognizer.version,
        took_ms=round((time.perf_counter() - started) * 1000, 1),
    )
