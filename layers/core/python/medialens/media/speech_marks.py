"""Text to be spoken, cut into sentences with their character offsets, and the speech marks of
synthesised sentences: exact sentence times (each sentence is synthesised alone) and word times
placed inside the sentence's voiced span in proportion to how long each word takes to say."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from medialens.domain.speech import MarkType, SpeechMark
from medialens.media.audio.samples import FloatAudio

# A sentence ends at terminal punctuation (and closing quotes or brackets) followed by space, or
# at a blank line or a line break (headings and list items end without a full stop).
_BOUNDARY = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f])[\"')\]\u201d\u2019]*\s+|\n\s*")
# Words these end with a full stop that does not end a sentence.
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "fig",
        "approx",
        "dept",
        "inc",
        "ltd",
        "co",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
_WORD = re.compile(r"\S+")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
# A sentence longer than this is said in parts (the voice takes a bounded number of phonemes).
MAX_SENTENCE_CHARACTERS = 400
# Silence between sentences in a narration, and the fade that keeps a cut from clicking.
SENTENCE_GAP_S = 0.25
FADE_S = 0.005
# Below this share of the sentence's peak, a sample at either end is silence.
_VOICED_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class TextSpan:
    start: int
    end: int
    text: str


def split_sentences(text: str, max_characters: int = MAX_SENTENCE_CHARACTERS) -> list[TextSpan]:
    """The sentences of ``text`` with their offsets; whitespace between them is not in any span."""
    spans: list[TextSpan] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        candidate = text[start : match.start()]
        last = candidate.rsplit(None, 1)[-1].rstrip(".").lower() if candidate.strip() else ""
        if "\n" not in match.group() and last in _ABBREVIATIONS:
            continue
        spans += _bounded(_trimmed(text, start, match.start()), max_characters)
        start = match.end()
    spans += _bounded(_trimmed(text, start, len(text)), max_characters)
    return [span for span in spans if span.text]


def _trimmed(text: str, start: int, end: int) -> TextSpan:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    stripped = piece.strip()
    return TextSpan(start + lead, start + lead + len(stripped), stripped)


def _bounded(span: TextSpan, max_characters: int) -> Iterator[TextSpan]:
    """A sentence over ``max_characters`` split after commas, else at spaces."""
    if len(span.text) <= max_characters:
        yield span
        return
    offset = 0
    while offset < len(span.text):
        remaining = span.text[offset:]
        if len(remaining) <= max_characters:
            cut = len(remaining)
        else:
            window = remaining[:max_characters]
            breaks = [m.end() for m in _CLAUSE_BREAK.finditer(window)] or [
                m.start() for m in re.finditer(r"\s", window)
            ]
            cut = max((b for b in breaks if b > max_characters // 3), default=max_characters)
        piece = _trimmed(span.text, offset, offset + cut)
        if piece.text:
            yield TextSpan(span.start + piece.start, span.start + piece.end, piece.text)
        offset += cut


# What a page shows but a reader does not say: the space after a hyphen at a line end
# ("machine- encoded", "min- utes": the hyphen stays, as nothing tells a compound from a broken
# word), citation markers ("[12]") and addresses, which are read as "link".
_LINE_BREAK_HYPHEN = re.compile(r"(?<=[^\W\d_])- (?=[a-z])")
_CITATION = re.compile(r"\[\d+(?:[,\u2013-]\s*\d+)*\]")
_ADDRESS = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)


def speakable(text: str) -> str:
    """``text`` as a reader would say it (what the voice is given and the transcript is checked
    against); speech marks keep pointing at the words as written."""
    text = _LINE_BREAK_HYPHEN.sub("-", text)
    text = _CITATION.sub("", text)
    return _ADDRESS.sub("link", text)


def _speaking_weight(word: str) -> float:
    """Roughly how long a word takes to say: its letters, digits counting triple (numbers are
    said in words), and a pause after a clause mark."""
    letters = sum(ch.isalpha() for ch in word)
    digits = sum(ch.isdigit() for ch in word)
    pause = 3.0 if word[-1:] in ",;:" else 0.0
    return 1.0 + letters + 3.0 * digits + pause


def voiced_span(samples: FloatAudio) -> tuple[int, int]:
    """[first, last) sample of the voiced part (leading and trailing silence left out)."""
    if not len(samples):
        return 0, 0
    magnitude = np.abs(samples)
    loud = np.flatnonzero(magnitude >= _VOICED_SHARE * float(magnitude.max()))
    if not len(loud):
        return 0, len(samples)
    return int(loud[0]), int(loud[-1]) + 1


def sentence_marks(sentence: TextSpan, samples: FloatAudio, sample_rate: int, offset_s: float) -> list[SpeechMark]:
    """The sentence mark and its word marks for one synthesised sentence starting at ``offset_s``."""
    if not len(samples):
        return []
    begin_ms = round(offset_s * 1000)
    end_ms = round((offset_s + len(samples) / sample_rate) * 1000)
    marks = [
        SpeechMark(
            time=begin_ms,
            end_time=end_ms,
            type=MarkType.SENTENCE,
            start=sentence.start,
            end=sentence.end,
            value=sentence.text,
        )
    ]
    words = list(_WORD.finditer(sentence.text))
    first, last = voiced_span(samples)
    voiced_start = offset_s + first / sample_rate
    voiced_seconds = (last - first) / sample_rate
    weights = np.array([_speaking_weight(word.group()) for word in words], dtype=np.float64)
    edges = np.concatenate([[0.0], np.cumsum(weights)]) / max(float(weights.sum()), 1e-9)
    for number, word in enumerate(words):
        begin = voiced_start + edges[number] * voiced_seconds
        end = voiced_start + edges[number + 1] * voiced_seconds
        marks.append(
            SpeechMark(
                time=round(begin * 1000),
                end_time=max(round(begin * 1000), min(round(end * 1000), end_ms)),
                type=MarkType.WORD,
                start=sentence.start + word.start(),
                end=sentence.start + word.end(),
                value=word.group(),
            )
        )
    return marks


def faded(samples: FloatAudio, sample_rate: int) -> FloatAudio:
    """The sentence with a few milliseconds of fade at both ends, so joining sentences cannot click."""
    n = min(len(samples) // 2, round(FADE_S * sample_rate))
    if n <= 0:
        return samples
    out = np.array(samples, dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out
