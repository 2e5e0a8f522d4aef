"""The CLIP-style image/text embedder on a tiny model built here with onnx.helper.

The tiny model is CLIP-shaped (an image encoder and a text encoder into one 8-d space) and
matches by construction: the image encoder projects an image's mean normalised colour, the text
encoder sums word vectors in which "red", "green" and "blue" point where those colours' images
do. So a picture of a colour is nearest to the text naming it, through the real import, store,
preprocessing, tokenizer, batching and onnxruntime code.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medialens.errors import ConfigurationError
from medialens.ml.base import reset_models
from medialens.ml.clip import (
    TEXT_MODEL_FILE,
    ClipConfig,
    OnnxClipEmbedder,
    get_image_embedder,
    preprocess_images,
)
from medialens.ml.store.importing import import_model_folder
from medialens.ml.store.manifest import MANIFEST_FILE, ModelArtifact
from medialens.ml.store.store import ModelStore
from medialens.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from tiny_clip import (  # the tiny model's builder, via sys.path above
    COLOURS,
    CONTEXT,
    DIM,
    SIZE,
    _clip_settings,
    _image_encoder,
    immich_folder,
    medialens_folder,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore(tmp_path_factory.mktemp("clip-store"))


@pytest.fixture(scope="module")
def tiny(store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> ModelArtifact:
    source = medialens_folder(tmp_path_factory.mktemp("supplied") / "tiny-clip")
    return import_model_folder(store, source, name="tiny-clip", version="1")


@pytest.fixture(scope="module")
def embedder(store: ModelStore, tiny: ModelArtifact) -> OnnxClipEmbedder:
    return OnnxClipEmbedder(store, "tiny-clip", version="1")


def _colour_images() -> list[Image.Image]:
    return [Image.new("RGB", (40, 30), rgb) for rgb in COLOURS.values()]


def test_import_writes_a_verified_store_folder(tiny: ModelArtifact, store: ModelStore) -> None:
    manifest = tiny.manifest
    assert (manifest.name, manifest.version, manifest.quantization) == ("tiny-clip", "1", "fp32")
    assert manifest.dimensions == DIM and manifest.max_seq_length == CONTEXT
    assert set(manifest.files) == {"model.onnx", TEXT_MODEL_FILE, "tokenizer.json"}
    assert manifest.extra["kind"] == "clip" and manifest.extra["image_size"] == SIZE
    assert tiny.path == store.folder("tiny-clip", "1", "fp32")
    assert store.resolve("tiny-clip", "fp32", "1").manifest.files == manifest.files


def test_shapes_and_normalisation(embedder: OnnxClipEmbedder) -> None:
    images = embedder.embed_images(_colour_images())
    texts = embedder.embed_texts(["a photo of red", "green", "BLUE"])
    assert images.shape == texts.shape == (3, DIM) and images.dtype == texts.dtype == np.float32
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-6)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-6)
    assert embedder.dimensions == DIM and embedder.version == "tiny-clip@1+fp32"
    assert embedder.providers[-1] == "CPUExecutionProvider"
    assert embedder.embed_images([]).shape == (0, DIM) and embedder.embed_texts([]).shape == (0, DIM)
    assert embedder.embed_query("red").shape == (DIM,)


def test_a_question_builds_the_text_encoder_only(store: ModelStore, tiny: ModelArtifact) -> None:
    """A search asks only the text side: its width comes from the manifest without loading, and
    the image encoder is built on the first picture."""
    fresh = OnnxClipEmbedder(store, "tiny-clip", version="1")
    assert fresh.dimensions == DIM and not fresh.loaded
    assert fresh.embed_query("red").shape == (DIM,)
    assert fresh.loaded and fresh._image_session is None
    assert fresh.embed_images(_colour_images()[:1]).shape == (1, DIM) and fresh._image_session is not None


def test_matching_text_and_image_score_highest(embedder: OnnxClipEmbedder) -> None:
    images = embedder.embed_images(_colour_images())
    texts = embedder.embed_texts([f"a photo of {colour}" for colour in COLOURS])
    similarity = images @ texts.T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2]
    assert list(similarity.argmax(axis=0)) == [0, 1, 2]
    assert np.all(np.diag(similarity) > similarity.max(axis=1, initial=-1, where=~np.eye(3, dtype=bool)))


def test_batching_does_not_change_results(embedder: OnnxClipEmbedder) -> None:
    images = _colour_images() * 3
    texts = ["red", "a photo of green", "blue blue", "of", "unknown words here"] * 2
    assert np.allclose(
        embedder.embed_images(images, batch_size=1), embedder.embed_images(images, batch_size=4), atol=1e-6
    )
    assert np.allclose(embedder.embed_texts(texts, batch_size=1), embedder.embed_texts(texts, batch_size=3), atol=1e-6)


def test_dynamic_padding_is_batch_invariant(store: ModelStore, tmp_path: Path) -> None:
    source = medialens_folder(tmp_path / "dynamic", pad_to_context=False)
    import_model_folder(store, source, name="tiny-clip-dynamic", version="1")
    dynamic = OnnxClipEmbedder(store, "tiny-clip-dynamic")  # newest cached version
    texts = ["red", "a photo of a photo of green"]
    assert np.allclose(dynamic.embed_texts(texts, batch_size=1), dynamic.embed_texts(texts, batch_size=2), atol=1e-6)


def test_centre_crop_keeps_the_middle() -> None:
    # Three vertical bands, red | green | red: the centred square is all green.
    wide = Image.new("RGB", (48, 16), COLOURS["red"])
    wide.paste(Image.new("RGB", (16, 16), COLOURS["green"]), (16, 0))
    config = ClipConfig.model_validate(_clip_settings())
    (cropped,) = preprocess_images([wide], config)
    assert cropped.shape == (3, SIZE, SIZE)
    assert np.allclose(cropped.mean(axis=(1, 2)), (-1, 1, -1), atol=0.05)
    (squashed,) = preprocess_images([wide], config.model_copy(update={"resize_mode": "squash"}))
    assert squashed[0].mean() > 0  # mostly red once the whole width is squeezed in


def test_immich_layout_imports_and_agrees(store: ModelStore, embedder: OnnxClipEmbedder, tmp_path: Path) -> None:
    artifact = import_model_folder(store, immich_folder(tmp_path / "ViT-tiny"), name="tiny-immich", version="2")
    assert artifact.manifest.extra["source_layout"] == "immich"
    immich = OnnxClipEmbedder(store, "tiny-immich", version="2")
    images = _colour_images()
    texts = ["a photo of red", "green"]
    # Fixed batch of 1 in the image graph: run one at a time, whatever batch size is asked.
    assert np.allclose(immich.embed_images(images, batch_size=8), embedder.embed_images(images), atol=1e-6)
    assert np.allclose(immich.embed_texts(texts), embedder.embed_texts(texts), atol=1e-6)


def test_store_folder_round_trip_and_tampering(store: ModelStore, tiny: ModelArtifact, tmp_path: Path) -> None:
    other = ModelStore(tmp_path / "other-cache")
    copied = import_model_folder(other, tiny.path)
    assert copied.manifest.files == tiny.manifest.files
    tampered = tmp_path / "tampered"
    shutil.copytree(tiny.path, tampered)
    (tampered / "tokenizer.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="does not match the sha256"):
        import_model_folder(ModelStore(tmp_path / "third"), tampered)
    with pytest.raises(ConfigurationError, match="manifest says name='tiny-clip', not 'renamed'"):
        import_model_folder(other, tiny.path, name="renamed")


def test_import_refuses_what_it_cannot_use(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"neither a manifest\.json"):
        import_model_folder(store, tmp_path)
    source = medialens_folder(tmp_path / "no-settings")
    (source / "clip.json").unlink()
    with pytest.raises(ConfigurationError, match=r"has no clip\.json"):
        import_model_folder(store, source, name="broken")
    mismatched = medialens_folder(tmp_path / "mismatched")
    _image_encoder(mismatched / "image_encoder.onnx", dim=4)
    with pytest.raises(ConfigurationError, match="the encoders disagree"):
        import_model_folder(store, mismatched, name="mismatched")
    assert not (store.folder("mismatched", "1", "fp32") / MANIFEST_FILE).exists()
    with pytest.raises(ConfigurationError, match="give the model a name"):
        import_model_folder(store, mismatched)
    garbage = medialens_folder(tmp_path / "garbage")
    (garbage / "text_encoder.onnx").write_bytes(b"not a graph")
    with pytest.raises(ConfigurationError, match="onnxruntime cannot load the encoders"):
        import_model_folder(store, garbage, name="garbage")


def test_image_embedder_from_settings(store: ModelStore, tiny: ModelArtifact) -> None:
    reset_models()
    assert get_image_embedder(Settings(model_cache=store.cache_dir)) is None  # off by default
    settings = Settings(model_cache=store.cache_dir, image_embedding_model="tiny-clip@1")
    embedder = get_image_embedder(settings)
    assert embedder is not None and embedder is get_image_embedder(settings)
    assert embedder.version == "tiny-clip@1+fp32" and embedder.embed_texts(["red"]).shape == (1, DIM)
    with pytest.raises(ConfigurationError, match="medialens models import"):
        get_image_embedder(Settings(model_cache=store.cache_dir, image_embedding_model="not-imported"))
    missing = get_image_embedder(Settings(model_cache=store.cache_dir, image_embedding_model="not-imported@3"))
    assert missing is not None
    with pytest.raises(ConfigurationError, match="not in the model store"):
        missing.load()
    reset_models()


def test_models_import_command_adds_the_folder_to_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI a user runs to supply real CLIP weights: it lands in the configured store, listed."""
    from typer.testing import CliRunner

    from medialens.cli.main import app

    monkeypatch.setenv("MEDIALENS_MODEL_CACHE", str(tmp_path / "models"))  # not the shared cache

    folder = medialens_folder(tmp_path / "my-clip")
    runner = CliRunner()
    imported = runner.invoke(app, ["models", "import", str(folder)])
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(app, ["models", "list", "--json"])
    manifests = json.loads(listed.stdout)
    assert "my-clip@" in imported.output
    (clip,) = [m for m in manifests if m["name"] == "my-clip"]
    assert clip["extra"]["kind"] == "clip" and {"model.onnx", "text_model.onnx"} <= set(clip["files"])
    assert (tmp_path / "models").is_dir()
