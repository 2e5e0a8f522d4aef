"""Speech marks and narrations: what synthesised speech says about itself, like Amazon Polly's
speech marks (one JSON object per line: the time a word or sentence is spoken and where it sits in
the text)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class MarkType(StrEnum):
    SENTENCE = "sentence"
    WORD = "word"


class SpeechMark(BaseModel):
    """``time``/``end_time``: milliseconds from the start of the audio. ``start``/``end``:
    character offsets of ``value`` in the narrated text (Polly gives byte offsets; characters are
    what a page highlights)."""

    time: int = Field(ge=0)
    end_time: int = Field(ge=0)
    type: MarkType
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    value: str


class Narration(BaseModel):
    """What the narration step made for a document (also the ``narration`` metadata of its asset)."""

    audio_uri: str
    marks_uri: str
    text_uri: str = Field(description="The narrated text; speech marks' character offsets point into it.")
    voice: str = Field(description="name@version+quantization of the voice")
    fallback_voice: bool = Field(
        default=False, description="True when espeak-ng spoke: no neural voice for the language."
    )
    language: str
    duration_s: float
    characters: int
    sentences: int
    words: int
    word_error_rate: float | None = Field(
        default=None, description="Its transcript against the text, both in spoken form (medialens.ml.phonemes)."
    )
    recognizer: str | None = None
    warning: str | None = None
