"""Image branch: technical metadata, EXIF, perceptual hash and OCR of one still image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medialens.domain.steps import AnalyzeImageInput, AssetRef, SegmentsResult, StepName
from medialens.pipeline.artifacts import artifact_uri, write_passage_batches
from medialens.pipeline.quality import record_ocr_quality
from medialens.services import Services

if TYPE_CHECKING:
    from medialens.media.images import ImageAnalysis
    from medialens.ml.ocr import TextRecognizer


def read_image(path: Path, recognizer: TextRecognizer, *, min_confidence: float = 0.5) -> ImageAnalysis:
    """Metadata, hash and OCR of the upright image; its text as IMAGE_TEXT passages."""
    # Pillow (the media extra) loads here, not with the catalogue: see pipeline/catalog.py.
    from medialens.media.images import ImageAnalysis, image_text_passages, inspect_image

    info, picture = inspect_image(path)
    (lines,) = recognizer.recognize([np.asarray(picture, dtype=np.uint8)])
    kept = [line for line in lines if line.confidence >= min_confidence]
    return ImageAnalysis(info=info, lines=kept, passages=image_text_passages(kept), ocr_model=recognizer.version)


def analyze_image(services: Services, asset: AssetRef, _: AnalyzeImageInput) -> SegmentsResult:
    from medialens.ml.ocr import get_text_recognizer  # see read_image

    recognizer = get_text_recognizer(services.settings)
    with services.blobs.local_file(asset.source.uri) as path:
        analysis = read_image(path, recognizer, min_confidence=services.settings.ocr_min_confidence)
    version = analysis.ocr_model
    uri = artifact_uri(services, asset.asset_id, StepName.ANALYZE_IMAGE, version, "image.json")
    services.blobs.put_text(uri, analysis.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"image": uri})
    record_ocr_quality(services, asset.asset_id, StepName.ANALYZE_IMAGE, version, [analysis.lines])
    passages = [p.model_copy(update={"model_versions": {"ocr": version}}) for p in analysis.passages]
    batches = write_passage_batches(services, asset.asset_id, StepName.ANALYZE_IMAGE, version, passages)
    return SegmentsResult(batches=batches, passages=len(passages))
