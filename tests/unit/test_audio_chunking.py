"""Chunk planning, VAD decision rules and WAV chunk artifacts (no decoder, no model)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from medialens.errors import InvalidMediaError
from medialens.media.audio.chunking import AudioChunk, ChunkingParams, plan_chunks, write_chunks
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.vad import SpeechRegion, VadParams, speech_regions
from medialens.media.audio.wav import WavWriter, read_wav, write_wav

pytestmark = pytest.mark.unit


def _inside_speech(t: float, speech: list[SpeechRegion]) -> bool:
    return any(r.start < t < r.end for r in speech)


def _random_speech(rng: random.Random, duration: float, *, max_run: float) -> list[SpeechRegion]:
    """Speech runs of up to ``max_run`` seconds separated by pauses, some of them touching."""
    regions, t = [], rng.uniform(0, 2)
    while t < duration:
        end = min(duration, t + rng.uniform(0.5, max_run))
        regions.append(SpeechRegion(start=round(t, 3), end=round(end, 3)))
        t = end + rng.choice((0.0, 0.0, 0.3, 0.8, 2.5, 6.0))
    return regions


def _check_plan(chunks: list[AudioChunk], duration: float, speech: list[SpeechRegion], params: ChunkingParams) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    # Keep ranges tile the recording, with no gap and no overlap.
    assert chunks[0].keep_start == 0.0 and chunks[-1].keep_end == pytest.approx(duration, abs=1e-3)
    for before, after in itertools.pairwise(chunks):
        assert before.keep_end == after.keep_start
    for chunk in chunks:
        assert chunk.start <= chunk.keep_start < chunk.keep_end <= chunk.end
        assert chunk.start >= 0.0 and chunk.end <= duration + 1e-3
        # Audio reaches past the keep range only by the overlap.
        assert chunk.keep_start - chunk.start in (0.0, pytest.approx(params.overlap_s, abs=1e-3))
        assert chunk.end - chunk.keep_end in (0.0, pytest.approx(params.overlap_s, abs=1e-3))
        assert chunk.duration <= params.max_length + 2 * params.overlap_s + 1e-3
    if duration <= params.max_length:
        assert len(chunks) == 1
    else:
        for chunk in chunks:
            assert params.min_length - 1e-3 <= chunk.keep_end - chunk.keep_start <= params.max_length + 1e-3
    for before, after in itertools.pairwise(chunks):
        cut = before.keep_end
        overlapped = before.end > after.start
        through_speech = _inside_speech(cut, speech)
        # Overlap exactly where the cut goes through speech; a cut in silence overlaps nothing.
        assert overlapped == (through_speech and params.overlap_s > 0), (cut, overlapped)
        if through_speech:
            # ... and then only because the whole window offered no silence.
            high = min(before.keep_start + params.max_length, duration - params.min_length)
            window = (before.keep_start + params.min_length, high)
            assert all(_inside_speech(t, speech) for t in np.linspace(*window, 200)[1:-1])


@pytest.mark.parametrize("seed", range(40))
def test_plans_cover_cut_in_silence_and_overlap_only_through_speech(seed: int) -> None:
    rng = random.Random(seed)
    duration = rng.uniform(10, 1200)
    params = ChunkingParams(target_s=rng.choice((30.0, 60.0, 90.0)), overlap_s=rng.choice((0.0, 1.0, 2.0)))
    speech = _random_speech(rng, duration, max_run=rng.choice((5.0, 40.0, 200.0)))
    chunks = plan_chunks(duration, speech, params)
    _check_plan(chunks, duration, speech, params)
    for chunk in chunks:
        expected = sum(max(0.0, min(r.end, chunk.end) - max(r.start, chunk.start)) for r in speech)
        assert chunk.speech_s == pytest.approx(expected, abs=2e-3)


def test_cuts_at_the_silence_nearest_the_target() -> None:
    speech = [SpeechRegion(start=s, end=s + 9.0) for s in np.arange(0.0, 300.0, 10.0)]  # 1 s pauses
    chunks = plan_chunks(300.0, speech, ChunkingParams(target_s=60.0))
    # Every cut lies in a pause (x9..x10 s), the one nearest 60 s after the previous cut, and
    # 0.1 s inside it (off the padded edge of the speech).
    assert [c.keep_end for c in chunks[:-1]] == [59.9, 119.9, 179.9, 239.9]
    assert all(c.start == c.keep_start and c.end == c.keep_end for c in chunks)


def test_one_long_stretch_of_speech_is_cut_at_the_target_with_overlap() -> None:
    chunks = plan_chunks(200.0, [SpeechRegion(start=0.0, end=200.0)], ChunkingParams(target_s=60.0, overlap_s=1.5))
    assert [(c.start, c.end, c.keep_start, c.keep_end) for c in chunks] == [
        (0.0, 61.5, 0.0, 60.0),
        (58.5, 121.5, 60.0, 120.0),
        (118.5, 200.0, 120.0, 200.0),
    ]


def test_the_last_chunk_is_never_a_sliver() -> None:
    # 125 s of continuous speech with a 120 s maximum: a cut at the 90 s target leaves 35 s.
    chunks = plan_chunks(125.0, [SpeechRegion(start=0.0, end=125.0)], ChunkingParams(target_s=90.0))
    assert len(chunks) == 2 and chunks[1].keep_end - chunks[1].keep_start >= 45.0


def test_silence_only_and_short_recordings() -> None:
    assert plan_chunks(0.0, [], ChunkingParams()) == []
    (only,) = plan_chunks(42.0, [], ChunkingParams())
    assert (only.start, only.end, only.speech_s, only.has_speech) == (0.0, 42.0, 0.0, False)
    chunks = plan_chunks(400.0, [], ChunkingParams(target_s=90.0))
    # 130 s remain after 270 s, more than max_s: the last cut leaves min_s (45 s) for the end.
    assert [c.keep_end for c in chunks[:-1]] == [90.0, 180.0, 270.0, 355.0]
    assert not any(c.has_speech for c in chunks)


def test_chunking_params_are_validated() -> None:
    assert ChunkingParams(target_s=90).max_length == 120 and ChunkingParams(target_s=90).min_length == 45
    with pytest.raises(ValidationError, match="min_s <= target_s"):
        ChunkingParams(target_s=90, max_s=60)
    with pytest.raises(ValidationError, match="half"):
        ChunkingParams(target_s=90, min_s=80, max_s=100)
    with pytest.raises(ValidationError, match="overlap"):
        ChunkingParams(target_s=10, overlap_s=3)


def _probabilities(spans: list[tuple[int, int]], windows: int) -> np.ndarray:
    probabilities = np.full(windows, 0.05, dtype=np.float32)
    for a, b in spans:
        probabilities[a:b] = 0.9
    return probabilities


def test_vad_rules_merge_short_pauses_and_pad_regions() -> None:
    window = 512 / SAMPLE_RATE  # 32 ms
    params = VadParams(min_silence_s=0.5, speech_pad_s=0.2, min_speech_s=0.25)
    # Speech 1.0-2.0 s, a 0.32 s pause (too short to end speech), 2.32-3.0 s, a long pause,
    # a 0.16 s blip (shorter than min_speech), then speech 6.0-7.0 s.
    spans = [(31, 62), (72, 94), (140, 145), (187, 219)]
    regions = speech_regions(_probabilities(spans, 300), 300 * 512, params)
    assert len(regions) == 2
    first, second = regions
    assert first.start == pytest.approx(31 * window - 0.2, abs=1e-3)
    assert first.end == pytest.approx(94 * window + 0.2, abs=1e-3)
    assert second.start == pytest.approx(187 * window - 0.2, abs=1e-3)
    assert second.end == pytest.approx(219 * window + 0.2, abs=1e-3)


def test_vad_padding_splits_a_short_silence_between_neighbours() -> None:
    params = VadParams(min_silence_s=0.3, speech_pad_s=0.5)
    # Two runs 0.42 s apart (longer than min_silence, shorter than twice the padding).
    regions = speech_regions(_probabilities([(31, 62), (75, 100)], 200), 200 * 512, params)
    assert len(regions) == 2 and regions[0].end == regions[1].start  # they meet mid-pause
    assert regions[0].end == pytest.approx((62 + 75) / 2 * 512 / SAMPLE_RATE, abs=0.02)


def test_vad_speech_running_to_the_end_is_closed() -> None:
    regions = speech_regions(_probabilities([(50, 100)], 100), 100 * 512 - 100, VadParams())
    assert len(regions) == 1 and regions[0].end == pytest.approx((100 * 512 - 100) / SAMPLE_RATE)


def test_wav_round_trip_and_range_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    audio = (rng.uniform(-0.9, 0.9, SAMPLE_RATE * 3)).astype(np.float32)
    path = tmp_path / "a.wav"
    with WavWriter(path) as writer:  # block by block, as the decoder feeds it
        for block in np.array_split(audio, 7):
            writer.write(block)
    assert writer.samples == len(audio)
    back = read_wav(path)
    assert back.dtype == np.float32 and len(back) == len(audio)
    assert np.abs(back - audio).max() <= 1 / 32768 + 1e-7  # 16-bit quantisation only
    part = read_wav(path, 1.25, 2.0)
    assert np.array_equal(part, back[20_000:32_000])
    assert len(read_wav(path, 2.5, 99.0)) == SAMPLE_RATE // 2
    # Out-of-range input is clipped, not wrapped around.
    write_wav(tmp_path / "loud.wav", np.array([2.0, -2.0], dtype=np.float32))
    assert read_wav(tmp_path / "loud.wav").tolist() == [32767 / 32768, -1.0]


def test_read_wav_refuses_other_formats(tmp_path: Path) -> None:
    import wave

    with wave.open(str(tmp_path / "stereo.wav"), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(44_100)
        handle.writeframes(bytes(400))
    with pytest.raises(InvalidMediaError, match="16 kHz mono"):
        read_wav(tmp_path / "stereo.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(InvalidMediaError, match="not a PCM WAV"):
        read_wav(tmp_path / "junk.wav")


def test_write_chunks_slices_the_track(tmp_path: Path) -> None:
    audio = np.sin(np.arange(SAMPLE_RATE * 10) / 50).astype(np.float32) * 0.5
    track = write_wav(tmp_path / "audio.wav", audio)
    chunks = plan_chunks(10.0, [SpeechRegion(start=0, end=10)], ChunkingParams(target_s=4, overlap_s=0.5))
    written = write_chunks(track, chunks, tmp_path / "chunks")
    assert [c.file for c in written] == [f"chunk-{i:04d}.wav" for i in range(len(chunks))]
    whole = read_wav(track)
    for chunk in written:
        assert chunk.file is not None
        samples = read_wav(tmp_path / "chunks" / chunk.file)
        first = round(chunk.start * SAMPLE_RATE)
        assert np.array_equal(samples, whole[first : first + len(samples)])
        assert len(samples) == round(chunk.end * SAMPLE_RATE) - first
