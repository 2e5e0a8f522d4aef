"""Voice activity: Silero VAD (as faster-whisper bundles it) over 16 kHz audio fed in blocks."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio


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
