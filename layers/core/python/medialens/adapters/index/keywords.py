"""What the embedded index's BM25 reads: the moment's text with runs of Chinese, Japanese and
Korean characters written as overlapping character bigrams.

Those scripts put no spaces between words, so a whitespace-and-punctuation tokenizer turns a
whole sentence into one token that no question matches ("广州房地产协会" never equals "广州").
Bigrams are what Lucene's CJK analyzer indexes (and OpenSearch's ``cjk_bigram`` filter, which
the OpenSearch mapping uses): "愚园路路牌" becomes "愚园 园路 路路 路牌", and a question is
rewritten the same way, so "愚园路" matches through "愚园" and "园路". Other text is unchanged.

Han characters are first folded from traditional to simplified forms (OpenCC's t2s table, the
``local`` extra): a recogniser or a scan may write 廣州 where a question asks for 广州. Both sides
are folded, so Japanese kanji folded along the way still match each other.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# Han (with extensions and compatibility ideographs), Hiragana, Katakana (with its phonetic
# extensions and half-width forms) and Hangul: the scripts Lucene's CJKBigramFilter pairs.
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")


@functools.cache
def _to_simplified() -> Any:
    import opencc  # the embedded index's extra: only this module, only where there is CJK text

    return opencc.OpenCC("t2s.json")


def _bigrams(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "


def keyword_text(text: str) -> str:
    """``text`` with every CJK run as space-separated overlapping bigrams (a lone character
    stays itself); text without CJK characters is returned as is."""
    if not _CJK_RUN.search(text):
        return text
    folded = str(_to_simplified().convert(text))
    return " ".join(_CJK_RUN.sub(_bigrams, folded).split())
