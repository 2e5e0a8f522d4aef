"""What the steps' models said of their own work, recorded on the asset (``Asset.quality``) for
the operations report: confidence histograms per model and language, and embedding centroids.
One registry write per step that has something to say; nothing when it has nothing. Recording is
an observation: when it fails (the asset was retired meanwhile, the registry is busy) the figure is
lost and logged, the step goes on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medialens.domain.quality import EmbeddingSummary, QualitySample, Signal
from medialens.domain.steps import StepName
from medialens.media.ocr_lines import OcrLine
from medialens.media.transcript import Segment, Transcript
from medialens.observability import get_logger
from medialens.services import Services

logger = get_logger("medialens-quality")


def _add(
    services: Services,
    asset_id: str,
    samples: Sequence[QualitySample] = (),
    embedding: EmbeddingSummary | None = None,
    language: str | None = None,
) -> None:
    try:
        services.registry.add_quality(asset_id, samples, embedding, language)
    except Exception:  # an observation must never fail the step it observes
        logger.warning("quality not recorded", extra={"asset_id": asset_id}, exc_info=True)


def record_transcript_quality(services: Services, asset_id: str, transcript: Transcript) -> None:
    """Segment confidence, no-speech probability and word probability per model that made the
    segments (a cascade's fast and full models apart), and a cascade's fallback: per chunk it
    transcribed, the share of the audio its full model transcribed again (``Signal.ASR_FALLBACK``)."""
    segments = [segment for segment in transcript.segments if segment.text.strip()]
    stage, language = StepName.TRANSCRIBE_CHUNK.value, transcript.language
    by_model: dict[str, list[Segment]] = {}
    for segment in segments:
        by_model.setdefault(segment.model or transcript.model_version, []).append(segment)
    samples = []
    for model, made in by_model.items():
        samples += [
            QualitySample.of(Signal.ASR_CONFIDENCE, stage, model, (s.confidence for s in made), language),
            QualitySample.of(Signal.NO_SPEECH, stage, model, (s.no_speech_prob for s in made), language),
            QualitySample.of(
                Signal.ASR_WORD_PROBABILITY, stage, model, (w.probability for s in made for w in s.words), language
            ),
        ]
    shares: dict[str, list[float]] = {}  # per fast model: each chunk's share of audio re-run
    for fallback in transcript.fallbacks:
        if fallback.seconds:
            shares.setdefault(fallback.fast_model, []).append(fallback.rate)
    for model, values in shares.items():
        samples.append(QualitySample.of(Signal.ASR_FALLBACK, stage, model, values, language))
    if any(sample.n for sample in samples):
        _add(services, asset_id, samples, language=language)


def record_ocr_quality(
    services: Services, asset_id: str, stage: StepName, model: str, lines: Iterable[Sequence[OcrLine]]
) -> None:
    confidences = [line.confidence for group in lines for line in group if line.text.strip()]
    if confidences:
        sample = QualitySample.of(Signal.OCR_CONFIDENCE, stage.value, model, confidences)
        _add(services, asset_id, [sample])


def record_label_quality(
    services: Services, asset_id: str, stage: StepName, model: str, confidences: Iterable[float | None]
) -> None:
    """The confidence of each visual moment (its best class's probability) or sound event kept."""
    kept = [value for value in confidences if value is not None]
    if kept:
        _add(services, asset_id, [QualitySample.of(Signal.LABEL_CONFIDENCE, stage.value, model, kept)])


def record_narration_quality(services: Services, asset_id: str, voice: str, language: str, wer: float | None) -> None:
    if wer is not None:
        sample = QualitySample.of(Signal.NARRATION_WER, StepName.NARRATE_DOCUMENT.value, voice, [wer], language)
        _add(services, asset_id, [sample])


def record_embeddings(services: Services, asset_id: str, model: str, vectors: Sequence[Sequence[float]]) -> None:
    summary = EmbeddingSummary.of(model, vectors)
    if summary is not None:
        _add(services, asset_id, embedding=summary)
