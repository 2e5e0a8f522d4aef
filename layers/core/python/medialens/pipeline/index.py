"""Index: upsert an asset's moments by deterministic id and drop the ones a re-run no longer has."""

from __future__ import annotations

from medialens.domain.moments import Moment
from medialens.domain.steps import AssetRef, IndexInput, IndexResult, StepName
from medialens.pipeline.artifacts import artifact_uri, read_jsonl
from medialens.services import Services

INDEXED_MANIFEST = "indexed.json"  # the moment files indexed: what a reuse of this analysis copies


def index_moments(services: Services, asset: AssetRef, request: IndexInput) -> IndexResult:
    moments = [m for output in request.embedded for result in output for m in read_jsonl(services, result.uri, Moment)]
    with services.index_write_lock:
        written = services.index.upsert(moments)
        removed = services.index.delete_stale(asset.asset_id, {m.moment_id for m in moments})
    manifest = artifact_uri(services, asset.asset_id, StepName.INDEX_MOMENTS, asset.pipeline_version, INDEXED_MANIFEST)
    services.blobs.put_text(manifest, request.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"indexed": manifest})
    return IndexResult(indexed=written, removed_stale=removed)
