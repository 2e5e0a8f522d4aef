"""Media type detection: content (magic bytes) first, the file name's extension second.

Uploads are often mislabelled, so the extension only decides between kinds the content cannot
tell apart (Markdown vs plain text, ``.m4a`` vs ``.mp4`` in the same container family). Binary
content is never taken for a text document: the head must be free of NUL bytes (unless it carries
a UTF-16/32 byte-order mark) and decodable.
"""

from __future__ import annotations

import codecs
import re
from pathlib import PurePosixPath

import charset_normalizer
import filetype
from pydantic import BaseModel, ConfigDict

from medialens.domain.assets import MediaType
from medialens.errors import InvalidMediaError, UnsupportedMediaError

# How many leading bytes a caller should pass as ``head``: all the signatures below (and
# filetype's) sit in the first 8 KiB.
SNIFF_BYTES = 8192

OCTET_STREAM = "application/octet-stream"


class DetectedType(BaseModel):
    """What a file is, as far as its first bytes and its name tell."""

    model_config = ConfigDict(frozen=True)

    media_type: MediaType
    mime_type: str
    extension: str  # canonical, lower case, without the dot ("pdf", "md"); "" when unknown
    declared_extension: str = ""  # what the name said, for reporting mislabelled files

    @property
    def is_document(self) -> bool:
        return self.media_type is MediaType.DOCUMENT

    @property
    def declared_media_type(self) -> MediaType | None:
        """The kind the name promised, if its extension is one we recognise."""
        declared = _BY_EXTENSION.get(self.declared_extension)
        return declared[0] if declared else None

    @property
    def mislabelled(self) -> bool:
        """The name promised a different recognised kind than the content turned out to be."""
        declared = _BY_EXTENSION.get(self.declared_extension)
        return declared is not None and declared[1] != self.mime_type


# Canonical (media type, mime) for each extension we recognise.
_BY_EXTENSION: dict[str, tuple[MediaType, str]] = {
    "txt": (MediaType.DOCUMENT, "text/plain"),
    "md": (MediaType.DOCUMENT, "text/markdown"),
    "markdown": (MediaType.DOCUMENT, "text/markdown"),
    "html": (MediaType.DOCUMENT, "text/html"),
    "htm": (MediaType.DOCUMENT, "text/html"),
    "pdf": (MediaType.DOCUMENT, "application/pdf"),
    "srt": (MediaType.DOCUMENT, "application/x-subrip"),
    "docx": (MediaType.DOCUMENT, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "pptx": (MediaType.DOCUMENT, "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "vtt": (MediaType.DOCUMENT, "text/vtt"),
    "mp4": (MediaType.VIDEO, "video/mp4"),
    "mov": (MediaType.VIDEO, "video/quicktime"),
    "mkv": (MediaType.VIDEO, "video/x-matroska"),
    "webm": (MediaType.VIDEO, "video/webm"),
    "mp3": (MediaType.AUDIO, "audio/mpeg"),
    "wav": (MediaType.AUDIO, "audio/x-wav"),
    "m4a": (MediaType.AUDIO, "audio/mp4"),
    "flac": (MediaType.AUDIO, "audio/x-flac"),
    "ogg": (MediaType.AUDIO, "audio/ogg"),
    "jpg": (MediaType.IMAGE, "image/jpeg"),
    "jpeg": (MediaType.IMAGE, "image/jpeg"),
    "png": (MediaType.IMAGE, "image/png"),
    "webp": (MediaType.IMAGE, "image/webp"),
}

# The extension we report for each recognised mime type.
_CANONICAL_EXTENSION: dict[str, str] = {
    "text/plain": "txt",
    "text/markdown": "md",
    "text/html": "html",
    "application/pdf": "pdf",
    "application/x-subrip": "srt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "text/vtt": "vtt",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/webm": "webm",
    "audio/mpeg": "mp3",
    "audio/x-wav": "wav",
    "audio/mp4": "m4a",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
}

# Containers whose signature cannot say which of these it holds; the extension then decides.
_CONTAINER_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"video/mp4", "video/quicktime", "audio/mp4"}),
    frozenset({"video/x-matroska", "video/webm"}),
)

_TEXT_MIMES = frozenset({"text/plain", "text/markdown", "text/html", "application/x-subrip", "text/vtt"})
_OFFICE_EXTENSIONS = frozenset({"docx", "pptx"})
# Subtitles are told by their content: a WebVTT header, or a SubRip cue (number, then timing).
_WEBVTT_START = re.compile(rb"^WEBVTT(?:[ \t][^\n]*)?\r?\n")
_SUBRIP_START = re.compile(rb"^\s*\d+[ \t]*\r?\n[ \t]*\d{1,3}:\d{2}:\d{2}[,.]\d{1,3}[ \t]*-->")
# Media extensions: text content under one of these names is mislabelled, and we go by content.
_MEDIA_EXTENSIONS = frozenset(ext for ext, (kind, _) in _BY_EXTENSION.items() if kind is not MediaType.DOCUMENT)

# C0 controls that plain text legitimately contains (tab, newlines, form feed, escape).
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1b")
_CONTROL_BYTES = frozenset(range(0x20)) - _TEXT_CONTROLS | {0x7F}

# WHATWG MIME sniffing's "HTML" patterns: a document that opens with one of these is HTML.
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p|!--)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def detect_media_type(name: str, head: bytes, size: int) -> DetectedType:
    """Classify a file from its name, its first bytes (ideally ``SNIFF_BYTES``) and its size.

    Raises ``InvalidMediaError`` for an empty file. Anything unrecognised is ``MediaType.UNKNOWN``
    (call ``ensure_supported`` to turn that into a failure with a reason).
    """
    if size == 0:
        raise InvalidMediaError("empty file (0 bytes): nothing to analyse; upload the file again")
    if not head:
        raise ValueError("head must hold the first bytes of a non-empty file")
    declared = _extension_of(name)
    text_like = looks_like_text(head)

    if head.startswith(b"%PDF-") or (not text_like and b"%PDF-" in head[:1024]):
        # Readers accept the header anywhere in the first KiB; text that merely quotes it is not a PDF.
        return _detected("application/pdf", declared)

    mime = _binary_signature(head)
    if mime == "application/zip" and declared in _OFFICE_EXTENSIONS:
        # Office files are zips: one whose parts the sniffer did not see is checked by extraction,
        # which names what is missing.
        return _detected(_BY_EXTENSION[declared][1], declared)
    if mime is not None:
        if mime in _CANONICAL_EXTENSION:
            return _detected(_prefer_declared_in_family(mime, declared), declared)
        if not text_like:
            ext = filetype.get_type(mime=mime)
            return DetectedType(
                media_type=MediaType.UNKNOWN,
                mime_type=mime,
                extension=ext.extension if ext is not None else declared,
                declared_extension=declared,
            )
        # A short signature (e.g. "FWS" for Flash) at the start of readable text: it is text.

    if text_like:
        return _detect_text(head, declared)
    return DetectedType(
        media_type=MediaType.UNKNOWN, mime_type=OCTET_STREAM, extension=declared, declared_extension=declared
    )


def content_type_for(name: str) -> str | None:
    """The content type a file of this name is stored with, when its extension is one medialens
    analyses; None otherwise."""
    known = _BY_EXTENSION.get(_extension_of(name))
    return known[1] if known else None


def extensions_for(*media_types: MediaType) -> list[str]:
    """The file-name extensions recognised for these media types, in a stable order."""
    return [ext for ext, (kind, _) in _BY_EXTENSION.items() if kind in media_types]


def ensure_supported(detected: DetectedType) -> None:
    """Raise ``UnsupportedMediaError`` for a file no analysis branch understands."""
    if detected.media_type is not MediaType.UNKNOWN:
        return
    if detected.mime_type == OCTET_STREAM and detected.declared_extension in _BY_EXTENSION:
        what = f"binary data of no known format, although it is named .{detected.declared_extension}"
    elif detected.extension:
        what = f"{detected.mime_type} (.{detected.extension})"
    else:
        what = detected.mime_type
    raise UnsupportedMediaError(
        f"unsupported media type: {what}. medialens analyses documents (PDF, Markdown, HTML, plain "
        "text, Word and PowerPoint, SRT and WebVTT subtitles), video (mp4, mov, mkv, webm), audio (mp3, wav, "
        "m4a, flac, ogg) and images (jpeg, png, webp)"
    )


def looks_like_text(head: bytes) -> bool:
    """Whether ``head`` reads as text: no NULs (bar a UTF-16/32 BOM), few controls, decodable."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            try:
                # The head may end inside a character, so decode incrementally without finishing.
                sample = codecs.getincrementaldecoder(encoding)().decode(head[len(bom) :], final=False)
            except UnicodeDecodeError:
                return False
            return _few_controls(sample.encode("utf-8", errors="surrogatepass"))
    if b"\x00" in head or not _few_controls(head):
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        # Legacy 8-bit text: charset-normalizer only proposes an encoding if the result is not a mess.
        return charset_normalizer.from_bytes(head).best() is not None
    return True


def _few_controls(data: bytes) -> bool:
    # Real text may hold a stray control character; binary formats are full of them.
    controls = sum(1 for byte in data if byte in _CONTROL_BYTES)
    return controls <= len(data) // 100


def _extension_of(name: str) -> str:
    suffix = PurePosixPath(name.replace("\\", "/")).suffix
    return suffix[1:].lower() if suffix else ""


def _detected(mime: str, declared: str) -> DetectedType:
    ext = _CANONICAL_EXTENSION[mime]
    if declared in _BY_EXTENSION and _BY_EXTENSION[declared][1] == mime:
        ext = declared  # keep the name's own spelling of the same type ("jpeg", "htm", "markdown")
    return DetectedType(media_type=_BY_EXTENSION[ext][0], mime_type=mime, extension=ext, declared_extension=declared)


def _prefer_declared_in_family(mime: str, declared: str) -> str:
    declared_mime = _BY_EXTENSION.get(declared, (MediaType.UNKNOWN, ""))[1]
    for family in _CONTAINER_FAMILIES:
        if mime in family and declared_mime in family:
            return declared_mime
    return mime


def _binary_signature(head: bytes) -> str | None:
    """The mime type the head's signature names, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        # ISO base media: the major brand says QuickTime or audio-only; anything else plays as mp4.
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"ID3") and len(head) >= 10 and head[3] in (2, 3, 4) and head[4] != 0xFF:
        return "audio/mpeg"
    if len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame sync: layer III (bits 01) with a valid bitrate and sample rate.
        layer = (head[1] >> 1) & 0x3
        bitrate = head[2] >> 4
        sample_rate = (head[2] >> 2) & 0x3
        if layer == 1 and bitrate not in (0, 0xF) and sample_rate != 3:
            return "audio/mpeg"
    guessed = filetype.guess(head)
    if guessed is None:
        return None
    mime = str(guessed.mime)
    if mime == "audio/mpeg":
        return None  # filetype accepts a bare "ID3" prefix; the checks above are stricter
    # Spellings of types we recognise: an animated PNG still opens as a PNG.
    return {"audio/wav": "audio/x-wav", "image/apng": "image/png"}.get(mime, mime)


def _detect_text(head: bytes, declared: str) -> DetectedType:
    body = head
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            # Sniff HTML on the decoded text, re-encoded as UTF-8, so a BOM does not hide it.
            decoded = codecs.getincrementaldecoder(encoding)().decode(head[len(bom) :], final=False)
            body = decoded.encode("utf-8")
            break
    declared_mime = _BY_EXTENSION.get(declared, (MediaType.UNKNOWN, ""))[1]
    if _WEBVTT_START.match(body):
        return _detected("text/vtt", declared)
    if _SUBRIP_START.match(body):
        return _detected("application/x-subrip", declared)
    if declared_mime == "text/markdown":
        return _detected(declared_mime, declared)  # Markdown may open with raw HTML (a centred logo)
    if _HTML_START.match(body):
        return _detected("text/html", declared)
    if declared_mime in _TEXT_MIMES:
        return _detected(declared_mime, declared)
    if declared == "" or declared in _MEDIA_EXTENSIONS or declared == "pdf":
        # No name to go by, or a name that promised binary media: the content is plain text.
        return _detected("text/plain", declared)
    # Text in a format we do not analyse (.csv, .json, .py ...): report it rather than guess.
    return DetectedType(
        media_type=MediaType.UNKNOWN, mime_type="text/plain", extension=declared, declared_extension=declared
    )
