"""What OCR reads: lines of text with their boxes and confidences. A plain value type, so media
code that groups lines (image text blocks, on-screen text over time) needs no OCR model."""

from __future__ import annotations

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
