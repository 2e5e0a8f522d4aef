"""What a picture shows, as moments: classifier labels of an image or of a shot's keyframes turned
into VISUAL passages.

A label is one ImageNet class with its WordNet names ("tabby, tabby cat") and the classifier's
probability. A shot is described by the mean probability of each class over the shot's
keyframes (a class seen on one keyframe of ten counts a tenth), so a passing object does not
label the whole shot. A passage keeps the classes at or above ``min_probability``, at most
``max_labels``, and always the most probable one: every image and every shot gets a moment,
with its confidence saying how sure the classifier was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from medialens.domain.moments import Modality, Passage

LABEL_SEPARATOR = "; "


class ShotSpan(BaseModel):
    """A shot as the keyframes manifest (media.shots.VideoAnalysis) lists it; read without the
    video decoder, which the light worker lacks."""

    index: int = Field(ge=0)
    start: float
    end: float


class ShotList(BaseModel):
    shots: list[ShotSpan]


class VisualLabel(BaseModel):
    """One class the classifier sees in a picture."""

    class_index: int = Field(ge=0)
    name: str = Field(description="The class's first WordNet name, e.g. 'tabby'.")
    synonyms: list[str] = Field(default_factory=list, description="Its other WordNet names, e.g. ['tabby cat'].")
    probability: float = Field(ge=0, le=1)

    @property
    def text(self) -> str:
        """The names a person (and keyword search) reads: 'tabby, tabby cat'."""
        return ", ".join([self.name, *self.synonyms])


class FrameLabels(BaseModel):
    """The labels of one keyframe, with the interval its picture stands for (see media.shots)."""

    time: float
    start: float
    until: float
    shot_index: int
    labels: list[VisualLabel] = Field(default_factory=list, description="Most probable first.")
    image_vector: list[float] | None = Field(default=None, description="The picture's image-text embedding, if asked.")


class ShotLabels(BaseModel):
    """A video's labels: ``model_dump_json()`` is the labels.json artifact."""

    label_model: str = Field(description="version of the classifier that labelled the keyframes")
    frames: list[FrameLabels] = Field(description="per kept keyframe, in time order")
    passages: list[Passage]


def kept_labels(labels: Sequence[VisualLabel], *, min_probability: float, max_labels: int) -> list[VisualLabel]:
    """The most probable label, then the others at or above ``min_probability`` (``max_labels`` in all)."""
    ranked = sorted(labels, key=lambda label: label.probability, reverse=True)
    return [
        label for rank, label in enumerate(ranked[:max_labels]) if rank == 0 or label.probability >= min_probability
    ]


def visual_passage(
    labels: Sequence[VisualLabel],
    *,
    index: int,
    min_probability: float,
    max_labels: int,
    start: float | None = None,
    end: float | None = None,
) -> Passage | None:
    """One VISUAL passage naming the kept labels; None when there are no labels at all."""
    kept = kept_labels(labels, min_probability=min_probability, max_labels=max_labels)
    if not kept:
        return None
    return Passage(
        index=index,
        text=LABEL_SEPARATOR.join(label.text for label in kept),
        modality=Modality.VISUAL,
        start=start,
        end=end,
        confidence=round(kept[0].probability, 4),
        language="en",  # WordNet's names
    )


def shot_labels(frames: Iterable[FrameLabels], shot_count: int | None = None) -> dict[int, list[VisualLabel]]:
    """Per shot: each class's mean probability over the shot's keyframes, most probable first."""
    by_shot: dict[int, list[FrameLabels]] = defaultdict(list)
    for frame in frames:
        by_shot[frame.shot_index].append(frame)
    result: dict[int, list[VisualLabel]] = {}
    for shot_index, shot_frames in by_shot.items():
        if shot_count is not None and not 0 <= shot_index < shot_count:
            continue
        total: dict[int, float] = defaultdict(float)
        named: dict[int, VisualLabel] = {}
        for frame in shot_frames:
            for label in frame.labels:
                total[label.class_index] += label.probability
                named.setdefault(label.class_index, label)
        result[shot_index] = sorted(
            (
                named[index].model_copy(update={"probability": min(1.0, value / len(shot_frames))})
                for index, value in total.items()
            ),
            key=lambda label: label.probability,
            reverse=True,
        )
    return result


def mean_direction(vectors: Sequence[Sequence[float]]) -> list[float] | None:
    """The normalised mean of unit vectors (a shot's keyframes' image embeddings); None for none."""
    if not vectors:
        return None
    total = [sum(values) for values in zip(*vectors, strict=True)]
    norm = sum(value * value for value in total) ** 0.5
    return [value / norm for value in total] if norm > 0 else None


def shot_passages(
    shots: Sequence[ShotSpan], frames: Sequence[FrameLabels], *, min_probability: float, max_labels: int
) -> list[Passage]:
    """One VISUAL passage per shot that has labelled keyframes, spanning the shot (with the mean
    direction of its keyframes' image embeddings, when they have them)."""
    per_shot = shot_labels(frames, len(shots))
    pictures: dict[int, list[list[float]]] = defaultdict(list)
    for frame in frames:
        if frame.image_vector:
            pictures[frame.shot_index].append(frame.image_vector)
    passages: list[Passage] = []
    for shot in shots:
        labels = per_shot.get(shot.index)
        if not labels:
            continue
        passage = visual_passage(
            labels,
            index=len(passages),
            min_probability=min_probability,
            max_labels=max_labels,
            start=shot.start,
            end=shot.end,
        )
        if passage is not None:
            passages.append(passage.model_copy(update={"image_vector": mean_direction(pictures[shot.index])}))
    return passages
