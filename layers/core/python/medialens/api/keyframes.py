"""Thumbnails of video moments: the keyframe the video branch stored for the moment's time.

The ``detect_shots`` step records its manifest as the asset's ``keyframes`` artifact and writes,
next to it, ``keyframes-NNNN.jsonl`` batches whose lines carry each keyframe's ``time``, the span
``start``..``until`` it stands for, and its ``jpeg_uri``. A moment's thumbnail is the keyframe
whose span holds the moment's start (else the last one before it).

Those files are written once per asset and pipeline version, so they are cached by manifest URI.
A thumbnail is decoration: any failure to find one leaves the hit without it.
"""

from __future__ import annotations

import json
import logging
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from medialens.api.links import Links
from medialens.domain.assets import MediaType
from medialens.domain.search import SearchHit
from medialens.services import Services

log = logging.getLogger(__name__)

MANIFEST_ARTIFACT = "keyframes"
CACHED_MANIFESTS = 128


@dataclass(frozen=True, slots=True)
class Frame:
    time: float
    start: float
    until: float
    uri: str


def pick(frames: list[Frame], second: float) -> Frame | None:
    """The keyframe standing for ``second``: its span holds it, or it is the last before it."""
    if not frames:
        return None
    position = bisect_right([frame.start for frame in frames], second) - 1
    return frames[max(position, 0)]


_cache: OrderedDict[str, list[Frame]] = OrderedDict()
_cache_lock = threading.Lock()


def _load(services: Services, manifest_uri: str) -> list[Frame]:
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
                    Frame(float(record["time"]), float(record["start"]), float(record["until"]), record["jpeg_uri"])
                )
    frames.sort(key=lambda frame: frame.start)
    with _cache_lock:
        _cache[manifest_uri] = frames
        while len(_cache) > CACHED_MANIFESTS:
            _cache.popitem(last=False)
    return frames


class KeyframeThumbnails:
    """Thumbnail URLs for one page of hits: one registry read per video asset on the page."""

    def __init__(self, services: Services, links: Links) -> None:
        self.services = services
        self.links = links
        self._frames: dict[str, list[Frame]] = {}

    def _frames_of(self, asset_id: str) -> list[Frame]:
        if asset_id not in self._frames:
            frames: list[Frame] = []
            try:
                asset = self.services.registry.get(asset_id)
                manifest = asset.artifacts.get(MANIFEST_ARTIFACT) if asset is not None else None
                if manifest:
                    frames = _load(self.services, manifest)
            except Exception:  # decoration: a storage or format error costs the thumbnail, not the search
                log.warning("no keyframes for asset %s", asset_id, exc_info=True)
            self._frames[asset_id] = frames
        return self._frames[asset_id]

    def __call__(self, hit: SearchHit) -> str | None:
        if hit.media_type is not MediaType.VIDEO or hit.start is None:
            return None
        frame = pick(self._frames_of(hit.asset_id), hit.start)
        return self.links.url(frame.uri) if frame is not None else None
