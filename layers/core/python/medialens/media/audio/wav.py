"""16 kHz mono 16-bit PCM WAV artifacts: written block by block, read back by time range."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio, invalid


def _to_pcm16(samples: FloatAudio) -> bytes:
    scaled = np.asarray(samples, dtype=np.float32) * np.float32(32768.0)  # one copy, then in place
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    pcm: bytes = scaled.astype("<i2").tobytes()
    return pcm


class WavWriter:
    """Writes 16 kHz mono 16-bit PCM WAV block by block (the header is finished on close).

    16-bit PCM halves float32's size and is what faster-whisper itself decodes to; WAV keeps
    every reader (the standard library's ``wave``, FFmpeg, any player) able to open chunks.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.samples = 0
        self._wave: Any = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
        self._wave.setnchannels(1)
        self._wave.setsampwidth(2)
        self._wave.setframerate(SAMPLE_RATE)

    def write(self, samples: FloatAudio) -> None:
        self._wave.writeframes(_to_pcm16(samples))
        self.samples += len(samples)

    def close(self) -> None:
        self._wave.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_wav(path: Path, samples: FloatAudio) -> Path:
    """One array as a 16 kHz mono PCM WAV file."""
    with WavWriter(path) as writer:
        writer.write(samples)
    return Path(path)


def read_wav(path: Path, start_s: float = 0.0, end_s: float | None = None) -> FloatAudio:
    """Samples ``[start_s, end_s)`` of a 16 kHz mono 16-bit WAV written by this module, as float32.

    Seeks, so reading a chunk of an hour-long file reads only that chunk.
    """
    path = Path(path)
    try:
        handle = wave.open(str(path), "rb")  # noqa: SIM115 - closed below
    except (wave.Error, EOFError) as error:
        raise invalid(path, f"not a PCM WAV file ({error})") from error
    with handle:
        if (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) != (1, 2, SAMPLE_RATE):
            raise invalid(
                path,
                f"expected 16 kHz mono 16-bit PCM, got {handle.getframerate()} Hz, {handle.getnchannels()} "
                f"channel(s), {8 * handle.getsampwidth()}-bit",
            )
        frames = handle.getnframes()
        first = min(frames, max(0, round(start_s * SAMPLE_RATE)))
        last = frames if end_s is None else min(frames, max(first, round(end_s * SAMPLE_RATE)))
        handle.setpos(first)
        raw = handle.readframes(last - first)
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / np.float32(32768.0)
