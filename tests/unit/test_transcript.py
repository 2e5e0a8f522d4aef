"""Stitching chunk transcripts, subtitle formats and speech passages, on synthetic words."""

from __future__ import annotations

import math
import re

import pytest

from medialens.domain.moments import Modality
from medialens.media.audio.chunking import AudioChunk
from medialens.media.transcript import (
    ChunkTranscript,
    Segment,
    Transcript,
    Word,
    cues,
    segment_confidence,
    speech_passages,
    stitch,
    to_srt,
    to_webvtt,
)

pytestmark = pytest.mark.unit


def _truth(count: int, *, step: float = 0.5, texts: list[str] | None = None) -> list[Word]:
    """Words every ``step`` seconds, each 0.4 s long."""
    texts = texts or [f"w{k}" for k in range(count)]
    return [Word(start=k * step, end=k * step + 0.4, text=f" {t}", probability=0.9) for k, t in enumerate(texts)]


def _heard(
    words: list[Word], chunk: AudioChunk, *, shift: float, garble_edges: bool = True, per_segment: int = 6
) -> ChunkTranscript:
    """What a recognizer hears of ``words`` in ``chunk``: shifted timestamps, and the words cut
    by the chunk's edges garbled (Whisper guesses at half a word)."""
    inside = [w for w in words if w.end > chunk.start and w.start < chunk.end]
    heard = []
    for word in inside:
        cut_by_edge = word.start < chunk.start or word.end > chunk.end
        text = " ???" if garble_edges and cut_by_edge else word.text
        start = max(chunk.start, word.start + shift)
        heard.append(Word(start=start, end=max(start, word.end + shift), text=text, probability=0.8))
    segments = [
        Segment(
            start=group[0].start,
            end=group[-1].end,
            text="".join(w.text for w in group).strip(),
            avg_logprob=-0.2 - 0.01 * n,
            no_speech_prob=0.05,
            words=group,
        )
        for n, group in enumerate(heard[i : i + per_segment] for i in range(0, len(heard), per_segment))
    ]
    return ChunkTranscript(
        offset_s=chunk.start,
        duration_s=chunk.duration,
        language="en",
        language_probability=1.0,
        segments=segments,
        model_version="whisper-test@1+int8",
    )


def _chunk(index: int, start: float, end: float, keep_start: float, keep_end: float) -> AudioChunk:
    return AudioChunk(index=index, start=start, end=end, keep_start=keep_start, keep_end=keep_end)


def _texts(transcript: Transcript) -> list[str]:
    return [w.text.strip() for w in transcript.words]


# Three chunks, both cuts through speech: keep [0,10) [10,20) [20,30), 1.5 s overlap each side.
OVERLAPPING = [
    _chunk(0, 0.0, 11.5, 0.0, 10.0),
    _chunk(1, 8.5, 21.5, 10.0, 20.0),
    _chunk(2, 18.5, 30.0, 20.0, 30.0),
]


@pytest.mark.parametrize("shifts", [(0.0, 0.0, 0.0), (0.06, -0.08, 0.1), (-0.12, 0.12, -0.04)])
def test_overlapping_chunks_keep_every_word_once(shifts: tuple[float, float, float]) -> None:
    truth = _truth(60)
    heard = [_heard(truth, chunk, shift=shift) for chunk, shift in zip(OVERLAPPING, shifts, strict=True)]
    # Each chunk alone holds duplicates of its neighbours' words, and garbled edge words.
    assert sum(len(t.words) for t in heard) > len(truth)
    stitched = stitch(heard, OVERLAPPING)
    assert _texts(stitched) == [w.text.strip() for w in truth]
    starts = [w.start for w in stitched.words]
    assert starts == sorted(starts)
    for segment in stitched.segments:
        assert segment.text == "".join(w.text for w in segment.words).strip()
        assert segment.start <= segment.words[0].start and segment.end >= segment.words[-1].end
    assert stitched.model_version == "whisper-test@1+int8" and stitched.language == "en"
    assert stitched.duration_s == 30.0


def test_repeated_words_at_the_cut_are_neither_doubled_nor_lost() -> None:
    # "no" eight times across the first cut: text alone cannot tell which "no" is which.
    texts = [f"w{k}" for k in range(60)]
    texts[16:24] = ["no"] * 8
    truth = _truth(60, texts=texts)
    heard = [_heard(truth, chunk, shift=s) for chunk, s in zip(OVERLAPPING, (0.05, -0.05, 0.0), strict=True)]
    assert _texts(stitch(heard, OVERLAPPING)) == texts


def test_a_word_the_later_chunk_missed_is_kept_from_the_earlier_one() -> None:
    truth = _truth(60)
    heard = [_heard(truth, chunk, shift=0.0) for chunk in OVERLAPPING]
    # The second chunk drops w17 (before the cut, inside the overlap): the stitch takes the
    # first chunk's words up to the shared word nearest the cut, so w17 survives.
    second = heard[1]
    heard[1] = second.model_copy(
        update={
            "segments": [
                s.model_copy(update={"words": [w for w in s.words if w.text != " w17"]}) for s in second.segments
            ]
        }
    )
    assert _texts(stitch(heard, OVERLAPPING)) == [f"w{k}" for k in range(60)]


def test_without_shared_words_the_cut_decides_by_time() -> None:
    truth = _truth(60)
    first = _heard(truth, OVERLAPPING[0], shift=0.0)
    # The second chunk heard something else entirely in the overlap (nothing aligns).
    second_truth = [w.model_copy(update={"text": f" x{k}"}) if w.start < 12 else w for k, w in enumerate(truth)]
    second = _heard(second_truth, OVERLAPPING[1], shift=0.0)
    stitched = stitch([first, second], OVERLAPPING[:2])
    words = stitched.words
    before = [w for w in words if w.middle < 10.0]
    after = [w for w in words if w.middle >= 10.0]
    assert all(not w.text.startswith(" x") for w in before)  # the first chunk's, up to the cut
    assert after[0].text == " x20"  # the second chunk's from the cut on (20 * 0.5 s = 10 s)
    # Nothing twice: every 0.5 s slot holds one word.
    assert len({round(w.start * 2) for w in words}) == len(words)


def test_chunks_cut_in_silence_keep_all_their_words() -> None:
    chunks = [_chunk(0, 0.0, 10.0, 0.0, 10.0), _chunk(1, 10.0, 20.0, 10.0, 20.0)]
    words = _truth(40)
    # Timestamps a little outside the chunk (Whisper overshoots into silence) are clamped.
    first = _heard(words, chunks[0], shift=0.0, garble_edges=False)
    last = first.segments[-1]
    overshoot = last.words[-1].model_copy(update={"end": 10.3})
    first.segments[-1] = last.model_copy(update={"words": [*last.words[:-1], overshoot]})
    second = _heard(words, chunks[1], shift=0.0, garble_edges=False)
    stitched = stitch([first, second], chunks)
    assert _texts(stitched) == [f"w{k}" for k in range(40)]
    assert max(w.end for w in stitched.words if w.start < 10) <= 10.0


def test_skipped_chunks_languages_and_errors() -> None:
    chunks = [_chunk(0, 0.0, 10.0, 0.0, 10.0), _chunk(1, 10.0, 20.0, 10.0, 20.0), _chunk(2, 20.0, 30.0, 20.0, 30.0)]
    words = _truth(60)
    german = _heard(words, chunks[2], shift=0.0).model_copy(update={"language": "de", "language_probability": 0.6})
    stitched = stitch(
        [_heard(words, chunks[0], shift=0.0), ChunkTranscript(offset_s=10.0, duration_s=10.0), german], chunks
    )
    assert _texts(stitched)[0] == "w0" and len(stitched.words) == 20 + 20  # chunk 1 skipped (silence)
    assert stitched.language == "en" and stitched.language_probability == 1.0
    with pytest.raises(ValueError, match="2 chunk transcripts for 3 chunks"):
        stitch([ChunkTranscript(offset_s=0, duration_s=1)] * 2, chunks)
    assert stitch([], []).segments == []


def test_segment_confidence_mapping() -> None:
    assert segment_confidence(0.0, 0.0) == 1.0
    assert segment_confidence(-1.0, 0.0) == pytest.approx(math.exp(-1))
    assert segment_confidence(-0.1, 0.5) == pytest.approx(math.exp(-0.1) * 0.5)
    assert segment_confidence(-5.0, 0.99) < 0.001
    assert segment_confidence(0.2, 0.0) == 1.0  # a positive log-probability is clipped


def _transcript(
    segments: list[tuple[float, float, str]], *, logprob: float = -0.3, no_speech: float = 0.1
) -> Transcript:
    """Segments with evenly spread words."""
    out = []
    for start, end, text in segments:
        tokens = text.split()
        step = (end - start) / len(tokens)
        words = [
            Word(start=start + i * step, end=start + (i + 1) * step - 0.02, text=f" {t}", probability=0.9)
            for i, t in enumerate(tokens)
        ]
        out.append(Segment(start=start, end=end, text=text, avg_logprob=logprob, no_speech_prob=no_speech, words=words))
    return Transcript(model_version="whisper-test@1+int8", segments=out, language="en")


VTT_TIME = r"\d{2}:\d{2}:\d{2}\.\d{3}"
SRT_TIME = r"\d{2}:\d{2}:\d{2},\d{3}"


def _blocks(text: str) -> list[list[str]]:
    return [block.split("\n") for block in text.strip("\n").split("\n\n")]


def test_webvtt_is_well_formed_and_escaped() -> None:
    transcript = _transcript(
        [
            (0.0, 2.5, "Fish & chips <b>cost</b> less --> than you think."),
            (2.5, 4.0, "Second line."),
            (3725.25, 3727.0, "Over an hour in."),
        ]
    )
    vtt = to_webvtt(transcript)
    assert vtt.startswith("WEBVTT\n\n")
    blocks = _blocks(vtt)[1:]
    assert len(blocks) == 3
    previous = -1.0
    for n, block in enumerate(blocks, start=1):
        assert block[0] == str(n)
        match = re.fullmatch(rf"({VTT_TIME}) --> ({VTT_TIME})", block[1])
        assert match, block[1]
        start, end = (_seconds(t) for t in match.groups())
        assert end > start >= previous
        previous = start
        assert 1 <= len(block[2:]) <= 2 and all(block[2:])
        assert all("-->" not in line and "<" not in line for line in block[2:])
    assert "Fish &amp; chips &lt;b&gt;cost&lt;/b&gt; less --&gt; than you think." in " ".join(blocks[0][2:])
    assert blocks[2][1] == "01:02:05.250 --> 01:02:06.980"  # the last word's end


def test_srt_is_well_formed_and_neutralises_markup() -> None:
    transcript = _transcript([(0.0, 2.5, "Fish & chips <b>cost</b> less --> than you think."), (2.5, 4.0, "Two.")])
    srt = to_srt(transcript)
    blocks = _blocks(srt)
    assert [b[0] for b in blocks] == ["1", "2"]
    for block in blocks:
        assert re.fullmatch(rf"{SRT_TIME} --> {SRT_TIME}", block[1]), block[1]
        assert all("<" not in line and ">" not in line for line in block[2:])
    assert " ".join(blocks[0][2:]) == "Fish & chips \u2039b\u203acost\u2039/b\u203a less --\u203a than you think."
    assert blocks[0][1] == "00:00:00,000 --> 00:00:02,480"


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_long_segments_are_split_into_readable_cues() -> None:
    sentence = " ".join(f"word{k}" for k in range(40))  # 40 words over 20 s, ~300 characters
    transcript = _transcript([(10.0, 30.0, sentence)])
    pieces = cues(transcript)
    assert len(pieces) >= 4
    assert " ".join(c.text for c in pieces) == sentence  # nothing lost, in order
    for cue in pieces:
        assert len(cue.text) <= 84 and cue.end - cue.start <= 7.0
    lines = _blocks(to_webvtt(transcript))[1][2:]
    assert len(lines) == 2 and all(len(line) <= 42 for line in lines)


def test_instant_words_still_get_a_visible_cue() -> None:
    words = [Word(start=5.0, end=5.0, text=" Hi.", probability=0.5)]
    transcript = Transcript(
        model_version="m",
        segments=[Segment(start=5.0, end=5.0, text="Hi.", avg_logprob=-0.5, no_speech_prob=0.2, words=words)],
    )
    (cue,) = cues(transcript)
    assert cue.end > cue.start == 5.0


def _sentences(count: int, *, length: float, gap: float, start: float = 0.0) -> list[tuple[float, float, str]]:
    out, t = [], start
    for k in range(count):
        out.append((t, t + length, f"Sentence number {k} says something about topic {k}."))
        t += length + gap
    return out


@pytest.mark.parametrize(("length", "gap"), [(2.0, 0.4), (3.1, 0.8), (4.5, 0.3), (7.0, 1.2), (12.0, 0.5), (1.2, 0.2)])
def test_speech_passages_are_sentence_windows_of_5_to_20_seconds(length: float, gap: float) -> None:
    transcript = _transcript(_sentences(30, length=length, gap=gap))
    passages = speech_passages(transcript)
    assert passages and [p.index for p in passages] == list(range(len(passages)))
    for passage in passages:
        assert passage.modality is Modality.SPEECH
        assert passage.start is not None and passage.end is not None
        assert 5.0 - 1e-6 <= passage.end - passage.start <= 20.0 + 1e-6, (passage.start, passage.end)
        assert passage.text.startswith("Sentence number") and passage.text.endswith(".")  # whole sentences
    # Every word once, in order.
    assert " ".join(p.text for p in passages) == transcript.text
    starts = [p.start for p in passages]
    assert starts == sorted(starts)


def test_passages_split_a_long_unpunctuated_monologue() -> None:
    words = " ".join(f"w{k}" for k in range(90))
    transcript = _transcript([(0.0, 45.0, words)])  # 45 s without a full stop or a pause
    passages = speech_passages(transcript)
    assert " ".join(p.text for p in passages) == words
    assert all(5.0 <= p.end - p.start <= 20.0 for p in passages if p.start is not None and p.end is not None)


def test_short_audio_makes_one_short_passage() -> None:
    transcript = _transcript([(0.5, 2.5, "Just one short remark.")])
    (passage,) = speech_passages(transcript)
    assert (passage.start, passage.end, passage.text) == (0.5, pytest.approx(2.48), "Just one short remark.")
    assert speech_passages(Transcript(model_version="m")) == []


def test_passage_confidence_is_the_word_weighted_segment_confidence() -> None:
    good = _transcript([(0.0, 4.0, "One two three four five six seven eight.")], logprob=-0.1, no_speech=0.0)
    poor = _transcript([(4.5, 8.5, "Nine ten.")], logprob=-1.5, no_speech=0.5)
    transcript = Transcript(model_version="m", segments=[*good.segments, *poor.segments])
    (passage,) = speech_passages(transcript)
    expected = (8 * segment_confidence(-0.1, 0.0) + 2 * segment_confidence(-1.5, 0.5)) / 10
    assert passage.confidence == pytest.approx(expected, abs=1e-4)


def test_a_long_pause_separates_topics() -> None:
    # Two 3 s remarks 30 s apart, then a conversation: the remarks do not share a window with
    # anything across the silence, even though that makes them short.
    segments = [(0.0, 3.0, "First remark here."), (33.0, 36.0, "Second remark here.")]
    segments += _sentences(6, length=3.0, gap=0.5, start=70.0)
    passages = speech_passages(_transcript(segments))
    assert passages[0].text == "First remark here."
    assert all(not (p.start is not None and p.start < 3 and p.end is not None and p.end > 33) for p in passages)


def test_passage_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="min_s"):
        speech_passages(_transcript([(0, 1, "Hi.")]), min_s=10, max_s=5)
