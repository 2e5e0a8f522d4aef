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
from collections.abc import Iterable, Iterator, Sequence
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
    model: str | None = Field(
        default=None,
        description="The recognizer that made this segment where a transcript mixes models (a cascade: the fast "
        "model's segments and the full model's re-runs); None: the transcript's model_version.",
    )

    @property
    def confidence(self) -> float:
        return segment_confidence(self.avg_logprob, self.no_speech_prob)

    @property
    def word_probability(self) -> float:
        """The mean probability of the segment's words: the signal a cascade routes on (see
        :func:`plan_fallback`); ``exp(avg_logprob)`` for a segment Whisper could not align."""
        if self.words:
            return sum(word.probability for word in self.words) / len(self.words)
        return math.exp(min(self.avg_logprob, 0.0))


class Fallback(BaseModel):
    """What a cascade sent from its fast model to its full model in one chunk (or, ``plus``, in
    several). The fallback rate is the share of the audio the full model transcribed again
    (``rerun_seconds / seconds``): what the fallback cost, whether it re-ran unsure segments or
    speech the fast model wrote nothing for."""

    fast_model: str
    full_model: str
    min_word_probability: float = Field(description="Segments whose mean word probability is below this were re-run.")
    segments: int = Field(default=0, ge=0, description="Segments with text the fast model made.")
    rerun_segments: int = Field(default=0, ge=0, description="Of those, the ones the full model transcribed again.")
    unheard: int = Field(default=0, ge=0, description="Stretches of detected speech the fast model wrote nothing for.")
    unheard_seconds: float = Field(default=0.0, ge=0, description="Their length: the full model transcribed them.")
    seconds: float = Field(default=0.0, ge=0, description="Audio the fast model transcribed.")
    rerun_seconds: float = Field(
        default=0.0, ge=0, description="Audio the full model transcribed again (the margins included)."
    )
    whole_chunks: int = Field(default=0, ge=0, description="Chunks re-run whole: too much of them was unsure.")
    spans: list[tuple[float, float]] = Field(
        default_factory=list, description="What the full model heard: absolute (start, end) seconds."
    )

    @property
    def rate(self) -> float:
        return min(1.0, self.rerun_seconds / self.seconds) if self.seconds else 0.0

    def plus(self, *others: Fallback) -> Fallback:
        """This record and ``others`` summed (several chunks' figures; the first one's models)."""
        every = (self, *others)
        return self.model_copy(
            update={
                "segments": sum(f.segments for f in every),
                "rerun_segments": sum(f.rerun_segments for f in every),
                "unheard": sum(f.unheard for f in every),
                "unheard_seconds": round(sum(f.unheard_seconds for f in every), 3),
                "seconds": round(sum(f.seconds for f in every), 3),
                "rerun_seconds": round(sum(f.rerun_seconds for f in every), 3),
                "whole_chunks": sum(f.whole_chunks for f in every),
                "spans": [span for f in every for span in f.spans],
            }
        )


class ChunkTranscript(BaseModel):
    """What a recognizer made of one chunk; times are absolute (the chunk's offset added)."""

    offset_s: float = Field(ge=0)
    duration_s: float = Field(ge=0)
    language: str | None = None
    language_probability: float | None = None
    segments: list[Segment] = Field(default_factory=list)
    model_version: str = Field(
        default="", description="The recognizers that made its segments (name@version+compute type), comma-separated."
    )
    fallback: Fallback | None = Field(default=None, description="A cascade's record: what it re-ran, and how much.")

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]


class Transcript(BaseModel):
    """A recording's stitched transcript: ``transcript.json``."""

    language: str | None = None
    language_probability: float | None = None
    duration_s: float = Field(default=0.0, ge=0)
    model_version: str = Field(
        description="The recognizers that produced it (name@version+compute type), comma-separated: a cascade's "
        "fast model first, its full model when it re-ran anything."
    )
    segments: list[Segment] = Field(default_factory=list)
    fallbacks: list[Fallback] = Field(
        default_factory=list, description="The cascade's record of each chunk it transcribed, in chunk order."
    )

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

    segments = _rebuilt([t.segments for t in chunk_transcripts], placed)

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
    # The models that made a segment kept: a cascade's fast model first, then in the order the
    # chunks name them; with no segment at all, every model the chunks name.
    used = {
        model
        for c, segment in _sources(chunk_transcripts, placed)
        for model in (segment.model or chunk_transcripts[c].model_version).split(",")
    }
    fast = [t.fallback.fast_model for t in chunk_transcripts if t.fallback is not None]
    named = _unique([*fast, *(m for t in chunk_transcripts for m in t.model_version.split(",") if m)])
    versions = [m for m in named if m in used] or named
    return Transcript(
        language=language,
        language_probability=round(sum(probabilities) / len(probabilities), 4) if probabilities else None,
        duration_s=max((chunk.end for chunk in chunks), default=0.0),
        model_version=",".join(versions),
        segments=segments,
        fallbacks=[t.fallback for t in chunk_transcripts if t.fallback is not None],
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _sources(chunk_transcripts: Sequence[ChunkTranscript], placed: Sequence[_Placed]) -> Iterator[tuple[int, Segment]]:
    """(chunk, segment) of every segment that kept a word."""
    for chunk, segment in dict.fromkeys((p.chunk, p.segment) for p in placed):
        yield chunk, chunk_transcripts[chunk].segments[segment]


def _rebuilt(sources: Sequence[Sequence[Segment]], placed: Sequence[_Placed]) -> list[Segment]:
    """Segments from the words kept, in order: each run of words from one source segment
    (``sources[p.chunk][p.segment]``) becomes a copy of it holding those words. A segment kept
    whole keeps its span; one cut keeps its confidence figures and the span of its words, its text
    rebuilt from them. Starts are made monotonic, whatever the sources' alignments said where
    they meet."""
    segments: list[Segment] = []
    last_start = 0.0
    i = 0
    while i < len(placed):
        key = (placed[i].chunk, placed[i].segment)
        j = i
        while j < len(placed) and (placed[j].chunk, placed[j].segment) == key:
            j += 1
        source = sources[key[0]][key[1]]
        kept: list[Word] = []
        for p in placed[i:j]:
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
    return segments


# --- cascade: a fast model's unsure segments re-run by the full model ------------------------------


@dataclass(frozen=True)
class FallbackSpan:
    """A run of the fast model's unsure segments (``first``..``last``, indices into its chunk
    transcript's segments; ``last < first`` when the run is only speech it wrote nothing for, whose
    words go before segment ``first``), the stretch whose words the full model's replace
    (``start``..``end``: from mid-pause to mid-pause with the kept neighbours, or the chunk's edge),
    and the audio the full model hears for it (``window_start``..``window_end``: the stretch with a
    margin on each side, within the chunk), all in absolute seconds. ``unheard``/``unheard_s``:
    the stretches of detected speech with no word of the fast model's it covers."""

    first: int
    last: int
    start: float
    end: float
    window_start: float
    window_end: float
    unheard: int = 0
    unheard_s: float = 0.0

    @property
    def window_s(self) -> float:
        return self.window_end - self.window_start


def _extent(segment: Segment) -> tuple[float, float]:
    words = _segment_words(segment)
    return words[0].start, words[-1].end


# Whisper hears 30 s at a time: a window a second longer costs a second encoder pass.
WHISPER_WINDOW_S = 30.0
# Whisper's own sign of a failed decode (its compression_ratio_threshold): text that zlib squeezes
# this much repeats itself. A repetition loop keeps a high word probability (tiny.en looping on
# speech under -6 dB white noise: 0.85), so it is caught by this, not by the probability; no
# segment that was not a loop came above 2.2 in scripts/bench_speech.py's clean and noisy speech.
WHISPER_MAX_COMPRESSION_RATIO = 2.4
# Detected speech with no word within UNHEARD_PAD_S of it, this long or longer, is speech the fast
# model skipped: tiny.en's batched decoding can end a 30 s window early, confidently, after a long
# pause (two sentences of six after a change of voice in the cascade's integration test), and
# drops whole sentences under heavy noise. A word's timestamps are rough to a few tenths of a second.
MIN_UNHEARD_S = 1.0
UNHEARD_PAD_S = 0.3


def unheard(
    transcript: ChunkTranscript,
    speech: Sequence[tuple[float, float]],
    *,
    min_s: float = MIN_UNHEARD_S,
    pad_s: float = UNHEARD_PAD_S,
) -> list[tuple[float, float]]:
    """The stretches of ``speech`` (absolute (start, end) seconds, from a voice detector) at least
    ``min_s`` long with no word of ``transcript`` within ``pad_s`` of them."""
    covered = sorted((w.start - pad_s, w.end + pad_s) for s in transcript.segments for w in _segment_words(s))
    found = []
    for start, end in speech:
        cursor = start
        for low, high in covered:
            if high <= cursor or low >= end:
                continue
            if low - cursor >= min_s:
                found.append((round(cursor, 3), round(low, 3)))
            cursor = max(cursor, high)
        if end - cursor >= min_s:
            found.append((round(cursor, 3), round(end, 3)))
    return found


@dataclass(frozen=True)
class _Item:
    """A segment with words (``segment`` its index) or a stretch of unheard speech (None)."""

    start: float
    end: float
    segment: int | None
    unsure: bool


def plan_fallback(
    transcript: ChunkTranscript,
    min_word_probability: float,
    *,
    margin_s: float,
    whole_chunk_share: float,
    speech: Sequence[tuple[float, float]] = (),
    max_window_s: float = WHISPER_WINDOW_S,
    max_compression_ratio: float = WHISPER_MAX_COMPRESSION_RATIO,
) -> list[FallbackSpan]:
    """What the full model should re-transcribe of the fast model's ``transcript`` of one chunk.

    A segment (with text) is unsure when its mean word probability is below
    ``min_word_probability`` (:attr:`Segment.word_probability`), when its text repeats itself (its
    compression ratio is above ``max_compression_ratio``), or when :func:`unheard` speech of
    ``speech`` lies within it; unheard speech between segments is unsure on its own. Consecutive
    unsure ones make one span. Its window has ``margin_s`` on each side, less where that would take
    a stretch that fits in ``max_window_s`` past it. When the spans' windows would cover
    ``whole_chunk_share`` of the chunk or more, the whole chunk is one span instead: it costs about
    as much, and the full model hears every word in its context with no junction to make. Empty
    when everything is sure.
    """
    low, high = transcript.offset_s, transcript.offset_s + transcript.duration_s
    segments = transcript.segments
    items = []
    for i, segment in enumerate(segments):
        if _segment_words(segment):
            unsure = segment.word_probability < min_word_probability
            unsure = unsure or (segment.compression_ratio or 0.0) > max_compression_ratio
            items.append(_Item(*_extent(segment), segment=i, unsure=unsure))
    gaps: list[tuple[float, float]] = []
    for start, end in unheard(transcript, speech):
        middle = (start + end) / 2
        inside = next((k for k, item in enumerate(items) if item.start <= middle <= item.end), None)
        if inside is None:
            gaps.append((start, end))
        else:
            items[inside] = _Item(items[inside].start, items[inside].end, items[inside].segment, unsure=True)
    items = sorted([*items, *(_Item(start, end, None, True) for start, end in gaps)], key=lambda item: item.start)
    if not any(item.unsure for item in items):
        return []
    runs: list[list[int]] = []
    for k, item in enumerate(items):
        if item.unsure:
            if runs and runs[-1][-1] == k - 1:
                runs[-1].append(k)
            else:
                runs.append([k])
    spans = []
    for run in runs:
        first_item, last_item = items[run[0]], items[run[-1]]
        start = (items[run[0] - 1].end + first_item.start) / 2 if run[0] > 0 else low
        end = (last_item.end + items[run[-1] + 1].start) / 2 if run[-1] < len(items) - 1 else high
        start, end = min(max(start, low), high), max(min(end, high), low)
        end = max(end, start)
        margin = min(margin_s, max(0.0, (max_window_s - (end - start)) / 2))
        indices = [index for k in run if (index := items[k].segment) is not None]
        after = [index for item in items[run[-1] + 1 :] if (index := item.segment) is not None]
        following = after[0] if after else len(segments)
        first, last = (min(indices), max(indices)) if indices else (following, following - 1)
        missed = [items[k] for k in run if items[k].segment is None]
        spans.append(
            FallbackSpan(
                first=first,
                last=last,
                start=round(start, 3),
                end=round(end, 3),
                window_start=round(max(low, start - margin), 3),
                window_end=round(min(high, end + margin), 3),
                unheard=len(missed),
                unheard_s=round(sum(item.end - item.start for item in missed), 3),
            )
        )
    if sum(span.window_s for span in spans) >= whole_chunk_share * transcript.duration_s - 1e-6:
        spoken = [index for item in items if (index := item.segment) is not None]
        first, last = (spoken[0], spoken[-1]) if spoken else (len(segments), len(segments) - 1)
        unheard_s = round(sum(span.unheard_s for span in spans), 3)
        return [FallbackSpan(first, last, low, high, low, high, sum(span.unheard for span in spans), unheard_s)]
    return spans


def splice(
    fast: ChunkTranscript,
    spans: Sequence[FallbackSpan],
    reruns: Sequence[ChunkTranscript],
    *,
    full_model: str,
    min_word_probability: float,
    margin_s: float,
) -> ChunkTranscript:
    """The fast model's chunk transcript with each span's segments replaced by what the full model
    (``full_model``) heard in the span's window (``reruns[k]`` for ``spans[k]``, in time order,
    absolute times).

    Of a re-run, the words whose middle lies in the span's stretch replace the fast model's
    segments there. At each edge, where the window's margin let both models hear the same words,
    those words are aligned as the chunk stitch aligns them (:func:`_junction`) and each is kept
    once, the shared word from the kept segment; with nothing to align, the cut is the stretch's
    edge (mid-pause). Every segment names the model that made it, ``model_version`` the models
    that made any, and ``fallback`` records what was re-run.
    """
    if len(spans) != len(reruns):
        raise ValueError(f"{len(reruns)} re-runs for {len(spans)} spans")
    fast_model = fast.model_version
    sources: list[list[Segment]] = [fast.segments, *(r.segments for r in reruns)]
    placed: list[_Placed] = []
    taken: set[tuple[int, int]] = set()  # (segment, word) of the fast model's kept words a junction replaced
    s = k = 0
    while s < len(fast.segments) or k < len(spans):
        if k == len(spans) or s < spans[k].first:
            placed.extend(
                _Placed(word, 0, s) for w, word in enumerate(_segment_words(fast.segments[s])) if (s, w) not in taken
            )
            s += 1
            continue
        span = spans[k]
        heard = [
            _Placed(word, k + 1, n) for n, segment in enumerate(reruns[k].segments) for word in _segment_words(segment)
        ]
        # The left edge: the fast model's kept words in the window's margin against the re-run's first words.
        begin = next((i for i, p in enumerate(heard) if p.word.middle >= span.start), len(heard))
        tail_from = len(placed)
        while tail_from > 0 and placed[tail_from - 1].word.end > span.window_start:
            tail_from -= 1
        head_to = next((i for i, p in enumerate(heard) if p.word.start >= span.start + margin_s), len(heard))
        joint = _junction(placed[tail_from:], heard[:head_to], span.start) if tail_from < len(placed) else None
        if joint is not None:
            placed = placed[: tail_from + joint[0] + 1]
            begin = joint[1] + 1
        # The right edge: the re-run's last words against the fast model's kept words that follow
        # (up to the next span).
        end = next((i for i, p in enumerate(heard) if i >= begin and p.word.middle >= span.end), len(heard))
        following: list[tuple[int, int, _Placed]] = []
        bound = spans[k + 1].first if k + 1 < len(spans) else len(fast.segments)
        for n in range(span.last + 1, bound):
            words = _segment_words(fast.segments[n])
            following.extend(
                (n, w, _Placed(word, 0, n)) for w, word in enumerate(words) if word.start < span.window_end
            )
        tail_from = begin
        while tail_from < len(heard) and heard[tail_from].word.end <= span.end - margin_s:
            tail_from += 1
        joint = _junction(heard[tail_from:], [p for *_, p in following], span.end) if following else None
        if joint is not None:  # the shared word stays the kept segment's
            end = max(begin, tail_from + joint[0])
            taken.update((n, w) for n, w, _ in following[: joint[1]])
        placed.extend(heard[begin:end])
        s = max(s, span.last + 1)
        k += 1

    segments = _rebuilt(sources, placed)
    models = [fast_model, full_model]
    segments = [
        segment.model_copy(update={"model": models[min(p.chunk, 1)]}) for segment, p in _firsts(segments, placed)
    ]
    used = [m for m in models if m and any(segment.model == m for segment in segments)]
    spoken = [segment for segment in fast.segments if _segment_words(segment)]
    whole = len(spans) == 1 and spans[0].window_s >= fast.duration_s - 1e-6 and fast.duration_s > 0
    fallback = Fallback(
        fast_model=fast_model,
        full_model=full_model,
        min_word_probability=min_word_probability,
        segments=len(spoken),
        rerun_segments=sum(
            1 for span in spans for n in range(span.first, span.last + 1) if _segment_words(fast.segments[n])
        ),
        unheard=sum(span.unheard for span in spans),
        unheard_seconds=round(sum(span.unheard_s for span in spans), 3),
        seconds=round(fast.duration_s, 3),
        rerun_seconds=round(sum(span.window_s for span in spans), 3),
        whole_chunks=int(whole),
        spans=[(span.window_start, span.window_end) for span in spans],
    )
    return fast.model_copy(
        update={"segments": segments, "model_version": ",".join(used) or fast_model, "fallback": fallback}
    )


def _firsts(segments: Sequence[Segment], placed: Sequence[_Placed]) -> Iterator[tuple[Segment, _Placed]]:
    """Each rebuilt segment with the first placed word it holds (which tells its source)."""
    i = 0
    for segment in segments:
        yield segment, placed[i]
        i += len(segment.words)


def models_between(transcript: Transcript, start: float, end: float) -> str:
    """The recognizers that made the words in [start, end] (a speech passage), in the order the
    transcript names them; the transcript's ``model_version`` when its segments do not say."""
    inside = [s for s in transcript.segments if any(start <= w.middle <= end for w in _segment_words(s))]
    if not inside or any(s.model is None for s in inside):
        return transcript.model_version
    used = {s.model for s in inside}
    named = [m for m in transcript.model_version.split(",") if m in used]
    return ",".join(named + sorted(m for m in used if m and m not in named))


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
