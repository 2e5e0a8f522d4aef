"""Merging per-keyframe OCR lines into timed on-screen text passages."""

from __future__ import annotations

import pytest

from medialens.domain.moments import Modality
from medialens.media.ocr_lines import OcrLine
from medialens.media.screen_text import FrameText, merge_screen_text, normalise, similarity

pytestmark = pytest.mark.unit


def line(text: str, confidence: float = 0.95, top: float = 300.0, left: float = 100.0, height: float = 30.0) -> OcrLine:
    right, bottom = left + 20.0 * len(text), top + height
    return OcrLine(text=text, confidence=confidence, box=((left, top), (right, top), (right, bottom), (left, bottom)))


def frames(*lines_per_frame: list[OcrLine], step: float = 2.0) -> list[FrameText]:
    """Keyframes every ``step`` seconds, each standing for its own interval."""
    return [
        FrameText(time=n * step, start=n * step, until=(n + 1) * step, lines=lines)
        for n, lines in enumerate(lines_per_frame)
    ]


def test_same_text_on_consecutive_keyframes_is_one_span() -> None:
    passages = merge_screen_text(frames([], [line("SHIPS 14 OCTOBER")], [line("SHIPS 14 OCTOBER")], []))
    assert len(passages) == 1
    (passage,) = passages
    assert passage.modality is Modality.SCREEN_TEXT
    assert (passage.text, passage.start, passage.end) == ("SHIPS 14 OCTOBER", 2.0, 6.0)
    assert passage.confidence == pytest.approx(0.95)


def test_small_ocr_differences_merge_and_the_usual_reading_wins() -> None:
    seen = frames(
        [line("WAREHOUSE ROBOT R2", 0.99)],
        [line("WAREH0USE ROBOT R2", 0.80)],
        [line("warehouse robot r2.", 0.90)],
        [line("WAREHOUSE ROBOT R2", 0.97)],
    )
    (passage,) = merge_screen_text(seen)
    assert passage.text == "WAREHOUSE ROBOT R2"
    assert (passage.start, passage.end) == (0.0, 8.0)
    assert passage.confidence == pytest.approx((0.99 + 0.80 + 0.90 + 0.97) / 4, abs=1e-4)


def test_different_text_is_a_new_span() -> None:
    passages = merge_screen_text(frames([line("ACME ROBOTICS")], [line("WAREHOUSE ROBOT R2")]))
    assert [(p.text, p.start, p.end) for p in passages] == [
        ("ACME ROBOTICS", 0.0, 2.0),
        ("WAREHOUSE ROBOT R2", 2.0, 4.0),
    ]
    assert [p.index for p in passages] == [0, 1]


def test_one_missed_keyframe_is_bridged_two_are_not() -> None:
    caption = line("QUESTIONS AND ANSWERS")
    (bridged,) = merge_screen_text(frames([caption], [], [caption]))
    assert (bridged.start, bridged.end) == (0.0, 6.0)
    split = merge_screen_text(frames([caption], [], [], [caption]))
    assert [(p.start, p.end) for p in split] == [(0.0, 2.0), (6.0, 8.0)]
    strict = merge_screen_text(frames([caption], [], [caption]), max_missing=0)
    assert len(strict) == 2


def test_lines_of_one_block_form_one_passage_in_reading_order() -> None:
    title, subtitle = line("QUARTERLY REVIEW", top=100), line("REVENUE UP 12 PERCENT", top=140)
    footer = line("CONFIDENTIAL", top=330)  # far below: its own passage
    (block, alone) = merge_screen_text(frames([subtitle, footer, title], [title, subtitle, footer]))
    assert block.text == "QUARTERLY REVIEW\nREVENUE UP 12 PERCENT"
    assert alone.text == "CONFIDENTIAL"
    assert (block.start, block.end) == (alone.start, alone.end) == (0.0, 4.0)


def test_lines_seen_over_different_keyframes_stay_apart() -> None:
    logo = line("ACME", top=10)
    passages = merge_screen_text(frames([logo, line("HELLO", top=40)], [logo], [logo, line("GOODBYE", top=40)]))
    spans = {p.text: (p.start, p.end) for p in passages}
    assert spans == {"ACME": (0.0, 6.0), "HELLO": (0.0, 2.0), "GOODBYE": (4.0, 6.0)}


def test_keyframe_intervals_give_the_times() -> None:
    # A keyframe whose picture lasted past the sampling grid (a static shot) carries that interval.
    seen = [
        FrameText(time=13.5, start=13.0, until=25.0, lines=[]),
        FrameText(time=25.5, start=25.0, until=31.0, lines=[line("QUESTIONS AND ANSWERS")]),
        FrameText(time=31.5, start=31.0, until=43.0, lines=[]),
    ]
    (passage,) = merge_screen_text(seen)
    assert (passage.start, passage.end) == (25.0, 31.0)


def test_low_confidence_and_tiny_lines_are_dropped() -> None:
    passages = merge_screen_text(frames([line("NOISE", 0.3), line("x"), line("KEEP ME")]), min_confidence=0.5)
    assert [p.text for p in passages] == ["KEEP ME"]


def test_frames_are_ordered_by_time_and_numbered_from_first_index() -> None:
    shuffled = list(reversed(frames([line("FIRST")], [line("SECOND")])))
    passages = merge_screen_text(shuffled, first_index=7)
    assert [(p.index, p.text) for p in passages] == [(7, "FIRST"), (8, "SECOND")]
    assert merge_screen_text([]) == []


def test_one_line_extends_only_one_track() -> None:
    # Two similar captions on one frame, then one of them: the other track must not absorb it too.
    passages = merge_screen_text(frames([line("GATE A1", top=50), line("GATE A2", top=250)], [line("GATE A1", top=50)]))
    spans = sorted((p.text, p.end) for p in passages)
    assert spans == [("GATE A1", 4.0), ("GATE A2", 2.0)]


def test_normalise_and_similarity() -> None:
    assert normalise("  Hello,   World!! ") == "hello,   world".replace("   ", " ")
    assert similarity("warehouse robot r2", "wareh0use robot r2") > 0.9
    assert similarity("acme robotics", "ships 14 october") < 0.5
    assert similarity("", "abc") == 0.0


def test_text_whose_number_changes_is_new_text_each_time() -> None:
    """A counter, a score, a shot number: "SHOT 156" and "SHOT 157" are both findable."""
    shots = frames(*[[line(f"SHOT {n}")] for n in range(1, 31)], step=1.0)
    passages = merge_screen_text(shots)
    assert [p.text for p in passages] == [f"SHOT {n}" for n in range(1, 31)]
    assert [(p.start, p.end) for p in passages[:2]] == [(0.0, 1.0), (1.0, 2.0)]
    assert similarity(normalise("SHOT 156"), normalise("SHOT 157")) == 0.0
    assert similarity(normalise("WAREH0USE R2"), normalise("WAREHOUSE R2")) > 0.8  # a digit inside a word is OCR noise
    assert similarity("ab", "ac") == 0.0  # too short to forgive a character
