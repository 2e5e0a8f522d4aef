"""Documents: text extraction (PDF, HTML, Markdown, plain text) and chunking into passages."""

from medialens.media.documents.chunking import chunk_passages
from medialens.media.documents.extract import (
    ExtractedDocument,
    TextSection,
    decode_text,
    extract_document,
    normalize_text,
)

__all__ = [
    "ExtractedDocument",
    "TextSection",
    "chunk_passages",
    "decode_text",
    "extract_document",
    "normalize_text",
]
