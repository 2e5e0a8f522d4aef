"""Subtitle and caption files (SubRip ``.srt``, WebVTT ``.vtt``): cues, and the timed passages they
make.

Parsing is forgiving where players are (a byte-order mark, CRLF, missing cue numbers, styling
tags, VTT cue settings, NOTE and STYLE blocks, ``.`` or ``,`` before the milliseconds) and strict
where a player would be lost: a cue whose timing line does not parse, or ends before it starts,
is skipped and counted; a file where no cue parses is refused with the first bad line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from medialens.domain.moments import Modality, Passage
from medialens.errors import InvalidMediaError

SUBTITLE_MIMES = frozenset({"application/x-subrip", "text/vtt"})
MAX_CUES = 100_000  # ~ 80 hours of dialogue; more is not a subtitle file

_TIME = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_TAGS = re.compile(r"<[^>]{0,200}>|\{\\[^}]{0,200}\}")  # <i>, <c.yellow>, <00:01.000>, {\an8}
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*$")


class Cue(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    text: str


class SubtitleTrack(BaseModel):
    """A subtitle file as read: ``model_dump_json()`` is its cues.json artifact."""

    plays_in: str | None = Field(default=None, description="s3:// URI of the media the cues play in")
    skipped_cues: int = Field(default=0, description="cues whose timing line did not parse")
    cues: list[Cue]


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000


def parse_cues(text: str) -> tuple[list[Cue], int]:
    """The file's cues in time order, and how many cues were skipped for a bad timing line."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cues: list[Cue] = []
    skipped = 0
    first_bad: int | None = None
    index = 0
    if lines and lines[0].startswith("WEBVTT"):
        while index < len(lines) and lines[index].strip():  # the header block
            index += 1
    while index < len(lines):
        block_start = index
        block: list[str] = []
        while index < len(lines) and lines[index].strip():
            block.append(lines[index])
            index += 1
        index += 1
        if not block or block[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        # The timing line is the block's first or, after a cue number or identifier, its second.
        timing_at = next((n for n, line in enumerate(block[:2]) if "-->" in line), 0)
        match = _TIMING.match(block[timing_at])
        if match is None:
            skipped += 1
            first_bad = first_bad if first_bad is not None else block_start + timing_at + 1
            continue
        start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
        body = _SPACES.sub(" ", html.unescape(_TAGS.sub("", " ".join(block[timing_at + 1 :])))).strip()
        if end <= start:
            skipped += 1
            first_bad = first_bad if first_bad is not None else block_start + 1
            continue
        if body:
            cues.append(Cue(start=round(start, 3), end=round(end, 3), text=body))
        if len(cues) > MAX_CUES:
            raise InvalidMediaError(f"subtitle file has more than {MAX_CUES:,} cues: split it and upload the parts")
    if not cues:
        where = f"; the first bad timing is on line {first_bad}" if first_bad is not None else ""
        raise InvalidMediaError(
            "subtitle file has no cue with a valid timing line (HH:MM:SS,mmm --> HH:MM:SS,mmm)"
            f"{where}: fix the timings or export the subtitles again"
        )
    cues.sort(key=lambda cue: (cue.start, cue.end))
    return cues, skipped


def subtitle_passages(
    cues: Sequence[Cue], *, min_s: float = 5.0, max_s: float = 20.0, gap_s: float = 1.5
) -> list[Passage]:
    """Consecutive cues joined into SUBTITLE passages of ``min_s``-``max_s`` seconds: a passage
    closes once it is long enough and ends a sentence or meets a pause, or before it would grow
    past ``max_s``."""
    passages: list[Passage] = []
    window: list[Cue] = []

    def close() -> None:
        if window:
            passages.append(
                Passage(
                    index=len(passages),
                    text=" ".join(cue.text for cue in window),
                    modality=Modality.SUBTITLE,
                    start=window[0].start,
                    end=max(cue.end for cue in window),
                )
            )
            window.clear()

    for number, cue in enumerate(cues):
        if window and cue.end - window[0].start > max_s:
            close()
        window.append(cue)
        following = cues[number + 1] if number + 1 < len(cues) else None
        long_enough = cue.end - window[0].start >= min_s
        pause = following is None or following.start - cue.end >= gap_s
        if long_enough and (pause or _SENTENCE_END.search(cue.text)):
            close()
    close()
    return passages
