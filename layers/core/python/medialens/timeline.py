"""One asset's timeline, assembled from the artifacts its steps recorded: the transcript's words and
segments, shots and keyframes, on-screen text, and lanes: languages, what each shot shows
(visual labels) and what is heard (music, singing). The asset view draws it; ``link`` turns the ``s3://``
URIs of keyframes into URLs a browser can fetch.

Every part is optional: an asset shows what its steps made, and a missing or unreadable artifact
costs its lane (named in ``missing``), never the view.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from medialens.domain.assets import Asset
from medialens.media.audio.events import SoundEvents
from medialens.media.screen_text import ScreenText
from medialens.media.transcript import Transcript
from medialens.media.visual import ShotLabels
from medialens.services import Services

log = logging.getLogger(__name__)

KEYFRAMES_ARTIFACT = "keyframes"
TRANSCRIPT_ARTIFACT = "transcript_json"
SCREEN_TEXT_ARTIFACT = "ocr"
LABELS_ARTIFACT = "labels"
SOUNDS_ARTIFACT = "sounds"
PROBE_ARTIFACT = "probe"
MAX_WORDS = 50_000  # ~14 h of speech; a response stays a few MB
MAX_ITEMS = 10_000  # segments, shots, keyframes, on-screen texts each
CACHED_MANIFESTS = 128

_M = TypeVar("_M", bound=BaseModel)


class TimedWord(BaseModel):
    start: float
    end: float
    text: str
    probability: float | None = None


class TimedText(BaseModel):
    start: float
    end: float
    text: str
    confidence: float | None = Field(default=None, description="Transcript: exp(mean log-probability); OCR: mean.")


class Shot(BaseModel):
    index: int
    start: float
    end: float


class Keyframe(BaseModel):
    time: float
    start: float
    until: float
    shot_index: int | None = None
    thumbnail_url: str | None


class LaneSpan(BaseModel):
    start: float
    end: float
    label: str
    confidence: float | None = None


class Lane(BaseModel):
    name: str = Field(description="What the lane shows: languages, visual labels, sound classes…")
    spans: list[LaneSpan]


class AssetTimeline(BaseModel):
    asset_id: str
    duration_s: float | None = Field(description="Length of the media, when it has one.")
    language: str | None = Field(description="The spoken language the transcript found.")
    words: list[TimedWord] = Field(description="The transcript word by word (click one to seek).")
    segments: list[TimedText] = Field(description="The transcript's segments (captions).")
    shots: list[Shot]
    keyframes: list[Keyframe]
    screen_text: list[TimedText] = Field(description="Text read on screen, per keyframe.")
    lanes: list[Lane] = Field(description="Further tracks on the same time axis.")
    truncated: bool = Field(default=False, description="A list was cut at its limit.")
    missing: list[str] = Field(default_factory=list, description="Artifacts that could not be read.")


# --- keyframes: shared with the search's thumbnails -------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    time: float
    start: float
    until: float
    uri: str
    shot_index: int | None = None


_cache: OrderedDict[str, list[Frame]] = OrderedDict()
_cache_lock = threading.Lock()


def load_keyframes(services: Services, manifest_uri: str) -> list[Frame]:
    """The keyframes ``detect_shots`` wrote beside its manifest (``keyframes-NNNN.jsonl``), by
    start. Written once per asset and pipeline version, so cached by manifest URI."""
    with _cache_lock:
        if manifest_uri in _cache:
            _cache.move_to_end(manifest_uri)
            return _cache[manifest_uri]
    folder = manifest_uri.rsplit("/", 1)[0] + "/"
    frames: list[Frame] = []
    for info in services.blobs.list_objects(folder):
        name = info.key.rsplit("/", 1)[-1]
        if not (name.startswith("keyframes-") and name.endswith(".jsonl")):
            continue
        for line in services.blobs.get_text(info.uri).splitlines():
            if line.strip():
                record = json.loads(line)
                frames.append(
                    Frame(
                        float(record["time"]),
                        float(record["start"]),
                        float(record["until"]),
                        record["jpeg_uri"],
                        record.get("shot_index"),
                    )
                )
    frames.sort(key=lambda frame: frame.start)
    with _cache_lock:
        _cache[manifest_uri] = frames
        while len(_cache) > CACHED_MANIFESTS:
            _cache.popitem(last=False)
    return frames


# --- the timeline -----------------------------------------------------------------------------


class _Reader:
    def __init__(self, services: Services, asset: Asset) -> None:
        self.services = services
        self.asset = asset
        self.missing: list[str] = []

    def json(self, artifact: str) -> Any:
        uri = self.asset.artifacts.get(artifact)
        if not uri:
            return None
        try:
            return json.loads(self.services.blobs.get_text(uri))
        except Exception:  # one unreadable artifact costs its lane, not the view
            log.warning(
                "unreadable artifact", extra={"asset_id": self.asset.asset_id, "artifact": artifact}, exc_info=True
            )
            self.missing.append(artifact)
            return None

    def model(self, artifact: str, model: type[_M]) -> _M | None:
        """The artifact as the model its step wrote it with."""
        data = self.json(artifact)
        if data is None:
            return None
        try:
            return model.model_validate(data)
        except ValidationError:
            log.warning("artifact in an unknown format", extra={"asset_id": self.asset.asset_id, "artifact": artifact})
            self.missing.append(artifact)
            return None


def asset_timeline(services: Services, asset: Asset, link: Callable[[str], str | None]) -> AssetTimeline:
    reader = _Reader(services, asset)
    truncated = False
    probe = reader.json(PROBE_ARTIFACT) or {}
    duration = (probe.get("details") or {}).get("media", {}).get("duration_s")

    transcript = reader.model(TRANSCRIPT_ARTIFACT, Transcript)
    words: list[TimedWord] = []
    segments: list[TimedText] = []
    language = None
    if transcript is not None:
        language = transcript.language
        duration = duration or transcript.duration_s
        segments = [
            TimedText(start=s.start, end=s.end, text=s.text.strip(), confidence=round(s.confidence, 4))
            for s in transcript.segments[:MAX_ITEMS]
        ]
        all_words = transcript.words
        words = [
            TimedWord(start=w.start, end=w.end, text=w.text.strip(), probability=w.probability)
            for w in all_words[:MAX_WORDS]
        ]
        truncated = len(all_words) > MAX_WORDS or len(transcript.segments) > MAX_ITEMS

    shots: list[Shot] = []
    keyframes: list[Keyframe] = []
    manifest_uri = asset.artifacts.get(KEYFRAMES_ARTIFACT)
    if manifest_uri:
        manifest = reader.json(KEYFRAMES_ARTIFACT) or {}
        shots = [Shot(index=s["index"], start=s["start"], end=s["end"]) for s in manifest.get("shots", [])[:MAX_ITEMS]]
        duration = duration or manifest.get("duration_s")
        try:
            frames = load_keyframes(services, manifest_uri)
        except Exception:
            log.warning("unreadable keyframes", extra={"asset_id": asset.asset_id}, exc_info=True)
            reader.missing.append(KEYFRAMES_ARTIFACT)
            frames = []
        keyframes = [
            Keyframe(time=f.time, start=f.start, until=f.until, shot_index=f.shot_index, thumbnail_url=link(f.uri))
            for f in frames[:MAX_ITEMS]
        ]
        truncated = truncated or len(manifest.get("shots", [])) > MAX_ITEMS or len(frames) > MAX_ITEMS

    screen_text: list[TimedText] = []
    read = reader.model(SCREEN_TEXT_ARTIFACT, ScreenText)
    for frame in read.frames[:MAX_ITEMS] if read is not None else []:
        lines = [line for line in frame.lines if line.text.strip()]
        if lines:
            screen_text.append(
                TimedText(
                    start=frame.start,
                    end=frame.until,
                    text=" · ".join(line.text.strip() for line in lines),
                    confidence=round(sum(line.confidence for line in lines) / len(lines), 4),
                )
            )

    lanes: list[Lane] = []
    if transcript is not None and language and segments:
        probability = transcript.language_probability
        lanes.append(
            Lane(
                name="languages",
                spans=[LaneSpan(start=segments[0].start, end=segments[-1].end, label=language, confidence=probability)],
            )
        )

    labelled = reader.model(LABELS_ARTIFACT, ShotLabels)
    if labelled is not None and labelled.passages:
        spans = [
            LaneSpan(start=p.start or 0.0, end=p.end or 0.0, label=p.text, confidence=p.confidence)
            for p in labelled.passages[:MAX_ITEMS]
        ]
        lanes.append(Lane(name="shown", spans=spans))
    heard = reader.model(SOUNDS_ARTIFACT, SoundEvents)
    if heard is not None and heard.events:
        spans = [
            LaneSpan(start=e.start, end=e.end, label=e.kind.value, confidence=round(e.confidence, 4))
            for e in sorted(heard.events, key=lambda e: e.start)[:MAX_ITEMS]
        ]
        lanes.append(Lane(name="heard", spans=spans))

    return AssetTimeline(
        asset_id=asset.asset_id,
        duration_s=duration,
        language=language,
        words=words,
        segments=segments,
        shots=shots,
        keyframes=keyframes,
        screen_text=screen_text,
        lanes=lanes,
        truncated=truncated,
        missing=reader.missing,
    )
