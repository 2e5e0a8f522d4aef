"""The speech cascade's pure parts, on synthetic words: which of a fast model's segments are re-run,
over what audio, and how the full model's words take their place (absolute times, no word doubled
or lost at the edges); the chunk transcripts' model versions and fallback record through the
stitch, the moments' model versions, and the fallback rate on the asset and in the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

import pytest

from medialens.domain.assets import Asset, AssetStatus, MediaType, SourceObject, utcnow
from medialens.domain.quality import AssetQuality, QualitySample, Signal
from medialens.insight.metrics import report_metrics, spec_for
from medialens.insight.report import build_report
from medialens.media.audio.chunking import AudioChunk
from medialens.media.transcript import (
    ChunkTranscript,
    FallbackSpan,
    Segment,
    Word,
    models_between,
    plan_fallback,
    splice,
    stitch,
    unheard,
)
from medialens.pipeline.quality import record_transcript_quality
from medialens.services import Services

pytestmark = pytest.mark.unit

FAST, FULL = "whisper-tiny-en@1+int8", "whisper-base@1+int8"


def words(start: float, texts: str, probability: float = 0.9, step: float = 0.5) -> list[Word]:
    """One word every ``step`` seconds from ``start``, each 0.4 s long."""
    return [
        Word(start=round(start + k * step, 3), end=round(start + k * step + 0.4, 3), text=f" {t}", probability=p)
        for k, (t, p) in enumerate((t, probability) for t in texts.split())
    ]


def segment(heard: list[Word], avg_logprob: float = -0.2) -> Segment:
    return Segment(
        start=heard[0].start if heard else 0.0,
        end=heard[-1].end if heard else 0.0,
        text="".join(w.text for w in heard).strip(),
        avg_logprob=avg_logprob,
        no_speech_prob=0.05,
        words=heard,
    )


def chunk(segments: list[Segment], offset: float = 0.0, duration: float = 20.0, model: str = FAST) -> ChunkTranscript:
    return ChunkTranscript(offset_s=offset, duration_s=duration, language="en", segments=segments, model_version=model)


def texts(transcript: ChunkTranscript) -> list[str]:
    return [w.text.strip() for w in transcript.words]


def said(sentence: str) -> list[str]:
    return sentence.split()


# A chunk of 20 s: a sure sentence, an unsure one (the fast model misheard it), a sure one.
SURE_1 = words(1.0, "the robot maps every room")  # 1.0 .. 3.4
UNSURE = words(5.0, "during its furst run tonite", probability=0.4)  # 5.0 .. 7.4
SURE_2 = words(9.0, "owners can schedule a cleaning")  # 9.0 .. 11.4
FAST_CHUNK = chunk([segment(SURE_1), segment(UNSURE), segment(SURE_2)])


# --- which segments, and what audio ---------------------------------------------------------------


def test_only_the_unsure_segment_is_re_run_from_pause_to_pause_with_a_margin() -> None:
    (span,) = plan_fallback(FAST_CHUNK, 0.8, margin_s=1.0, whole_chunk_share=0.6)
    assert (span.first, span.last) == (1, 1)
    # From the middle of the pause after "room" (3.4 .. 5.0) to the middle of the one before "owners".
    assert (span.start, span.end) == (4.2, 8.2)
    assert (span.window_start, span.window_end) == (3.2, 9.2)


def test_margins_shrink_so_that_a_stretch_that_fits_whisper_s_window_still_does() -> None:
    # The stretch is 4 s: margins of 14 s would make a 32 s window; 13 s each keep it at 30 s.
    transcript = FAST_CHUNK.model_copy(update={"duration_s": 60.0})
    (span,) = plan_fallback(transcript, 0.8, margin_s=14.0, whole_chunk_share=1.0)
    assert (span.start, span.end, span.window_start, span.window_end) == (4.2, 8.2, 0.0, 21.2)
    (span,) = plan_fallback(transcript, 0.8, margin_s=14.0, whole_chunk_share=1.0, max_window_s=20.0)
    assert (span.window_start, span.window_end) == (0.0, 16.2)  # 8 s each side, cut at the chunk's start
    (span,) = plan_fallback(transcript, 0.8, margin_s=14.0, whole_chunk_share=1.0, max_window_s=3.0)
    assert (span.window_start, span.window_end) == (4.2, 8.2)  # longer than the window: no margin at all


def test_a_sure_chunk_is_not_re_run_and_the_threshold_is_strict() -> None:
    assert plan_fallback(FAST_CHUNK, 0.4, margin_s=1.0, whole_chunk_share=0.6) == []  # 0.4 is not under 0.4
    assert len(plan_fallback(FAST_CHUNK, 0.41, margin_s=1.0, whole_chunk_share=0.6)) == 1


def test_the_signal_is_the_mean_word_probability() -> None:
    mixed = segment([*words(0.0, "a b c", 1.0), *words(2.0, "d", 0.2)])  # mean 0.8: confident but one word
    assert mixed.word_probability == pytest.approx(0.8)
    assert segment([], avg_logprob=-0.5).word_probability == pytest.approx(0.6065, abs=1e-4)  # not aligned
    assert plan_fallback(chunk([mixed]), 0.8, margin_s=1.0, whole_chunk_share=1.1) == []
    assert len(plan_fallback(chunk([mixed]), 0.81, margin_s=1.0, whole_chunk_share=1.1)) == 1


def test_a_confident_repetition_loop_is_re_run_too() -> None:
    loop = segment(words(12.0, " ".join(["I would ask that"] * 6), 0.9)).model_copy(update={"compression_ratio": 4.2})
    transcript = chunk([segment(SURE_1), loop, segment(words(30.0, "owners can schedule"))], duration=40.0)
    (span,) = plan_fallback(transcript, 0.8, margin_s=1.0, whole_chunk_share=0.9)
    assert (span.first, span.last) == (1, 1)
    assert plan_fallback(transcript, 0.8, margin_s=1.0, whole_chunk_share=0.9, max_compression_ratio=4.2) == []


def test_consecutive_unsure_segments_make_one_span_and_chunk_edges_bound_it() -> None:
    first = segment(words(0.2, "alpha beta", 0.3))
    second = segment(words(2.0, "gamma delta", 0.5))
    empty = Segment(start=3.0, end=3.5, text="", avg_logprob=-1.0, no_speech_prob=0.9)
    third = segment(words(4.0, "epsilon zeta", 0.95))
    transcript = chunk([first, second, empty, third], offset=100.0, duration=30.0)
    transcript = transcript.model_copy(
        update={"segments": [s.model_copy(update=_shifted(s, 100.0)) for s in transcript.segments]}
    )
    (span,) = plan_fallback(transcript, 0.8, margin_s=1.0, whole_chunk_share=0.9)
    assert (span.first, span.last) == (0, 1)
    # No kept segment before: from the chunk's start (the window cannot reach before it).
    assert (span.start, span.window_start) == (100.0, 100.0)
    assert span.end == pytest.approx((102.9 + 104.0) / 2) and span.window_end == pytest.approx(span.end + 1.0)


def _shifted(segment: Segment, by: float) -> dict[str, Any]:
    moved = [w.model_copy(update={"start": w.start + by, "end": w.end + by}) for w in segment.words]
    return {"start": segment.start + by, "end": segment.end + by, "words": moved}


def test_spans_that_would_cover_most_of_the_chunk_become_the_whole_chunk() -> None:
    transcript = FAST_CHUNK.model_copy(update={"duration_s": 12.0})  # the window (6 s) is half of it
    (whole,) = plan_fallback(transcript, 0.8, margin_s=1.0, whole_chunk_share=0.5)
    assert whole == FallbackSpan(first=0, last=2, start=0.0, end=12.0, window_start=0.0, window_end=12.0)
    (span,) = plan_fallback(transcript, 0.8, margin_s=1.0, whole_chunk_share=0.51)
    assert (span.first, span.last) == (1, 1)


# --- speech the fast model wrote nothing for ---------------------------------------------------------


def test_unheard_speech_is_detected_speech_with_no_word_near_it() -> None:
    transcript = chunk([segment(words(1.0, "a b c d")), segment(words(6.0, "e e"))])  # words 1.0-2.9, 6.0-6.9
    # Padded by 0.3 s the words cover 0.7-3.2 and 5.7-7.2; what is left of 0-10 s of speech:
    assert unheard(transcript, [(0.0, 10.0)]) == [(3.2, 5.7), (7.2, 10.0)]  # 0-0.7 is under a second
    assert unheard(transcript, [(0.0, 10.0)], min_s=2.6) == [(7.2, 10.0)]
    assert unheard(transcript, [(1.0, 3.0), (6.2, 6.6)]) == []
    assert unheard(chunk([]), [(2.0, 4.5)]) == [(2.0, 4.5)]


def test_sentences_the_fast_model_skipped_between_segments_are_re_run_and_inserted() -> None:
    # Two sure segments; the voice detector also heard speech 4.0 .. 7.6, where the fast model wrote nothing.
    first, second = words(1.0, "the robot maps every room"), words(9.0, "owners can schedule a cleaning")
    fast = chunk([segment(first), segment(second)])
    (span,) = plan_fallback(fast, 0.8, margin_s=1.0, whole_chunk_share=0.6, speech=[(0.8, 3.6), (4.0, 7.6)])
    assert (span.first, span.last) == (1, 0)  # nothing replaced: the words go before segment 1
    assert (span.unheard, span.unheard_s) == (1, pytest.approx(3.6))  # 4.0 .. 7.6
    assert (span.start, span.end) == (pytest.approx(3.7), pytest.approx(8.3))  # mid-pause on both sides
    heard = [*words(3.0, "room"), *words(4.0, "during its first run tonight"), *words(9.05, "owners")]
    result = spliced([span], [rerun(heard, span.window_start, span.window_end)], fast)
    assert texts(result) == said(
        "the robot maps every room during its first run tonight owners can schedule a cleaning"
    )
    assert [s.model for s in result.segments] == [FAST, FULL, FAST]
    fallback = result.fallback
    assert fallback is not None
    assert (fallback.segments, fallback.rerun_segments, fallback.unheard) == (2, 0, 1)
    assert fallback.unheard_seconds == pytest.approx(3.6)
    assert fallback.rate == pytest.approx(fallback.rerun_seconds / 20.0) == pytest.approx(6.6 / 20)  # 2.7 .. 9.3


def test_skipped_speech_inside_a_segment_makes_it_unsure_at_its_end_only_the_rest_is_re_run() -> None:
    # A segment whose words stop for 5 s of speech in their middle: the segment is re-run.
    gapped = segment([*words(1.0, "the robot maps"), *words(8.0, "owners can")])
    fast = chunk([gapped, segment(SURE_2).model_copy(update=_shifted(segment(SURE_2), 3.0))])
    assert plan_fallback(fast, 0.8, margin_s=1.0, whole_chunk_share=0.9) == []  # nothing to compare with
    (span,) = plan_fallback(fast, 0.8, margin_s=1.0, whole_chunk_share=0.9, speech=[(1.0, 9.0)])
    assert (span.first, span.last, span.unheard) == (0, 0, 0)
    # A segment whose words stop 9 s before its end (a batched window ended early): the words
    # kept, the speech after them re-run and inserted.
    early = segment(words(1.0, "the robot maps every room")).model_copy(update={"end": 12.0})
    (span,) = plan_fallback(chunk([early]), 0.8, margin_s=1.0, whole_chunk_share=0.9, speech=[(1.0, 12.0)])
    assert (span.first, span.last, span.unheard, span.start, span.end) == (1, 0, 1, 3.55, 20.0)
    # After the last segment: the words go at the end.
    (span,) = plan_fallback(FAST_CHUNK, 0.3, margin_s=1.0, whole_chunk_share=0.9, speech=[(13.0, 16.0)])
    assert (span.first, span.last, span.end, span.window_end) == (3, 2, 20.0, 20.0)


def test_a_chunk_the_fast_model_wrote_nothing_for_is_re_run_whole() -> None:
    silent = chunk([], duration=12.0)
    (span,) = plan_fallback(silent, 0.8, margin_s=1.0, whole_chunk_share=0.6, speech=[(2.0, 9.0)])
    assert (span.first, span.last, span.window_start, span.window_end, span.unheard) == (0, -1, 0.0, 12.0, 1)
    result = spliced([span], [rerun(words(2.0, "anybody there"), 0.0, 12.0)], silent)
    assert texts(result) == ["anybody", "there"] and result.model_version == FULL
    assert result.fallback is not None and (result.fallback.whole_chunks, result.fallback.rate) == (1, 1.0)


# --- splicing the full model's words in -----------------------------------------------------------


def rerun(heard: list[Word], start: float, end: float) -> ChunkTranscript:
    """What the full model made of the window [start, end] (absolute times, as the cascade offsets them)."""
    return ChunkTranscript(
        offset_s=start, duration_s=end - start, language="en", segments=[segment(heard)], model_version=FULL
    )


def spliced(
    spans: Sequence[FallbackSpan], reruns: Sequence[ChunkTranscript], fast: ChunkTranscript = FAST_CHUNK
) -> ChunkTranscript:
    return splice(fast, spans, reruns, full_model=FULL, min_word_probability=0.8, margin_s=1.0)


def test_the_full_models_words_replace_the_unsure_segment_and_the_margins_are_dropped() -> None:
    (span,) = plan_fallback(FAST_CHUNK, 0.8, margin_s=1.0, whole_chunk_share=0.6)
    # The window 3.2 .. 9.2 also holds the end of "room" and the start of "owners".
    heard = [*words(3.0, "room"), *words(5.05, "during its first run tonight"), *words(9.02, "owners")]
    result = spliced([span], [rerun(heard, span.window_start, span.window_end)])
    assert texts(result) == said(
        "the robot maps every room during its first run tonight owners can schedule a cleaning"
    )
    assert [s.model for s in result.segments] == [FAST, FULL, FAST]
    assert result.segments[1].text == "during its first run tonight"
    assert result.segments[1].start == 5.05 and result.segments[1].words[0].start == 5.05  # absolute times kept
    assert result.model_version == f"{FAST},{FULL}"
    fallback = result.fallback
    assert fallback is not None
    assert (fallback.fast_model, fallback.full_model, fallback.min_word_probability) == (FAST, FULL, 0.8)
    assert (fallback.segments, fallback.rerun_segments, fallback.whole_chunks) == (3, 1, 0)
    assert fallback.rerun_seconds == pytest.approx(6.0) and fallback.seconds == 20.0
    assert fallback.spans == [(3.2, 9.2)] and fallback.rate == pytest.approx(0.3)  # 6 s of the chunk's 20


def _continuous() -> tuple[ChunkTranscript, FallbackSpan]:
    """Three segments cut mid-speech (no pause at the cuts), the middle one unsure: one word every
    0.4 s, so the stretch is exactly the unsure words' (2.0 .. 3.6)."""
    before = words(0.0, "one two three four five", step=0.4)  # .. 2.0
    middle = words(2.0, "sicks seven ate nine", probability=0.3, step=0.4)  # 2.0 .. 3.6
    after = words(3.6, "ten eleven twelve", step=0.4)
    fast = chunk([segment(before), segment(middle), segment(after)], duration=6.0)
    (span,) = plan_fallback(fast, 0.8, margin_s=1.0, whole_chunk_share=0.9)
    assert (span.start, span.end, span.window_start, span.window_end) == (2.0, 3.6, 1.0, 4.6)
    return fast, span


ONE_TO_TWELVE = said("one two three four five six seven eight nine ten eleven twelve")


def test_boundary_words_the_full_model_places_late_are_neither_doubled_nor_lost() -> None:
    fast, span = _continuous()
    # The full model hears the margins too, its clock 0.3 s late. By time alone "five" (1.9 .. 2.3)
    # would be inside the stretch, twice, and "nine" (3.5 .. 3.9) outside it, lost.
    heard = words(1.5, "four five six seven eight nine ten eleven", step=0.4)
    result = spliced([span], [rerun(heard, span.window_start, span.window_end)], fast)
    assert texts(result) == ONE_TO_TWELVE
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert [s.model for s in result.segments] == [FAST, FULL, FAST]
    assert [s.text for s in result.segments] == ["one two three four five", "six seven eight nine", "ten eleven twelve"]


def test_boundary_words_the_full_model_places_early_are_neither_doubled_nor_lost() -> None:
    fast, span = _continuous()
    # 0.3 s early: "six" (1.7 .. 2.1) would be lost, "ten" (3.3 .. 3.7) doubled.
    heard = words(0.9, "four five six seven eight nine ten eleven", step=0.4)
    result = spliced([span], [rerun(heard, span.window_start, span.window_end)], fast)
    assert texts(result) == ONE_TO_TWELVE
    assert result.segments[1].text == "six seven eight nine" and result.segments[1].words[0].start == 1.7


def test_without_words_to_align_the_cut_is_the_middle_of_the_pause() -> None:
    (span,) = plan_fallback(FAST_CHUNK, 0.8, margin_s=1.0, whole_chunk_share=0.6)
    # Only the stretch's own words: nothing in the margins to align with.
    heard = words(4.3, "and", 0.9) + words(5.0, "during its first run tonight")
    result = spliced([span], [rerun(heard, span.window_start, span.window_end)])
    # "and", which the fast model missed in the pause, is inside the stretch: it is kept.
    assert texts(result)[4:11] == ["room", "and", "during", "its", "first", "run", "tonight"]


def test_when_the_full_model_hears_nothing_the_unsure_words_go_and_the_versions_say_so() -> None:
    (span,) = plan_fallback(FAST_CHUNK, 0.8, margin_s=1.0, whole_chunk_share=0.6)
    silent = ChunkTranscript(offset_s=span.window_start, duration_s=span.window_s, model_version=FULL)
    result = spliced([span], [silent])
    assert texts(result) == said("the robot maps every room owners can schedule a cleaning")
    assert result.model_version == FAST  # no word of the full model's is left
    assert result.fallback is not None and result.fallback.rerun_segments == 1


def test_a_whole_chunk_re_run_keeps_only_the_full_models_words() -> None:
    transcript = FAST_CHUNK.model_copy(update={"duration_s": 12.0})
    spans = plan_fallback(transcript, 0.8, margin_s=1.0, whole_chunk_share=0.5)
    heard = words(
        1.0, "the robot maps every room during its first run tonight owners can schedule a cleaning", step=0.7
    )
    result = spliced(spans, [rerun(heard, 0.0, 12.0)], transcript)
    assert texts(result) == [w.text.strip() for w in heard]
    assert {s.model for s in result.segments} == {FULL} and result.model_version == FULL
    assert result.fallback is not None
    assert (result.fallback.rerun_segments, result.fallback.segments, result.fallback.whole_chunks) == (3, 3, 1)


def test_nothing_to_re_run_keeps_the_fast_transcript_with_its_record() -> None:
    result = spliced([], [])
    assert texts(result) == texts(FAST_CHUNK) and result.model_version == FAST
    assert {s.model for s in result.segments} == {FAST}
    assert result.fallback is not None and (result.fallback.rerun_segments, result.fallback.rate) == (0, 0.0)
    with pytest.raises(ValueError, match="re-runs for"):
        spliced(plan_fallback(FAST_CHUNK, 0.8, margin_s=1.0, whole_chunk_share=0.6), [])


# --- through the stitch, onto moments, the asset and the metrics --------------------------------------


def _cascaded() -> tuple[ChunkTranscript, ChunkTranscript]:
    (span,) = plan_fallback(FAST_CHUNK, 0.8, margin_s=1.0, whole_chunk_share=0.6)
    heard = words(5.05, "during its first run tonight")
    first = spliced([span], [rerun(heard, span.window_start, span.window_end)])
    sure = chunk([segment(words(21.0, "the battery lasts two hours"))], offset=20.0)
    second = spliced([], [], sure)
    return first, second


def test_the_stitched_transcript_lists_both_models_and_keeps_each_chunks_fallback() -> None:
    first, second = _cascaded()
    chunks = [AudioChunk(index=0, start=0.0, end=20.0, keep_start=0.0, keep_end=20.0)]
    chunks.append(AudioChunk(index=1, start=20.0, end=40.0, keep_start=20.0, keep_end=40.0))
    transcript = stitch([first, second], chunks)
    assert transcript.model_version == f"{FAST},{FULL}"  # the fast model first, whatever came first in time
    assert [s.model for s in transcript.segments] == [FAST, FULL, FAST, FAST]
    assert [f.rate for f in transcript.fallbacks] == [pytest.approx(0.3), 0.0]
    summed = transcript.fallbacks[0].plus(*transcript.fallbacks[1:])
    assert (summed.segments, summed.rerun_segments, summed.seconds, summed.rerun_seconds) == (4, 1, 40.0, 6.0)
    assert summed.rate == pytest.approx(0.15)
    # A moment names the models that made its words.
    assert models_between(transcript, 1.0, 3.4) == FAST
    assert models_between(transcript, 5.0, 7.4) == FULL
    assert models_between(transcript, 1.0, 11.4) == f"{FAST},{FULL}"
    # The first chunk re-run whole, the second not: still the fast model first.
    whole = spliced(
        [FallbackSpan(0, 2, 0.0, 20.0, 0.0, 20.0)], [rerun(words(1.0, "all of it again"), 0.0, 20.0)], FAST_CHUNK
    )
    assert whole.model_version == FULL
    assert stitch([whole, second], chunks).model_version == f"{FAST},{FULL}"
    plain = stitch([FAST_CHUNK], chunks[:1])
    assert models_between(plain, 1.0, 3.4) == FAST and plain.fallbacks == []


class _Registry:
    def __init__(self) -> None:
        self.quality = AssetQuality()

    def add_quality(self, _: str, samples: Sequence[QualitySample], embedding: Any, language: str | None) -> None:
        self.quality.add(samples, embedding, language)


class _Services:
    def __init__(self) -> None:
        self.registry = _Registry()


def test_the_asset_records_quality_per_model_and_the_fast_models_fallback_rate() -> None:
    first, second = _cascaded()
    chunks = [
        AudioChunk(index=0, start=0.0, end=20.0, keep_start=0.0, keep_end=20.0),
        AudioChunk(index=1, start=20.0, end=40.0, keep_start=20.0, keep_end=40.0),
    ]
    services = _Services()
    record_transcript_quality(cast(Services, services), "a", stitch([first, second], chunks))
    samples = {(s.signal, s.model): s for s in services.registry.quality.samples}
    assert samples[(Signal.ASR_CONFIDENCE, FAST)].n == 3 and samples[(Signal.ASR_CONFIDENCE, FULL)].n == 1
    assert samples[(Signal.ASR_WORD_PROBABILITY, FULL)].n == 5
    fallback = samples[(Signal.ASR_FALLBACK, FAST)]  # per chunk, the share of its audio re-run
    assert (fallback.n, fallback.mean, fallback.language) == (2, pytest.approx(0.15), "en")
    assert fallback.counts[3] == 1 and fallback.counts[0] == 1
    assert (Signal.ASR_FALLBACK, FULL) not in samples


def test_the_report_publishes_the_fallback_rate_per_fast_model() -> None:
    start = utcnow() - timedelta(minutes=30)
    assets = []
    for n, rerun_of_ten in enumerate((1, 3)):  # ten chunks each, some re-run whole
        asset = Asset(
            asset_id=f"a{n:023d}",
            source=SourceObject(bucket="drop", key=f"incoming/{n}.wav", etag="e", size=1000),
            pipeline_version="1",
            media_type=MediaType.AUDIO,
            status=AssetStatus.SUCCEEDED,
            created_at=start + timedelta(minutes=n),
            updated_at=start + timedelta(minutes=n + 1),
        )
        values = [1.0] * rerun_of_ten + [0.0] * (10 - rerun_of_ten)
        asset.quality.add([QualitySample.of(Signal.ASR_FALLBACK, "transcribe_chunk", FAST, values, "en")])
        assets.append(asset)
    report = build_report(assets, start)
    (view,) = [q for q in report.quality if q.signal == "asr_fallback"]
    assert (view.model, view.n, view.mean) == (FAST, 20, 0.2)
    metrics = {(name, tuple(dims.items())): value for name, value, dims in report_metrics(report)}
    assert metrics[("SpeechFallbackRate", (("model", FAST),))] == pytest.approx(20.0)
    assert spec_for("SpeechFallbackRate").search_dimension == "model"
