"""Decoding: a file's first audio stream, through PyAV, as 16 kHz mono float32 blocks.

Damaged packets are skipped and counted; a stream cut short, mostly damaged or empty is refused
with :class:`InvalidMediaError`. PyAV is imported inside the functions that decode.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio, invalid

log = logging.getLogger(__name__)

# A file whose decoded audio falls this far short of what its header declares was cut short
# (an interrupted upload): both a ratio and an absolute margin, because encoders pad and
# duration estimates for headerless VBR streams wander by a few percent.
_TRUNCATION_RATIO = 0.9
_TRUNCATION_MARGIN_S = 2.0
# Isolated damaged packets are skipped (players do the same); beyond this share, the stream is
# corrupt and a transcript of what is left would silently miss speech.
_MAX_BAD_PACKET_SHARE = 0.02
# WAV writers that stream set the data size to a placeholder; such a header declares nothing.
_WAV_PLACEHOLDER_SIZE = 0x7FFF0000


class AudioInfo(BaseModel):
    """What was decoded from a file's first audio stream."""

    codec: str
    source_sample_rate: int
    source_channels: int
    declared_duration_s: float | None = Field(description="From the container or stream header, if any.")
    duration_s: float = Field(description="Decoded, at 16 kHz: the timeline every timestamp refers to.")
    samples: int
    start_time_s: float = Field(
        default=0.0, description="Where the audio stream starts in the container (timestamps do not include it)."
    )
    bad_packets: int = Field(default=0, description="Damaged packets skipped while decoding.")


def _open(path: Path) -> Any:
    """Opens a container, turning FFmpeg's errors into reasons a person can act on."""
    # PyAV is imported here, not at module level: steps that only plan chunks or read chunk
    # WAVs (and the transcript module, which uses AudioChunk) need no FFmpeg.
    import av

    try:
        if path.stat().st_size == 0:
            raise invalid(path, "empty file (0 bytes); re-upload it")
    except FileNotFoundError:
        raise invalid(path, "file not found") from None
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise invalid(
            path,
            "not a readable audio or video file (FFmpeg: "
            f"{getattr(error, 'strerror', None) or error}); it is corrupt, cut short before its "
            "header or index was written, or not media at all",
        ) from error


def _first_audio_stream(path: Path, container: Any) -> Any:
    if not container.streams.audio:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise invalid(path, f"has no audio stream (streams: {', '.join(kinds)}); there is no speech to transcribe")
    return container.streams.audio[0]


def _declared_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    # The container's duration is the longest stream's: it only speaks for the audio when there
    # is no video stream (a video's audio may legitimately end earlier).
    if container.duration is not None and not container.streams.video:
        return float(container.duration) / 1_000_000
    return None


def _wav_declared_duration(path: Path) -> float | None:
    """A RIFF/WAVE header's data size in seconds: FFmpeg derives WAV durations from the file
    size, so a truncated WAV is only visible by comparing against the header itself."""
    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        while True:
            header = handle.read(8)
            if len(header) < 8:
                return None
            chunk_id, size = header[:4], int.from_bytes(header[4:], "little")
            if chunk_id == b"fmt ":
                fmt = handle.read(size)
                if len(fmt) >= 12:
                    byte_rate = int.from_bytes(fmt[8:12], "little")
                handle.seek(size - len(fmt) + (size & 1), os.SEEK_CUR)
            elif chunk_id == b"data":
                if not byte_rate or size == 0 or size >= _WAV_PLACEHOLDER_SIZE:
                    return None
                return size / byte_rate
            else:
                handle.seek(size + (size & 1), os.SEEK_CUR)


def probe_audio(path: Path) -> AudioInfo | None:
    """The first audio stream's header facts (no decoding), or None when the file has none.

    Raises :class:`InvalidMediaError` when the file is not readable media at all.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        declared = _declared_duration(container, stream)
        ctx = stream.codec_context
        return AudioInfo(
            codec=ctx.name,
            source_sample_rate=int(ctx.sample_rate or 0),
            source_channels=int(ctx.channels or 0),
            declared_duration_s=declared,
            duration_s=declared or 0.0,
            samples=round((declared or 0.0) * SAMPLE_RATE),
        )


class AudioReader:
    """Iterates a file's first audio stream as 16 kHz mono float32 blocks of ``block_s`` seconds
    (the last one shorter); :attr:`info` is complete once iteration ends.

    Damaged packets are skipped and counted. At the end the reader checks what it got against
    the header: a stream decoded far shorter than declared (an upload cut short), with many bad
    packets, or with no samples at all raises :class:`InvalidMediaError` — after the blocks
    already yielded, so a caller writing them out should discard its output on that error.
    """

    def __init__(self, path: Path, *, block_s: float = 30.0) -> None:
        if block_s <= 0:
            raise ValueError(f"block_s must be positive, got {block_s}")
        self.path = Path(path)
        self.block_samples = max(1, round(block_s * SAMPLE_RATE))
        self._info: AudioInfo | None = None
        self._packets = 0
        self._bad = 0

    @property
    def info(self) -> AudioInfo:
        if self._info is None:
            raise RuntimeError("AudioReader.info is known once the blocks have been read to the end")
        return self._info

    def __iter__(self) -> Iterator[FloatAudio]:
        path = self.path
        with _open(path) as container:
            stream = _first_audio_stream(path, container)
            ctx = stream.codec_context
            declared = _declared_duration(container, stream)
            if path.suffix.lower() in {".wav", ".wave"} or ctx.name.startswith("pcm_"):
                declared = _wav_declared_duration(path) or declared
            start_time = 0.0
            if stream.start_time is not None and stream.time_base is not None:
                start_time = max(0.0, float(stream.start_time * stream.time_base))

            pending: list[FloatAudio] = []
            pending_samples = 0
            total = 0
            for samples in self._decode(container, stream):
                pending.append(samples)
                pending_samples += len(samples)
                while pending_samples >= self.block_samples:
                    joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                    block, rest = joined[: self.block_samples], joined[self.block_samples :]
                    pending, pending_samples = ([rest] if len(rest) else []), len(rest)
                    total += len(block)
                    yield block
            if pending_samples:
                block = np.concatenate(pending) if len(pending) > 1 else pending[0]
                total += len(block)
                yield block

        duration = total / SAMPLE_RATE
        packets, bad = self._packets, self._bad
        if total == 0:
            raise invalid(path, f"the {ctx.name} audio stream holds no decodable samples; the file is corrupt")
        if packets and bad > max(3, _MAX_BAD_PACKET_SHARE * packets):
            raise invalid(path, f"the audio stream is corrupt: {bad} of {packets} packets could not be decoded")
        if (
            declared is not None
            and duration < _TRUNCATION_RATIO * declared
            and declared - duration > _TRUNCATION_MARGIN_S
        ):
            raise invalid(
                path,
                f"looks truncated: its header declares {declared:.1f} s of audio but only {duration:.1f} s "
                "could be decoded (an interrupted upload?); re-upload the complete file",
            )
        if bad:
            log.warning("%s: skipped %d damaged audio packets of %d", path.name, bad, packets)
        self._info = AudioInfo(
            codec=ctx.name,
            source_sample_rate=int(ctx.sample_rate or 0),
            source_channels=int(ctx.channels or 0),
            declared_duration_s=declared,
            duration_s=duration,
            samples=total,
            start_time_s=start_time,
            bad_packets=bad,
        )

    def _decode(self, container: Any, stream: Any) -> Iterator[FloatAudio]:
        """Resampled arrays as they come; counts packets and damaged packets on the way."""
        import av

        resampler: Any = None
        setup: tuple[str, str, int] | None = None
        self._packets = self._bad = 0
        demuxed = container.demux(stream)
        while True:
            try:
                packet = next(demuxed)
            except StopIteration:
                break
            except av.error.FFmpegError as error:
                # A read error mid-file (garbage where a packet should be): what follows cannot
                # be trusted; the truncation and bad-packet checks decide whether that is fatal.
                log.info("%s: demuxing stopped: %s", self.path.name, error)
                self._bad += 1
                break
            if packet.size:
                self._packets += 1
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self._bad += 1
                continue
            for frame in frames:
                key = (frame.format.name, frame.layout.name, frame.sample_rate)
                if key != setup:
                    # A stream may change layout or rate mid-way (spliced broadcasts); PyAV's
                    # resampler is fixed to its first frame's, so drain it and start another.
                    if resampler is not None:
                        yield from _to_arrays(resampler.resample(None))
                    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                    setup = key
                frame.pts = None  # decoding order is the timeline; gaps in pts are not ours to fill
                yield from _to_arrays(resampler.resample(frame))
        if resampler is not None:
            yield from _to_arrays(resampler.resample(None))


def _to_arrays(frames: Iterable[Any]) -> Iterator[FloatAudio]:
    for frame in frames:
        array = frame.to_ndarray()
        # Packed mono float: shape (1, samples). Copy out of the frame's buffer, which FFmpeg reuses.
        yield np.array(array.reshape(-1), dtype=np.float32, copy=True)


def iter_audio(path: Path, *, block_s: float = 30.0) -> Iterator[FloatAudio]:
    """16 kHz mono float32 blocks of a file's first audio stream (see :class:`AudioReader`)."""
    yield from AudioReader(path, block_s=block_s)


def load_audio(path: Path, *, max_duration_s: float | None = 1200.0) -> FloatAudio:
    """The whole first audio stream in memory: an explicit opt-in for short files and tests.

    Refuses (``ValueError``) audio longer than ``max_duration_s`` (20 minutes, 77 MB, by
    default); pass None to accept any length.
    """
    blocks: list[FloatAudio] = []
    samples = 0
    limit = None if max_duration_s is None else round(max_duration_s * SAMPLE_RATE)
    for block in AudioReader(path, block_s=60.0):
        samples += len(block)
        if limit is not None and samples > limit:
            raise ValueError(
                f"{Path(path).name} has more than {max_duration_s} s of audio: stream it with iter_audio, "
                "or pass max_duration_s=None to load it whole"
            )
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
