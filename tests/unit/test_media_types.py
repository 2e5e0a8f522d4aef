"""Media type detection: content first, extension second, binary never taken for text."""

from __future__ import annotations

import codecs
import random
import struct
import zipfile
from io import BytesIO

import pytest
from docx import Document

from medialens.domain.assets import MediaType
from medialens.errors import InvalidMediaError, UnsupportedMediaError
from medialens.media.detection import (
    SNIFF_BYTES,
    DetectedType,
    detect_media_type,
    ensure_supported,
    looks_like_text,
)

pytestmark = pytest.mark.unit

PAD = bytes(64)  # signatures are followed by binary payload in real files


def _riff(kind: bytes, chunk: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 1000) + kind + chunk + PAD


def _ftyp(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"isom" + PAD


def _ebml(doctype: bytes) -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82" + bytes([0x80 | len(doctype)]) + doctype + PAD


SIGNATURES: dict[str, bytes] = {
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00" + PAD,
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + PAD,
    "webp": _riff(b"WEBP", b"VP8 "),
    "wav": _riff(b"WAVE", b"fmt "),
    "flac": b"fLaC\x00\x00\x00\x22" + PAD,
    "ogg": b"OggS\x00\x02" + PAD,
    "mp3_id3": b"ID3\x04\x00\x00\x00\x00\x00\x23" + PAD,
    "mp3_frame": b"\xff\xfb\x90\x64" + PAD,
    "mp4": _ftyp(b"isom"),
    "mov": _ftyp(b"qt  "),
    "m4a": _ftyp(b"M4A "),
    "mkv": _ebml(b"matroska"),
    "webm": _ebml(b"webm"),
}


def detect(name: str, data: bytes) -> DetectedType:
    return detect_media_type(name, data[:SNIFF_BYTES], len(data))


@pytest.mark.parametrize(
    ("key", "name", "media_type", "mime", "extension"),
    [
        ("pdf", "handbook.pdf", MediaType.DOCUMENT, "application/pdf", "pdf"),
        ("png", "logo.png", MediaType.IMAGE, "image/png", "png"),
        ("jpeg", "photo.jpg", MediaType.IMAGE, "image/jpeg", "jpg"),
        ("jpeg", "photo.jpeg", MediaType.IMAGE, "image/jpeg", "jpeg"),
        ("webp", "pic.webp", MediaType.IMAGE, "image/webp", "webp"),
        ("wav", "memo.wav", MediaType.AUDIO, "audio/x-wav", "wav"),
        ("flac", "song.flac", MediaType.AUDIO, "audio/x-flac", "flac"),
        ("ogg", "voice.ogg", MediaType.AUDIO, "audio/ogg", "ogg"),
        ("mp3_id3", "talk.mp3", MediaType.AUDIO, "audio/mpeg", "mp3"),
        ("mp3_frame", "talk.mp3", MediaType.AUDIO, "audio/mpeg", "mp3"),
        ("mp4", "demo.mp4", MediaType.VIDEO, "video/mp4", "mp4"),
        ("mov", "clip.mov", MediaType.VIDEO, "video/quicktime", "mov"),
        ("m4a", "call.m4a", MediaType.AUDIO, "audio/mp4", "m4a"),
        ("mkv", "film.mkv", MediaType.VIDEO, "video/x-matroska", "mkv"),
        ("webm", "screen.webm", MediaType.VIDEO, "video/webm", "webm"),
    ],
)
def test_signatures_are_recognised(key: str, name: str, media_type: MediaType, mime: str, extension: str) -> None:
    detected = detect(name, SIGNATURES[key])
    assert (detected.media_type, detected.mime_type, detected.extension) == (media_type, mime, extension)
    assert not detected.mislabelled


@pytest.mark.parametrize(
    ("key", "name", "mime"),
    [
        ("png", "report.pdf", "image/png"),
        ("pdf", "photo.jpg", "application/pdf"),
        ("wav", "notes.txt", "audio/x-wav"),
        ("mp4", "readme.md", "video/mp4"),
        ("jpeg", "page.html", "image/jpeg"),
    ],
)
def test_mislabelled_files_go_by_content(key: str, name: str, mime: str) -> None:
    detected = detect(name, SIGNATURES[key])
    assert detected.mime_type == mime
    assert detected.mislabelled
    assert detected.declared_extension == name.rsplit(".", 1)[1]


def test_content_without_extension_is_recognised() -> None:
    assert detect("upload", SIGNATURES["png"]).mime_type == "image/png"
    assert detect("upload", b"Plain words, no name.").mime_type == "text/plain"


def test_extension_decides_within_a_container_family() -> None:
    # An ISO-BMFF file with a generic brand named .m4a is audio; the same bytes named .mp4 are video.
    assert detect("call.m4a", SIGNATURES["mp4"]).mime_type == "audio/mp4"
    assert detect("call.mp4", SIGNATURES["mp4"]).mime_type == "video/mp4"
    assert detect("clip.webm", SIGNATURES["mkv"]).mime_type == "video/webm"
    # Outside the family the content wins.
    assert detect("call.m4a", SIGNATURES["mkv"]).mime_type == "video/x-matroska"


def test_random_binary_named_txt_is_not_text() -> None:
    blob = random.Random(7).randbytes(6000)
    detected = detect("notes.txt", blob)
    assert detected.media_type is MediaType.UNKNOWN
    assert detected.mime_type == "application/octet-stream"
    assert not looks_like_text(blob)


def test_binary_without_nul_bytes_is_not_text() -> None:
    # Controls but no NULs: the control-character ratio still gives it away.
    blob = bytes(b for b in random.Random(3).randbytes(3000) if b != 0)
    assert b"\x00" not in blob
    assert detect("data.txt", blob).media_type is MediaType.UNKNOWN


def test_known_but_unsupported_binary_is_unknown_with_its_mime() -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    detected = detect("bundle.pdf", buffer.getvalue())
    assert (detected.media_type, detected.mime_type, detected.extension) == (
        MediaType.UNKNOWN,
        "application/zip",
        "zip",
    )


@pytest.mark.parametrize(
    ("name", "data", "mime", "extension"),
    [
        ("notes.txt", b"Meeting notes\n\nWe agreed on the budget.", "text/plain", "txt"),
        ("runbook.md", b"# Runbook\n\nRotate the keys.", "text/markdown", "md"),
        ("runbook.markdown", b"# Runbook\n\nRotate the keys.", "text/markdown", "markdown"),
        ("faq.html", b"<p>Returns within 45 days.</p>", "text/html", "html"),
        ("faq.htm", b"<p>Returns within 45 days.</p>", "text/html", "htm"),
        # HTML sniffed from the content, whatever the name.
        ("page.txt", b"  <!DOCTYPE html><html><body>Hi</body></html>", "text/html", "html"),
        ("export", b"<!-- saved --><html><body>Hi</body></html>", "text/html", "html"),
        # Markdown often opens with raw HTML (a centred logo): the .md name wins over sniffing.
        ("README.md", b'<p align="center"><img src="logo.png"></p>\n\n# Tool\n', "text/markdown", "md"),
        # Text under a binary format's name is mislabelled: it is plain text.
        ("slides.pdf", b"These are not slides, just text.", "text/plain", "txt"),
        ("movie.mp4", b"Just a text file.", "text/plain", "txt"),
        # A short binary signature at the start of prose is not that format.
        ("cws.txt", b"CWS meeting: the committee met on Monday.", "text/plain", "txt"),
        ("id3.txt", b"ID3 tags store artist names in MP3 files.", "text/plain", "txt"),
        ("quote.txt", b"The header %PDF-1.4 starts every PDF.", "text/plain", "txt"),
    ],
)
def test_text_documents(name: str, data: bytes, mime: str, extension: str) -> None:
    detected = detect(name, data)
    assert detected.media_type is MediaType.DOCUMENT
    assert (detected.mime_type, detected.extension) == (mime, extension)


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-8", codecs.BOM_UTF8)],
)
def test_text_with_byte_order_mark_is_text(encoding: str, bom: bytes) -> None:
    data = bom + "Grüße, notes in UTF-16 are full of NUL bytes.".encode(encoding)
    detected = detect("notes.txt", data)
    assert (detected.media_type, detected.mime_type) == (MediaType.DOCUMENT, "text/plain")
    html = bom + "<!DOCTYPE html><title>x</title>".encode(encoding)
    assert detect("x.txt", html).mime_type == "text/html"


def test_legacy_8bit_text_is_text() -> None:
    data = "Café, résumé, Smörgåsbord, £500 budget for the naïve plan.".encode("cp1252")
    assert detect("notes.txt", data).mime_type == "text/plain"


def test_head_cut_inside_a_character_is_still_text() -> None:
    data = ("é" * SNIFF_BYTES).encode("utf-8")
    assert len(data[:SNIFF_BYTES].decode("utf-8", errors="ignore")) < SNIFF_BYTES  # really cut
    assert detect("notes.txt", data).mime_type == "text/plain"


def test_utf16_with_bad_surrogates_is_not_text() -> None:
    data = codecs.BOM_UTF16_LE + b"\x00\xdc" * 50  # lone low surrogates
    assert detect("notes.txt", data).media_type is MediaType.UNKNOWN


def test_text_in_an_unanalysed_format_is_unknown() -> None:
    detected = detect("table.csv", b"name,days\nann,25\n")
    assert (detected.media_type, detected.mime_type, detected.extension) == (
        MediaType.UNKNOWN,
        "text/plain",
        "csv",
    )


def test_extension_is_case_insensitive_and_path_tolerant() -> None:
    detected = detect("incoming/2024/Team Notes.MD", b"# Notes\n\nText.")
    assert (detected.mime_type, detected.extension, detected.declared_extension) == (
        "text/markdown",
        "md",
        "md",
    )
    assert detect("C:\\Users\\ann\\notes.TXT", b"hello").mime_type == "text/plain"


def test_empty_file_is_invalid_with_an_actionable_reason() -> None:
    with pytest.raises(InvalidMediaError, match=r"^empty file \(0 bytes\): nothing to analyse") as info:
        detect_media_type("notes.txt", b"", 0)
    assert info.value.error_name == "MediaLens.InvalidMedia"


def test_head_is_required_for_a_non_empty_file() -> None:
    with pytest.raises(ValueError, match="head"):
        detect_media_type("notes.txt", b"", 10)


def test_ensure_supported() -> None:
    ensure_supported(detect("faq.html", b"<p>x</p>"))
    ensure_supported(detect("logo.png", SIGNATURES["png"]))
    with pytest.raises(UnsupportedMediaError, match=r"^unsupported media type: binary data .* named \.txt") as info:
        ensure_supported(detect("notes.txt", random.Random(1).randbytes(500)))
    assert info.value.error_name == "MediaLens.UnsupportedMediaType"
    with pytest.raises(UnsupportedMediaError, match=r"unsupported media type: application/octet-stream \(\.bin\)"):
        ensure_supported(detect("firmware.bin", b"FW\x00\x01" + random.Random(2).randbytes(200)))
    with pytest.raises(UnsupportedMediaError, match=r"text/plain \(\.csv\)"):
        ensure_supported(detect("table.csv", b"a,b\n1,2\n"))


def test_detected_type_is_immutable() -> None:
    detected = detect("a.txt", b"hello")
    with pytest.raises(ValueError, match="frozen"):
        detected.mime_type = "image/png"  # type: ignore[misc]


def test_office_files_are_documents_and_a_bare_zip_named_docx_goes_to_their_check() -> None:
    out = BytesIO()
    Document().save(out)
    word = detect_media_type("minutes.docx", out.getvalue()[:SNIFF_BYTES], len(out.getvalue()))
    assert (word.media_type, word.extension) == (MediaType.DOCUMENT, "docx")
    junk = BytesIO()
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("readme.txt", "not a document")
    named = detect_media_type("contract.docx", junk.getvalue(), len(junk.getvalue()))
    assert named.mime_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    unnamed = detect_media_type("bundle.zip", junk.getvalue(), len(junk.getvalue()))
    assert unnamed.media_type is MediaType.UNKNOWN
