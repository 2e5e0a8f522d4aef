"""Word and PowerPoint files: text with headings, slides as pages, speaker notes, tables; their
pictures for OCR; and archives that are not what their name says, or are bombs, refused."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import pytest
from docx import Document
from docx.shared import Inches
from PIL import Image, ImageDraw, ImageFont
from pptx import Presentation
from pptx.util import Inches as PptxInches

from medialens.errors import InvalidMediaError
from medialens.media.documents.office import DOCX_MIME, PPTX_MIME, extract_office

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import sample_video

pytestmark = pytest.mark.integration


def text_picture(text: str) -> bytes:
    picture = Image.new("RGB", (900, 200), "white")
    ImageDraw.Draw(picture).text((30, 60), text, font=ImageFont.truetype(sample_video.font_path(), 56), fill="black")
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def word_file() -> bytes:
    document = Document()
    document.core_properties.title = "Depot handbook"
    document.add_paragraph("Read this before your first shift.")
    document.add_heading("Charging", level=1)
    document.add_paragraph("Forklifts are charged in bay 4 between shifts.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("Bay", "Use"), ("4", "charging")), strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_heading("Safety", level=1)
    document.add_paragraph("Helmets are required on the loading dock.")
    document.add_picture(io.BytesIO(text_picture("EXIT ROUTE C")), width=Inches(3))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def powerpoint_file() -> bytes:
    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly review"
    first.placeholders[1].text = "Revenue grew in every region."
    first.notes_slide.notes_text_frame.text = "Mention the Bergen office opening."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Headcount"
    table = second.shapes.add_table(2, 2, PptxInches(1), PptxInches(2), PptxInches(6), PptxInches(1)).table
    for r, row in enumerate((("Office", "People"), ("Oslo", "42"))):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    third = deck.slides.add_slide(deck.slide_layouts[6])  # blank: a picture only
    third.shapes.add_picture(io.BytesIO(text_picture("ROADMAP 2025")), PptxInches(1), PptxInches(1))
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def test_word_keeps_headings_tables_and_pictures() -> None:
    office = extract_office(word_file(), DOCX_MIME)
    assert office.text is not None and office.text.title == "Depot handbook"
    by_heading = {section.heading: section.text for section in office.text.sections}
    assert by_heading[None] == "Read this before your first shift."
    assert "bay 4" in by_heading["Charging"] and "Bay | Use\n4 | charging" in by_heading["Charging"]
    assert by_heading["Safety"] == "Helmets are required on the loading dock."
    assert len(office.pictures) == 1 and office.pictures[0].page is None


def test_powerpoint_slides_are_pages_with_titles_notes_and_tables() -> None:
    office = extract_office(powerpoint_file(), PPTX_MIME)
    assert office.text is not None and office.text.pages == 3
    sections = {section.page: section for section in office.text.sections}
    assert sections[1].heading == "Quarterly review"
    assert "Revenue grew" in sections[1].text and "Bergen office" in sections[1].text  # the speaker notes
    assert "Office | People\nOslo | 42" in sections[2].text
    assert [picture.page for picture in office.pictures] == [3]


def test_archives_that_are_not_what_they_claim_are_refused() -> None:
    with pytest.raises(InvalidMediaError, match="not a readable Word file"):
        extract_office(b"PK\x03\x04 this is not really a zip", DOCX_MIME)
    junk = io.BytesIO()
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("notes.txt", "just some text")
    with pytest.raises(InvalidMediaError, match=r"not a PowerPoint file: the archive has no ppt/presentation\.xml"):
        extract_office(junk.getvalue(), PPTX_MIME)


def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "")
        archive.writestr("word/media/filler.bin", b"\0" * (64 * 2**20))  # 64 MiB that packs to ~64 KiB
    with pytest.raises(InvalidMediaError, match="refused as a zip bomb"):
        extract_office(bomb.getvalue(), DOCX_MIME)
