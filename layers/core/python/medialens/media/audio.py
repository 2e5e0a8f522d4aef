"""Audio for speech recognition: decode, detect speech, plan chunks, write chunk artifacts.

Any audio or video file's first audio stream is decoded with PyAV (it bundles FFmpeg) into
16 kHz mono float32, the input Whisper and Silero VAD expect, in blocks of a few seconds: an
hour of audio never sits in memory (16 kHz float32 is 230 MB an hour) unless a caller opts in
with :func:`load_audio`.

The speech path, as the steps run it::

    prepared = prepare_speech_audio(source, work_dir)     # one decoding pass
    # work_dir/audio.wav: the whole track, 16 kHz mono PCM s16 (115 MB an hour)
    # work_dir/chunk-0000.wav ...: one per prepared.chunks[i] (AudioChunk.file)
    # Map over prepared.chunks: read_wav(chunk file) -> SpeechRecognizer.transcribe(...)

Chunks are cut in silences the voice-activity detector found, close to a target length; where a
stretch of speech is longer than a chunk may be, the cut goes through speech and the two chunks
overlap around it, so :func:`medialens.media.transcript.stitch` can find the words both heard.
"""

from __future__ import annotations

import logging
import os
import wave
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medialens.errors import InvalidMediaError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FloatAudio = npt.NDArray[np.float32]

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


# --- decoding ------------------------------------------------------------------------------------


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


def _invalid(path: Path, reason: str) -> InvalidMediaError:
    return InvalidMediaError(f"{path.name}: {reason}")


def _open(path: Path) -> Any:
    """Opens a container, turning FFmpeg's errors into reasons a person can act on."""
    # PyAV is imported here, not at module level: steps that only plan chunks or read chunk
    # WAVs (and the transcript module, which uses AudioChunk) need no FFmpeg.
    import av

    try:
        if path.stat().st_size == 0:
            raise _invalid(path, "empty file (0 bytes); re-upload it")
    except FileNotFoundError:
        raise _invalid(path, "file not found") from None
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise _invalid(
            path,
            "not a readable audio or video file (FFmpeg: "
            f"{getattr(error, 'strerror', None) or error}); it is corrupt, cut short before its "
            "header or index was written, or not media at all",
        ) from error


def _first_audio_stream(path: Path, container: Any) -> Any:
    if not container.streams.audio:
        kinds = sorted({stream.type for stream in container.streams}) or ["none"]
        raise _invalid(path, f"has no audio stream (streams: {', '.join(kinds)}); there is no speech to transcribe")
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
            raise _invalid(path, f"the {ctx.name} audio stream holds no decodable samples; the file is corrupt")
        if packets and bad > max(3, _MAX_BAD_PACKET_SHARE * packets):
            raise _invalid(path, f"the audio stream is corrupt: {bad} of {packets} packets could not be decoded")
        if (
            declared is not None
            and duration < _TRUNCATION_RATIO * declared
            and declared - duration > _TRUNCATION_MARGIN_S
        ):
            raise _invalid(
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


# --- 16 kHz PCM WAV artifacts ----------------------------------------------------------------------


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
        raise _invalid(path, f"not a PCM WAV file ({error})") from error
    with handle:
        if (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) != (1, 2, SAMPLE_RATE):
            raise _invalid(
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


# --- voice activity --------------------------------------------------------------------------------


class SpeechRegion(BaseModel):
    """A stretch of detected speech, in seconds from the start of the audio (padded)."""

    model_config = ConfigDict(frozen=True)

    start: float = Field(ge=0)
    end: float = Field(ge=0)

    @property
    def duration(self) -> float:
        return self.end - self.start


class VadParams(BaseModel):
    """Silero VAD's decision rules (as faster-whisper's ``VadOptions``), tuned for cutting chunks.

    faster-whisper's defaults (2 s of silence ends speech, 0.4 s padding) merge whole paragraphs;
    a chunk planner wants the pauses between sentences, so silence of 0.5 s already separates
    regions, and 0.2 s of padding keeps word onsets and tails inside them.
    """

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(default=0.5, gt=0, lt=1)
    neg_threshold: float | None = Field(default=None, description="Default: threshold - 0.15.")
    min_speech_s: float = Field(default=0.25, ge=0)
    min_silence_s: float = Field(default=0.5, ge=0)
    speech_pad_s: float = Field(default=0.2, ge=0)


class StreamingVad:
    """Silero VAD (the model faster-whisper bundles) over audio fed block by block.

    faster-whisper's ``get_speech_timestamps`` wants the whole recording as one array; this runs
    the same ONNX session on 512-sample windows, carrying the recurrent state and the 64-sample
    context across blocks, keeps only the speech probabilities (one float per 32 ms: 450 KB an
    hour), and applies the same hysteresis, minimum-silence and padding rules at the end.
    """

    WINDOW = 512
    CONTEXT = 64
    # Windows per session run: 60 s of audio, 4 MB of input. Probabilities do not depend on the
    # grouping (checked against get_speech_timestamps on whole files in the tests).
    BATCH_WINDOWS = 1875

    def __init__(self, params: VadParams | None = None) -> None:
        from faster_whisper.vad import get_vad_model  # type: ignore[import-untyped]

        self.params = params or VadParams()
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(self.CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._probabilities: list[npt.NDArray[np.float32]] = []
        self.samples = 0
        self._finished: list[SpeechRegion] | None = None

    def feed(self, samples: FloatAudio) -> None:
        if self._finished is not None:
            raise RuntimeError("this StreamingVad has finished; start another")
        self.samples += len(samples)
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        batch = self.WINDOW * self.BATCH_WINDOWS
        while len(self._pending) >= batch:
            self._run(self._pending[:batch])
            self._pending = self._pending[batch:]

    def _run(self, audio: FloatAudio) -> None:
        windows = audio.reshape(-1, self.WINDOW)
        contexts = np.empty((len(windows), self.CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = windows[:-1, -self.CONTEXT :]
        self._context = windows[-1, -self.CONTEXT :].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        output, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._probabilities.append(np.asarray(output, dtype=np.float32).reshape(-1))

    @property
    def version(self) -> str:
        """The VAD model as recorded on artifacts: Silero v6, as faster-whisper ships it."""
        from importlib.metadata import version

        return f"silero-vad@6+faster-whisper-{version('faster-whisper')}"

    @property
    def probabilities(self) -> npt.NDArray[np.float32]:
        """Speech probability per 32 ms window so far."""
        if not self._probabilities:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._probabilities)

    def finish(self) -> list[SpeechRegion]:
        """Flushes the last partial window (zero-padded) and returns the speech regions."""
        if self._finished is not None:
            return self._finished
        # Like get_speech_timestamps: pad to whole windows, always adding at least one sample.
        tail = self._pending
        padded = np.pad(tail, (0, self.WINDOW - len(tail) % self.WINDOW))
        self._run(padded)
        self._pending = np.zeros(0, dtype=np.float32)
        self._finished = speech_regions(self.probabilities, self.samples, self.params)
        return self._finished


def speech_regions(probabilities: npt.NDArray[np.float32], samples: int, params: VadParams) -> list[SpeechRegion]:
    """Speech regions from per-window probabilities: faster-whisper's ``get_speech_timestamps``
    rules without its maximum-speech-length split (the chunk planner decides lengths)."""
    window = StreamingVad.WINDOW
    threshold = params.threshold
    neg_threshold = params.neg_threshold if params.neg_threshold is not None else max(threshold - 0.15, 0.01)
    min_speech = SAMPLE_RATE * params.min_speech_s
    min_silence = SAMPLE_RATE * params.min_silence_s
    pad = SAMPLE_RATE * params.speech_pad_s

    spans: list[list[int]] = []
    triggered = False
    start = temp_end = 0
    for i, probability in enumerate(probabilities.tolist()):
        position = window * i
        if probability >= threshold and temp_end:
            temp_end = 0
        if probability >= threshold and not triggered:
            triggered, start = True, position
            continue
        if probability < neg_threshold and triggered:
            if not temp_end:
                temp_end = position
            if position - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                spans.append([start, temp_end])
            triggered, temp_end = False, 0
    if triggered and samples - start > min_speech:
        spans.append([start, samples])

    # Padding: half of a short silence to each side, else ``pad`` (as faster-whisper does).
    for i, span in enumerate(spans):
        if i == 0:
            span[0] = int(max(0, span[0] - pad))
        if i + 1 < len(spans):
            silence = spans[i + 1][0] - span[1]
            if silence < 2 * pad:
                span[1] += int(silence // 2)
                spans[i + 1][0] = int(max(0, spans[i + 1][0] - silence // 2))
            else:
                span[1] = int(min(samples, span[1] + pad))
                spans[i + 1][0] = int(max(0, spans[i + 1][0] - pad))
        else:
            span[1] = int(min(samples, span[1] + pad))
    return [SpeechRegion(start=a / SAMPLE_RATE, end=b / SAMPLE_RATE) for a, b in spans if b > a]


def detect_speech(blocks: Iterable[FloatAudio], params: VadParams | None = None) -> list[SpeechRegion]:
    """Speech regions of 16 kHz audio given as blocks (an array is one block: pass ``[audio]``)."""
    vad = StreamingVad(params)
    for block in blocks:
        vad.feed(block)
    return vad.finish()


# --- chunk planning --------------------------------------------------------------------------------


class ChunkingParams(BaseModel):
    """How long chunks should be, and how far they overlap where a cut goes through speech.

    Chunks are cut at a silence as close to ``target_s`` as one lies within
    ``[min_s, max_s]`` of the previous cut; only when that whole window is speech is the cut
    made at ``target_s``, through speech, each side then reaching ``overlap_s`` past it.
    Defaults: max 4/3 of the target, min half of it.
    """

    model_config = ConfigDict(frozen=True)

    target_s: float = Field(default=90.0, gt=0)
    max_s: float | None = None
    min_s: float | None = None
    overlap_s: float = Field(default=1.5, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> ChunkingParams:
        if not self.min_length <= self.target_s <= self.max_length:
            raise ValueError(
                f"need min_s <= target_s <= max_s, got {self.min_length}, {self.target_s}, {self.max_length}"
            )
        if self.min_length > self.max_length / 2:
            raise ValueError("min_s must be at most half of max_s, so that every split leaves room for both sides")
        if self.overlap_s * 2 >= self.min_length:
            raise ValueError("overlap_s must be well under min_s/2: overlaps must not reach the next cut")
        return self

    @property
    def max_length(self) -> float:
        return self.max_s if self.max_s is not None else self.target_s * 4 / 3

    @property
    def min_length(self) -> float:
        return self.min_s if self.min_s is not None else self.target_s / 2


class AudioChunk(BaseModel):
    """One unit of transcription work.

    ``start``/``end`` is the audio the chunk holds; ``keep_start``/``keep_end`` the part of the
    timeline it answers for. Keep ranges tile the whole recording; the audio range is wider only
    on a side whose cut went through speech (by the planner's ``overlap_s``).
    """

    index: int = Field(ge=0)
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    keep_start: float = Field(ge=0)
    keep_end: float = Field(ge=0)
    speech_s: float = Field(default=0.0, ge=0, description="Detected speech inside [start, end].")
    file: str | None = Field(default=None, description="The chunk's WAV artifact, relative to its folder.")

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def has_speech(self) -> bool:
        """False: the detector heard nothing; a step may skip transcribing the chunk."""
        return self.speech_s > 0


def _silences(duration_s: float, speech: Sequence[SpeechRegion]) -> list[tuple[float, float]]:
    """Non-speech intervals; regions that touch (a short pause split between them) give a
    zero-length silence at the pause's middle, which is still a safe place to cut."""
    silences: list[tuple[float, float]] = []
    cursor = 0.0
    for region in sorted(speech, key=lambda r: r.start):
        if region.start >= cursor:
            silences.append((cursor, region.start))
        cursor = max(cursor, region.end)
    if cursor <= duration_s:
        silences.append((cursor, duration_s))
    return silences


def plan_chunks(
    duration_s: float, speech: Sequence[SpeechRegion], params: ChunkingParams | None = None
) -> list[AudioChunk]:
    """Cuts ``[0, duration_s]`` into chunks (see :class:`ChunkingParams`)."""
    params = params or ChunkingParams()
    if duration_s <= 0:
        return []
    silences = _silences(duration_s, speech)
    cuts: list[tuple[float, bool]] = []  # (time, through speech)
    cursor = 0.0
    while duration_s - cursor > params.max_length:
        low = cursor + params.min_length
        # Never leave a last chunk shorter than min_s: the window ends that far before the end.
        high = min(cursor + params.max_length, duration_s - params.min_length)
        target = min(max(cursor + params.target_s, low), high)
        best: float | None = None
        for a, b in silences:
            if b < low or a > high:
                continue
            # Inside the silence, as near the target as it allows, but off its edges (where the
            # padding, not the speech, ends) when the silence is long enough to allow that.
            margin = min((b - a) / 2, 0.1)
            lowest, highest = max(a + margin, low), min(b - margin, high)
            if lowest > highest:
                lowest, highest = max(a, low), min(b, high)
            point = min(max(target, lowest), highest)
            if best is None or abs(point - target) < abs(best - target):
                best = point
        cuts.append((best, False) if best is not None else (target, True))
        cursor = cuts[-1][0]

    bounds = [0.0] + [time for time, _ in cuts] + [duration_s]
    forced = [False] + [through for _, through in cuts] + [False]
    chunks = []
    for i in range(len(bounds) - 1):
        keep_start, keep_end = bounds[i], bounds[i + 1]
        start = max(0.0, keep_start - params.overlap_s) if forced[i] else keep_start
        end = min(duration_s, keep_end + params.overlap_s) if forced[i + 1] else keep_end
        speech_s = sum(max(0.0, min(r.end, end) - max(r.start, start)) for r in speech)
        chunks.append(
            AudioChunk(
                index=i,
                start=round(start, 3),
                end=round(end, 3),
                keep_start=round(keep_start, 3),
                keep_end=round(keep_end, 3),
                speech_s=round(speech_s, 3),
            )
        )
    return chunks


def write_chunks(
    wav_path: Path, chunks: Sequence[AudioChunk], out_dir: Path, *, pattern: str = "chunk-{index:04d}.wav"
) -> list[AudioChunk]:
    """Writes each chunk's audio from a 16 kHz WAV written by this module and returns the chunks
    with ``file`` set. The PCM is copied as it is, a few seconds at a time: no conversion, and
    memory stays small however long the chunks."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    step = 10 * SAMPLE_RATE
    with wave.open(str(wav_path), "rb") as track:
        if (track.getnchannels(), track.getsampwidth(), track.getframerate()) != (1, 2, SAMPLE_RATE):
            raise _invalid(Path(wav_path), "expected the 16 kHz mono 16-bit PCM track this module writes")
        frames = track.getnframes()
        for chunk in chunks:
            name = pattern.format(index=chunk.index)
            first = min(frames, round(chunk.start * SAMPLE_RATE))
            last = min(frames, max(first, round(chunk.end * SAMPLE_RATE)))
            track.setpos(first)
            with wave.open(str(out_dir / name), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(SAMPLE_RATE)
                for position in range(first, last, step):
                    out.writeframes(track.readframes(min(step, last - position)))
            written.append(chunk.model_copy(update={"file": name}))
    return written


# --- the whole preparation --------------------------------------------------------------------------


class PreparedAudio(BaseModel):
    """What :func:`prepare_speech_audio` wrote (files relative to its folder) and found."""

    info: AudioInfo
    audio_file: str = Field(description="The whole track, 16 kHz mono PCM WAV.")
    speech: list[SpeechRegion]
    chunks: list[AudioChunk]
    vad: VadParams
    vad_model: str = Field(description="The voice-activity model that found the speech (name@version).")
    chunking: ChunkingParams

    @property
    def speech_s(self) -> float:
        return sum(region.duration for region in self.speech)


def prepare_speech_audio(
    source: Path,
    out_dir: Path,
    *,
    chunking: ChunkingParams | None = None,
    vad: VadParams | None = None,
    block_s: float = 30.0,
    audio_file: str = "audio.wav",
) -> PreparedAudio:
    """Decodes ``source`` once into ``out_dir/audio.wav`` while detecting speech, plans chunks
    and writes one WAV per chunk beside it. Memory: a decoded block, the VAD's batch (320 s)
    and one chunk, whatever the file's length; disk: 115 MB per hour for audio.wav plus the
    chunks. Raises :class:`InvalidMediaError` for unusable input (and leaves no audio.wav).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunking = chunking or ChunkingParams()
    detector = StreamingVad(vad)
    reader = AudioReader(source, block_s=block_s)
    wav_path = out_dir / audio_file
    try:
        with WavWriter(wav_path) as writer:
            for block in reader:
                writer.write(block)
                detector.feed(block)
    except BaseException:
        wav_path.unlink(missing_ok=True)
        raise
    regions = detector.finish()
    chunks = write_chunks(wav_path, plan_chunks(reader.info.duration_s, regions, chunking), out_dir)
    return PreparedAudio(
        info=reader.info,
        audio_file=audio_file,
        speech=regions,
        chunks=chunks,
        vad=detector.params,
        vad_model=detector.version,
        chunking=chunking,
    )
