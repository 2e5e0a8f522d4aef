"""CJK runs as bigrams for BM25; every other text untouched."""

from __future__ import annotations

import pytest

from medialens.adapters.index.keywords import keyword_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("愚园路路牌", "愚园 园路 路路 路牌"),
        ("愚园路 西 东 315 W Yuyuan Rd.", "愚园 园路 西 东 315 W Yuyuan Rd."),
        # Kanji fold too (捨 → 舍); questions fold the same way, so they still meet.
        ("ポイ捨て禁止! NO LITTER", "ポイ イ舍 舍て て禁 禁止 ! NO LITTER"),
        ("서울 평양 56Km", "서울 평양 56Km"),
        ("Tåget gick tidigt, 14:00.", "Tåget gick tidigt, 14:00."),
        ("", ""),
    ],
)
def test_keyword_text(text: str, expected: str) -> None:
    assert keyword_text(text) == expected


def test_traditional_chinese_meets_a_simplified_question() -> None:
    """A recogniser wrote 廣州…地產 (traditional); the question asks for 广州房地产 (simplified)."""
    assert keyword_text("廣州市房地產") == "广州 州市 市房 房地 地产"
    question, text = set(keyword_text("广州房地产").split()), set(keyword_text("廣州市房地產中介協會").split())
    assert question & text == {"广州", "房地", "地产"}


def test_a_question_and_the_text_share_bigrams() -> None:
    question, text = set(keyword_text("广州房地产").split()), set(keyword_text("广州市房地产中介协会").split())
    assert question & text == {"广州", "房地", "地产"}
