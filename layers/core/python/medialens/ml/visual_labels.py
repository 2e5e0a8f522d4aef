"""Visual labels: which of ImageNet's 1000 classes a picture shows, on onnxruntime, from a model in
the model store (EfficientNet-Lite0 by default; no torch, no timm at run time).

The store's ``onnx_image`` folder holds the graph (normalised pixels in; ``probabilities`` and the
pooled ``features`` out) and ``labels.json`` (each class's WordNet names, written at build time);
the manifest's ``extra["preprocess"]`` says how the model was evaluated upstream. For
EfficientNet-Lite that is TensorFlow's: the centre square of 224/256 of the shorter side, resized
to 224 x 224 (bicubic), then ``(rgb - 127) / 128``.

Images go through the network ``batch_size`` at a time (default 8); in fp32 the results equal
one-image-at-a-time calls (int8 quantizes activations per batch, so its probabilities move a
little with the batch). On CPU batches gain nothing: lite0 fp32 measured ~6 ms per image at
batch 1 and at batch 8 on two threads, plus the decode and resize of each picture.

int8 is built by the store but is not the default: onnxruntime's dynamic quantization turns the
convolutions into ConvInteger, which agrees less with fp32 and runs several times slower on CPU
(~30 ms per image with the stem and depthwise convolutions kept fp32; ~100+ ms all-int8).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image
from pydantic import BaseModel, Field, ValidationError

from medialens.errors import ConfigurationError
from medialens.media.pixels import ImageInput, as_rgb_array
from medialens.media.visual import VisualLabel
from medialens.ml.base import FloatMatrix, InferenceModel, cached_model
from medialens.ml.onnx import create_session
from medialens.ml.store.manifest import LABELS_FILE, ModelArtifact, check_quantization
from medialens.ml.store.store import ModelStore, store_for
from medialens.settings import Settings, get_settings

INPUT_NAME = "pixels"
PROBABILITIES = "probabilities"
FEATURES = "features"

DEFAULT_BATCH_SIZE = 8

_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


class PreprocessConfig(BaseModel):
    """How the classifier's input is made from a picture (the manifest's ``extra["preprocess"]``).
    The defaults are EfficientNet-Lite0's."""

    image_size: int = Field(default=224, ge=1)
    crop_fraction: float = Field(default=224 / 256, gt=0, le=1, description="centre square, of the shorter side")
    mean: float = 127.0
    std: float = Field(default=128.0, gt=0)
    interpolation: Literal["bicubic", "bilinear"] = "bicubic"


class LabelClass(BaseModel):
    """One class of ``labels.json``."""

    index: int = Field(ge=0)
    synset: str = ""
    name: str
    synonyms: list[str] = Field(default_factory=list)
    definition: str = ""


class _LabelsFile(BaseModel):
    source: str = ""
    classes: list[LabelClass]


def preprocess_image(image: ImageInput, config: PreprocessConfig) -> npt.NDArray[np.float32]:
    """(3, S, S) float32 of an upright RGB picture, as TensorFlow's EfficientNet evaluation makes it:
    the centre square of ``crop_fraction`` of the shorter side (offsets rounded up, as
    ``_decode_and_center_crop`` does), resized to S x S, normalised with ``mean`` and ``std``."""
    picture = Image.fromarray(as_rgb_array(image))
    width, height = picture.size
    side = max(1, int(config.crop_fraction * min(width, height)))
    left, top = (width - side + 1) // 2, (height - side + 1) // 2
    size = config.image_size
    resized = picture.resize(
        (size, size), resample=_RESAMPLING[config.interpolation], box=(left, top, left + side, top + side)
    )
    pixels = np.asarray(resized, dtype=np.float32)
    normalised: npt.NDArray[np.float32] = ((pixels - config.mean) / config.std).transpose(2, 0, 1)
    return np.ascontiguousarray(normalised)


class ImageLabeler(InferenceModel):
    """Pictures in, the most probable classes of each out."""

    @abstractmethod
    def classify(self, images: Sequence[ImageInput], top_k: int = 5) -> list[list[VisualLabel]]:
        """Per image (in the order given), its ``top_k`` most probable classes, most probable first.
        Images are turned upright (EXIF) first. Safe to call from several threads."""

    def classify_one(self, image: ImageInput, top_k: int = 5) -> list[VisualLabel]:
        return self.classify([image], top_k)[0]


class OnnxImageLabeler(ImageLabeler):
    """An ImageNet-style classifier from the model store (format ``onnx_image``).

    Loads lazily: the first call resolves the model (building or pulling it if needed), then reads
    the class names and creates the session.
    """

    def __init__(
        self,
        store: ModelStore,
        name: str,
        quantization: str,
        version: str | None = None,
        *,
        batch_size: int | None = None,
        intra_op_threads: int = 0,
        providers: Sequence[str] | None = None,
    ) -> None:
        """``batch_size`` None: 8 (see the module docstring). ``intra_op_threads`` 0 is
        onnxruntime's default, one per physical core."""
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        super().__init__(name, check_quantization(quantization), version, store=store, providers=providers)
        self._batch_size = batch_size
        self._intra_op_threads = intra_op_threads
        self._session: ort.InferenceSession | None = None
        self._classes: list[LabelClass] = []
        self._preprocess = PreprocessConfig()

    @property
    def classes(self) -> list[LabelClass]:
        """The classes in output order (loads the model)."""
        self.load()
        return list(self._classes)

    @property
    def preprocess(self) -> PreprocessConfig:
        """How a picture becomes the model's input (loads the model: it is in the manifest)."""
        self.load()
        return self._preprocess

    @property
    def batch_size(self) -> int:
        return self._batch_size or DEFAULT_BATCH_SIZE

    def _load_from(self, artifact: ModelArtifact) -> None:
        if artifact.manifest.format != "onnx_image":
            raise ConfigurationError(
                f"{artifact.manifest.model_id} is a {artifact.manifest.format} model, not an image classifier"
            )
        try:
            labels = _LabelsFile.model_validate_json((artifact.path / LABELS_FILE).read_bytes())
            preprocess = PreprocessConfig.model_validate(artifact.manifest.extra.get("preprocess", {}))
        except ValidationError as error:
            raise ConfigurationError(f"unusable class names or preprocessing in {artifact.path}: {error}") from error
        if [label.index for label in labels.classes] != list(range(len(labels.classes))):
            raise ConfigurationError(f"{artifact.path / LABELS_FILE} does not list its classes in index order")
        session = create_session(
            artifact.model_path,
            providers=self._requested_providers,
            intra_op_threads=self._intra_op_threads,
            inter_op_threads=1,  # one chain of convolutions: no parallel branches to run
        )
        outputs = {node.name: node.shape for node in session.get_outputs()}
        if PROBABILITIES not in outputs or outputs[PROBABILITIES][-1] != len(labels.classes):
            raise ConfigurationError(
                f"{artifact.manifest.model_id}: the graph's {PROBABILITIES} do not match the "
                f"{len(labels.classes)} classes of {LABELS_FILE}"
            )
        self._active_providers = list(session.get_providers())
        self._classes, self._preprocess, self._session = labels.classes, preprocess, session

    def _run(self, images: Sequence[ImageInput], output: str, batch_size: int | None) -> FloatMatrix:
        self.load()
        assert self._session is not None
        step = self.batch_size if batch_size is None else batch_size
        if step < 1:
            raise ValueError(f"batch_size must be positive, got {step}")
        results: list[FloatMatrix] = []
        for begin in range(0, len(images), step):
            pixels = np.stack([preprocess_image(image, self._preprocess) for image in images[begin : begin + step]])
            (values,) = self._session.run([output], {INPUT_NAME: pixels})
            results.append(np.asarray(values, dtype=np.float32))
        return np.concatenate(results)

    def probabilities(self, images: Sequence[ImageInput], batch_size: int | None = None) -> FloatMatrix:
        """(len(images), classes): each image's probability of every class (rows sum to 1)."""
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self._run(images, PROBABILITIES, batch_size)

    def features(self, images: Sequence[ImageInput], batch_size: int | None = None) -> FloatMatrix:
        """(len(images), 1280 for lite0): the pooled vector the classifier reads; not normalised."""
        if not images:
            self.load()
            assert self._session is not None
            (width,) = [node.shape[-1] for node in self._session.get_outputs() if node.name == FEATURES]
            return np.zeros((0, int(width)), dtype=np.float32)
        return self._run(images, FEATURES, batch_size)

    def classify(self, images: Sequence[ImageInput], top_k: int = 5) -> list[list[VisualLabel]]:
        if top_k < 1:
            raise ValueError(f"top_k must be positive, got {top_k}")
        if not images:
            return []
        probabilities = self.probabilities(images)
        k = min(top_k, probabilities.shape[1])
        results = []
        for row in probabilities:
            # Most probable first; equal probabilities in class order, so results are deterministic.
            best = np.lexsort((np.arange(row.size), -row))[:k]
            results.append([self._label(int(index), float(row[index])) for index in best])
        return results

    def _label(self, index: int, probability: float) -> VisualLabel:
        named = self._classes[index]
        return VisualLabel(
            class_index=index,
            name=named.name,
            synonyms=list(named.synonyms),
            probability=min(max(probability, 0.0), 1.0),  # float32 softmax can overshoot 1 by an ulp
        )


def get_image_labeler(settings: Settings | None = None) -> ImageLabeler:
    """The process-wide labeler for these settings (one model load per process); a
    ConfigurationError when visual labels are turned off (``visual_label_model`` None)."""
    settings = settings or get_settings()
    name = settings.visual_label_model
    if not name:
        raise ConfigurationError("visual labels are off: set MEDIALENS_VISUAL_LABEL_MODEL (e.g. efficientnet-lite0)")
    quantization = settings.visual_label_quantization
    key = (name, quantization, settings.models_dir.resolve())
    return cached_model(
        "image_labeler",
        key,
        lambda: OnnxImageLabeler(store_for(settings), name, quantization),
    )
