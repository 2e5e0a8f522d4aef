"""Which PDF pages are read with OCR: scans, scans with a garbled text layer, and not the text
pages (with or without figures) or blank pages."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw

from medialens.domain.assets import MediaType
from medialens.errors import InvalidMediaError
from medialens.media.detection import DetectedType
from medialens.media.documents import extract as extract_module
from medialens.media.documents.extract import extract_document
from medialens.media.documents.pages import render_pages, render_scale

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sample_scans  # writes scans the way a scanner does, via sys.path above

pytestmark = pytest.mark.unit

PDF = DetectedType(media_type=MediaType.DOCUMENT, mime_type="application/pdf", extension="pdf")
PARAGRAPH = (
    "The committee reviewed the quarterly budget and approved the revised travel policy. Members asked "
    "for a summary of vendor contracts before the next meeting, and the chair agreed to circulate it. "
) * 4


def _photo(size: tuple[int, int] = (600, 400)) -> Image.Image:
    picture = Image.new("RGB", size, (90, 140, 200))
    ImageDraw.Draw(picture).ellipse((100, 80, 400, 330), fill=(240, 200, 60))
    return picture


def _fpdf_pages(*pages: tuple[str, Image.Image | None, float]) -> bytes:
    """Pages of (text, picture, picture width in mm) with a real text layer."""
    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    for text, picture, width in pages:
        pdf.add_page()
        if picture is not None:
            pdf.image(picture, x=0, y=0, w=width)
        if text:
            pdf.set_y(250 if width > 150 else 120)
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def test_scanned_pages_are_listed_for_ocr_and_text_pages_keep_their_layer() -> None:
    doc = extract_document(sample_scans.contract_pdf(), PDF)
    assert doc.pages == 3 and doc.ocr_pages == [1, 3]
    assert [section.page for section in doc.sections] == [2]
    assert "4,800 EUR" in doc.sections[0].text


def test_a_text_page_with_a_large_figure_keeps_its_layer() -> None:
    doc = extract_document(_fpdf_pages((PARAGRAPH, _photo(), 150.0)), PDF)
    assert doc.ocr_pages == [] and doc.sections[0].page == 1


def test_a_scan_with_a_few_stray_glyphs_in_its_layer_is_read_again() -> None:
    # A full-page picture under a garbled OCR layer: a few symbols, hardly a word.
    doc = extract_document(_fpdf_pages(("sw | \\\\ + 400 + 300 ~ [1] BH", _photo((1240, 1754)), 210.0)), PDF)
    assert doc.ocr_pages == [1] and doc.sections == []


def test_a_photo_page_without_text_is_read_and_a_blank_page_is_not() -> None:
    blank_and_photo = _fpdf_pages(("", None, 0.0), ("", _photo(), 80.0), (PARAGRAPH, None, 0.0))
    doc = extract_document(blank_and_photo, PDF)
    assert doc.ocr_pages == [2] and [s.page for s in doc.sections] == [3]


def test_a_pdf_with_too_many_pages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "MAX_PDF_PAGES", 2)
    with pytest.raises(InvalidMediaError, match="PDF has 3 pages; the limit is 2 pages per document"):
        extract_document(_fpdf_pages((PARAGRAPH, None, 0.0), (PARAGRAPH, None, 0.0), (PARAGRAPH, None, 0.0)), PDF)


def test_pages_render_upright_at_the_resolution_ocr_needs() -> None:
    rendered = dict(render_pages(sample_scans.contract_pdf(), [1, 3], dpi=200, max_side_px=4096))
    assert rendered[1].shape == (2200, 1700, 3)
    assert rendered[3].shape == (2200, 1700, 3)  # stored sideways, /Rotate 90: rendered upright


def test_huge_pages_are_rendered_within_the_pixel_cap() -> None:
    # A 9,000 pt square page at 200 dpi would be 25,000 px a side.
    assert render_scale(9000, 9000, 200, 4096) == pytest.approx(4096 / 9000)
    assert render_scale(612, 792, 200, 4096) == pytest.approx(200 / 72)
    poster = io.BytesIO()
    Image.new("L", (900, 900), 255).save(poster, format="PDF", resolution=7.2)  # 9,000 pt a side
    ((_, pixels),) = list(render_pages(poster.getvalue(), [1], dpi=200, max_side_px=1024))
    assert max(pixels.shape[:2]) <= 1024
