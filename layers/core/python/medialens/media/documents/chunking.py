"""Split an extracted document into overlapping passages for embedding and search.

A passage never spans two sections, so it has exactly one page (PDF) and one heading. Within a
section, windows of about ``words`` words overlap their neighbours by exactly ``overlap`` words so
a fact cut at one window's edge is whole in the next.
"""

from __future__ import annotations

import math
import re

from medialens.domain.moments import Modality, Passage
from medialens.media.documents.extract import ExtractedDocument

# A word that ends a sentence: terminal punctuation, then perhaps closing quotes or brackets.
_SENTENCE_END = re.compile("[.!?\u2026][\"')\\]\u201d\u2019]*$")
# A window may end this early (as a share of ``words``) to finish on a sentence.
_SENTENCE_SLACK = 0.2
# A remainder this small (as a share of ``words``) joins the window before it rather than
# becoming a passage that is mostly overlap.
_TAIL_MERGE = 0.25


def chunk_passages(doc: ExtractedDocument, words: int = 120, overlap: int = 30, first_index: int = 0) -> list[Passage]:
    """Passages of ~``words`` words, ``overlap`` words shared between neighbours, indexed from
    ``first_index`` (after the passages of another part of the same document)."""
    if not words > overlap >= 0:
        raise ValueError(f"need words > overlap >= 0, got words={words}, overlap={overlap}")
    passages: list[Passage] = []
    for section in doc.sections:
        tokens = section.text.split()
        for start, end in _windows(tokens, words, overlap):
            passages.append(
                Passage(
                    index=first_index + len(passages),
                    text=" ".join(tokens[start:end]),
                    modality=Modality.DOCUMENT,
                    page=section.page,
                    section=section.heading,
                )
            )
    return passages


def _windows(tokens: list[str], words: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) word ranges covering ``tokens``; consecutive ranges share ``overlap`` words."""
    tail = math.floor(words * _TAIL_MERGE)
    # An end before this would leave the next window starting at or before this one's start.
    earliest_end = max(math.ceil(words * (1 - _SENTENCE_SLACK)), overlap + 1)
    n = len(tokens)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = start + words
        if n - end <= tail:
            # Short sections stay whole, and a tiny remainder rides along with the last window.
            windows.append((start, n))
            break
        for candidate in range(end, start + earliest_end - 1, -1):
            if _SENTENCE_END.search(tokens[candidate - 1]):
                end = candidate
                break
        windows.append((start, end))
        start = end - overlap
    return windows
