"""Snippets with the query's words highlighted, computed the same way for every index backend.

Matching is by word stem, roughly as the BM25 analysers match (lower case, accents folded, English
stop words dropped, a light suffix stemmer): "vacation days" highlights "Vacation" and "day".
A semantic hit that shares no word with the query gets a snippet without highlights.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

WORD = re.compile(r"\w+", re.UNICODE)

SNIPPET_CHARS = 280
ELLIPSIS = "…"

# The BM25 analysers' English stop words, and the question words queries are phrased with.
_STOP_WORDS_TEXT = """
a an and are as at be but by for if in into is it no not of on or such that the their then there these
they this to was will with what when where which who whom why how do does did i you we my our your me
can could would should may might must shall has have had been were am its his her he she them those us
any some all each every much many get gets got so than too very just also about from
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
# Longest first: "ations" before "s". The stem keeps at least three characters.
_SUFFIXES = ("ations", "ation", "ingly", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    folded = _fold(word)
    for suffix in _SUFFIXES:
        if folded.endswith(suffix) and len(folded) - len(suffix) >= 3:
            return folded[: -len(suffix)]
    return folded


def query_terms(query: str) -> frozenset[str]:
    """The stems of the query's words, without stop words."""
    return frozenset(stem(word) for word in WORD.findall(query) if _fold(word) not in STOP_WORDS)


def match_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of the words in ``text`` whose stem is one of ``terms``."""
    wanted = set(terms)
    if not wanted:
        return []
    return [(m.start(), m.end()) for m in WORD.finditer(text) if stem(m.group()) in wanted]


def _window_start(spans: list[tuple[int, int]], length: int, size: int) -> int:
    """Start of the ``size``-character window holding the most matches (earliest on ties)."""
    if not spans or length <= size:
        return 0
    best_start, best_count = 0, -1
    for first, _ in spans:
        start = max(0, min(first - size // 5, length - size))  # a little context before the match
        count = sum(1 for s, e in spans if s >= start and e <= start + size)
        if count > best_count:
            best_start, best_count = start, count
    return best_start


def _snap(text: str, position: int, forward: bool) -> int:
    """Moves a cut to a word boundary so no word is split."""
    if position <= 0 or position >= len(text):
        return max(0, min(position, len(text)))
    step = 1 if forward else -1
    limit = 20  # give up on very long "words" (URLs) rather than drift far
    while 0 < position < len(text) and limit and not text[position - 1].isspace():
        position += step
        limit -= 1
    return position


def snippet(text: str, terms: Iterable[str], size: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``text`` around its best run of matches, and the match spans inside it."""
    text = " ".join(text.split())  # passages may hold newlines and runs of spaces
    spans = match_spans(text, terms)
    if len(text) <= size:
        return text, spans
    start = _window_start(spans, len(text), size)
    end = min(len(text), start + size)
    if start > 0:
        start = _snap(text, start, forward=True)
    if end < len(text):
        end = _snap(text, end, forward=False)
    body = text[start:end].strip()
    offset = text.index(body, start) if body else start
    prefix = ELLIPSIS if offset > 0 else ""
    suffix = ELLIPSIS if offset + len(body) < len(text) else ""
    shift = len(prefix) - offset
    inside = [(s + shift, e + shift) for s, e in spans if s >= offset and e <= offset + len(body)]
    return prefix + body + suffix, inside
