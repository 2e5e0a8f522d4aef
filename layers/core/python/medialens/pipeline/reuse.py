"""Reuse (light): bytes analysed before get that analysis instead of a new one.

The key is the object's SHA-256 with everything else its analysis depends on: the pipeline
version, the upload options (narration, a language hint), the settings that shape the outputs and
the versions of the packaged models. When an asset SUCCEEDED under the same key (the same file
under another name, a re-upload, a copy in another folder), its artifacts are copied under this
asset, its moments re-keyed to it, and the workflow goes straight to IndexMoments: no model runs.
A donor that vanishes meanwhile (deleted, superseded) costs nothing but the shortcut: the asset is
then analysed as usual."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from medialens.domain.assets import Asset, AuditEvent
from medialens.domain.moments import Moment
from medialens.domain.steps import AssetRef, EmbedResult, IndexInput, ReuseAnalysisInput, ReuseResult
from medialens.errors import InvalidMediaError
from medialens.ids import moment_id_for
from medialens.services import Services
from medialens.settings import Settings

log = logging.getLogger(__name__)

HASH_PIECE_BYTES = 16 * 2**20  # ranged reads: memory stays one piece whatever the object's size
# Settings that say where things live, how they are served or how fast they run: not what an
# analysis finds. Every other setting is part of the key, so a new one errs towards analysing again.
_OPERATIONAL_PREFIXES = (
    "home", "profile", "aws_", "region", "drop_", "artifacts_bucket", "assets_table", "state_machine",
    "max_receive", "index_", "opensearch_", "model_cache", "model_store", "search_", "local_", "sagemaker",
    "worker_", "visibility", "api_", "upload_", "voice_query", "tts_batch",
)  # fmt: skip
_OPERATIONAL_SUFFIXES = ("_queue", "_workers", "_cpu_threads", "_num_workers")
# Text artifacts name the asset they belong to (in URIs and ids): rewritten for the copy.
_TEXT_SUFFIXES = (".json", ".jsonl", ".vtt", ".srt", ".txt")


def analysis_settings(settings: Settings) -> dict[str, Any]:
    """The settings an analysis's outputs depend on."""
    return {
        name: value
        for name, value in settings.model_dump(mode="json").items()
        if not name.startswith(_OPERATIONAL_PREFIXES) and not name.endswith(_OPERATIONAL_SUFFIXES)
    }


def _model_versions() -> dict[str, str]:
    from medialens.ml.store.catalog import PACKAGED_MODELS  # plain data; no runtime loads

    return {name: spec.version for name, spec in PACKAGED_MODELS.items()}


def analysis_key(content_sha256: str, asset: AssetRef, settings: Settings) -> str:
    payload = {
        "content": content_sha256,
        "pipeline": asset.pipeline_version,
        "options": asset.source.options.model_dump(mode="json"),
        "settings": analysis_settings(settings),
        "models": _model_versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def content_sha256(services: Services, uri: str) -> str:
    info = services.blobs.head(uri)
    if info is None:
        raise InvalidMediaError(f"{uri} no longer exists in the drop bucket (deleted before analysis)")
    digest = hashlib.sha256()
    for start in range(0, info.size, HASH_PIECE_BYTES):
        digest.update(services.blobs.read_range(uri, start, min(HASH_PIECE_BYTES, info.size - start)))
    return digest.hexdigest()


def _copy_analysis(services: Services, donor: Asset, asset: AssetRef) -> list[list[EmbedResult]]:
    """Copies the donor's artifacts under ``asset`` (text ones naming it instead), moments
    re-keyed; returns what IndexMoments reads. Raises LookupError or FileNotFoundError when the
    donor's analysis is not all there (any more)."""
    manifest_uri = donor.artifacts.get("indexed")
    if manifest_uri is None:
        raise LookupError(f"{donor.asset_id} recorded no indexed moments")
    donor_prefix = services.artifact_uri(donor.asset_id) + "/"
    own_prefix = services.artifact_uri(asset.asset_id) + "/"
    indexed = IndexInput.model_validate_json(services.blobs.get_text(manifest_uri))
    moment_files = {result.uri for output in indexed.embedded for result in output}
    bucket = services.settings.artifacts_bucket
    own = {f"s3://{bucket}/{key}" for key in services.blobs.list_keys(own_prefix)}  # what Probe wrote stays
    written: list[str] = []
    try:
        for key in list(services.blobs.list_keys(donor_prefix)):
            source = f"s3://{bucket}/{key}"
            target = own_prefix + source.removeprefix(donor_prefix)
            if target in own:
                continue
            if source in moment_files:
                moments = [
                    _rekeyed(Moment.model_validate_json(line), donor, asset)
                    for line in services.blobs.get_text(source).splitlines()
                    if line
                ]
                body = "".join(m.model_dump_json() + "\n" for m in moments)
                services.blobs.put_text(target, body, "application/x-ndjson")
            elif source.endswith(_TEXT_SUFFIXES):
                text = services.blobs.get_text(source).replace(donor.asset_id, asset.asset_id)
                services.blobs.put_text(target, text)
            else:
                services.blobs.copy(source, target)
            written.append(target)
    except Exception:
        for target in written:  # no half copy left beside what this asset's own steps wrote
            services.blobs.delete(target)
        raise
    log.info("reused %d artifacts of %s for %s", len(written), donor.asset_id, asset.asset_id)
    return [
        [result.model_copy(update={"uri": result.uri.replace(donor_prefix, own_prefix, 1)}) for result in output]
        for output in indexed.embedded
    ]


def _rekeyed(moment: Moment, donor: Asset, asset: AssetRef) -> Moment:
    text = moment.model_dump_json().replace(donor.asset_id, asset.asset_id)  # narration URIs and the like
    copy = Moment.model_validate_json(text)
    source = asset.source.uri if moment.source == donor.source.uri else moment.source  # subtitles keep their video
    # Deterministic per (asset, donor moment): reusing again upserts the same moments.
    moment_id = moment_id_for(asset.asset_id, copy.modality.value, f"reused:{moment.moment_id}")
    return copy.model_copy(update={"moment_id": moment_id, "source": source})


def reuse_analysis(services: Services, asset: AssetRef, _: ReuseAnalysisInput) -> ReuseResult:
    digest = content_sha256(services, asset.source.uri)
    key = analysis_key(digest, asset, services.settings)

    def record_key(stored: Asset) -> None:
        stored.content_sha256, stored.analysis_key, stored.reused_from = digest, key, None

    services.registry.mutate(asset.asset_id, record_key)
    result = ReuseResult(content_sha256=digest, analysis_key=key)
    for donor in services.registry.analysed_as(key):
        if donor.asset_id == asset.asset_id:
            continue
        try:
            embedded = _copy_analysis(services, donor, asset)
        except (LookupError, FileNotFoundError, ValueError) as error:
            detail = f"{donor.asset_id} has the same bytes but its analysis cannot be copied ({error}); analysing"
            services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="reuse", detail=detail))
            continue

        def record_reuse(stored: Asset, donor: Asset = donor) -> None:
            prefix, own = services.artifact_uri(donor.asset_id) + "/", services.artifact_uri(asset.asset_id) + "/"
            stored.reused_from = donor.asset_id
            for name, uri in donor.artifacts.items():
                stored.artifacts.setdefault(name, uri.replace(prefix, own, 1))
            for name, value in donor.metadata.items():
                stored.metadata.setdefault(name, value)

        services.registry.mutate(asset.asset_id, record_reuse)
        detail = f"same bytes, pipeline, options and models as {donor.asset_id}: its analysis reused, no model run"
        services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="reuse", detail=detail))
        return result.model_copy(update={"reused": True, "reused_from": donor.asset_id, "embedded": embedded})
    return result
