"""Find what is shown: photos and video shots without any text get visual moments (the classifier's
labels), and a question naming what they show finds the photo, or the shot with its time range."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from medialens.domain.assets import AssetStatus
from medialens.domain.moments import Modality, VectorField
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.ml.store.importing import import_model_folder
from medialens.ml.store.store import ModelStore
from medialens.timeline import asset_timeline

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from tiny_clip import COLOURS, medialens_folder  # the tiny image-text model, via sys.path above

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Read at import: the shared conftest clears MEDIALENS_* variables before each test.
PHOTOS = Path(os.environ.get("MEDIALENS_TEST_PHOTOS", Path(__file__).resolve().parents[2] / ".test-photos"))
SHOT_SECONDS = 3


def scikit_photo(name: str, target: Path) -> Path:
    from skimage import data

    Image.fromarray(getattr(data, name)()).convert("RGB").save(target)
    return target


def slideshow(pictures: list[Path], target: Path) -> Path:
    """A video cutting from picture to picture every SHOT_SECONDS (hard cuts), with no text and no sound."""
    command = ["ffmpeg", "-loglevel", "error", "-y"]
    for picture in pictures:
        command += ["-loop", "1", "-t", str(SHOT_SECONDS), "-i", str(picture)]
    scaled = "".join(
        f"[{i}:v]scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1[v{i}];"
        for i in range(len(pictures))
    )
    joined = "".join(f"[v{i}]" for i in range(len(pictures)))
    command += ["-filter_complex", f"{scaled}{joined}concat=n={len(pictures)}:v=1:a=0,format=yuv420p[out]"]
    command += ["-map", "[out]", "-r", "10", "-c:v", "libx264", "-preset", "ultrafast", str(target)]
    subprocess.run(command, check=True)
    return target


def test_photos_and_shots_are_found_by_what_they_show(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    if not (PHOTOS / "dog.jpg").is_file():
        pytest.skip(f"no test photos in {PHOTOS}: run `make test-photos`")
    media, frames = tmp_path / "media", tmp_path / "frames"
    media.mkdir()
    frames.mkdir()
    (media / "dog.jpg").write_bytes((PHOTOS / "dog.jpg").read_bytes())
    scikit_photo("chelsea", media / "cat.png")
    pictures = [
        scikit_photo("rocket", frames / "rocket.png"),
        scikit_photo("coffee", frames / "coffee.png"),
        PHOTOS / "eagle.jpg",
    ]
    slideshow(pictures, media / "montage.mp4")
    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3))
    uploaded, assets = ingest_and_wait(runtime, [media], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets)
    for name, asset in by_name.items():
        assert asset.status is AssetStatus.SUCCEEDED, f"{name}: {asset.stage} {asset.error_reason}"
    assert runtime.services is not None
    services, search = runtime.services, runtime.services.search

    # Every photo and every shot has a visual moment, whether it holds words or not.
    for name in ("dog.jpg", "cat.png"):
        moments = services.index.asset_moments(by_name[name].asset_id, 10)
        (shown,) = [m for m in moments if m.modality is Modality.VISUAL]
        assert shown.model_versions["visual_labels"].startswith("efficientnet-lite0@"), name
        assert shown.language == "en" and shown.confidence is not None
    shots = sorted(
        (m for m in services.index.asset_moments(by_name["montage.mp4"].asset_id, 20) if m.modality is Modality.VISUAL),
        key=lambda m: m.start or 0,
    )
    assert [(round(m.start or 0), round(m.end or 0)) for m in shots] == [(0, 3), (3, 6), (6, 9)]

    def best(text: str, media_type: str | None = None) -> tuple[str, float | None, float | None]:
        filters = SearchFilters(modalities=[Modality.VISUAL])
        query = SearchQuery(text=text, k=1, mode=SearchMode.SEMANTIC, filters=filters)
        (hit,) = search.search(query).hits
        return hit.source.rsplit("/", 1)[1], hit.start, hit.end

    assert best("a dog")[0] == "dog.jpg"
    assert best("a cat lying down")[0] == "cat.png"
    name, start, end = best("a cup of espresso")
    assert name == "montage.mp4" and (round(start or 0), round(end or 0)) == (3, 6)
    name, start, end = best("a bird of prey")
    assert name == "montage.mp4" and (round(start or 0), round(end or 0)) == (6, 9)
    # Keyword search reads the labels too.
    keyword = SearchQuery(text="espresso", k=3, mode=SearchMode.KEYWORD)
    assert [hit.source.rsplit("/", 1)[1] for hit in search.search(keyword).hits][:1] == ["montage.mp4"]

    # The asset view's timeline shows what each shot shows.
    montage = services.registry.get(by_name["montage.mp4"].asset_id)
    assert montage is not None
    timeline = asset_timeline(services, montage, lambda uri: None)
    (shown,) = [lane for lane in timeline.lanes if lane.name == "shown"]
    assert len(shown.spans) == 3 and "espresso" in shown.spans[1].label
    # The operations report sees how sure the labeller was: one value per shot.
    (labels,) = [s for s in montage.quality.samples if s.signal == "label_confidence"]
    assert labels.n == 3 and labels.model.startswith("efficientnet-lite0@")


def test_an_image_text_model_finds_pictures_by_what_they_look_like(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    """With a CLIP-style model imported (here the tiny one the tests build: it knows red, green
    and blue), every VISUAL moment carries its picture's embedding in its own vector field, and a
    question is also asked through the model's text encoder, fused with the text encoders' list."""
    settings = fast_settings(visibility_timeout_s=60, max_receive_count=3)
    store = ModelStore(settings.models_dir)
    name = f"e2e-tiny-clip-{uuid.uuid4().hex[:8]}"
    import_model_folder(store, medialens_folder(tmp_path / "supplied"), name=name, version="1")
    try:
        media, frames = tmp_path / "media", tmp_path / "frames"
        media.mkdir()
        frames.mkdir()
        for colour, rgb in COLOURS.items():
            Image.new("RGB", (320, 240), rgb).save(media / f"{colour}.png")
            Image.new("RGB", (640, 480), rgb).save(frames / f"{colour}.png")
        slideshow([frames / "green.png", frames / "blue.png"], media / "colours.mp4")
        runtime = start_runtime(settings.model_copy(update={"image_embedding_model": name}))
        uploaded, assets = ingest_and_wait(runtime, [media], timeout_s=300)
        by_name = assets_by_file_name(uploaded, assets)
        for file_name, asset in by_name.items():
            assert asset.status is AssetStatus.SUCCEEDED, f"{file_name}: {asset.stage} {asset.error_reason}"
        assert runtime.services is not None
        services = runtime.services

        (red,) = [m for m in services.index.asset_moments(by_name["red.png"].asset_id) if m.modality is Modality.VISUAL]
        assert red.model_versions["image_embedding"] == f"{name}@1+fp32"
        # The picture's vector lives in its own field: asked there, red's picture is nearest "red".
        clip = services.image_embedder
        assert clip is not None
        question = [float(x) for x in clip.embed_query("a photo of red")]
        nearest = services.index.semantic(question, 1, SearchFilters(), f"{name}@1", field=VectorField.IMAGE)
        assert [hit.moment_id for hit in nearest] == [red.moment_id]

        def best(text: str) -> tuple[str, float | None]:
            query = SearchQuery(
                text=text, k=1, mode=SearchMode.SEMANTIC, filters=SearchFilters(modalities=[Modality.VISUAL])
            )
            (hit,) = services.search.search(query).hits
            return hit.source.rsplit("/", 1)[1], hit.start

        assert best("a photo of red")[0] == "red.png"
        assert best("a photo of green")[0] in ("green.png", "colours.mp4")
        found, start = best("blue")
        assert found in ("blue.png", "colours.mp4") and (found == "blue.png" or round(start or 0) == SHOT_SECONDS)
        # The video's shots carry the mean of their keyframes' pictures.
        shots = [
            m for m in services.index.asset_moments(by_name["colours.mp4"].asset_id) if m.modality is Modality.VISUAL
        ]
        assert len(shots) == 2 and all(m.model_versions.get("image_embedding") == f"{name}@1+fp32" for m in shots)
    finally:
        shutil.rmtree(settings.models_dir / name, ignore_errors=True)
