"""Image branch: technical metadata, EXIF, perceptual hash, OCR and visual labels of one still image."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medialens.domain.steps import AnalyzeImageInput, AssetRef, SegmentsResult, StepName
from medialens.pipeline.artifacts import artifact_uri, write_passage_batches
from medialens.pipeline.quality import record_label_quality, record_ocr_quality
from medialens.services import Services

if TYPE_CHECKING:
    from medialens.media.images import ImageAnalysis
    from medialens.ml.clip import ImageTextEmbedder
    from medialens.ml.ocr import TextRecognizer
    from medialens.ml.visual_labels import ImageLabeler


def read_image(
    path: Path,
    recognizer: TextRecognizer,
    *,
    min_confidence: float = 0.5,
    labeler: ImageLabeler | None = None,
    min_label_probability: float = 0.0,
    max_labels: int = 5,
    image_embedder: ImageTextEmbedder | None = None,
) -> ImageAnalysis:
    """Metadata, hash and OCR of the upright image; its text as IMAGE_TEXT passages and, with a
    ``labeler``, what it shows as one VISUAL passage (carrying the picture's embedding, with an
    ``image_embedder``)."""
    # Pillow (the media extra) loads here, not with the catalogue: see pipeline/catalog.py.
    from medialens.media.images import ImageAnalysis, image_text_passages, inspect_image
    from medialens.media.visual import visual_passage

    info, picture = inspect_image(path)
    pixels = np.asarray(picture, dtype=np.uint8)
    (lines,) = recognizer.recognize([pixels])
    kept = [line for line in lines if line.confidence >= min_confidence]
    passages = [p.model_copy(update={"model_versions": {"ocr": recognizer.version}}) for p in image_text_passages(kept)]
    labels = []
    if labeler is not None:
        (labels,) = labeler.classify([pixels], top_k=max_labels)
        shown = visual_passage(
            labels, index=len(passages), min_probability=min_label_probability, max_labels=max_labels
        )
        if shown is not None:
            versions = {"visual_labels": labeler.version}
            vector = None
            if image_embedder is not None:
                vector = [float(x) for x in image_embedder.embed_images([pixels])[0]]
                versions["image_embedding"] = image_embedder.version
            passages.append(shown.model_copy(update={"model_versions": versions, "image_vector": vector}))
    return ImageAnalysis(
        info=info,
        lines=kept,
        labels=labels,
        passages=passages,
        ocr_model=recognizer.version,
        label_model=labeler.version if labeler is not None else None,
    )


def analyze_image(services: Services, asset: AssetRef, _: AnalyzeImageInput) -> SegmentsResult:
    from medialens.ml.ocr import get_text_recognizer  # see read_image
    from medialens.ml.visual_labels import get_image_labeler

    settings = services.settings
    recognizer = get_text_recognizer(settings)
    labeler = get_image_labeler(settings) if settings.visual_label_model else None
    with services.blobs.local_file(asset.source.uri) as path:
        analysis = read_image(
            path,
            recognizer,
            min_confidence=settings.ocr_min_confidence,
            labeler=labeler,
            min_label_probability=settings.visual_label_min_probability,
            max_labels=settings.visual_label_max,
            image_embedder=services.image_embedder,
        )
    version = analysis.ocr_model
    uri = artifact_uri(services, asset.asset_id, StepName.ANALYZE_IMAGE, version, "image.json")
    services.blobs.put_text(uri, analysis.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"image": uri})
    record_ocr_quality(services, asset.asset_id, StepName.ANALYZE_IMAGE, version, [analysis.lines])
    if analysis.label_model and analysis.labels:
        top = [analysis.labels[0].probability]
        record_label_quality(services, asset.asset_id, StepName.ANALYZE_IMAGE, analysis.label_model, top)
    passages = analysis.passages
    batches = write_passage_batches(services, asset.asset_id, StepName.ANALYZE_IMAGE, version, passages)
    return SegmentsResult(batches=batches, passages=len(passages))
