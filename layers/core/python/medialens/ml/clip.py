"""Image embeddings in a shared text-image space (CLIP-style), on onnxruntime, from the model store.

No installable package ships CLIP or SigLIP weights, so this is off by default
(``MEDIALENS_IMAGE_EMBEDDING_MODEL`` unset) and a deployment supplies a model: export one (or take
an existing ONNX export) and register it with
``medialens.ml.store.importing.import_model_folder`` (the ``medialens models import <dir>``
command). Two folder layouts are accepted:

* medialens layout::

      image_encoder.onnx   pixels (N, 3, S, S) float32 -> (N, D) image embeddings
      text_encoder.onnx    token ids (N, L) int32/int64 [+ attention_mask] -> (N, D)
      tokenizer.json       a Hugging Face ``tokenizers`` file (e.g. CLIPTokenizerFast's)
      clip.json            {"image_size": 224, "mean": [...], "std": [...],
                            "interpolation": "bicubic", "resize_mode": "shortest",
                            "context_length": 77, "pad_id": 0, "pad_to_context": true}

* the layout of Immich's CLIP exports (open_clip): ``config.json`` (``text_cfg.context_length``),
  ``visual/model.onnx`` + ``visual/preprocess_cfg.json`` (size, mean, std, interpolation,
  resize_mode), ``textual/model.onnx`` + ``textual/tokenizer.json`` +
  ``textual/tokenizer_config.json`` (``pad_token``).

The store keeps an imported CLIP model as ``model.onnx`` (image encoder), ``text_model.onnx``,
``tokenizer.json`` and a manifest whose ``extra`` holds the preprocessing (``ClipConfig``); the
import runs both encoders once, so a broken export fails there rather than during analysis.

Inputs and outputs are found by type, not name: the image encoder's one float input, the text
encoder's integer input (plus ``attention_mask`` if the graph has one), each graph's first
output. A graph with a fixed batch dimension of 1 is run one item at a time.
"""

from __future__ import annotations

import json
import shutil
import threading
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image
from pydantic import BaseModel, Field, ValidationError
from tokenizers import Tokenizer

from medialens.errors import ConfigurationError
from medialens.media.pixels import ImageInput, as_rgb_array
from medialens.ml.base import FloatMatrix, InferenceModel, cached_model
from medialens.ml.onnx import create_session
from medialens.ml.store.manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelArtifact,
    ModelManifest,
    check_quantization,
)
from medialens.ml.store.store import ModelStore, store_for
from medialens.settings import Settings, get_settings

CLIP_KIND = "clip"
TEXT_MODEL_FILE = "text_model.onnx"
CLIP_FILES = (MODEL_FILE, TEXT_MODEL_FILE, TOKENIZER_FILE)

_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


class ClipConfig(BaseModel):
    """How to feed the encoders; stored as the manifest's ``extra``."""

    kind: Literal["clip"] = "clip"
    image_size: int = Field(ge=1)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    interpolation: Literal["bicubic", "bilinear", "lanczos", "nearest"] = "bicubic"
    resize_mode: Literal["shortest", "squash"] = Field(
        default="shortest", description="shortest: scale the short side, centre-crop; squash: stretch"
    )
    context_length: int = Field(default=77, ge=1)
    pad_id: int = 0
    pad_to_context: bool = Field(default=True, description="pad every text to context_length (static graphs)")
    source_layout: str = "medialens"


class ImageTextEmbedder(InferenceModel):
    """Images and texts in, L2-normalised float32 vectors of one space out (cosine = dot)."""

    @property
    @abstractmethod
    def dimensions(self) -> int: ...

    @abstractmethod
    def embed_images(self, images: Sequence[ImageInput], batch_size: int = 16) -> FloatMatrix:
        """Shape (len(images), dimensions); images are turned upright (EXIF) first."""

    @abstractmethod
    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> FloatMatrix:
        """Shape (len(texts), dimensions)."""

    def embed_query(self, text: str) -> FloatMatrix:
        vector: FloatMatrix = self.embed_texts([text])[0]
        return vector


def _normalised(vectors: npt.NDArray[Any]) -> FloatMatrix:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ConfigurationError(f"an encoder returned shape {vectors.shape}; expected (batch, dimensions)")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: FloatMatrix = vectors / np.maximum(norms, 1e-12)
    return out


def _fixed_batch(session: ort.InferenceSession) -> bool:
    """Whether the graph's batch dimension is a fixed 1 (exports traced with one example)."""
    return any(isinstance(node.shape[0], int) and node.shape[0] == 1 for node in session.get_inputs() if node.shape)


def preprocess_images(images: Sequence[ImageInput], config: ClipConfig) -> npt.NDArray[np.float32]:
    """(N, 3, S, S) float32: upright RGB, resized (short side to S and centre-cropped, or
    squashed), scaled to 0..1 and normalised with the model's mean and std."""
    size = config.image_size
    resample = _RESAMPLING[config.interpolation]
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for row, image in enumerate(images):
        picture = Image.fromarray(as_rgb_array(image))
        if config.resize_mode == "squash":
            picture = picture.resize((size, size), resample=resample)
        else:
            scale = size / min(picture.size)
            width, height = max(size, round(picture.width * scale)), max(size, round(picture.height * scale))
            picture = picture.resize((width, height), resample=resample)
            left, top = (width - size) // 2, (height - size) // 2
            picture = picture.crop((left, top, left + size, top + size))
        pixels = np.asarray(picture, dtype=np.float32) / 255.0
        batch[row] = ((pixels - mean) / std).transpose(2, 0, 1)
    return batch


class OnnxClipEmbedder(ImageTextEmbedder):
    """A CLIP-style pair of ONNX encoders from the model store (see the module docstring).

    Loads lazily on first use; safe to call from several threads (onnxruntime sessions are, and
    the tokenizer is only configured during load). ``load`` verifies the files and builds the text
    encoder; the image encoder (the larger graph) is built on the first ``embed_images``, so a
    process that only asks questions (a search) never builds it.
    """

    def __init__(
        self,
        store: ModelStore,
        name: str,
        quantization: str = "fp32",
        version: str | None = None,
        *,
        intra_op_threads: int = 0,
        providers: Sequence[str] | None = None,
    ) -> None:
        quantization = check_quantization(quantization)
        version = version or newest_cached_version(store, name, quantization)
        super().__init__(name, quantization, version, store=store, providers=providers)
        self._intra_op_threads = intra_op_threads
        self._config: ClipConfig | None = None
        self._tokenizer: Tokenizer | None = None
        self._image_session: ort.InferenceSession | None = None
        self._text_session: ort.InferenceSession | None = None
        self._image_input = ""
        self._ids_input = ""
        self._ids_dtype: type[np.integer[Any]] = np.int64
        self._mask_input: str | None = None
        self._image_one_at_a_time = False
        self._text_one_at_a_time = False
        self._image_lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        """From the manifest, without loading: a process that needs only the width (opening the
        index for a keyword search) neither hashes nor loads the encoders; ``load`` verifies them."""
        if self._artifact is not None:
            return self._artifact.manifest.dimensions
        assert self.store is not None  # the constructor takes one
        folder = self.store.folder(self.name, self.requested_version, self.quantization)
        try:
            manifest = ModelManifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
        except (OSError, ValueError):  # not cached (or unreadable): resolving says why, or pulls it
            return self.artifact.manifest.dimensions
        if (manifest.name, manifest.version, manifest.quantization) != (
            folder.parent.parent.name,
            folder.parent.name,
            folder.name,
        ):
            return self.artifact.manifest.dimensions
        return manifest.dimensions

    @property
    def config(self) -> ClipConfig:
        self.load()
        assert self._config is not None
        return self._config

    def _session(self, path: Path) -> ort.InferenceSession:
        return create_session(path, providers=self._requested_providers, intra_op_threads=self._intra_op_threads)

    def _resolve(self) -> ModelArtifact:
        store = self.store
        assert store is not None  # the constructor takes one
        folder = store.folder(self.name, self.requested_version, self.quantization)
        if store.remote_root is None and not (folder / MANIFEST_FILE).is_file():
            # Nothing can build a user-supplied model: say how to supply it.
            raise ConfigurationError(
                f"image embedding model {self.version} is not in the model store at {store.cache_dir} and "
                "no remote store is configured: import it with `medialens models import <folder>`"
            )
        return super()._resolve()

    def _load_from(self, artifact: ModelArtifact) -> None:
        """The text side: the tokenizer and the text encoder (``_image_encoder`` builds the other)."""
        config = clip_config(artifact)
        if TEXT_MODEL_FILE not in artifact.manifest.files:
            raise ConfigurationError(f"model {artifact.manifest.model_id} has no {TEXT_MODEL_FILE}: not a CLIP model")
        text_session = self._session(artifact.path / TEXT_MODEL_FILE)
        integers = [node for node in text_session.get_inputs() if node.type in ("tensor(int64)", "tensor(int32)")]
        ids = [node for node in integers if node.name != "attention_mask"]
        if len(ids) != 1:
            raise ConfigurationError(f"{TEXT_MODEL_FILE} of {artifact.manifest.model_id} must take one token-id tensor")
        tokenizer = Tokenizer.from_file(str(artifact.tokenizer_path))
        tokenizer.enable_truncation(max_length=config.context_length)
        if config.pad_to_context:
            tokenizer.enable_padding(length=config.context_length, pad_id=config.pad_id)
        else:
            tokenizer.enable_padding(pad_id=config.pad_id)  # to each batch's longest text
        self._ids_input = ids[0].name
        self._ids_dtype = np.int32 if ids[0].type == "tensor(int32)" else np.int64
        self._mask_input = "attention_mask" if any(node.name == "attention_mask" for node in integers) else None
        self._text_one_at_a_time = _fixed_batch(text_session)
        self._tokenizer, self._config = tokenizer, config
        self._text_session = text_session
        self._active_providers = list(text_session.get_providers())

    def _image_encoder(self) -> ort.InferenceSession:
        """The image encoder's session, built on first use (after ``load``)."""
        self.load()
        if self._image_session is None:
            with self._image_lock:
                if self._image_session is None:
                    assert self._artifact is not None
                    session = self._session(self._artifact.model_path)
                    floats = [node for node in session.get_inputs() if node.type == "tensor(float)"]
                    if len(floats) != 1:
                        raise ConfigurationError(f"{self._artifact.model_path} must take one float32 image tensor")
                    self._image_input = floats[0].name
                    self._image_one_at_a_time = _fixed_batch(session)
                    self._image_session = session
        return self._image_session

    def embed_images(self, images: Sequence[ImageInput], batch_size: int = 16) -> FloatMatrix:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        session = self._image_encoder()
        assert self._config is not None
        if not images:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        step = 1 if self._image_one_at_a_time else batch_size
        out = []
        for begin in range(0, len(images), step):
            pixels = preprocess_images(images[begin : begin + step], self._config)
            (vectors,) = session.run(None, {self._image_input: pixels})[:1]
            out.append(_normalised(vectors))
        return np.concatenate(out)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> FloatMatrix:
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a sequence of texts; use embed_query for one string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.load()
        assert self._text_session is not None and self._tokenizer is not None
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        step = 1 if self._text_one_at_a_time else batch_size
        out = []
        for begin in range(0, len(texts), step):
            encodings = self._tokenizer.encode_batch(list(texts[begin : begin + step]))
            feed = {self._ids_input: np.asarray([e.ids for e in encodings], dtype=self._ids_dtype)}
            if self._mask_input is not None:
                feed[self._mask_input] = np.asarray([e.attention_mask for e in encodings], dtype=self._ids_dtype)
            (vectors,) = self._text_session.run(None, feed)[:1]
            out.append(_normalised(vectors))
        return np.concatenate(out)


def clip_config(artifact: ModelArtifact) -> ClipConfig:
    extra = artifact.manifest.extra
    if extra.get("kind") != CLIP_KIND:
        raise ConfigurationError(
            f"model {artifact.manifest.model_id} is not a CLIP-style model (kind {extra.get('kind')!r})"
        )
    try:
        return ClipConfig.model_validate(extra)
    except ValidationError as error:
        raise ConfigurationError(f"model {artifact.manifest.model_id} has invalid CLIP settings: {error}") from error


def newest_cached_version(store: ModelStore, name: str, quantization: str) -> str:
    """The most recently created version of ``name`` in the local cache."""
    manifests = [m for m in store.list() if m.name == name and m.quantization == quantization]
    if not manifests:
        raise ConfigurationError(
            f"image embedding model {name!r} ({quantization}) is not in the model store at {store.cache_dir}: "
            "import it with `medialens models import <folder>` (see medialens.ml.clip for the layout), or set "
            "MEDIALENS_IMAGE_EMBEDDING_MODEL to name@version to pull it from MEDIALENS_MODEL_STORE_URI"
        )
    return max(manifests, key=lambda m: m.created_at).version


# --- importing a user-supplied folder -------------------------------------------------------


def is_clip_folder(source: Path) -> bool:
    medialens = all((source / f).is_file() for f in ("image_encoder.onnx", "text_encoder.onnx", TOKENIZER_FILE))
    immich = (source / "visual" / MODEL_FILE).is_file() and (source / "textual" / MODEL_FILE).is_file()
    return medialens or immich


def stage_clip_folder(source: Path, staged: Path) -> ClipConfig:
    """Copies a CLIP folder (either layout) into ``staged`` in the store's layout and returns its
    settings; ``ConfigurationError`` says what is missing or malformed."""
    try:
        if (source / "visual" / MODEL_FILE).is_file():
            config = _immich_config(source)
            copies = {
                MODEL_FILE: source / "visual" / MODEL_FILE,
                TEXT_MODEL_FILE: source / "textual" / MODEL_FILE,
                TOKENIZER_FILE: source / "textual" / TOKENIZER_FILE,
            }
        else:
            settings_file = source / "clip.json"
            if not settings_file.is_file():
                raise ConfigurationError(f"{source} has no clip.json (image_size, mean, std, context_length, ...)")
            config = ClipConfig.model_validate_json(settings_file.read_bytes())
            copies = {
                MODEL_FILE: source / "image_encoder.onnx",
                TEXT_MODEL_FILE: source / "text_encoder.onnx",
                TOKENIZER_FILE: source / TOKENIZER_FILE,
            }
    except (ValidationError, KeyError, ValueError) as error:
        raise ConfigurationError(f"cannot read the CLIP settings in {source}: {error}") from error
    for target, origin in copies.items():
        if not origin.is_file():
            raise ConfigurationError(f"{source} is missing {origin.relative_to(source)}")
        shutil.copyfile(origin, staged / target)
    return config


def _immich_config(source: Path) -> ClipConfig:
    model_config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    preprocess = json.loads((source / "visual" / "preprocess_cfg.json").read_text(encoding="utf-8"))
    tokenizer_config_file = source / "textual" / "tokenizer_config.json"
    tokenizer_config = (
        json.loads(tokenizer_config_file.read_text(encoding="utf-8")) if tokenizer_config_file.is_file() else {}
    )
    tokenizer = Tokenizer.from_file(str(source / "textual" / TOKENIZER_FILE))
    pad_token = tokenizer_config.get("pad_token")
    if isinstance(pad_token, dict):
        pad_token = pad_token.get("content")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    size = preprocess["size"]
    return ClipConfig(
        image_size=int(size[0] if isinstance(size, list) else size),
        mean=tuple(preprocess["mean"]),
        std=tuple(preprocess["std"]),
        interpolation=preprocess.get("interpolation", "bicubic"),
        resize_mode=preprocess.get("resize_mode", "shortest"),
        context_length=int(model_config.get("text_cfg", {}).get("context_length", 77)),
        pad_id=pad_id if pad_id is not None else 0,
        pad_to_context=True,
        source_layout="immich",
    )


def probe_clip_dimensions(staged: Path, config: ClipConfig) -> int:
    """Runs both encoders once on a blank image and a short text; their widths must agree."""
    providers = ["CPUExecutionProvider"]  # a check, not a workload: never wait for a GPU here
    try:
        image_session = create_session(staged / MODEL_FILE, providers=providers)
        text_session = create_session(staged / TEXT_MODEL_FILE, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types for unloadable graphs
        raise ConfigurationError(f"onnxruntime cannot load the encoders: {error}") from error
    floats = [node.name for node in image_session.get_inputs() if node.type == "tensor(float)"]
    if len(floats) != 1:
        raise ConfigurationError("the image encoder must take exactly one float32 input (N, 3, S, S)")
    blank = np.zeros((config.image_size, config.image_size, 3), dtype=np.uint8)
    image_vectors = image_session.run(None, {floats[0]: preprocess_images([blank], config)})[0]
    tokenizer = Tokenizer.from_file(str(staged / TOKENIZER_FILE))
    tokenizer.enable_truncation(max_length=config.context_length)
    tokenizer.enable_padding(length=config.context_length if config.pad_to_context else None, pad_id=config.pad_id)
    encoding = tokenizer.encode("a photo")
    feed: dict[str, Any] = {}
    for node in text_session.get_inputs():
        dtype = np.int32 if node.type == "tensor(int32)" else np.int64
        values = encoding.attention_mask if node.name == "attention_mask" else encoding.ids
        feed[node.name] = np.asarray([values], dtype=dtype)
    text_vectors = text_session.run(None, feed)[0]
    if image_vectors.ndim != 2 or text_vectors.ndim != 2 or image_vectors.shape[1] != text_vectors.shape[1]:
        raise ConfigurationError(
            f"the encoders disagree: image output {image_vectors.shape}, text output {text_vectors.shape}; "
            "both must be (batch, D) with the same D"
        )
    return int(image_vectors.shape[1])


# --- the configured embedder ----------------------------------------------------------------


def parse_model_reference(reference: str) -> tuple[str, str | None]:
    """``name`` or ``name@version``."""
    name, _, version = reference.partition("@")
    if not name:
        raise ConfigurationError(f"invalid model reference {reference!r}; expected name or name@version")
    return name, version or None


def get_image_embedder(settings: Settings | None = None) -> ImageTextEmbedder | None:
    """The process-wide image embedder, or None when ``image_embedding_model`` is not set."""
    settings = settings or get_settings()
    if not settings.image_embedding_model:
        return None
    name, version = parse_model_reference(settings.image_embedding_model)
    key = (name, version, settings.image_embedding_quantization, settings.models_dir.resolve())
    return cached_model(
        "image_embedder",
        key,
        lambda: OnnxClipEmbedder(store_for(settings), name, settings.image_embedding_quantization, version),
    )
