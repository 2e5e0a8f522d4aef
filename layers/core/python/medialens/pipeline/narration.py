"""Narration: a document's text spoken by the voice, with speech marks, checked by listening.

NarrateDocument (heavy; only for uploads that ask for it) rebuilds the document's reading text from
its passages (the overlap between neighbouring passages said once, headings said where a section
starts), cuts it into sentences, synthesises them a group at a time and writes, block by block:

- ``narration.mp3``: the sentences joined by short pauses, faded at each cut so none clicks;
- ``marks.jsonl``: speech marks as Amazon Polly writes them (sentence and word, times in ms,
  offsets into ``narration.txt``);
- every passage again, knowing where it is said (``narration_start``/``narration_end``), so a
  search hit on the document can play "from here".

Every window of about half a minute is also transcribed by the speech-to-text model and compared
with its text, both in spoken form (``medialens.ml.phonemes.spoken_words``: "9" and "nine" are
the same word): the narration's word error rate is recorded on the asset, and one above
``narration_max_wer`` puts a warning on it. Memory holds one group of sentences and one window of
audio, whatever the document's length.

The voice is chosen by the text's language (``medialens.ml.language``): the Piper voice for its
own language, espeak-ng's voice for any other (recorded as a fallback on the narration).
"""

from __future__ import annotations

import bisect
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from medialens.domain.assets import Asset, AuditEvent
from medialens.domain.moments import Passage
from medialens.domain.speech import MarkType, Narration, SpeechMark
from medialens.domain.steps import (
    AssetRef,
    NarrateDocumentInput,
    NarrateResult,
    PassageBatchRef,
    SegmentsResult,
    StepName,
)
from medialens.errors import InvalidMediaError
from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio
from medialens.media.speech_marks import (
    SENTENCE_GAP_S,
    TextSpan,
    faded,
    sentence_marks,
    speakable,
    split_sentences,
)
from medialens.observability import get_logger
from medialens.pipeline.artifacts import artifact_uri, read_jsonl, write_jsonl
from medialens.pipeline.quality import record_narration_quality
from medialens.services import Services

if TYPE_CHECKING:
    from medialens.ml.asr import SpeechRecognizer
    from medialens.ml.speech_synthesis import SpeechSynthesizer

logger = get_logger("medialens-narration")

AUDIO_NAME = "narration.mp3"
MARKS_NAME = "marks.jsonl"
TEXT_NAME = "narration.txt"
# Sentences synthesised per group (what memory holds at once), and the audio per quality window.
SENTENCES_PER_GROUP = 16
CHECK_WINDOW_S = 30.0


# --- the reading text -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassageSlot:
    """Where one passage line of one batch of one output sits in the reading text."""

    output: int
    batch: int
    line: int


@dataclass
class Script:
    text: str
    spans: dict[PassageSlot, tuple[int, int]] = field(default_factory=dict)


def build_script(outputs: Sequence[Sequence[Sequence[Passage]]], max_overlap_words: int) -> Script:
    """The reading text of a document's passages (per output, per batch, in order): pages in order,
    a paragraph per section with its heading first, each passage's words once even where
    neighbouring passages overlap; and where each passage's words sit in it."""
    entries = sorted(
        (
            (passage.page or 0, number, passage.index, PassageSlot(number, batch_number, line), passage)
            for number, batches in enumerate(outputs)
            for batch_number, passages in enumerate(batches)
            for line, passage in enumerate(passages)
        ),
        key=lambda entry: entry[:3],
    )
    parts: list[str] = []
    length = 0
    script = Script(text="")
    previous: list[tuple[str, int]] = []  # the last passage's words and their offsets
    group: tuple[int, int, str | None] | None = None
    heading: str | None = None

    def append(piece: str) -> int:
        nonlocal length
        parts.append(piece)
        length += len(piece)
        return length - len(piece)

    for page, number, _, slot, passage in entries:
        words = passage.text.split()
        if not words:
            continue
        if (number, page, passage.section) != group:
            group = (number, page, passage.section)
            previous = []
            if length:
                append("\n\n")
            if passage.section and passage.section != heading:
                append(passage.section.strip() + "\n")
            heading = passage.section
        shared = _shared_words(previous, words, max_overlap_words)
        placed = previous[len(previous) - shared :] if shared else []
        for word in words[shared:]:
            if placed or previous:
                append(" ")
            placed.append((word, append(word)))
        start, end = placed[0][1], placed[-1][1] + len(placed[-1][0])
        script.spans[slot] = (start, end)
        previous = placed
    script.text = "".join(parts)
    return script


def _shared_words(previous: Sequence[tuple[str, int]], words: Sequence[str], limit: int) -> int:
    """How many of ``words``' first words repeat ``previous``' last ones (the chunker's overlap)."""
    for count in range(min(len(previous), len(words), limit), 0, -1):
        if [word for word, _ in previous[-count:]] == list(words[:count]):
            return count
    return 0


# --- speaking ---------------------------------------------------------------------------------


@dataclass
class RoundTripCheck:
    """Transcribes the narration window by window and counts word errors against its text."""

    recognizer: SpeechRecognizer
    spoken_voice: str
    language: str | None
    window_s: float = CHECK_WINDOW_S
    errors: int = 0
    reference_words: int = 0
    _texts: list[str] = field(default_factory=list)
    _audio: list[FloatAudio] = field(default_factory=list)
    _samples: int = 0

    def add(self, text: str, samples: FloatAudio, sample_rate: int) -> None:
        from medialens.media.audio.encode import resample

        self._texts.append(text)
        self._audio.append(resample(samples, sample_rate, SAMPLE_RATE))
        self._samples += len(self._audio[-1])
        if self._samples >= self.window_s * SAMPLE_RATE:
            self.flush()

    def flush(self) -> None:
        if not self._texts:
            return
        import jiwer

        from medialens.ml.phonemes import spoken_words

        gap = np.zeros(round(SENTENCE_GAP_S * SAMPLE_RATE), dtype=np.float32)
        audio = np.concatenate([piece for samples in self._audio for piece in (samples, gap)])
        transcript = self.recognizer.transcribe(audio, language=self.language)
        heard = " ".join(segment.text for segment in transcript.segments)
        reference = spoken_words(" ".join(self._texts), self.spoken_voice)
        hypothesis = spoken_words(heard, self.spoken_voice) if heard.strip() else []
        if reference:
            output = jiwer.process_words(" ".join(reference), " ".join(hypothesis) or "")
            self.errors += output.substitutions + output.deletions + output.insertions
            self.reference_words += len(reference)
        self._texts, self._audio, self._samples = [], [], 0

    @property
    def word_error_rate(self) -> float | None:
        return self.errors / self.reference_words if self.reference_words else None


@dataclass
class SpokenText:
    duration_s: float
    sentences: int
    words: int
    word_starts: list[int]  # character offsets, ascending
    word_times: list[int]  # ms
    word_end_offsets: list[int]
    word_end_times: list[int]

    def span_times(self, start: int, end: int) -> tuple[float, float] | None:
        """Seconds where the text ``[start, end)`` is said: its first word to its last."""
        first = bisect.bisect_left(self.word_starts, start)
        last = bisect.bisect_right(self.word_end_offsets, end) - 1
        if first >= len(self.word_starts) or last < first:
            return None
        return self.word_times[first] / 1000, self.word_end_times[last] / 1000


def sentence_groups(sentences: Sequence[TextSpan], size: int = SENTENCES_PER_GROUP) -> Iterator[Sequence[TextSpan]]:
    for start in range(0, len(sentences), size):
        yield sentences[start : start + size]


def speak_text(
    text: str,
    synthesizer: SpeechSynthesizer,
    write_audio: Callable[[FloatAudio], None],
    marks: TextIO,
    check: RoundTripCheck | None = None,
) -> SpokenText:
    """Speaks ``text`` sentence by sentence: audio blocks to ``write_audio`` (an
    ``AudioEncoder.write``), speech marks to ``marks`` (JSON lines), windows to ``check``."""
    rate = synthesizer.sample_rate
    gap = np.zeros(round(SENTENCE_GAP_S * rate), dtype=np.float32)
    offset_s = 0.0
    spoken = SpokenText(0.0, 0, 0, [], [], [], [])
    for group in sentence_groups(split_sentences(text)):
        spoken_forms = [speakable(s.text) for s in group]
        for sentence, said, samples in zip(group, spoken_forms, synthesizer.synthesize(spoken_forms), strict=True):
            if not len(samples):
                continue
            samples = faded(samples, rate)
            for mark in sentence_marks(sentence, samples, rate, offset_s):
                marks.write(mark.model_dump_json() + "\n")
                if mark.type is MarkType.WORD:
                    _add_word(spoken, mark)
            write_audio(samples)
            write_audio(gap)
            if check is not None:
                check.add(said, samples, rate)
            offset_s += (len(samples) + len(gap)) / rate
            spoken.sentences += 1
    if check is not None:
        check.flush()
    spoken.duration_s = offset_s
    return spoken


def _add_word(spoken: SpokenText, mark: SpeechMark) -> None:
    spoken.words += 1
    spoken.word_starts.append(mark.start)
    spoken.word_times.append(mark.time)
    spoken.word_end_offsets.append(mark.end)
    spoken.word_end_times.append(mark.end_time)


# --- the step ---------------------------------------------------------------------------------


def narrate_document(services: Services, asset: AssetRef, request: NarrateDocumentInput) -> NarrateResult:
    # The voice, the encoder and the speech-to-text check need the media extra: heavy worker only.
    from medialens.media.audio.encode import AudioEncoder
    from medialens.ml.asr import get_speech_recognizer
    from medialens.ml.language import identify_language
    from medialens.ml.phonemes import espeak_voice
    from medialens.ml.speech_synthesis import PiperVoice, get_speech_synthesizer

    settings = services.settings
    outputs = [
        [read_jsonl(services, batch.uri, Passage) for batch in output.batches] for output in request.segments.outputs
    ]
    script = build_script(outputs, max_overlap_words=settings.passage_overlap_words + 8)
    if not script.text.strip():
        raise InvalidMediaError("the document has no text to narrate")
    detected = identify_language(script.text)
    synthesizer = get_speech_synthesizer(settings, detected.language)
    language = detected.language or synthesizer.language
    spoken_voice = synthesizer.espeak_voice if isinstance(synthesizer, PiperVoice) else espeak_voice(language)
    recognizer = get_speech_recognizer(settings)
    checkable = recognizer.multilingual or language == "en"
    check = RoundTripCheck(recognizer, spoken_voice or "en-us", language) if checkable else None

    step, version = StepName.NARRATE_DOCUMENT, asset.pipeline_version
    audio_uri = artifact_uri(services, asset.asset_id, step, version, AUDIO_NAME)
    marks_uri = artifact_uri(services, asset.asset_id, step, version, MARKS_NAME)
    text_uri = artifact_uri(services, asset.asset_id, step, version, TEXT_NAME)
    with tempfile.TemporaryDirectory(prefix="medialens-narration-") as tmp:
        audio_path, marks_path = Path(tmp) / AUDIO_NAME, Path(tmp) / MARKS_NAME
        with (
            AudioEncoder(audio_path, synthesizer.sample_rate, "mp3", settings.narration_bitrate_kbps) as encoder,
            marks_path.open("w", encoding="utf-8") as marks,
        ):
            spoken = speak_text(script.text, synthesizer, encoder.write, marks, check)
        services.blobs.put_file(audio_uri, audio_path, "audio/mpeg")
        services.blobs.put_file(marks_uri, marks_path, "application/x-ndjson")
    services.blobs.put_text(text_uri, script.text, "text/plain; charset=utf-8")

    wer = check.word_error_rate if check is not None else None
    warning = None
    if wer is not None and wer > settings.narration_max_wer:
        warning = (
            f"narration word error rate {wer:.1%} is above {settings.narration_max_wer:.1%}: "
            "listen before publishing it"
        )
    narration = Narration(
        audio_uri=audio_uri,
        marks_uri=marks_uri,
        text_uri=text_uri,
        voice=synthesizer.version,
        fallback_voice=synthesizer.fallback,
        language=language,
        duration_s=round(spoken.duration_s, 3),
        characters=len(script.text),
        sentences=spoken.sentences,
        words=spoken.words,
        word_error_rate=None if wer is None else round(wer, 4),
        recognizer=recognizer.version if check is not None else None,
        warning=warning,
    )
    _record(services, asset, narration)
    annotated = _annotated_outputs(services, asset, request.segments.outputs, outputs, script, spoken, audio_uri)
    return NarrateResult(outputs=annotated, narration=narration)


def _record(services: Services, asset: AssetRef, narration: Narration) -> None:
    services.registry.add_artifacts(
        asset.asset_id,
        {"narration": narration.audio_uri, "speech_marks": narration.marks_uri, "narration_text": narration.text_uri},
    )
    warning = narration.warning
    record_narration_quality(services, asset.asset_id, narration.voice, narration.language, narration.word_error_rate)

    def change(record: Asset) -> None:
        record.metadata["narration"] = narration.model_dump(mode="json", exclude={"audio_uri", "marks_uri", "text_uri"})
        if warning and warning not in record.warnings:
            record.warnings.append(warning)

    services.registry.mutate(asset.asset_id, change)
    if warning:
        services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="narration-warning", detail=warning))
        logger.warning("narration quality", extra={"asset_id": asset.asset_id, "wer": narration.word_error_rate})


def _annotated_outputs(
    services: Services,
    asset: AssetRef,
    refs: Sequence[SegmentsResult],
    outputs: Sequence[Sequence[Sequence[Passage]]],
    script: Script,
    spoken: SpokenText,
    audio_uri: str,
) -> list[SegmentsResult]:
    """Every batch written again with its passages' narration times (same source and index, so
    the embedded moments keep their names)."""
    step, version = StepName.NARRATE_DOCUMENT, asset.pipeline_version
    annotated: list[SegmentsResult] = []
    for number, (ref, batches) in enumerate(zip(refs, outputs, strict=True)):
        new_batches: list[PassageBatchRef] = []
        for batch_number, (batch, passages) in enumerate(zip(ref.batches, batches, strict=True)):
            timed = []
            for line, passage in enumerate(passages):
                span = script.spans.get(PassageSlot(number, batch_number, line))
                times = spoken.span_times(*span) if span is not None else None
                update = (
                    {"narration_uri": audio_uri, "narration_start": times[0], "narration_end": times[1]}
                    if times is not None
                    else {}
                )
                timed.append(passage.model_copy(update=update))
            uri = artifact_uri(
                services, asset.asset_id, step, version, f"{batch.source}-passages-{batch.index:04d}.jsonl"
            )
            write_jsonl(services, uri, timed)
            new_batches.append(batch.model_copy(update={"uri": uri}))
        annotated.append(SegmentsResult(batches=new_batches, passages=ref.passages))
    return annotated
