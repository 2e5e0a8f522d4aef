"""What the models said about their own work on one asset, kept with the asset so quality and
drift can be read back over any window without re-reading artifacts.

Each signal is a value in [0, 1] per item (a transcript segment, an OCR line, a label, a
narration), summarised as counts over fixed equal-width bins: histograms of different assets,
windows and profiles then add up exactly, and the drift statistics compare them bin by bin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

QUALITY_BINS = 10  # equal-width bins over [0, 1]; the last one closed


class Signal(StrEnum):
    ASR_CONFIDENCE = "asr_confidence"  # per transcript segment: exp(avg_logprob) * (1 - no_speech_prob)
    NO_SPEECH = "no_speech_probability"  # per transcript segment
    ASR_WORD_PROBABILITY = "asr_word_probability"  # per transcribed word
    OCR_CONFIDENCE = "ocr_confidence"  # per line read (video keyframes, images, scanned pages)
    LABEL_CONFIDENCE = "label_confidence"  # per visual label or sound class kept
    NARRATION_WER = "narration_wer"  # per narration: word error rate of its round trip (capped at 1)
    # Per chunk a speech cascade transcribed: the share of its audio the full model transcribed
    # again (0: the fast model's words kept, 1: the whole chunk re-run). Recorded under the fast
    # model: its mean is that model's fallback rate.
    ASR_FALLBACK = "asr_fallback"


def bin_of(value: float) -> int:
    clipped = min(1.0, max(0.0, value))
    return min(QUALITY_BINS - 1, int(clipped * QUALITY_BINS))


class QualitySample(BaseModel):
    """One signal of one model on one asset (in one language, where the model has one)."""

    signal: Signal
    stage: str = Field(description="The step whose model made the values.")
    model: str = Field(description="name@version+quantization of the model that made the values")
    language: str | None = None
    counts: list[int] = Field(description=f"values per bin: {QUALITY_BINS} equal-width bins over [0, 1]")
    total: float = Field(description="sum of the values (for the mean)")

    @property
    def n(self) -> int:
        return sum(self.counts)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @classmethod
    def of(
        cls, signal: Signal, stage: str, model: str, values: Iterable[float], language: str | None = None
    ) -> QualitySample:
        counts = [0] * QUALITY_BINS
        total = 0.0
        for value in values:
            if math.isfinite(value):
                clipped = min(1.0, max(0.0, value))
                counts[bin_of(clipped)] += 1
                total += clipped
        return cls(signal=signal, stage=stage, model=model, language=language, counts=counts, total=round(total, 6))

    def key(self) -> tuple[Signal, str, str, str | None]:
        return self.signal, self.stage, self.model, self.language

    def plus(self, other: QualitySample) -> QualitySample:
        return self.model_copy(
            update={
                "counts": [a + b for a, b in zip(self.counts, other.counts, strict=True)],
                "total": round(self.total + other.total, 6),
            }
        )


class EmbeddingSummary(BaseModel):
    """The mean of an asset's moment vectors under one embedding model: drift of what is being
    indexed shows as the centroid of a recent window moving away from the reference one."""

    model: str
    centroid: list[float]
    n: int = Field(ge=1)

    def plus(self, other: EmbeddingSummary) -> EmbeddingSummary:
        n = self.n + other.n
        centroid = [(a * self.n + b * other.n) / n for a, b in zip(self.centroid, other.centroid, strict=True)]
        return EmbeddingSummary(model=self.model, centroid=[round(x, 6) for x in centroid], n=n)

    @classmethod
    def of(cls, model: str, vectors: Sequence[Sequence[float]]) -> EmbeddingSummary | None:
        if not vectors:
            return None
        size = len(vectors)
        centroid = [round(sum(column) / size, 6) for column in zip(*vectors, strict=True)]
        return cls(model=model, centroid=centroid, n=size)


class AssetQuality(BaseModel):
    samples: list[QualitySample] = Field(default_factory=list)
    embeddings: list[EmbeddingSummary] = Field(default_factory=list)
    language: str | None = Field(default=None, description="The main spoken or written language found.")

    def add(
        self,
        samples: Iterable[QualitySample] = (),
        embedding: EmbeddingSummary | None = None,
        language: str | None = None,
    ) -> None:
        """Merges what one step (or one batch of it) measured into the asset's summary."""
        merged = {sample.key(): sample for sample in self.samples}
        for sample in samples:
            if sample.n:
                key = sample.key()
                merged[key] = merged[key].plus(sample) if key in merged else sample
        self.samples = list(merged.values())
        if embedding is not None:
            existing = next((e for e in self.embeddings if e.model == embedding.model), None)
            others = [e for e in self.embeddings if e.model != embedding.model]
            self.embeddings = [*others, existing.plus(embedding) if existing else embedding]
        if language and not self.language:
            self.language = language
