"""Thumbnails of video moments: the keyframe the video branch stored for the moment's time.

The ``detect_shots`` step records its manifest as the asset's ``keyframes`` artifact and writes,
next to it, ``keyframes-NNNN.jsonl`` batches whose lines carry each keyframe's ``time``, the span
``start``..``until`` it stands for, and its ``jpeg_uri``. A moment's thumbnail is the keyframe
whose span holds the moment's start (else the last one before it).

``medialens.timeline.load_keyframes`` reads (and caches) them. A thumbnail is decoration: any
failure to find one leaves the hit without it.
"""

from __future__ import annotations

import logging
from bisect import bisect_right

from medialens.api.links import Links
from medialens.domain.assets import MediaType
from medialens.domain.search import SearchHit
from medialens.services import Services
from medialens.timeline import KEYFRAMES_ARTIFACT, Frame, load_keyframes

log = logging.getLogger(__name__)


def pick(frames: list[Frame], second: float) -> Frame | None:
    """The keyframe standing for ``second``: its span holds it, or it is the last before it."""
    if not frames:
        return None
    position = bisect_right([frame.start for frame in frames], second) - 1
    return frames[max(position, 0)]


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
                manifest = asset.artifacts.get(KEYFRAMES_ARTIFACT) if asset is not None else None
                if manifest:
                    frames = load_keyframes(self.services, manifest)
            except Exception:  # decoration: a storage or format error costs the thumbnail, not the search
                log.warning("no keyframes for asset %s", asset_id, exc_info=True)
            self._frames[asset_id] = frames
        return self._frames[asset_id]

    def __call__(self, hit: SearchHit) -> str | None:
        if hit.media_type is not MediaType.VIDEO or hit.start is None:
            return None
        frame = pick(self._frames_of(hit.asset_id), hit.start)
        return self.links.url(frame.uri) if frame is not None else None
