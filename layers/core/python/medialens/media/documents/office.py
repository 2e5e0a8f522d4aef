"""Word (.docx) and PowerPoint (.pptx) files: their text with headings, slide numbers as pages,
speaker notes and tables, and the pictures inside them (for OCR).

Both formats are zip archives of XML. The archive is checked before a library opens it: a file
that is no zip, a zip without the format's parts, or one whose parts unpack to far more than
its size (a zip bomb) is refused with what it is, so a hostile upload costs neither memory nor
time.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pptx.table import Table as PptxTable

from medialens.errors import InvalidMediaError
from medialens.media.documents.extract import ExtractedDocument, TextSection, normalize_text

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
OFFICE_MIMES = frozenset({DOCX_MIME, PPTX_MIME})

MAX_UNPACKED_BYTES = 512 * 2**20  # what all parts may unpack to
MAX_PACKING_RATIO = 200  # XML packs 5-20x; a bomb packs thousands to one
MAX_PICTURES = 200  # pictures read by OCR per file
MAX_PICTURE_BYTES = 20 * 2**20
_PARTS = {DOCX_MIME: ("word/document.xml", "Word"), PPTX_MIME: ("ppt/presentation.xml", "PowerPoint")}


@dataclass(frozen=True, slots=True)
class Picture:
    """A picture inside the file, with where it sits (slide number for PowerPoint)."""

    page: int | None
    data: bytes


@dataclass(frozen=True, slots=True)
class OfficeDocument:
    text: ExtractedDocument | None  # None: the file holds no text of its own (only pictures)
    pictures: list[Picture]


def check_archive(data: bytes, mime: str) -> None:
    """``InvalidMediaError`` unless ``data`` is a sound archive of the format ``mime`` names."""
    required, kind = _PARTS[mime]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise InvalidMediaError(
            f"not a readable {kind} file: the archive cannot be opened ({error}); save it again from {kind}"
        ) from error
    names = {info.filename for info in infos}
    if required not in names:
        raise InvalidMediaError(
            f"not a {kind} file: the archive has no {required}; it may be another zip with a {kind} name"
        )
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_PACKING_RATIO * max(len(data), 1):
        raise InvalidMediaError(
            f"{kind} file unpacks to {unpacked / 2**20:,.0f} MiB from {len(data) / 2**20:,.1f} MiB: refused as a "
            "zip bomb; if the document is genuine, save it again (or as PDF) and upload that"
        )


def extract_office(data: bytes, mime: str) -> OfficeDocument:
    check_archive(data, mime)
    _, kind = _PARTS[mime]
    try:
        return _docx(data) if mime == DOCX_MIME else _pptx(data)
    except InvalidMediaError:
        raise
    except Exception as error:
        raise InvalidMediaError(
            f"damaged {kind} file: {type(error).__name__}: {str(error)[:200]}; save it again from {kind}"
        ) from error


def _document(sections: list[TextSection], title: str | None, pages: int | None) -> ExtractedDocument | None:
    sections = [s for s in sections if s.text]
    return ExtractedDocument.of(sections, title=title, pages=pages) if sections else None


# --- Word ------------------------------------------------------------------------------------------


def _docx(data: bytes) -> OfficeDocument:
    document = Document(io.BytesIO(data))
    sections: list[TextSection] = []
    heading: str | None = None
    lines: list[str] = []

    def flush() -> None:
        sections.append(TextSection(text=normalize_text("\n".join(lines)), heading=heading))
        lines.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = (block.style.name if block.style is not None else "") or ""
            if style.startswith("Heading") or style == "Title":
                flush()
                heading = normalize_text(block.text) or heading
            else:
                lines.append(block.text)
        elif isinstance(block, Table):
            lines.extend(_table_rows(block))
    flush()
    title = normalize_text(document.core_properties.title or "") or None
    pictures = _pictures(
        (None, part.blob) for part in document.part.package.iter_parts() if part.partname.startswith("/word/media/")
    )
    return OfficeDocument(_document(sections, title, None), pictures)


def _table_rows(table: Table | PptxTable) -> Iterator[str]:
    """Each row as its cells' text joined by " | " (a merged cell is repeated once only)."""
    for row in table.rows:
        cells = list(dict.fromkeys(cell.text.strip() for cell in row.cells))
        if any(cells):
            yield " | ".join(cells)


# --- PowerPoint -------------------------------------------------------------------------------


def _pptx(data: bytes) -> OfficeDocument:
    presentation = Presentation(io.BytesIO(data))
    sections: list[TextSection] = []
    pictures: list[tuple[int | None, bytes]] = []
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        title = normalize_text(title_shape.text_frame.text) if title_shape is not None else ""
        lines: list[str] = []
        shapes = list(slide.shapes)
        while shapes:
            shape = shapes.pop(0)
            if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
                shapes[:0] = list(shape.shapes)
                continue
            if shape is title_shape:
                continue
            if shape.has_text_frame:
                lines.append(shape.text_frame.text)
            elif shape.has_table:
                lines.extend(_table_rows(shape.table))
            elif shape.shape_type == MSO_SHAPE_TYPE.PICTURE:
                pictures.append((number, shape.image.blob))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                lines.append(notes.text)
        body = normalize_text("\n".join(lines))
        sections.append(
            TextSection(text=normalize_text(f"{title}\n{body}") if title else body, page=number, heading=title or None)
        )
    core_title = normalize_text(presentation.core_properties.title or "") or None
    return OfficeDocument(_document(sections, core_title, len(presentation.slides)), _pictures(pictures))


def _pictures(found: Iterable[tuple[int | None, bytes]]) -> list[Picture]:
    """Distinct pictures small enough to read, at most MAX_PICTURES."""
    seen: set[int] = set()
    pictures: list[Picture] = []
    for page, blob in found:
        if len(blob) > MAX_PICTURE_BYTES or hash(blob) in seen:
            continue
        seen.add(hash(blob))
        pictures.append(Picture(page=page, data=blob))
        if len(pictures) == MAX_PICTURES:
            break
    return pictures
