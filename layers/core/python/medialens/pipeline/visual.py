"""What is shown: classifier labels of keyframe batches (heavy, batched across messages and assets)
and one VISUAL moment per shot (light). Images are labelled in their own step (pipeline/images.py)."""

from __future__ import annotations

from collections.abc import Sequence

from medialens.domain.steps import (
    AssetRef,
    BuildShotLabelsInput,
    LabelKeyframesInput,
    LabelKeyframesResult,
    SegmentsResult,
    StepCall,
    StepName,
)
from medialens.media.visual import FrameLabels, ShotLabels, ShotList, VisualLabel, shot_passages
from medialens.pipeline.artifacts import artifact_uri, read_jsonl, with_passed_on, write_jsonl, write_passage_batches
from medialens.pipeline.quality import record_label_quality
from medialens.pipeline.video import KEYFRAMES_PER_BATCH, load_keyframe_batches
from medialens.services import Services

# Classes kept per keyframe: a shot's label is a mean over its keyframes, so a class needs to be
# in each keyframe's list to count; the tail under this many is below 1% on real pictures.
LABELS_PER_KEYFRAME = 10
LABELS_OFF = "off"  # the model recorded when settings turn the labels off (visual_label_model None)


def label_keyframes(
    services: Services, calls: Sequence[StepCall[LabelKeyframesInput]]
) -> list[LabelKeyframesResult | Exception]:
    """Labels of every call's keyframes through one classifier, in shared batches."""
    # onnxruntime and Pillow (the media extra) load here, not with the catalogue: see pipeline/catalog.py.
    from medialens.ml.visual_labels import get_image_labeler

    labeler = get_image_labeler(services.settings) if services.settings.visual_label_model else None
    model = labeler.version if labeler is not None else LABELS_OFF
    pictures = services.image_embedder if labeler is not None else None  # vectors ride on the labels' moments
    vectors: list[list[float] | None] = []
    loaded = load_keyframe_batches(services, [call.input.batch for call in calls])
    pending = [record for records in loaded if not isinstance(records, Exception) for record in records]
    labels: list[list[VisualLabel]] = []
    for begin in range(0, len(pending), KEYFRAMES_PER_BATCH):
        chunk = pending[begin : begin + KEYFRAMES_PER_BATCH]
        if labeler is None:
            labels += [[] for _ in chunk]
            vectors += [None for _ in chunk]
            continue
        images = [services.blobs.get_bytes(record.jpeg_uri) for record in chunk]
        labels += labeler.classify(images, top_k=LABELS_PER_KEYFRAME)
        if pictures is not None:
            vectors += [[float(x) for x in row] for row in pictures.embed_images(images)]
        else:
            vectors += [None for _ in chunk]
    read, embedded = iter(labels), iter(vectors)
    results: list[LabelKeyframesResult | Exception] = []
    for call, records in zip(calls, loaded, strict=True):
        if isinstance(records, Exception):
            results.append(records)
            continue
        frames = [
            FrameLabels(
                time=r.time,
                start=r.start,
                until=r.until,
                shot_index=r.shot_index,
                labels=next(read),
                image_vector=next(embedded),
            )
            for r in records
        ]
        batch = call.input.batch
        uri = artifact_uri(
            services, call.asset.asset_id, StepName.LABEL_KEYFRAMES, model, f"labels-{batch.index:04d}.jsonl"
        )
        write_jsonl(services, uri, frames)
        image_model = pictures.version if pictures is not None else None
        results.append(
            LabelKeyframesResult(index=batch.index, uri=uri, count=len(frames), model=model, image_model=image_model)
        )
    return results


def build_shot_labels(services: Services, asset: AssetRef, request: BuildShotLabelsInput) -> SegmentsResult:
    """One VISUAL passage per shot (labels.json keeps every keyframe's labels), answered together
    with the outputs the branch passes on."""
    settings = services.settings
    analysis = ShotList.model_validate_json(services.blobs.get_text(request.manifest_uri))
    frames = sorted(
        (frame for result in request.labels for frame in read_jsonl(services, result.uri, FrameLabels)),
        key=lambda f: f.time,
    )
    model = request.labels[0].model if request.labels else asset.pipeline_version  # no keyframes
    passages = shot_passages(
        analysis.shots,
        frames,
        min_probability=settings.visual_label_min_probability,
        max_labels=settings.visual_label_max,
    )
    image_model = request.labels[0].image_model if request.labels else None
    versions = {"visual_labels": model} | ({"image_embedding": image_model} if image_model else {})
    passages = [p.model_copy(update={"model_versions": versions}) for p in passages]
    step = StepName.BUILD_SHOT_LABELS
    uri = artifact_uri(services, asset.asset_id, step, model, "labels.json")
    services.blobs.put_text(uri, ShotLabels(label_model=model, frames=frames, passages=passages).model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"labels": uri})
    record_label_quality(services, asset.asset_id, StepName.LABEL_KEYFRAMES, model, (p.confidence for p in passages))
    batches = write_passage_batches(services, asset.asset_id, step, model, passages)
    return with_passed_on(request.passed_on, batches, len(passages))
