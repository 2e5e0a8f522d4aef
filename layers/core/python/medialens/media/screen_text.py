"""On-screen text over time: OCR lines of consecutive keyframes merged into timed passages.

Each keyframe's lines are matched to the text tracks still open (the same or similar text seen
on the previous keyframes): a match extends the track, an unmatched line opens a new one, and a
track that was not seen for more than ``max_missing`` keyframes closes. Matching is tolerant of
OCR's small differences (``0``/``O``, a dropped character, spacing, case): normalised texts match
when ``difflib``'s similarity ratio reaches ``similarity``. A closed track spans from the first
keyframe's ``start`` to the last one's ``until`` (the interval the keyframe's picture stands
for, see ``media.shots``), and reads as its most often (and most confidently) seen variant.

Tracks that appear and disappear together and sit one under another (the lines of one caption
or slide block) become one passage; the others stay separate, so a logo that is always on screen
does not glue itself to every caption.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from medialens.domain.moments import Modality, Passage
from medialens.media.ocr_lines import OcrLine

if TYPE_CHECKING:  # a type only: merging text needs no video decoder
    from medialens.media.shots import Keyframe

_SPACES = re.compile(r"\s+")
# Numbers standing on their own ("14 OCTOBER", "3:2"); digits inside a word are OCR's 0/O confusion.
_NUMBERS = re.compile(r"\b\d+(?:[.,:]\d+)*\b")
SHORT_TEXT_CHARS = 4  # below this, one character is too much of the text to call it the same
_EDGE_PUNCTUATION = re.compile(r"^[^\w]+|[^\w]+$")


class FrameText(BaseModel):
    """What OCR read on one keyframe, with the interval that keyframe's picture stands for."""

    time: float
    start: float
    until: float
    lines: list[OcrLine] = Field(default_factory=list)

    @classmethod
    def from_keyframe(cls, keyframe: Keyframe, lines: Sequence[OcrLine]) -> FrameText:
        return cls(time=keyframe.time, start=keyframe.start, until=keyframe.until, lines=list(lines))


class ScreenText(BaseModel):
    """A video's on-screen text: ``model_dump_json()`` is the ocr.json artifact."""

    ocr_model: str = Field(description="version of the recogniser that read the keyframes")
    frames: list[FrameText] = Field(description="per kept keyframe, in time order")
    passages: list[Passage]


def normalise(text: str) -> str:
    """Case-folded, single-spaced, without punctuation at either end: what matching compares."""
    return _EDGE_PUNCTUATION.sub("", _SPACES.sub(" ", text).strip()).casefold()


def similarity(first: str, second: str) -> float:
    """difflib's ratio of two normalised texts (1.0: equal), 0.0 for texts that differ where OCR's
    small errors do not reach: in a number ("SHOT 156" is not "SHOT 157", a score or a clock is
    new text each time it changes), or at all when one is shorter than a few characters."""
    if first == second:
        return 1.0
    if _NUMBERS.findall(first) != _NUMBERS.findall(second) or min(len(first), len(second)) < SHORT_TEXT_CHARS:
        return 0.0
    matcher = difflib.SequenceMatcher(None, first, second, autojunk=False)
    if matcher.real_quick_ratio() == 0.0:
        return 0.0
    return matcher.ratio()


@dataclass
class _Track:
    key: str  # normalised text of the latest observation
    first_frame: int
    last_frame: int
    start: float
    until: float
    top: float
    left: float
    height: float
    variants: dict[str, list[float]] = field(default_factory=dict)  # text -> confidences seen

    def add(self, line: OcrLine, key: str) -> None:
        self.variants.setdefault(line.text, []).append(line.confidence)
        self.key = key

    @property
    def text(self) -> str:
        # The variant seen most often; ties go to the more confident reading.
        return max(self.variants.items(), key=lambda item: (len(item[1]), sum(item[1])))[0]

    @property
    def confidence(self) -> float:
        seen = [c for confidences in self.variants.values() for c in confidences]
        return sum(seen) / len(seen)

    @property
    def observations(self) -> int:
        return sum(len(c) for c in self.variants.values())


def merge_screen_text(
    frames: Sequence[FrameText],
    *,
    min_confidence: float = 0.5,
    similarity_threshold: float = 0.8,
    max_missing: int = 1,
    min_chars: int = 2,
    first_index: int = 0,
) -> list[Passage]:
    """SCREEN_TEXT passages (start/end in seconds, confidence = mean line confidence) from the
    OCR of a video's keyframes; ``first_index`` numbers them after passages of another kind."""
    ordered = sorted(frames, key=lambda frame: frame.time)
    open_tracks: list[_Track] = []
    closed: list[_Track] = []
    for number, frame in enumerate(ordered):
        lines = [
            (line, normalise(line.text))
            for line in frame.lines
            if line.confidence >= min_confidence and len(normalise(line.text)) >= min_chars
        ]
        # Best pairs first: each line extends at most one track, each track takes one line.
        pairs = sorted(
            (
                (similarity(key, track.key), line_number, track_number)
                for line_number, (_, key) in enumerate(lines)
                for track_number, track in enumerate(open_tracks)
            ),
            reverse=True,
        )
        used_lines: set[int] = set()
        used_tracks: set[int] = set()
        for score, line_number, track_number in pairs:
            if score < similarity_threshold:
                break
            if line_number in used_lines or track_number in used_tracks:
                continue
            used_lines.add(line_number)
            used_tracks.add(track_number)
            line, key = lines[line_number]
            track = open_tracks[track_number]
            track.add(line, key)
            track.last_frame, track.until = number, frame.until
        for line_number, (line, key) in enumerate(lines):
            if line_number not in used_lines:
                track = _Track(key, number, number, frame.start, frame.until, line.top, line.left, line.height)
                track.add(line, key)
                open_tracks.append(track)
        still_open: list[_Track] = []
        for track in open_tracks:
            (still_open if number - track.last_frame <= max_missing else closed).append(track)
        open_tracks = still_open
    closed.extend(open_tracks)
    return _passages(closed, first_index)


def _passages(tracks: list[_Track], first_index: int) -> list[Passage]:
    # Tracks seen on exactly the same keyframes, stacked with no more than a line's height between
    # them, are one block of text (a two-line caption, a slide).
    groups: dict[tuple[int, int], list[_Track]] = {}
    for track in tracks:
        groups.setdefault((track.first_frame, track.last_frame), []).append(track)
    blocks: list[list[_Track]] = []
    for members in groups.values():
        members.sort(key=lambda t: (t.top, t.left))
        current = [members[0]]
        for track in members[1:]:
            previous = current[-1]
            if track.top - (previous.top + previous.height) > max(previous.height, track.height):
                blocks.append(current)
                current = [track]
            else:
                current.append(track)
        blocks.append(current)
    blocks.sort(key=lambda block: (block[0].start, block[0].top, block[0].left))
    passages = []
    for number, block in enumerate(blocks):
        weights = [t.observations * max(len(t.text), 1) for t in block]
        confidence = sum(w * t.confidence for w, t in zip(weights, block, strict=True)) / sum(weights)
        passages.append(
            Passage(
                index=first_index + number,
                text="\n".join(t.text for t in block),
                modality=Modality.SCREEN_TEXT,
                start=round(min(t.start for t in block), 3),
                end=round(max(t.until for t in block), 3),
                confidence=round(confidence, 4),
            )
        )
    return passages
