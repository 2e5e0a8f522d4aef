"""Sound classes over time: speech, singing and music regions of a sound track, what becomes a
moment of them, and which speech chunks hold music and no voice (not worth speech-to-text).

Speech itself is found by its transcript; the moments here are the music and the singing
("where does music play?"), each with the time range it plays and the detector's confidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from medialens.domain.moments import Modality, Passage


class SoundClass(StrEnum):
    SPEECH = "speech"
    SINGING = "singing"
    MUSIC = "music"


# What a moment says of a region: words a question about it uses ("music playing", "someone sings").
# A sentence, not a word: the multilingual encoder ranks very short texts close to any question
# (measured: "Music playing" was e5's best match for "kids playing basketball in a gym" over real
# media); these score 0.86-0.87 for questions about music or singing and at most 0.76 for the
# unrelated ones we tried, as high as a picture's labels do.
EVENT_TEXT: dict[SoundClass, str] = {
    SoundClass.MUSIC: "Music: a song or instrumental music is heard",
    SoundClass.SINGING: "Singing: a voice sings with music",
}
VOICE = frozenset({SoundClass.SPEECH, SoundClass.SINGING})


class SoundEvent(BaseModel):
    """One region where a class is heard (regions of different classes may overlap)."""

    kind: SoundClass
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    confidence: float = Field(ge=0, le=1, description="Mean probability of the class over the region.")

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


class SoundEvents(BaseModel):
    """A sound track's classes: ``model_dump_json()`` is the sounds.json artifact."""

    model: str
    duration_s: float
    events: list[SoundEvent]
    passages: list[Passage]
    music_only_chunks: list[int] = Field(default_factory=list, description="Indexes of chunks not transcribed.")


def _overlap(event: SoundEvent, start: float, end: float) -> float:
    return max(0.0, min(event.end, end) - max(event.start, start))


def event_passages(events: Iterable[SoundEvent], *, min_seconds: float, min_confidence: float = 0.0) -> list[Passage]:
    """One AUDIO_EVENT passage per music or singing region at least ``min_seconds`` long and
    ``min_confidence`` sure."""
    kept = sorted(
        (e for e in events if e.kind in EVENT_TEXT and e.duration >= min_seconds and e.confidence >= min_confidence),
        key=lambda e: (e.start, e.kind),
    )
    return [
        Passage(
            index=number,
            text=EVENT_TEXT[event.kind],
            modality=Modality.AUDIO_EVENT,
            start=round(event.start, 3),
            end=round(event.end, 3),
            confidence=round(event.confidence, 4),
            language="en",
        )
        for number, event in enumerate(kept)
    ]


def is_music_only(
    events: Sequence[SoundEvent], start: float, end: float, *, max_voice_seconds: float, min_confidence: float = 0.0
) -> bool:
    """Whether the span holds music (regions at least ``min_confidence`` sure) for most of it and
    at most ``max_voice_seconds`` of speech or singing (any confidence): such a chunk (a jingle, a
    score the voice detector took for speech) is not transcribed."""
    span = max(end - start, 1e-6)
    voice = sum(_overlap(e, start, end) for e in events if e.kind in VOICE)
    music = sum(
        _overlap(e, start, end) for e in events if e.kind is SoundClass.MUSIC and e.confidence >= min_confidence
    )
    return voice <= max_voice_seconds and music >= 0.5 * span
