"""Transcripts: what speech recognition returns per chunk, the stitched whole, its subtitle
forms (WebVTT, SRT) and its speech passages (sentence windows for the index).

Pure data and functions (pydantic and the standard library): the step that stitches a Map's
chunk transcripts needs neither a decoder nor a model.

Artifacts, as the steps write them::

    chunk-0003.transcript.json   ChunkTranscript.model_dump_json()    (one per Map item)
    transcript.json              Transcript.model_dump_json()         (stitched)
    transcript.vtt / .srt        to_webvtt(t) / to_srt(t)
"""

from __future__ import annotations

import difflib
import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from medialens.domain.moments import Modality, Passage
from medialens.media.audio.chunking import AudioChunk


class Word(BaseModel):
    """One recognised word, in seconds from the start of the recording.

    ``text`` is verbatim as the model emits it, leading space included (Whisper marks word
    starts that way and writes Chinese or Japanese without spaces), so ``"".join`` of a
    segment's words is its text.
    """

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    probability: float = Field(ge=0, le=1)

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


class Segment(BaseModel):
    """A stretch of decoded text with Whisper's own confidence figures for it."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    avg_logprob: float = Field(description="Mean log-probability of the segment's tokens (<= 0).")
    no_speech_prob: float = Field(ge=0, le=1, description="The model's probability that its window held no speech.")
    compression_ratio: float | None = None
    temperature: float | None = None
    words: list[Word] = Field(default_factory=list)

    @property
    def confidence(self) -> float:
        return segment_confidence(self.avg_logprob, self.no_speech_prob)


class ChunkTranscript(BaseModel):
    """What a recognizer made of one chunk; times are absolute (the chunk's offset added)."""

    offset_s: float = Field(ge=0)
    duration_s: float = Field(ge=0)
    language: str | None = None
    language_probability: float | None = None
    segments: list[Segment] = Field(default_factory=list)
    model_version: str = ""

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]


class Transcript(BaseModel):
    """A recording's stitched transcript: ``transcript.json``."""

    language: str | None = None
    language_probability: float | None = None
    duration_s: float = Field(default=0.0, ge=0)
    model_version: str = Field(description="Recognizer that produced it (name@version+compute type).")
    segments: list[Segment] = Field(default_factory=list)

    @property
    def words(self) -> list[Word]:
        """Every word in order (each segment holds its own; this flattens them)."""
        return [word for segment in self.segments for word in segment.words]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments if segment.text)


def segment_confidence(avg_logprob: float, no_speech_prob: float) -> float:
    """A segment's confidence in [0, 1]: ``exp(avg_logprob) * (1 - no_speech_prob)``.

    ``exp(avg_logprob)`` is the geometric mean of the probabilities the decoder gave its tokens
    (1.0: every token certain; Whisper's own fallback threshold, avg_logprob -1.0, is 0.37);
    ``1 - no_speech_prob`` is the probability that the window held speech at all. Their product
    is high only for text that was both clearly decoded and really spoken; it sinks for
    hallucinations in music or silence, which tend to come with a high no-speech probability.
    """
    return max(0.0, min(1.0, math.exp(min(avg_logprob, 0.0)) * (1.0 - no_speech_prob)))


# --- stitching -------------------------------------------------------------------------------------

# Two words heard by both chunks are taken for the same word only this close in time: chunks
# align the same audio, so their timestamps differ by a few 20 ms frames, not by a word's length.
_SAME_WORD_TOLERANCE_S = 0.5
_NORMALISE = re.compile(r"[^\w']+")


def _normalise(text: str) -> str:
    return _NORMALISE.sub("", unicodedata.normalize("NFKC", text).casefold())


@dataclass(frozen=True)
class _Placed:
    """A word on its way into the stitched transcript, with the segment it came from."""

    word: Word
    chunk: int
    segment: int


def _segment_words(segment: Segment) -> list[Word]:
    """A segment's words; a segment Whisper could not align keeps its text as one word."""
    if segment.words or not segment.text.strip():
        return list(segment.words)
    return [
        Word(
            start=segment.start,
            end=max(segment.end, segment.start),
            text=segment.text if segment.text.startswith(" ") else f" {segment.text}",
            probability=segment_confidence(segment.avg_logprob, 0.0),
        )
    ]


def _clamped(word: Word, low: float, high: float) -> Word:
    start = min(max(word.start, low), high)
    end = min(max(word.end, start), high)
    if (start, end) == (word.start, word.end):
        return word
    return word.model_copy(update={"start": start, "end": end})


def _junction(tail: list[_Placed], head: list[_Placed], cut: float) -> tuple[int, int] | None:
    """Where to join two chunks' words that overlap in time.

    Aligns the words both chunks heard (normalised text, in order, with difflib) and picks the
    matched pair nearest the cut, preferring pairs inside runs of two or more matches (a lone
    "the" can match by chance). Returns (keep ``tail[:i + 1]``, keep ``head[j + 1:]``): the shared
    word is taken once, from the earlier chunk; words before it come from the earlier chunk and
    words after it from the later one, each from the chunk that heard them with more context.
    None when no word matches (then the caller cuts by time).
    """
    a = [_normalise(p.word.text) or f"\0a{i}" for i, p in enumerate(tail)]
    b = [_normalise(p.word.text) or f"\0b{j}" for j, p in enumerate(head)]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    best: tuple[bool, float, int, int] | None = None
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            i, j = block.a + k, block.b + k
            first, second = tail[i].word, head[j].word
            if abs(first.middle - second.middle) > _SAME_WORD_TOLERANCE_S:
                continue
            key = (block.size < 2, abs((first.middle + second.middle) / 2 - cut), i, j)
            if best is None or key[:2] < best[:2]:
                best = key
    return None if best is None else (best[2], best[3])


def stitch(chunk_transcripts: Sequence[ChunkTranscript], chunks: Sequence[AudioChunk]) -> Transcript:
    """One transcript from the chunks' transcripts (in chunk order, one per chunk; a chunk that
    was skipped for having no speech passes an empty ``ChunkTranscript``).

    Where two chunks do not overlap, each keeps all its words (clamped into its audio). Where a
    cut went through speech, the words both heard are aligned and each is kept once (see
    :func:`_junction`); with nothing to align, each keeps the words whose middle lies on its side
    of the cut. Segments cut by a junction keep their confidence figures and lose the dropped
    words; their text is rebuilt from the words kept.
    """
    if len(chunk_transcripts) != len(chunks):
        raise ValueError(f"{len(chunk_transcripts)} chunk transcripts for {len(chunks)} chunks")
    placed: list[_Placed] = []
    for c, (transcript, chunk) in enumerate(zip(chunk_transcripts, chunks, strict=True)):
        words = [
            _Placed(_clamped(word, chunk.start, chunk.end), c, s)
            for s, segment in enumerate(transcript.segments)
            for word in _segment_words(segment)
        ]
        previous = chunks[c - 1] if c else None
        if previous is None or previous.end <= chunk.start:
            placed.extend(words)
            continue
        cut = chunk.keep_start
        tail_from = len(placed)
        while tail_from > 0 and placed[tail_from - 1].word.end > chunk.start:
            tail_from -= 1
        head_to = 0
        while head_to < len(words) and words[head_to].word.start < previous.end:
            head_to += 1
        joint = _junction(placed[tail_from:], words[:head_to], cut)
        if joint is not None:
            placed = placed[: tail_from + joint[0] + 1]
            placed.extend(words[joint[1] + 1 :])
        else:
            placed = placed[:tail_from] + [p for p in placed[tail_from:] if p.word.middle < cut]
            placed.extend(p for p in words if p.word.middle >= cut)

    segments: list[Segment] = []
    last_start = 0.0
    i = 0
    while i < len(placed):
        key = (placed[i].chunk, placed[i].segment)
        j = i
        while j < len(placed) and (placed[j].chunk, placed[j].segment) == key:
            j += 1
        source = chunk_transcripts[key[0]].segments[key[1]]
        kept: list[Word] = []
        for p in placed[i:j]:
            # Monotonic starts, whatever the chunks' alignments said at a junction.
            word = p.word if p.word.start >= last_start else p.word.model_copy(update={"start": last_start})
            word = word if word.end >= word.start else word.model_copy(update={"end": word.start})
            last_start = word.start
            kept.append(word)
        whole = j - i == len(_segment_words(source))
        segments.append(
            source.model_copy(
                update={
                    "start": min(source.start, kept[0].start) if whole else kept[0].start,
                    "end": max(source.end, kept[-1].end) if whole else kept[-1].end,
                    "text": "".join(w.text for w in kept).strip(),
                    "words": kept,
                }
            )
        )
        i = j

    # The recording's language: the one most words were heard in, weighted by how sure each
    # chunk's detection was (a chunk of music may "detect" anything).
    votes: dict[str, float] = {}
    for transcript in chunk_transcripts:
        if transcript.language:
            weight = len(transcript.words) * (transcript.language_probability or 0.0)
            votes[transcript.language] = votes.get(transcript.language, 0.0) + weight + 1e-9
    language = max(votes, key=lambda lang: votes[lang]) if votes else None
    probabilities = [
        t.language_probability
        for t in chunk_transcripts
        if t.language == language and t.language_probability is not None and t.words
    ]
    versions = sorted({t.model_version for t in chunk_transcripts if t.model_version})
    return Transcript(
        language=language,
        language_probability=round(sum(probabilities) / len(probabilities), 4) if probabilities else None,
        duration_s=max((chunk.end for chunk in chunks), default=0.0),
        model_version=",".join(versions),
        segments=segments,
    )


# --- subtitles -------------------------------------------------------------------------------------

# Cue size: two lines of at most 42 characters (the common broadcast guideline) and 7 s.
CUE_MAX_CHARS = 84
CUE_LINE_CHARS = 42
CUE_MAX_S = 7.0
_CUE_MIN_S = 0.2


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _wrap(text: str, width: int = CUE_LINE_CHARS) -> list[str]:
    """Splits ``text`` into at most two lines near the middle when it is longer than ``width``."""
    if len(text) <= width:
        return [text]
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if not spaces:
        return [text]
    middle = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return [text[:middle].strip(), text[middle + 1 :].strip()]


def cues(transcript: Transcript) -> list[Cue]:
    """Subtitle cues: each segment, split at word boundaries into pieces of at most
    ``CUE_MAX_CHARS`` characters and ``CUE_MAX_S`` seconds."""
    out: list[Cue] = []
    for segment in transcript.segments:
        words = _segment_words(segment)
        piece: list[Word] = []
        for word in words:
            candidate = "".join(w.text for w in [*piece, word]).strip()
            if piece and (len(candidate) > CUE_MAX_CHARS or word.end - piece[0].start > CUE_MAX_S):
                out.append(Cue(piece[0].start, piece[-1].end, "".join(w.text for w in piece).strip()))
                piece = []
            piece.append(word)
        if piece:
            out.append(Cue(piece[0].start, piece[-1].end, "".join(w.text for w in piece).strip()))
    # Cues need end > start and starts in order; give instant words a short, visible duration
    # without running into the next cue.
    fixed: list[Cue] = []
    for k, cue in enumerate(out):
        if not cue.text:
            continue
        start = max(cue.start, fixed[-1].start if fixed else 0.0)
        following = out[k + 1].start if k + 1 < len(out) else math.inf
        end = max(cue.end, min(start + _CUE_MIN_S, following))
        end = end if end > start else start + 0.001
        fixed.append(Cue(start, end, cue.text))
    return fixed


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str, *, webvtt: bool) -> str:
    """One cue's text, single-spaced (a blank line would end the cue) and wrapped.

    WebVTT escapes ``& < >`` as entities, which its parsers decode. SubRip has no escapes: its
    readers (FFmpeg's among them) take ``<...>`` for markup and show entities literally, so angle
    brackets become the look-alike single guillemets there, and ``&`` stays as it is.
    """
    text = " ".join(text.split())
    text = html.escape(text, quote=False) if webvtt else text.replace("<", "\u2039").replace(">", "\u203a")
    return "\n".join(_wrap(text))


def to_webvtt(transcript: Transcript) -> str:
    """The transcript as a WebVTT file (``transcript.vtt``)."""
    lines = ["WEBVTT", ""]
    for n, cue in enumerate(cues(transcript), start=1):
        lines += [
            str(n),
            f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}",
            _cue_text(cue.text, webvtt=True),
            "",
        ]
    return "\n".join(lines)


def to_srt(transcript: Transcript) -> str:
    """The transcript as a SubRip file (``transcript.srt``)."""
    lines: list[str] = []
    for n, cue in enumerate(cues(transcript), start=1):
        lines += [
            str(n),
            f"{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}",
            _cue_text(cue.text, webvtt=False),
            "",
        ]
    return "\n".join(lines)


# --- speech passages -------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026][\"'\u201d\u2019)\]]*$")
_CLAUSE_END = re.compile(r"[,;:\u3001\uff0c][\"'\u201d\u2019)\]]*$")
# A pause this long ends a sentence even without punctuation (Whisper often omits it).
_SENTENCE_PAUSE_S = 1.0
# A window spanning a pause longer than this pays for it: long pauses separate topics.
_TOPIC_PAUSE_S = 2.0


@dataclass(frozen=True)
class _Sentence:
    words: tuple[tuple[Word, float], ...]  # (word, confidence of its segment)

    @property
    def start(self) -> float:
        return self.words[0][0].start

    @property
    def end(self) -> float:
        return self.words[-1][0].end


def _sentences(transcript: Transcript, max_s: float) -> list[_Sentence]:
    sentences: list[_Sentence] = []
    current: list[tuple[Word, float]] = []
    for segment in transcript.segments:
        confidence = segment.confidence
        for word in _segment_words(segment):
            if current and word.start - current[-1][0].end >= _SENTENCE_PAUSE_S:
                sentences.append(_Sentence(tuple(current)))
                current = []
            current.append((word, confidence))
            if _SENTENCE_END.search(word.text.strip()):
                sentences.append(_Sentence(tuple(current)))
                current = []
    if current:
        sentences.append(_Sentence(tuple(current)))
    # A sentence longer than a window may be is split into as few pieces as fit, of about equal
    # length (so no sliver is left over), each at a clause end if one lies within a second of the
    # even split, else at the nearest word boundary.
    pieces: list[_Sentence] = []
    for sentence in sentences:
        words = list(sentence.words)
        while words and words[-1][0].end - words[0][0].start > max_s:
            span = words[-1][0].end - words[0][0].start
            goal = words[0][0].start + span / math.ceil(span / max_s)
            fits = [k for k in range(1, len(words)) if words[k - 1][0].end - words[0][0].start <= max_s] or [1]

            def score(k: int, goal: float = goal, words: list[tuple[Word, float]] = words) -> float:
                clause = _CLAUSE_END.search(words[k - 1][0].text.strip()) is not None
                return abs(words[k - 1][0].end - goal) - (1.0 if clause else 0.0)

            at = min(fits, key=score)
            pieces.append(_Sentence(tuple(words[:at])))
            words = words[at:]
        if words:
            pieces.append(_Sentence(tuple(words)))
    return pieces


def speech_passages(transcript: Transcript, min_s: float = 5.0, max_s: float = 20.0) -> list[Passage]:
    """Sentence windows of ``min_s``..``max_s`` seconds (first word's start to last word's end):
    the speech moments the index holds.

    Sentences end at ``. ! ?`` (and CJK stops) or at a pause of a second or more; a sentence
    longer than ``max_s`` is split at a clause end or a word. Consecutive sentences are grouped
    by dynamic programming: every window within bounds, lengths near the middle of the range,
    and long pauses (topic changes) kept between windows rather than inside them. Only when the
    speech cannot fill ``min_s`` (a short recording, an isolated remark between long silences
    that cannot join a neighbour) is a window shorter.

    ``confidence`` is the word-weighted mean of the windows' segments'
    :func:`segment_confidence`; ``start``/``end`` are seconds; modality is SPEECH.
    """
    if not 0 < min_s <= max_s:
        raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
    sentences = _sentences(transcript, max_s)
    n = len(sentences)
    if not n:
        return []
    target = (min_s + max_s) / 2

    def cost(i: int, j: int) -> float:
        """Cost of one window holding sentences[i:j]; inf when longer than max_s."""
        duration = sentences[j - 1].end - sentences[i].start
        if duration > max_s + 1e-9 and j - i > 1:
            return math.inf  # (one piece longer than max_s is a single word: it stands alone)
        penalty = ((duration - target) / max_s) ** 2
        if duration < min_s - 1e-9:
            penalty += 100.0 + (min_s - duration)  # allowed only where nothing else fits
        for k in range(i + 1, j):
            pause = sentences[k].start - sentences[k - 1].end
            if pause > _TOPIC_PAUSE_S:
                penalty += 10.0 * (pause - _TOPIC_PAUSE_S)
        return penalty

    best = [0.0] + [math.inf] * n
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            if sentences[j - 1].end - sentences[i].start > max_s + 1e-9 and i < j - 1:
                break  # earlier starts only get longer
            total = best[i] + cost(i, j)
            if total < best[j]:
                best[j], back[j] = total, i
    bounds: list[tuple[int, int]] = []
    j = n
    while j > 0:
        bounds.append((back[j], j))
        j = back[j]
    bounds.reverse()

    passages = []
    for index, (i, j) in enumerate(bounds):
        words = [pair for sentence in sentences[i:j] for pair in sentence.words]
        text = "".join(word.text for word, _ in words).strip()
        passages.append(
            Passage(
                index=index,
                text=" ".join(text.split()),
                modality=Modality.SPEECH,
                start=round(words[0][0].start, 3),
                end=round(words[-1][0].end, 3),
                confidence=round(sum(conf for _, conf in words) / len(words), 4),
            )
        )
    return passages
