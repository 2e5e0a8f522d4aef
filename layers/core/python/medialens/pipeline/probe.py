"""Probe: what is this object? Sniffs the head of the file; decodes the container's header (and
tail, to catch truncation) for video, audio and images."""

from __future__ import annotations

import posixpath
from typing import Any

from medialens.domain.assets import MediaType
from medialens.domain.steps import AssetRef, ProbeInput, ProbeResult, StepName
from medialens.errors import InvalidMediaError
from medialens.media.detection import SNIFF_BYTES, DetectedType, detect_media_type, ensure_supported
from medialens.pipeline.artifacts import artifact_uri
from medialens.services import Services

AV_TYPES = frozenset({MediaType.VIDEO, MediaType.AUDIO})
MEDIA_TYPES = AV_TYPES | {MediaType.IMAGE}


def _family(media_type: MediaType | None) -> str | None:
    """Video and audio share containers (an .mp4 may hold only sound): one family for naming."""
    if media_type is None:
        return None
    return "timeline" if media_type in AV_TYPES else media_type.value


def ensure_named_for_content(detected: DetectedType) -> None:
    """A file whose name promises another kind of media than its content is refused, with both."""
    declared = detected.declared_media_type
    if _family(declared) not in (None, _family(detected.media_type)):
        assert declared is not None
        raise InvalidMediaError(
            f"mislabelled file: named .{detected.declared_extension} ({declared.value}) but the content is "
            f"{detected.mime_type} ({detected.media_type.value}); rename it to match its content and upload again"
        )


def _media_details(services: Services, asset: AssetRef) -> tuple[MediaType, str, dict[str, Any]]:
    # Decoders (the media extra) load here, not with the catalogue: see pipeline/catalog.py.
    from medialens.media.images import inspect_image
    from medialens.media.probe import probe_media

    with services.blobs.local_file(asset.source.uri) as path:
        media = probe_media(path)
        details: dict[str, Any] = {"media": media.model_dump(mode="json")}
        if media.media_type is MediaType.IMAGE:
            details["image"] = inspect_image(path)[0].model_dump(mode="json")
    video = media.video
    details |= {
        "duration_s": media.duration_s,
        "has_video": media.media_type is MediaType.VIDEO and video is not None and not video.attached_picture,
        "has_audio": media.audio is not None,
    }
    return media.media_type, media.mime_type, details


def probe(services: Services, asset: AssetRef, _: ProbeInput) -> ProbeResult:
    source = asset.source
    info = services.blobs.head(source.uri)
    if info is None:
        raise InvalidMediaError(f"{source.uri} no longer exists in the drop bucket (deleted before analysis)")
    head = services.blobs.read_range(source.uri, 0, SNIFF_BYTES) if info.size else b""
    detected = detect_media_type(posixpath.basename(source.key), head, info.size)
    result = ProbeResult(
        media_type=detected.media_type,
        mime_type=detected.mime_type,
        extension=detected.extension,
        size=info.size,
        details={"etag": info.etag, "declared_extension": detected.declared_extension},
    )
    # Recorded before any refusal, so a failed file still shows what it looked like.
    services.registry.record_probe(asset.asset_id, result.media_type, result.model_dump(mode="json"))
    ensure_supported(detected)  # content no branch understands fails here, with what it looks like
    ensure_named_for_content(detected)
    if result.media_type in MEDIA_TYPES:
        media_type, mime_type, media = _media_details(services, asset)
        result = result.model_copy(update={"media_type": media_type, "mime_type": mime_type})
        result.details |= media
        services.registry.record_probe(asset.asset_id, result.media_type, result.model_dump(mode="json"))
    uri = artifact_uri(services, asset.asset_id, StepName.PROBE, asset.pipeline_version, "probe.json")
    services.blobs.put_text(uri, result.model_dump_json(indent=2))
    services.registry.add_artifacts(asset.asset_id, {"probe": uri})
    return result
