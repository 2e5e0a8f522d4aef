"""Text extraction for documents: PDF (pypdfium2), HTML (BeautifulSoup), Markdown, plain text.

A PDF page whose text layer cannot stand for the page (``media.documents.pages``) is listed in
``ocr_pages`` instead of contributing its layer: the pipeline reads it with OCR.

Every failure is an ``InvalidMediaError`` whose reason tells a person what is wrong with the file
and what to do about it; the state machine shows that reason and never retries it.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable

import charset_normalizer
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from bs4 import BeautifulSoup
from bs4.element import CData, NavigableString, PreformattedString, Tag
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, Field

from medialens.errors import InvalidMediaError, UnsupportedMediaError
from medialens.media.detection import DetectedType
from medialens.media.documents.pages import PDFIUM_LOCK, page_layer

# Beyond this a PDF is refused rather than read: a print run or a generated bomb, not a document.
MAX_PDF_PAGES = 5_000


class TextSection(BaseModel):
    """A run of text with where it sits: its page (PDF, 1-based) and the heading above it."""

    text: str
    page: int | None = Field(default=None, ge=1)
    heading: str | None = None


class ExtractedDocument(BaseModel):
    """The text of one document, in reading order."""

    sections: list[TextSection]
    title: str | None = None
    pages: int | None = Field(default=None, ge=0)
    characters: int = Field(ge=0)
    ocr_pages: list[int] = Field(default_factory=list, description="PDF pages (1-based) to read with OCR")

    @classmethod
    def of(
        cls,
        sections: list[TextSection],
        title: str | None = None,
        pages: int | None = None,
        ocr_pages: list[int] | None = None,
    ) -> ExtractedDocument:
        return cls(
            sections=sections,
            title=title or None,
            pages=pages,
            characters=sum(len(s.text) for s in sections),
            ocr_pages=ocr_pages or [],
        )


def extract_document(data: bytes, detected: DetectedType) -> ExtractedDocument:
    """Extract the text of a document whose type ``detect_media_type`` found."""
    if not data:
        raise InvalidMediaError("empty file (0 bytes): nothing to analyse; upload the file again")
    mime = detected.mime_type
    if mime == "application/pdf":
        return _extract_pdf(data)
    if mime == "text/html":
        return _extract_html(data)
    if mime == "text/markdown":
        return _extract_markdown(data)
    if mime == "text/plain":
        return _extract_plain(data)
    raise UnsupportedMediaError(f"{mime} is not a document type; text extraction handles PDF, HTML, Markdown, text")


# --- normalisation -----------------------------------------------------------------------------

# Invisible format characters that only get in the way of search (zero-width space, BOM, bidi marks).
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u2060\ufeff\u202a-\u202e\u2066-\u2069]")
# A soft hyphen (PDFium reports hyphenation as U+0002) at a line end joins the word's two halves.
_SOFT_HYPHEN_BREAK = re.compile("[\u00ad\x02][ \t]*\n[ \t]*")
# Control characters other than newline and tab (C0, DEL, C1).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFKC, one newline style, no controls or invisible characters, single spaces, <=1 blank line."""
    # NFKC folds ligatures (PDFs are full of "ﬁ") and odd spaces into their plain forms.
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    # Form feeds and vertical tabs separate lines; the rest of the controls are noise.
    text = text.replace("\x0c", "\n").replace("\x0b", "\n")
    text = _SOFT_HYPHEN_BREAK.sub("", text)
    text = text.replace("\u00ad", "")
    text = _CONTROL.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    lines = [_HSPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# --- text decoding -----------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# How much charset-normalizer's mess ratio may exceed its own best guess for us still to pick
# cp1252: on short Western text it cannot tell the 8-bit Latin code pages apart (it reads a
# Swedish "å" as cp1250's "ĺ"), and cp1252 is by far the most common of them.
_CP1252_TOLERANCE = 0.05
_UNDECODABLE = (
    "undecodable text: it is not UTF-8 or UTF-16 and no other encoding fits; save it as UTF-8 and upload it again"
)


def decode_text(data: bytes, declared_encoding: str | None = None) -> str:
    """Decode text bytes: BOM, UTF-8, a declared charset (HTML meta), then charset-normalizer."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data[len(bom) :].decode(encoding))
            except UnicodeDecodeError as exc:
                raise InvalidMediaError(
                    f"undecodable text: it starts with a {encoding} byte-order mark but byte {exc.start} "
                    f"is not valid {encoding}; save it as UTF-8 and upload it again"
                ) from exc
    try:
        return _checked(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    if declared_encoding:
        try:
            return _checked(data.decode(declared_encoding))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: detect instead
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise InvalidMediaError(_UNDECODABLE)
    encoding = best.encoding
    if encoding != "cp1252":
        western = charset_normalizer.from_bytes(data, cp_isolation=["cp1252"]).best()
        if western is not None and western.chaos <= best.chaos + _CP1252_TOLERANCE:
            encoding = "cp1252"
    try:
        return _checked(data.decode(encoding))
    except UnicodeDecodeError as exc:
        raise InvalidMediaError(_UNDECODABLE) from exc


_BINARY_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def _checked(text: str) -> str:
    # A decoder that "succeeds" on binary data leaves a trail of control characters behind.
    controls = len(_BINARY_CONTROLS.findall(text))
    if controls > len(text) // 100:
        raise InvalidMediaError(
            "undecodable text: it is full of control characters, so it is probably binary data with a text file's name"
        )
    return text


# --- PDF ---------------------------------------------------------------------------------------


def _extract_pdf(data: bytes) -> ExtractedDocument:
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise _pdf_open_error(exc) from exc
        try:
            page_count = len(pdf)
            if page_count > MAX_PDF_PAGES:
                raise InvalidMediaError(
                    f"PDF has {page_count:,} pages; the limit is {MAX_PDF_PAGES:,} pages per document: "
                    "split it into parts and upload those"
                )
            title = _pdf_title(pdf)
            sections: list[TextSection] = []
            ocr_pages: list[int] = []
            for index in range(page_count):
                text = _pdf_page_text(pdf, index, ocr_pages)
                if text:
                    sections.append(TextSection(text=text, page=index + 1))
        finally:
            pdf.close()
    if page_count == 0:
        raise InvalidMediaError("PDF has no pages: re-export the document and upload it again")
    if not sections and not ocr_pages:
        raise InvalidMediaError(
            f"PDF has no text on any of its {page_count} page(s): neither a text layer nor a scanned picture "
            "of text; check that the right file was uploaded"
        )
    return ExtractedDocument.of(sections, title=title, pages=page_count, ocr_pages=ocr_pages)


def _pdf_open_error(exc: Exception) -> InvalidMediaError:
    code = getattr(exc, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return InvalidMediaError(
            "PDF is encrypted and needs a password to open: remove the password protection and upload it again"
        )
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return InvalidMediaError(
            "PDF uses an unsupported security handler (encryption): save an unprotected copy and upload it again"
        )
    return InvalidMediaError(
        f'corrupt or truncated PDF: the parser says "{_short(exc)}"; re-export it or upload the complete file again'
    )


def _pdf_page_text(pdf: pdfium.PdfDocument, index: int, ocr_pages: list[int]) -> str:
    """The page's normalised text layer, or "" with the page added to ``ocr_pages`` when the layer
    cannot stand for the page."""
    try:
        page = pdf[index]
    except pdfium.PdfiumError as exc:
        raise InvalidMediaError(
            f'corrupt PDF: page {index + 1} cannot be read, the parser says "{_short(exc)}"; '
            "re-export it and upload it again"
        ) from exc
    try:
        textpage = page.get_textpage()
        try:
            text = normalize_text(str(textpage.get_text_range()))
        finally:
            textpage.close()
        if page_layer(page, index + 1, text).needs_ocr:
            ocr_pages.append(index + 1)
            return ""
        return text
    finally:
        page.close()


def _pdf_title(pdf: pdfium.PdfDocument) -> str | None:
    try:
        title = normalize_text(str(pdf.get_metadata_value("Title") or ""))
    except pdfium.PdfiumError:
        return None  # a damaged info dictionary costs the title, not the document
    return title or None


def _short(exc: Exception) -> str:
    return str(exc).strip().rstrip(".") or type(exc).__name__


# --- HTML --------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Not prose: code, styling, navigation chrome, inert templates, embedded graphics.
_DROP_TAGS = ("script", "style", "nav", "template", "noscript", "svg", "canvas", "iframe", "object", "head")
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Elements that end a line of text; inline ones (a, b, span ...) join their neighbours directly.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main", "ol", "p",
        "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})


def _extract_html(data: bytes) -> ExtractedDocument:
    declared = _META_CHARSET.search(data[:4096])
    text = decode_text(data, declared.group(1).decode("ascii") if declared else None)
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = normalize_text(title_tag.get_text(" ")) if title_tag is not None else ""
    for tag in soup.find_all(list(_DROP_TAGS)):
        tag.decompose()
    root = soup.find("body")
    sections, first_h1 = _html_sections(root if isinstance(root, Tag) else soup)
    if not sections:
        raise InvalidMediaError(
            "HTML document contains no text once markup, scripts and styles are removed: check that the "
            "page's content is in the file itself, not loaded by a script"
        )
    return ExtractedDocument.of(sections, title=title or first_h1)


def _html_sections(root: Tag) -> tuple[list[TextSection], str | None]:
    """Split at h1-h6 in document order; walked with a stack so deep nesting cannot overflow."""
    builder = _SectionBuilder()
    first_h1: str | None = None
    # None marks the end of a block element: a line break goes there.
    stack: list[Tag | NavigableString | None] = list(reversed(list(_children(root))))
    while stack:
        node = stack.pop()
        if node is None:
            builder.line_break()
        elif isinstance(node, Tag):
            if node.name in _HEADINGS:
                heading = normalize_text(node.get_text(" "))
                builder.start(heading)
                if node.name == "h1" and first_h1 is None and heading:
                    first_h1 = heading
                continue
            if node.name in _BLOCK_TAGS:
                builder.line_break()
                stack.append(None)
            elif node.name in _CELL_TAGS:
                builder.add(" ")
            stack.extend(reversed(list(_children(node))))
        elif not isinstance(node, PreformattedString) or isinstance(node, CData):
            # Comments, doctypes and processing instructions are strings too, but not content.
            text = str(node)
            if "\n" in text and node.find_parent("pre") is None:
                text = text.replace("\n", " ")  # source line breaks are just spaces in HTML
            builder.add(text)
    return builder.finish(), first_h1


def _children(tag: Tag) -> Iterable[Tag | NavigableString]:
    return (child for child in tag.children if isinstance(child, Tag | NavigableString))


class _SectionBuilder:
    """Collects text under the current heading; a new heading closes the section."""

    def __init__(self) -> None:
        self._heading: str | None = None
        self._parts: list[str] = []
        self._sections: list[TextSection] = []
        self._line_ended = True

    def add(self, text: str) -> None:
        self._parts.append(text)
        if text.strip(" \t"):
            self._line_ended = text.rstrip(" \t").endswith("\n")

    def line_break(self) -> None:
        """End the current line, unless it already ended: adjacent blocks share one break."""
        if not self._line_ended:
            self._parts.append("\n")
            self._line_ended = True

    def start(self, heading: str | None) -> None:
        self._flush()
        self._heading = heading or None

    def finish(self) -> list[TextSection]:
        self._flush()
        return self._sections

    def _flush(self) -> None:
        text = normalize_text("".join(self._parts))
        self._parts.clear()
        self._line_ended = True
        # A heading with nothing under it (a title above the first subheading) has no passage to anchor.
        if text:
            self._sections.append(TextSection(text=text, heading=self._heading))


# --- Markdown ----------------------------------------------------------------------------------

_MD_LINE_END = frozenset(
    {
        "paragraph_close", "list_item_close", "bullet_list_close", "ordered_list_close",
        "blockquote_close", "tr_close", "thead_close", "tbody_close", "table_close", "hr",
    }
)  # fmt: skip


def _extract_markdown(data: bytes) -> ExtractedDocument:
    source = decode_text(data)
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(source)
    builder = _SectionBuilder()
    title: str | None = None
    in_heading = False
    heading_tag = ""
    for token in tokens:
        if token.type == "heading_open":
            in_heading, heading_tag = True, token.tag
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            text = _md_inline_text(token.children or [])
            if in_heading:
                heading = normalize_text(text)
                builder.start(heading)
                if heading_tag == "h1" and title is None and heading:
                    title = heading
            else:
                builder.add(text)
        elif token.type in ("fence", "code_block"):
            # Commands and config in code blocks are what people search runbooks for.
            builder.add("\n" + token.content + "\n")
        elif token.type == "html_block":
            builder.add("\n" + BeautifulSoup(token.content, "html.parser").get_text(" ") + "\n")
        elif token.type in _MD_LINE_END:
            builder.add("\n")
        elif token.type in ("th_close", "td_close"):
            builder.add(" ")
    sections = builder.finish()
    if not sections:
        raise InvalidMediaError("Markdown document contains no text (only headings, markup or whitespace)")
    return ExtractedDocument.of(sections, title=title)


def _md_inline_text(children: list[Token]) -> str:
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(child.content)  # the alt text describes the picture
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        # html_inline and the *_open/*_close markers carry no text of their own.
    return "".join(parts)


# --- plain text --------------------------------------------------------------------------------


def _extract_plain(data: bytes) -> ExtractedDocument:
    text = normalize_text(decode_text(data))
    if not text:
        raise InvalidMediaError("text file contains no text (only whitespace or control characters)")
    return ExtractedDocument.of([TextSection(text=text)])
