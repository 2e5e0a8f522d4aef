"""PDF pages whose text has to be read from the picture: which pages, and rendering them for OCR.

A page needs OCR when its text layer cannot stand for what the page shows:

* the layer is (nearly) empty and the page holds an image: a scan, a photographed receipt;
* or images cover most of the page and the layer is thin or garbage: a scan that came with a poor
  OCR layer, where a few stray glyphs would otherwise be all that is indexed.

Measured on text PDFs (exported papers, books, forms) and on scans: text-layer pages carry 6-17
characters per 1,000 pt² with over 80 % of their tokens word-like; scan pages carry none, or a
garbled layer under 1 character per 1,000 pt² or under half word-like tokens. A text page with a
large figure keeps its layer (its density is that of text); a near-empty page without images is
blank, not scanned.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pydantic import BaseModel, Field

from medialens.media.ocr_lines import OcrLine

# PDFium is not thread-safe; workers may extract and render in threads, so every call is serialised.
PDFIUM_LOCK = threading.Lock()

# The rule above, with its measured margins.
NEAR_EMPTY_CHARS = 20  # fewer characters than a short caption: no text layer to speak of
SCAN_COVERAGE = 0.5  # images over at least half the page: the page is a picture
THIN_CHARS_PER_KPT2 = 2.0  # characters per 1,000 pt²; text pages measured 6-17
WORDLIKE_SHARE = 0.5  # share of tokens with two or more letters; text pages measured over 0.8
# A page with more objects than this is not inspected object by object (a PDF bomb would make
# that unbounded): its images are not counted, so it is read from its text layer.
MAX_INSPECTED_OBJECTS = 5_000
_WORDLIKE = re.compile(r"[^\W\d_]{2,}")


class PageText(BaseModel):
    """What OCR read on one page: the size of the picture it read and its lines (in its pixels)."""

    page: int = Field(ge=1)
    width: int
    height: int
    lines: list[OcrLine] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PageLayer:
    """What a page's text layer holds against what the page shows."""

    page: int  # 1-based
    area_pt2: float
    characters: int
    wordlike_share: float
    image_coverage: float  # share of the page area under image objects, at most 1

    @property
    def chars_per_kpt2(self) -> float:
        return self.characters / max(self.area_pt2 / 1000.0, 1e-9)

    @property
    def needs_ocr(self) -> bool:
        if self.characters < NEAR_EMPTY_CHARS:
            return self.image_coverage > 0.0
        thin = self.chars_per_kpt2 < THIN_CHARS_PER_KPT2 or self.wordlike_share < WORDLIKE_SHARE
        return self.image_coverage >= SCAN_COVERAGE and thin


def page_layer(page: pdfium.PdfPage, number: int, text: str) -> PageLayer:
    """The layer statistics of an open page whose (normalised) text is ``text``; PDFIUM_LOCK held."""
    width, height = page.get_size()
    area = max(float(width) * float(height), 1.0)
    tokens = text.split()
    wordlike = sum(1 for token in tokens if _WORDLIKE.search(token))
    return PageLayer(
        page=number,
        area_pt2=area,
        characters=sum(not ch.isspace() for ch in text),
        wordlike_share=wordlike / len(tokens) if tokens else 0.0,
        image_coverage=_image_coverage(page, float(width), float(height)),
    )


def _image_coverage(page: pdfium.PdfPage, width: float, height: float) -> float:
    covered = 0.0
    for count, obj in enumerate(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])):
        if count >= MAX_INSPECTED_OBJECTS:
            return 0.0
        left, bottom, right, top = obj.get_bounds()
        clipped = max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(top, height) - max(bottom, 0.0))
        covered += clipped
    return min(covered / max(width * height, 1.0), 1.0)


def render_scale(width_pt: float, height_pt: float, dpi: int, max_side_px: int) -> float:
    """Points → pixels at ``dpi``, reduced so the longer side stays within ``max_side_px`` (a poster
    or a 9,000 pt page is read at the resolution memory allows, not at its print size)."""
    return min(dpi / 72.0, max_side_px / max(width_pt, height_pt, 1.0))


def render_pages(
    data: bytes, pages: Sequence[int], *, dpi: int, max_side_px: int
) -> Iterator[tuple[int, npt.NDArray[np.uint8]]]:
    """Each listed page (1-based) as an upright BGR picture, one at a time so memory holds one page.
    The page's own rotation is applied, so a page stored sideways is read upright."""
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(data)
    try:
        for number in pages:
            with PDFIUM_LOCK:
                page = pdf[number - 1]
                try:
                    width, height = page.get_size()
                    scale = render_scale(float(width), float(height), dpi, max_side_px)
                    bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
                    pixels = np.array(bitmap.to_numpy()[:, :, :3], dtype=np.uint8)  # a copy: the bitmap is freed
                    bitmap.close()
                finally:
                    page.close()
            yield number, pixels
    finally:
        with PDFIUM_LOCK:
            pdf.close()
