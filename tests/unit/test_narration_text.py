"""The narration's text side: sentences with their offsets, the reading text rebuilt from
overlapping passages, and speech marks placed inside each sentence's audio."""

from __future__ import annotations

import numpy as np
import pytest

from medialens.domain.moments import Passage
from medialens.domain.speech import MarkType
from medialens.media.documents.chunking import chunk_passages
from medialens.media.documents.extract import ExtractedDocument, TextSection
from medialens.media.speech_marks import (
    MAX_SENTENCE_CHARACTERS,
    faded,
    sentence_marks,
    speakable,
    split_sentences,
    voiced_span,
)
from medialens.pipeline.narration import PassageSlot, SpokenText, build_script

pytestmark = pytest.mark.unit


def test_sentences_keep_their_offsets_and_skip_abbreviations_and_decimals() -> None:
    text = "Dr. Smith paid 3.50 kronor. Was it enough?  Yes!\nA heading without a stop\nLast one (really)."
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "Dr. Smith paid 3.50 kronor.",
        "Was it enough?",
        "Yes!",
        "A heading without a stop",
        "Last one (really).",
    ]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_a_sentence_too_long_to_say_at_once_is_cut_after_clauses_then_at_spaces() -> None:
    clause = "the committee reviewed every proposal in detail, "
    text = (clause * 20).strip() + "."
    sentences = split_sentences(text)
    assert len(sentences) > 1
    assert all(len(s.text) <= MAX_SENTENCE_CHARACTERS for s in sentences)
    assert all(s.text.endswith(",") for s in sentences[:-1])  # cut after a clause, not mid-word
    assert " ".join(s.text for s in sentences) == text
    unbroken = "word " * 200
    assert all(len(s.text) <= MAX_SENTENCE_CHARACTERS for s in split_sentences(unbroken))


def _sentence_audio(rate: int, lead_s: float, voiced_s: float, tail_s: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    voiced = (0.3 * rng.standard_normal(round(voiced_s * rate))).astype(np.float32)
    return np.concatenate(
        [np.zeros(round(lead_s * rate), np.float32), voiced, np.zeros(round(tail_s * rate), np.float32)]
    )


def test_word_marks_are_monotonic_inside_the_voiced_part_and_point_at_their_words() -> None:
    rate = 22050
    text = "Before. Revenue grew by 12%, driven by Sweden."
    sentence = split_sentences(text)[1]
    samples = _sentence_audio(rate, lead_s=0.2, voiced_s=2.0, tail_s=0.3)
    marks = sentence_marks(sentence, samples, rate, offset_s=10.0)
    head, words = marks[0], marks[1:]
    assert head.type is MarkType.SENTENCE and (head.time, head.end_time) == (10_000, 12_500)
    assert text[head.start : head.end] == sentence.text
    assert [w.value for w in words] == ["Revenue", "grew", "by", "12%,", "driven", "by", "Sweden."]
    assert all(text[w.start : w.end] == w.value for w in words)
    assert words[0].time == pytest.approx(10_200, abs=2) and words[-1].end_time == pytest.approx(12_200, abs=2)
    times = [t for w in words for t in (w.time, w.end_time)]
    assert times == sorted(times)
    # "12%," takes longer than "by": digits are said in words, and a comma pauses.
    by, number = words[2], words[3]
    assert number.end_time - number.time > 2 * (by.end_time - by.time)


def test_silent_ends_are_not_voiced_and_fades_leave_no_click() -> None:
    rate = 16000
    samples = _sentence_audio(rate, lead_s=0.1, voiced_s=0.5, tail_s=0.1)
    first, last = voiced_span(samples)
    assert abs(first - 1600) < 5 and abs(last - 9600) < 5
    smooth = faded(samples, rate)
    assert smooth[0] == 0 and smooth[-1] == 0 and len(smooth) == len(samples)
    loud = np.ones(1000, np.float32)
    ramped = faded(loud, rate)
    assert ramped[0] == 0.0 and ramped[-1] == 0.0 and np.all(np.abs(np.diff(ramped)) < 0.02)


def test_the_reading_text_says_overlapping_passages_once_with_headings_and_maps_every_passage() -> None:
    words = [f"w{n}" for n in range(300)]
    doc = ExtractedDocument.of(
        [
            TextSection(heading="Intro", text=" ".join(words[:200]), page=1),
            TextSection(heading="Terms", text=" ".join(words[200:]), page=2),
        ]
    )
    passages = chunk_passages(doc, words=60, overlap=15)
    assert len(passages) > 4  # overlapping windows
    batches = [passages[:3], passages[3:]]
    script = build_script([batches], max_overlap_words=20)
    assert script.text == "Intro\n" + " ".join(words[:200]) + "\n\nTerms\n" + " ".join(words[200:])
    for batch_number, batch in enumerate(batches):
        for line, passage in enumerate(batch):
            start, end = script.spans[PassageSlot(0, batch_number, line)]
            assert script.text[start:end] == passage.text


def test_passage_times_come_from_the_words_they_span() -> None:
    spoken = SpokenText(
        duration_s=3.0,
        sentences=1,
        words=3,
        word_starts=[0, 6, 12],
        word_times=[0, 1000, 2000],
        word_end_offsets=[5, 11, 17],
        word_end_times=[900, 1900, 2900],
    )
    assert spoken.span_times(6, 17) == (1.0, 2.9)
    assert spoken.span_times(0, 5) == (0.0, 0.9)
    assert spoken.span_times(20, 30) is None


def test_pages_are_read_in_order_whichever_output_holds_them() -> None:
    text_layer = [[Passage(index=0, text="page one text", page=1), Passage(index=1, text="page three", page=3)]]
    scanned = [[Passage(index=0, text="page two was scanned", page=2)]]
    script = build_script([text_layer, scanned], max_overlap_words=5)
    assert script.text == "page one text\n\npage two was scanned\n\npage three"
    start, end = script.spans[PassageSlot(1, 0, 0)]
    assert script.text[start:end] == "page two was scanned"


def test_what_a_page_shows_but_a_reader_does_not_say_is_left_out_of_the_spoken_form() -> None:
    text = "The machine- encoded text of min- utes, cited twice [1][12-14], see https://example.org/a?b=c now."
    assert speakable(text) == "The machine-encoded text of min-utes, cited twice , see link now."
    assert speakable("well-known 3- 4 times") == "well-known 3- 4 times"  # real hyphens and ranges stay
