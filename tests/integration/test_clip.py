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
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

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

pytestmark = pytest.mark.integration

DIM = 8
SIZE = 16
CONTEXT = 8
VOCAB = {"[PAD]": 0, "[UNK]": 1, "<s>": 2, "</s>": 3, "a": 4, "photo": 5, "of": 6, "red": 7, "green": 8, "blue": 9}
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


def _word_vectors() -> np.ndarray:
    table = np.zeros((len(VOCAB), DIM), dtype=np.float32)
    # Mean colour normalised with mean=std=0.5 maps red to (1, -1, -1): the words point there too.
    table[VOCAB["red"], :3] = (1, -1, -1)
    table[VOCAB["green"], :3] = (-1, 1, -1)
    table[VOCAB["blue"], :3] = (-1, -1, 1)
    for filler in ("a", "photo", "of"):
        table[VOCAB[filler], 3] = 0.2  # a direction no image has
    return table


def _image_encoder(path: Path, *, fixed_batch: bool = False, dim: int = DIM, input_name: str = "pixel_values") -> None:
    batch: int | str = 1 if fixed_batch else "batch"
    projection = np.zeros((3, dim), dtype=np.float32)
    projection[:3, :3] = np.eye(3)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", [input_name], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["colour"], axis=1),
            helper.make_node("MatMul", ["colour", "projection"], ["image_embeds"]),
        ],
        "tiny_clip_image",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, [batch, dim])],
        [numpy_helper.from_array(projection, "projection")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def _text_encoder(path: Path, *, ids_name: str = "input_ids", int32: bool = False, with_mask: bool = True) -> None:
    ids_type = TensorProto.INT32 if int32 else TensorProto.INT64
    nodes = [helper.make_node("Gather", ["word_vectors", ids_name], ["words"], axis=0)]
    inputs = [helper.make_tensor_value_info(ids_name, ids_type, ["batch", "length"])]
    if with_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]))
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["mask_float"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask_float", "last_axis"], ["mask3"]),
            helper.make_node("Mul", ["words", "mask3"], ["kept"]),
        ]
    nodes.append(
        helper.make_node("ReduceSum", ["kept" if with_mask else "words", "length_axis"], ["text_embeds"], keepdims=0)
    )
    graph = helper.make_graph(
        nodes,
        "tiny_clip_text",
        inputs,
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", DIM])],
        [
            numpy_helper.from_array(_word_vectors(), "word_vectors"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "last_axis"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "length_axis"),
        ],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)


def _tokenizer(path: Path) -> None:
    tokenizer = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", VOCAB["<s>"]), ("</s>", VOCAB["</s>"])]
    )
    tokenizer.save(str(path))


def _clip_settings(**changes: object) -> dict[str, object]:
    settings: dict[str, object] = {
        "image_size": SIZE,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "interpolation": "bilinear",
        "resize_mode": "shortest",
        "context_length": CONTEXT,
        "pad_id": 0,
        "pad_to_context": True,
    }
    settings.update(changes)
    return settings


def _medialens_folder(folder: Path, **changes: object) -> Path:
    folder.mkdir(parents=True)
    _image_encoder(folder / "image_encoder.onnx")
    _text_encoder(folder / "text_encoder.onnx")
    _tokenizer(folder / "tokenizer.json")
    (folder / "clip.json").write_text(json.dumps(_clip_settings(**changes)), encoding="utf-8")
    return folder


def _immich_folder(folder: Path) -> Path:
    """The layout of Immich's open_clip exports: fixed batch 1 image graph named "image", int32
    "text" ids and no attention mask."""
    (folder / "visual").mkdir(parents=True)
    (folder / "textual").mkdir()
    _image_encoder(folder / "visual" / "model.onnx", fixed_batch=True, input_name="image")
    _text_encoder(folder / "textual" / "model.onnx", ids_name="text", int32=True, with_mask=False)
    _tokenizer(folder / "textual" / "tokenizer.json")
    (folder / "config.json").write_text(json.dumps({"embed_dim": DIM, "text_cfg": {"context_length": CONTEXT}}))
    (folder / "textual" / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]"}))
    preprocess = {"size": [SIZE, SIZE], "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear"}
    (folder / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess))
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore(tmp_path_factory.mktemp("clip-store"))


@pytest.fixture(scope="module")
def tiny(store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> ModelArtifact:
    source = _medialens_folder(tmp_path_factory.mktemp("supplied") / "tiny-clip")
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
    source = _medialens_folder(tmp_path / "dynamic", pad_to_context=False)
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
    artifact = import_model_folder(store, _immich_folder(tmp_path / "ViT-tiny"), name="tiny-immich", version="2")
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
    source = _medialens_folder(tmp_path / "no-settings")
    (source / "clip.json").unlink()
    with pytest.raises(ConfigurationError, match=r"has no clip\.json"):
        import_model_folder(store, source, name="broken")
    mismatched = _medialens_folder(tmp_path / "mismatched")
    _image_encoder(mismatched / "image_encoder.onnx", dim=4)
    with pytest.raises(ConfigurationError, match="the encoders disagree"):
        import_model_folder(store, mismatched, name="mismatched")
    assert not (store.folder("mismatched", "1", "fp32") / MANIFEST_FILE).exists()
    with pytest.raises(ConfigurationError, match="give the model a name"):
        import_model_folder(store, mismatched)
    garbage = _medialens_folder(tmp_path / "garbage")
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

    folder = _medialens_folder(tmp_path / "my-clip")
    runner = CliRunner()
    imported = runner.invoke(app, ["models", "import", str(folder)])
    assert imported.exit_code == 0, imported.output
    listed = runner.invoke(app, ["models", "list", "--json"])
    manifests = json.loads(listed.stdout)
    assert "my-clip@" in imported.output
    (clip,) = [m for m in manifests if m["name"] == "my-clip"]
    assert clip["extra"]["kind"] == "clip" and {"model.onnx", "text_model.onnx"} <= set(clip["files"])
    assert (tmp_path / "models").is_dir()
