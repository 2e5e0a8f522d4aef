"""Image branch: technical metadata, EXIF, perceptual hash and OCR of one still image."""

from __future__ import annotations

from typing import Any

from medialens.domain.messages import AssetRef, SegmentsResult
from medialens.media.images import analyze_image as analyze
from medialens.ml.ocr import get_text_recognizer
from medialens.pipeline.artifacts import artifact_uri, write_passage_batches
from medialens.services import Services


def analyze_image(services: Services, asset: AssetRef, _input: dict[str, Any]) -> SegmentsResult:
    recognizer = get_text_recognizer(services.settings)
    with services.blobs.local_file(asset.source.uri) as path:
        analysis = analyze(path, recognizer, min_confidence=services.settings.ocr_min_confidence)
    version = analysis.ocr_model or asset.pipeline_version
    uri = artifact_uri(services, asset.asset_id, "analyze_image", version, "image.json")
    services.blobs.put_text(uri, analysis.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"image": uri})
    passages = [p.model_copy(update={"model_versions": {"ocr": version}}) for p in analysis.passages]
    batches = write_passage_batches(services, asset.asset_id, "analyze_image", version, passages)
    return SegmentsResult(batches=batches, passages=len(passages))
