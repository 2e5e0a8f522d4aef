"""Document extraction (PDF, HTML, Markdown, text), chunking, and the sample corpus."""

from __future__ import annotations

import codecs
import importlib.util
import itertools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fpdf import FPDF

from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Passage
from medialens.errors import InvalidMediaError, MediaLensError, UnsupportedMediaError
from medialens.media.detection import SNIFF_BYTES, DetectedType, detect_media_type, ensure_supported
from medialens.media.documents.chunking import chunk_passages
from medialens.media.documents.extract import (
    ExtractedDocument,
    TextSection,
    decode_text,
    extract_document,
    normalize_text,
)

pytestmark = pytest.mark.unit

PDF = DetectedType(media_type=MediaType.DOCUMENT, mime_type="application/pdf", extension="pdf")
HTML = DetectedType(media_type=MediaType.DOCUMENT, mime_type="text/html", extension="html")
MARKDOWN = DetectedType(media_type=MediaType.DOCUMENT, mime_type="text/markdown", extension="md")
TEXT = DetectedType(media_type=MediaType.DOCUMENT, mime_type="text/plain", extension="txt")

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_sample_media.py"


def make_pdf(
    pages: list[str],
    *,
    title: str | None = None,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> bytes:
    """A PDF with one page per entry; an empty entry is a page with only a drawing on it."""
    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    if title:
        pdf.set_title(title)
    if owner_password:
        pdf.set_encryption(owner_password=owner_password, user_password=user_password)
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
        else:
            pdf.rect(20, 20, 100, 60, style="F")  # what a scan looks like to a text extractor: no text
    return bytes(pdf.output())


def reason_of(data: bytes, detected: DetectedType) -> str:
    with pytest.raises(InvalidMediaError) as info:
        extract_document(data, detected)
    return info.value.reason


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_keeps_page_numbers_and_title() -> None:
    data = make_pdf(
        [
            "Welcome to the company.",
            "Employees get 25 vacation days per year.",
            "Expenses are due within 30 days.",
        ],
        title="Handbook",
    )
    doc = extract_document(data, PDF)
    assert doc.pages == 3
    assert doc.title == "Handbook"
    assert [s.page for s in doc.sections] == [1, 2, 3]
    assert "25 vacation days" in doc.sections[1].text
    assert "30 days" in doc.sections[2].text
    assert all(s.heading is None for s in doc.sections)
    assert doc.characters == sum(len(s.text) for s in doc.sections)


def test_pdf_pages_without_text_are_skipped_but_counted() -> None:
    doc = extract_document(make_pdf(["First page.", "", "Third page."]), PDF)
    assert doc.pages == 3
    assert [(s.page, s.text) for s in doc.sections] == [(1, "First page."), (3, "Third page.")]
    assert doc.title is None


def test_pdf_without_text_or_pictures_has_nothing_to_read() -> None:
    reason = reason_of(make_pdf(["", ""]), PDF)
    assert reason.startswith("PDF has no text on any of its 2 page(s): neither a text layer nor a scanned picture")


def test_encrypted_pdf_needs_a_password() -> None:
    data = make_pdf(["Secret salary table."], owner_password="owner", user_password="open-sesame")
    assert reason_of(data, PDF).startswith("PDF is encrypted and needs a password to open")


def test_pdf_with_only_an_owner_password_opens() -> None:
    # Permissions-only encryption: any reader opens it without a password, and so do we.
    data = make_pdf(["Printable but not editable."], owner_password="owner")
    assert extract_document(data, PDF).sections[0].text == "Printable but not editable."


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_truncated_pdf_is_corrupt_with_the_parsers_message(fraction: float) -> None:
    data = make_pdf(["Page one text.", "Page two text.", "Page three text."])
    reason = reason_of(data[: int(len(data) * fraction)], PDF)
    assert reason.startswith("corrupt or truncated PDF: the parser says")
    assert "PDFium" in reason  # the parser's own short message is passed on


def test_garbage_after_a_pdf_header_is_corrupt() -> None:
    assert reason_of(b"%PDF-1.7\nthis is not really a pdf", PDF).startswith("corrupt or truncated PDF")


def test_pdf_extraction_is_deterministic() -> None:
    data = make_pdf(["Alpha.", "Beta."])
    assert extract_document(data, PDF) == extract_document(data, PDF)


# --- HTML --------------------------------------------------------------------------------------

FAQ = b"""<!DOCTYPE html>
<html><head><title> Acme  FAQ </title><style>.x { color: red }</style>
<script>var tracking = "analytics";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/shop">Shop</a></nav>
<p>Intro for <b>all</b> customers &amp; partners.</p>
<!-- editor's note: hidden -->
<h1>Questions</h1>
<h2>Warranty</h2>
<p>Every robot has a <strong>two-year</strong> warranty.</p>
<template><p>template text</p></template>
<noscript>enable javascript</noscript>
<h2>Returns</h2>
<ul><li>Within 45 days</li><li>Full refund</li></ul>
<table><tr><td>EU</td><td>yes</td></tr></table>
</body></html>"""


def test_html_sections_follow_headings() -> None:
    doc = extract_document(FAQ, HTML)
    assert doc.title == "Acme FAQ"
    assert [(s.heading, s.text) for s in doc.sections] == [
        (None, "Intro for all customers & partners."),
        ("Warranty", "Every robot has a two-year warranty."),
        ("Returns", "Within 45 days\nFull refund\nEU yes"),
    ]
    assert doc.pages is None
    assert all(s.page is None for s in doc.sections)


def test_html_drops_scripts_styles_nav_templates_and_comments() -> None:
    text = " ".join(s.text for s in extract_document(FAQ, HTML).sections)
    for hidden in ("analytics", "color", "Home", "Shop", "template text", "editor", "javascript"):
        assert hidden not in text


def test_html_title_falls_back_to_first_h1() -> None:
    doc = extract_document(b"<h1>Release notes</h1><h2>1.2</h2><p>Faster search.</p>", HTML)
    assert doc.title == "Release notes"
    assert [(s.heading, s.text) for s in doc.sections] == [("1.2", "Faster search.")]


def test_html_honours_its_declared_charset() -> None:
    data = '<html><head><meta charset="iso-8859-1"></head><body><p>Café für Ærø</p></body></html>'
    doc = extract_document(data.encode("latin-1"), HTML)
    assert doc.sections[0].text == "Café für Ærø"


def test_html_without_text_contains_no_text() -> None:
    data = b"<html><head><title>Empty</title><script>render()</script></head><body><div></div></body></html>"
    assert reason_of(data, HTML).startswith("HTML document contains no text")


def test_deeply_nested_html_does_not_overflow_the_stack() -> None:
    depth = 3000
    data = ("<div>" * depth + "<h2>Deep</h2><p>bottom text</p>" + "</div>" * depth).encode()
    doc = extract_document(data, HTML)
    assert [(s.heading, s.text) for s in doc.sections] == [("Deep", "bottom text")]


# --- Markdown ----------------------------------------------------------------------------------

RUNBOOK = """\
Owner: platform team.

# Runbook

Read this **first**.

## Rotate the credentials

1. Run `opsctl rotate --env prod` and wait.
2. See the [dashboard](https://dashboard.example/db) and ![latency graph](graph.png).

```bash
kubectl rollout restart deployment/api
```

| Step | Owner |
|------|-------|
| Verify | SRE |

## Escalation
Page the secondary
after *15 minutes*.
"""


def test_markdown_sections_text_without_markup() -> None:
    doc = extract_document(RUNBOOK.encode(), MARKDOWN)
    assert doc.title == "Runbook"
    headings = [s.heading for s in doc.sections]
    assert headings == [None, "Runbook", "Rotate the credentials", "Escalation"]
    rotate = doc.sections[2].text
    assert "Run opsctl rotate --env prod and wait." in rotate
    assert "See the dashboard and latency graph." in rotate
    assert "kubectl rollout restart deployment/api" in rotate  # code is searchable
    assert "Verify SRE" in rotate
    for markup in ("**", "`", "](", "![", "|", "```", "#"):
        assert markup not in rotate
    assert doc.sections[3].text == "Page the secondary after 15 minutes."


def test_markdown_with_only_headings_contains_no_text() -> None:
    assert reason_of(b"# Title\n\n## Empty section\n", MARKDOWN).startswith("Markdown document contains no text")


# --- plain text and decoding -------------------------------------------------------------------

NOTES = "Grüße aus München: Smörgåsbord costs £12 at the café; naïve résumé."


@pytest.mark.parametrize(
    "data",
    [
        NOTES.encode("utf-8"),
        codecs.BOM_UTF8 + NOTES.encode("utf-8"),
        codecs.BOM_UTF16_LE + NOTES.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + NOTES.encode("utf-16-be"),
        NOTES.encode("utf-16"),  # the platform's byte order, with its BOM
        NOTES.encode("cp1252"),
        NOTES.encode("latin-1"),
    ],
)
def test_plain_text_encodings(data: bytes) -> None:
    doc = extract_document(data, TEXT)
    assert [(s.text, s.page, s.heading) for s in doc.sections] == [(NOTES, None, None)]
    assert doc.characters == len(NOTES)


def test_longer_latin1_text_is_not_misread_as_another_code_page() -> None:
    text = (
        "Le comité a décidé que la réunion de février aura lieu à l'hôtel près de la gare. "
        "Les élèves très motivés préparent déjà leurs présentations; le trésorier a noté que les "
        "dépenses ont dépassé le budget prévu. Noël approche, et la fête sera célébrée."
    )
    assert decode_text(text.encode("latin-1")) == text


def test_other_legacy_code_pages_still_detected() -> None:
    # The cp1252 preference must not turn Cyrillic into accented Latin letters.
    text = "Привет! Встреча перенесена на вторник, бюджет утверждён, отчёт готов к пятнице."
    assert decode_text(text.encode("cp1251")) == text


def test_normalisation_of_whitespace_and_control_characters() -> None:
    raw = "  Title\r\n\r\n\r\n\r\nfirst\t\tline\x07 with  gaps\u200b and \ufb01le\x00s\r\n"
    raw += "second\u00a0line\n\n\n"
    assert normalize_text(raw) == "Title\n\nfirst line with gaps and file s\nsecond line"
    assert normalize_text("hyphen\u00ad\nated and soft\u00adhyphen") == "hyphenated and softhyphen"


def test_whitespace_only_text_contains_no_text() -> None:
    assert reason_of(b" \n\t\r\n \x0c ", TEXT).startswith("text file contains no text")


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF16_LE + b"\x00\xdc" * 20,  # lone surrogates under a UTF-16 BOM
        bytes(range(1, 32)) * 20,  # control characters only: binary with a text name
    ],
)
def test_undecodable_text(data: bytes) -> None:
    assert reason_of(data, TEXT).startswith("undecodable text")


def test_non_documents_are_not_extracted() -> None:
    video = DetectedType(media_type=MediaType.VIDEO, mime_type="video/mp4", extension="mp4")
    with pytest.raises(UnsupportedMediaError, match="video/mp4 is not a document type"):
        extract_document(b"\x00\x00\x00\x18ftypisom", video)


def test_empty_bytes_are_invalid() -> None:
    assert reason_of(b"", TEXT).startswith("empty file (0 bytes)")


# --- chunking ----------------------------------------------------------------------------------


def numbered(prefix: str, count: int, sentence_every: int | None = None) -> str:
    """Words like "a0 a1 ..."; with sentence_every, every n-th word ends a sentence."""
    words = [f"{prefix}{i}" for i in range(count)]
    if sentence_every:
        words = [w + "." if (i + 1) % sentence_every == 0 else w for i, w in enumerate(words)]
    return " ".join(words)


def doc_of(*sections: TextSection) -> ExtractedDocument:
    return ExtractedDocument.of(list(sections))


def rebuild(passages: list[Passage], overlap: int) -> list[str]:
    words = passages[0].text.split()
    for passage in passages[1:]:
        words += passage.text.split()[overlap:]
    return words


def test_windows_overlap_by_exactly_the_overlap_words() -> None:
    text = numbered("w", 500)
    passages = chunk_passages(doc_of(TextSection(text=text)), words=120, overlap=30)
    assert len(passages) > 3
    for left, right in itertools.pairwise(passages):
        assert left.text.split()[-30:] == right.text.split()[:30]
    assert all(len(p.text.split()) <= 120 for p in passages[:-1])
    assert rebuild(passages, 30) == text.split()  # nothing lost, nothing repeated beyond the overlap
    assert [p.index for p in passages] == list(range(len(passages)))
    assert all(p.modality is Modality.DOCUMENT for p in passages)


def test_windows_end_at_a_sentence_in_their_last_fifth() -> None:
    words = numbered("w", 300).split()
    words[104] += "."  # the 105th word: inside the last 20% of a 120-word window
    words[40] += "."  # too early to be used
    passages = chunk_passages(doc_of(TextSection(text=" ".join(words))), words=120, overlap=30)
    assert passages[0].text.split()[-1] == "w104."
    assert len(passages[0].text.split()) == 105
    assert passages[1].text.split()[0] == "w75"


def test_windows_ignore_sentences_too_early_in_the_window() -> None:
    words = numbered("w", 300).split()
    words[50] += "."
    passages = chunk_passages(doc_of(TextSection(text=" ".join(words))), words=120, overlap=30)
    assert len(passages[0].text.split()) == 120


def test_passages_never_cross_pages_and_keep_their_page() -> None:
    doc = doc_of(
        TextSection(text=numbered("a", 200, sentence_every=9), page=1),
        TextSection(text=numbered("b", 20), page=2),
        TextSection(text=numbered("c", 260, sentence_every=13), page=4),
    )
    passages = chunk_passages(doc, words=120, overlap=30)
    pages = {1: "a", 2: "b", 4: "c"}
    for passage in passages:
        assert passage.page is not None
        assert all(word.startswith(pages[passage.page]) for word in passage.text.split())
    assert [p.page for p in passages] == sorted(p.page for p in passages if p.page is not None)
    assert {p.page for p in passages} == {1, 2, 4}


def test_short_sections_stay_whole_and_keep_their_heading() -> None:
    doc = doc_of(
        TextSection(text="Returns within 45 days.", heading="Returns"),
        TextSection(text="Two-year warranty.", heading="Warranty"),
    )
    passages = chunk_passages(doc)
    assert [(p.text, p.section, p.page) for p in passages] == [
        ("Returns within 45 days.", "Returns", None),
        ("Two-year warranty.", "Warranty", None),
    ]


def test_tiny_trailing_fragment_is_merged() -> None:
    # 130 words: a second window would hold 10 new words and 30 repeated ones.
    passages = chunk_passages(doc_of(TextSection(text=numbered("w", 130))), words=120, overlap=30)
    assert len(passages) == 1
    assert len(passages[0].text.split()) == 130
    # A larger remainder is its own passage.
    passages = chunk_passages(doc_of(TextSection(text=numbered("w", 200))), words=120, overlap=30)
    assert [len(p.text.split()) for p in passages] == [120, 110]


def test_headings_are_not_prefixed_to_the_text() -> None:
    doc = doc_of(TextSection(text=numbered("w", 300), heading="Escalation"))
    passages = chunk_passages(doc, words=120, overlap=30)
    assert all(p.section == "Escalation" for p in passages)
    assert all(p.text.startswith("w") for p in passages)


@pytest.mark.parametrize(("words", "overlap"), [(120, 30), (50, 0), (10, 9), (2, 1), (1, 0), (40, 35)])
def test_chunking_covers_every_word_for_any_valid_setting(words: int, overlap: int) -> None:
    text = numbered("w", 777, sentence_every=7)
    passages = chunk_passages(doc_of(TextSection(text=text)), words=words, overlap=overlap)
    assert rebuild(passages, overlap) == text.split()
    for left, right in itertools.pairwise(passages):
        assert left.text.split()[len(left.text.split()) - overlap :] == right.text.split()[:overlap]


def test_chunking_is_deterministic() -> None:
    doc = extract_document(RUNBOOK.encode(), MARKDOWN)
    assert chunk_passages(doc, words=12, overlap=4) == chunk_passages(doc, words=12, overlap=4)


@pytest.mark.parametrize(("words", "overlap"), [(30, 30), (10, 20), (10, -1), (0, 0)])
def test_chunking_validates_its_settings(words: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="words > overlap >= 0"):
        chunk_passages(doc_of(TextSection(text="a b c")), words=words, overlap=overlap)


# --- the sample corpus -------------------------------------------------------------------------


def load_sample_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_media", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("samples") / "corpus"
    expected_path = load_sample_script().main(out, media=False)
    assert expected_path == out.with_name("corpus.expected.json")  # beside the corpus, not in it
    expected: dict[str, Any] = json.loads(expected_path.read_text(encoding="utf-8"))
    return out, expected


def analyse(path: Path) -> list[Passage]:
    """What the pipeline's document branch does with a file, minus storage and indexing."""
    data = path.read_bytes()
    detected = detect_media_type(path.name, data[:SNIFF_BYTES], len(data))
    ensure_supported(detected)
    return chunk_passages(extract_document(data, detected))


def test_sample_files_reach_their_expected_status(corpus: tuple[Path, dict[str, Any]]) -> None:
    out, expected = corpus
    files = expected["files"]
    assert {f["path"] for f in files} == {str(p.relative_to(out).as_posix()) for p in out.rglob("*") if p.is_file()}
    for entry in files:
        path = out / entry["path"]
        if entry["status"] == "SUCCEEDED":
            assert analyse(path), entry["path"]
        else:
            assert entry["status"] == "FAILED"
            with pytest.raises(MediaLensError) as info:
                analyse(path)
            assert info.value.error_name == entry["error"], entry["path"]
            assert entry["reason_contains"] in info.value.reason, entry["path"]


def test_sample_handbook_has_its_facts_on_distinct_pages(corpus: tuple[Path, dict[str, Any]]) -> None:
    out, expected = corpus
    entry = next(f for f in expected["files"] if f["path"].endswith(".pdf") and f["status"] == "SUCCEEDED")
    data = (out / entry["path"]).read_bytes()
    doc = extract_document(data, detect_media_type(entry["path"], data[:SNIFF_BYTES], len(data)))
    assert doc.pages == entry["pages"] >= 3
    assert doc.title


def test_sample_queries_have_their_answers_where_promised(corpus: tuple[Path, dict[str, Any]]) -> None:
    out, expected = corpus
    queries = expected["queries"]
    assert 5 <= len(queries) <= 6
    kinds = {Path(q["expect_file"]).suffix for q in queries}
    assert kinds == {".pdf", ".md", ".html", ".txt"}
    for query in queries:
        passages = analyse(out / query["expect_file"])
        hits = [p for p in passages if query["expect_text_contains"] in p.text]
        assert hits, query
        assert {p.page for p in hits} == {query["expect_page"]}, query
        # The question is phrased differently from its answer (few words in common).
        question = {w.strip("?,.").lower() for w in query["query"].split()}
        assert query["expect_text_contains"].lower() not in query["query"].lower()
        assert len(question & {w.strip("?,.").lower() for w in hits[0].text.split()}) < len(question)


def test_sample_corpus_is_byte_for_byte_stable(tmp_path: Path) -> None:
    module = load_sample_script()
    module.main(tmp_path / "one", media=False)
    module.main(tmp_path / "two", media=False)
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert one == two
    assert len(one) == 7
    assert (tmp_path / "one.expected.json").read_bytes() == (tmp_path / "two.expected.json").read_bytes()
