"""Probe: what is this object? Reads only the head of the file."""

from __future__ import annotations

import posixpath
from typing import Any

from medialens.domain.messages import AssetRef, ProbeResult
from medialens.errors import InvalidMediaError
from medialens.media_types import SNIFF_BYTES, detect_media_type, ensure_supported
from medialens.services import Services
from medialens.steps.common import artifact_uri


def probe(services: Services, asset: AssetRef, _input: dict[str, Any]) -> ProbeResult:
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
        details={"etag": info.etag},
    )
    services.registry.record_probe(asset.asset_id, result.media_type, result.model_dump(mode="json"))
    uri = artifact_uri(services, asset.asset_id, "probe", asset.pipeline_version, "probe.json")
    services.blobs.put_text(uri, result.model_dump_json(indent=2))
    services.registry.add_artifacts(asset.asset_id, {"probe": uri})
    ensure_supported(detected)  # content no branch understands fails here, with what it looks like
    return result
