"""What is shown and what is heard, as moments: classifier labels per image and per shot, and
music/singing regions (and which speech chunks hold only music)."""

from __future__ import annotations

import pytest

from medialens.domain.moments import Modality
from medialens.media.audio.events import SoundClass, SoundEvent, event_passages, is_music_only
from medialens.media.visual import (
    FrameLabels,
    ShotSpan,
    VisualLabel,
    kept_labels,
    shot_labels,
    shot_passages,
    visual_passage,
)

pytestmark = pytest.mark.unit

DOG = VisualLabel(class_index=207, name="golden retriever", probability=0.7)
BALL = VisualLabel(class_index=852, name="tennis ball", probability=0.25)
CAT = VisualLabel(class_index=281, name="tabby", synonyms=["tabby cat"], probability=0.9)
NOISE = VisualLabel(class_index=3, name="tiger shark", probability=0.05)


def frame(time: float, shot: int, *labels: VisualLabel) -> FrameLabels:
    return FrameLabels(time=time, start=time - 1, until=time + 1, shot_index=shot, labels=list(labels))


def test_a_picture_keeps_its_best_label_even_when_unsure_and_others_only_above_the_threshold() -> None:
    unsure = NOISE.model_copy(update={"probability": 0.08})
    assert kept_labels([NOISE, unsure], min_probability=0.2, max_labels=3) == [unsure]
    assert kept_labels([BALL, DOG, NOISE], min_probability=0.2, max_labels=3) == [DOG, BALL]
    assert kept_labels([BALL, DOG, NOISE], min_probability=0.2, max_labels=1) == [DOG]
    assert kept_labels([], min_probability=0.2, max_labels=3) == []


def test_the_visual_passage_names_the_labels_with_their_synonyms_and_the_best_confidence() -> None:
    passage = visual_passage([CAT, NOISE], index=4, min_probability=0.2, max_labels=3, start=1.0, end=3.0)
    assert passage is not None
    assert passage.modality is Modality.VISUAL and passage.text == "tabby, tabby cat"
    assert (passage.index, passage.start, passage.end, passage.confidence, passage.language) == (4, 1.0, 3.0, 0.9, "en")
    assert visual_passage([], index=0, min_probability=0.2, max_labels=3) is None


def test_a_shot_is_labelled_by_the_mean_over_its_keyframes_so_a_passing_object_counts_little() -> None:
    frames = [frame(1, 0, DOG), frame(3, 0, DOG, BALL), frame(5, 0, DOG), frame(7, 0, DOG), frame(9, 1, CAT)]
    per_shot = shot_labels(frames)
    assert [label.name for label in per_shot[0]] == ["golden retriever", "tennis ball"]
    assert per_shot[0][0].probability == pytest.approx(0.7)
    assert per_shot[0][1].probability == pytest.approx(0.25 / 4)
    assert per_shot[1] == [CAT]


def test_one_passage_per_labelled_shot_spanning_the_shot() -> None:
    shots = [
        ShotSpan(index=0, start=0.0, end=8.0),
        ShotSpan(index=1, start=8.0, end=10.0),
        ShotSpan(index=2, start=10.0, end=12.0),
    ]
    frames = [frame(1, 0, DOG, BALL), frame(3, 0, DOG, BALL), frame(9, 1, CAT), frame(11, 7, NOISE)]
    passages = shot_passages(shots, frames, min_probability=0.2, max_labels=3)
    assert [(p.index, p.start, p.end, p.text) for p in passages] == [
        (0, 0.0, 8.0, "golden retriever; tennis ball"),
        (1, 8.0, 10.0, "tabby, tabby cat"),
    ]  # shot 2 has no keyframe of its own; a frame naming a shot that does not exist is ignored


def event(kind: SoundClass, start: float, end: float, confidence: float = 0.8) -> SoundEvent:
    return SoundEvent(kind=kind, start=start, end=end, confidence=confidence)


def test_music_and_singing_regions_become_moments_speech_does_not() -> None:
    events = [
        event(SoundClass.SPEECH, 0, 10),
        event(SoundClass.MUSIC, 12, 30, 0.9),
        event(SoundClass.SINGING, 15, 25, 0.7),
        event(SoundClass.MUSIC, 31, 32),
    ]
    passages = event_passages(events, min_seconds=2.0)
    assert [(p.modality, p.start, p.end, p.confidence) for p in passages] == [
        (Modality.AUDIO_EVENT, 12, 30, 0.9),
        (Modality.AUDIO_EVENT, 15, 25, 0.7),
    ]
    assert "music" in passages[0].text.lower() and "sing" in passages[1].text.lower()
    assert len(event_passages(events, min_seconds=2.0, min_confidence=0.8)) == 1  # the unsure singing is not
    assert [p.index for p in passages] == [0, 1]


def test_a_chunk_is_music_only_when_music_fills_it_and_no_voice_is_heard() -> None:
    events = [event(SoundClass.MUSIC, 0, 30), event(SoundClass.SPEECH, 40, 60), event(SoundClass.SINGING, 62, 90)]
    assert is_music_only(events, 0, 30, max_voice_seconds=1.0)
    assert not is_music_only(events, 40, 60, max_voice_seconds=1.0)  # speech
    assert not is_music_only([*events, event(SoundClass.MUSIC, 60, 90)], 60, 90, max_voice_seconds=1.0)  # a song
    assert not is_music_only(events, 25, 45, max_voice_seconds=1.0)  # half music, five seconds of speech
    assert not is_music_only([], 0, 30, max_voice_seconds=1.0)  # nothing heard: the VAD decides
    unsure = [event(SoundClass.MUSIC, 0, 30, confidence=0.7)]  # noisy radio taken for music
    assert is_music_only(unsure, 0, 30, max_voice_seconds=1.0)
    assert not is_music_only(unsure, 0, 30, max_voice_seconds=1.0, min_confidence=0.8)
