"""Subtitle files: told apart from plain text by their content, parsed as players parse them,
and joined into timed passages."""

from __future__ import annotations

import pytest

from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality
from medialens.errors import InvalidMediaError
from medialens.media.detection import detect_media_type
from medialens.media.documents.subtitles import Cue, parse_cues, subtitle_passages

pytestmark = pytest.mark.unit

SRT = """\ufeff1
00:00:01,000 --> 00:00:03,500
<i>Welcome back</i> to the depot.

2
00:00:04,000 --> 00:00:07,250
Today we test the {\\an8}night shift robots.

3
00:00:12,000 --> 00:00:15,000
They carry two hundred kilograms.
"""

VTT = """WEBVTT - launch captions

NOTE edited by the subtitling team

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:03.500 align:start position:10%
<v Anna>Welcome back</v> to the depot &amp; the yard.

00:00:04.000 --> 00:00:07.250
Today we test the night shift robots.
"""


def test_subtitles_are_told_by_content_not_name() -> None:
    srt = detect_media_type("episode.txt", SRT.encode(), 200)  # with its byte-order mark
    assert (srt.media_type, srt.mime_type) == (MediaType.DOCUMENT, "application/x-subrip")
    vtt = detect_media_type("captions", VTT.encode(), 200)
    assert (vtt.mime_type, vtt.extension) == ("text/vtt", "vtt")
    prose = detect_media_type("notes.srt", b"Just some notes, no cues.\n", 26)
    assert prose.mime_type == "application/x-subrip"  # named so, parsed (and refused) as such


def test_srt_and_vtt_give_the_same_cues_without_markup() -> None:
    srt_cues, skipped = parse_cues(SRT)
    assert skipped == 0
    assert srt_cues[0] == Cue(start=1.0, end=3.5, text="Welcome back to the depot.")
    assert srt_cues[1].text == "Today we test the night shift robots."
    vtt_cues, _ = parse_cues(VTT)
    assert [(c.start, c.end) for c in vtt_cues] == [(1.0, 3.5), (4.0, 7.25)]
    assert vtt_cues[0].text == "Welcome back to the depot & the yard."


def test_cues_with_broken_timings_are_skipped_and_a_file_of_them_is_refused() -> None:
    broken = SRT.replace("00:00:04,000 --> 00:00:07,250", "00:00:04 -> 7 seconds")
    cues, skipped = parse_cues(broken)
    assert skipped == 1 and [c.start for c in cues] == [1.0, 12.0]
    backwards = SRT.replace("00:00:12,000 --> 00:00:15,000", "00:00:15,000 --> 00:00:12,000")
    assert parse_cues(backwards)[1] == 1
    with pytest.raises(InvalidMediaError, match=r"no cue with a valid timing line .* on line 2"):
        parse_cues("1\n12 o'clock --> later\nHello\n")


def test_cues_join_into_passages_at_pauses_and_sentence_ends() -> None:
    cues, _ = parse_cues(SRT)
    passages = subtitle_passages(cues, min_s=5.0, max_s=20.0)
    assert [(p.start, p.end) for p in passages] == [(1.0, 7.25), (12.0, 15.0)]
    assert all(p.modality is Modality.SUBTITLE for p in passages)
    assert passages[0].text == "Welcome back to the depot. Today we test the night shift robots."
    long = [Cue(start=float(n), end=n + 0.9, text=f"word {n}") for n in range(60)]  # no sentence ends, no pauses
    assert all(p.end is not None and p.start is not None and p.end - p.start <= 20.0 for p in subtitle_passages(long))
