"""What OCR reads: lines of text with their boxes and confidences. A plain value type, so media
code that groups lines (image text blocks, on-screen text over time) needs no OCR model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from pydantic import BaseModel, ConfigDict, Field


class OcrLine(BaseModel):
    """One line of recognised text; ``box`` is its four corners (x, y) in the pixels of the image
    that was passed in, clockwise from top-left."""

    model_config = ConfigDict(frozen=True)

    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    box: tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]

    @property
    def left(self) -> float:
        return min(x for x, _ in self.box)

    @property
    def right(self) -> float:
        return max(x for x, _ in self.box)

    @property
    def top(self) -> float:
        return min(y for _, y in self.box)

    @property
    def bottom(self) -> float:
        return max(y for _, y in self.box)

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Lines that read as one block (a paragraph, a caption), with their length-weighted confidence."""

    lines: tuple[OcrLine, ...]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def confidence(self) -> float:
        weights = [max(len(line.text), 1) for line in self.lines]
        return sum(w * line.confidence for w, line in zip(weights, self.lines, strict=True)) / sum(weights)


def text_blocks(lines: Sequence[OcrLine]) -> list[TextBlock]:
    """Lines in reading order (top to bottom, then left to right) grouped into blocks: a vertical
    gap wider than the median line height starts a new one."""
    ordered = sorted(lines, key=lambda line: (line.top, line.left))
    if not ordered:
        return []
    gap_limit = median(line.height for line in ordered)
    blocks: list[list[OcrLine]] = [[ordered[0]]]
    for line in ordered[1:]:
        if line.top - blocks[-1][-1].bottom > gap_limit:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return [TextBlock(tuple(block)) for block in blocks]


def page_text(lines: Sequence[OcrLine], *, min_confidence: float = 0.5) -> tuple[str, float] | None:
    """What a page or picture says: its blocks (lines below ``min_confidence`` left out) separated
    by blank lines, and their length-weighted confidence; None when nothing was read."""
    blocks = text_blocks([line for line in lines if line.confidence >= min_confidence])
    if not blocks:
        return None
    weights = [len(block.text) for block in blocks]
    confidence = sum(w * block.confidence for w, block in zip(weights, blocks, strict=True)) / sum(weights)
    return "\n\n".join(block.text for block in blocks), confidence
