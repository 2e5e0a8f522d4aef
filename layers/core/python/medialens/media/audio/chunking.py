"""Chunk planning: where to cut a recording into units of transcription work, and the chunks' WAVs."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medialens.media.audio.samples import SAMPLE_RATE, invalid
from medialens.media.audio.vad import SpeechRegion


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
    """Writes each chunk's audio from a 16 kHz WAV written by :mod:`medialens.media.audio.wav` and
    returns the chunks with ``file`` set. The PCM is copied as it is, a few seconds at a time: no
    conversion, and memory stays small however long the chunks."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    step = 10 * SAMPLE_RATE
    with wave.open(str(wav_path), "rb") as track:
        if (track.getnchannels(), track.getsampwidth(), track.getframerate()) != (1, 2, SAMPLE_RATE):
            raise invalid(Path(wav_path), "expected the 16 kHz mono 16-bit PCM track this module writes")
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
