"""The language of a text (py3langid: a naive Bayes model over byte n-grams that ships in the
package, BSD-3-Clause, 97 languages): a moment's language, which voice narrates a document, and
which encoders answer a search question."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

# Enough text to decide on: a sample from the start and the middle of the document.
_SAMPLE_CHARACTERS = 4000
# Below this probability (or on too little text) the answer is "unknown".
MIN_PROBABILITY = 0.8
MIN_CHARACTERS = 20


class TextLanguage(BaseModel):
    language: str | None
    probability: float


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify_language(text: str) -> TextLanguage:
    """ISO 639-1 code of ``text``'s language with its probability; ``language`` None when the
    text is too short or the model unsure."""
    stripped = text.strip()
    if len(stripped) < MIN_CHARACTERS:
        return TextLanguage(language=None, probability=0.0)
    half = _SAMPLE_CHARACTERS // 2
    middle = len(stripped) // 2
    sample = (
        stripped if len(stripped) <= _SAMPLE_CHARACTERS else stripped[:half] + " " + stripped[middle : middle + half]
    )
    code, probability = _identifier().classify(sample)
    probability = float(probability)
    return TextLanguage(language=str(code) if probability >= MIN_PROBABILITY else None, probability=probability)


def guess_language(text: str) -> str | None:
    """The most likely language of a short text such as a search question, however unsure
    (``identify_language`` says "unknown" instead): what decides which encoders answer it, where a
    wrong guess costs a little ranking, not a wrong label on a moment."""
    stripped = text.strip()
    if not stripped:
        return None
    code, _probability = _identifier().classify(stripped)
    return str(code)
