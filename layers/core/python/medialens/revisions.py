"""Revisions of one drop-bucket key: each (ETag, or version id) is its own asset; only the
object's current revision stays searchable once it has been analysed.

What is current is read from the bucket itself when an asset of the key reaches a terminal
status or the object is removed, not inferred from the order events arrived in: S3 is
read-after-write consistent, so a late or duplicated event can never make an older revision win.

- The current revision SUCCEEDED: every other finished asset of the key is superseded (its
  moments and artifacts removed, its registry entry deleted). Until then the older revision's
  moments stay: a stale answer beats none while the new one is analysed, or if it fails.
- The object is gone: every finished asset of the key goes with it.
- An asset still running is left alone; its own end settles it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from medialens.adapters.storage.base import ObjectInfo
from medialens.domain.assets import Asset, AssetStatus, AuditEvent, UploadOptions
from medialens.observability import get_logger
from medialens.services import Services

logger = get_logger("medialens-revisions")


@dataclass(frozen=True, slots=True)
class Deleted:
    asset_id: str
    moments_removed: int
    artifacts_removed: int


def remove_asset(services: Services, asset: Asset) -> Deleted:
    """Removes an asset's moments from the index, its artifacts under ``derived/<asset_id>/`` and
    its registry entry (last, so a failure part-way leaves an asset that can be removed again)."""
    with services.index_write_lock:
        moments = services.index.delete_asset(asset.asset_id)
    artifacts = services.blobs.delete_prefix(services.artifact_uri(asset.asset_id) + "/")
    services.registry.delete(asset.asset_id)
    return Deleted(asset_id=asset.asset_id, moments_removed=moments, artifacts_removed=artifacts)


def _is_revision(asset: Asset, current: ObjectInfo) -> bool:
    source = asset.source
    if source.options != UploadOptions.from_metadata(current.metadata):
        return False  # the object was uploaded again with other options: that upload is current
    if source.version_id is not None and current.version_id is not None:
        return source.version_id == current.version_id
    return source.etag == current.etag


def _retire(services: Services, asset: Asset, why: str, by: str | None = None) -> str:
    deleted = remove_asset(services, asset)
    logger.info(
        "asset retired",
        extra={"asset_id": asset.asset_id, "why": why, "moments_removed": deleted.moments_removed, "by": by},
    )
    if by is not None:
        detail = f"{asset.asset_id} ({deleted.moments_removed} moments removed)"
        services.registry.add_event(AuditEvent(asset_id=by, kind="superseded", detail=detail))
    return asset.asset_id


def settle_revisions(services: Services, bucket: str, key: str, succeeding: str | None = None) -> list[str]:
    """Applies the rules above to every asset of one key; the ids of those removed.

    ``succeeding`` names an asset about to be marked SUCCEEDED: it counts as succeeded already, so
    its older revisions are gone before anyone can see it SUCCEEDED beside them."""
    registry = services.registry
    # Read again one by one: the by-source index may lag (a DynamoDB GSI is eventually consistent),
    # and the status a sibling has just written is the one that decides.
    siblings = [
        a.model_copy(update={"status": AssetStatus.SUCCEEDED}) if a.asset_id == succeeding else a
        for a in (registry.get(s.asset_id) for s in registry.by_source(bucket, key))
        if a is not None
    ]
    if not siblings:
        return []
    current = services.blobs.head(f"s3://{bucket}/{key}")
    finished = [asset for asset in siblings if asset.status.terminal]
    if current is None:
        return [_retire(services, asset, "source removed") for asset in finished]
    newest = next(
        (a for a in siblings if a.status is AssetStatus.SUCCEEDED and _is_revision(a, current)),
        None,
    )
    if newest is None:
        return []
    return [
        _retire(services, asset, "superseded", by=newest.asset_id)
        for asset in finished
        if asset.asset_id != newest.asset_id
    ]


def remove_object(services: Services, bucket: str, key: str) -> list[str]:
    """An object was deleted from the drop bucket (or replaced, then deleted): retire what no
    longer has a source. A revision uploaded again since is current, and stays."""
    if not key.startswith(services.settings.drop_prefix):
        return []
    return settle_revisions(services, bucket, key)
