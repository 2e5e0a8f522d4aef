"""Writing synthesised speech: MP3 (the narration artifact, what every player plays) or WAV,
block by block, so a long narration never sits in memory whole. PyAV's bundled FFmpeg encodes;
no system ffmpeg is needed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from medialens.media.audio.samples import FloatAudio

AudioFormat = Literal["mp3", "wav"]
CONTENT_TYPES: dict[AudioFormat, str] = {"mp3": "audio/mpeg", "wav": "audio/wav"}


def pcm16(samples: FloatAudio) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Float samples in [-1, 1] as 16-bit PCM (clipped, rounded)."""
    scaled = np.rint(np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0)
    pcm: np.ndarray[Any, np.dtype[np.int16]] = scaled.astype(np.int16)
    return pcm


class AudioEncoder:
    """Mono float32 blocks in, an MP3 or WAV file (or stream) out.

    ``target`` is a path or a writable binary file object (MP3 frames are written as they are
    encoded, so a response can be streamed while synthesis goes on).
    """

    def __init__(
        self, target: Path | BinaryIO, sample_rate: int, audio_format: AudioFormat = "mp3", bitrate_kbps: int = 64
    ) -> None:
        import av  # the media extra: heavy workers and the local CLI, not the light Lambda

        self.sample_rate = sample_rate
        self.samples = 0
        self._container: Any = av.open(
            str(target) if isinstance(target, Path) else target, mode="w", format=audio_format
        )
        codec = "libmp3lame" if audio_format == "mp3" else "pcm_s16le"
        stream: Any = self._container.add_stream(codec, rate=sample_rate, layout="mono")  # an AudioStream
        self._stream = stream
        if audio_format == "mp3":
            self._stream.bit_rate = bitrate_kbps * 1000
            self._stream.format = "s16p"
        self._av = av

    def write(self, samples: FloatAudio) -> None:
        if not len(samples):
            return
        frame = self._av.AudioFrame.from_ndarray(pcm16(samples).reshape(1, -1), format="s16p", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self.samples
        self.samples += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> AudioEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def encode_audio(
    samples: FloatAudio, sample_rate: int, audio_format: AudioFormat = "wav", bitrate_kbps: int = 64
) -> bytes:
    """One array as a whole file in memory (short answers: a spoken sentence)."""
    buffer = io.BytesIO()
    with AudioEncoder(buffer, sample_rate, audio_format, bitrate_kbps) as encoder:
        encoder.write(samples)
    return buffer.getvalue()


def resample(samples: FloatAudio, source_rate: int, target_rate: int) -> FloatAudio:
    """Linear-interpolation resampling (synthesised speech to the 16 kHz speech-to-text input:
    below both rates' Nyquist limits nothing is lost that Whisper listens to)."""
    if source_rate == target_rate or not len(samples):
        return np.asarray(samples, dtype=np.float32)
    count = round(len(samples) * target_rate / source_rate)
    positions = np.arange(count, dtype=np.float64) * (source_rate / target_rate)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)
