"""What a model folder in the store holds: its manifest, file names and quantizations."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from medialens.errors import ConfigurationError

Quantization = Literal["fp32", "int8", "fp16"]
QUANTIZATIONS: tuple[Quantization, ...] = get_args(Quantization)
ONNX_QUANTIZATIONS: tuple[Quantization, ...] = ("fp32", "int8")
# "onnx": a text encoder (graph + tokenizer); "onnx_image": an image classifier (graph + class names).
ModelFormat = Literal["onnx", "onnx_image", "ctranslate2", "piper"]
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
# A large Unigram vocabulary as SentencePiece loads it (ml.sentencepiece_tokenizer); optional.
SENTENCEPIECE_FILE = "sentencepiece.model"
LABELS_FILE = "labels.json"  # an image classifier's class names, in output order
MANIFEST_FILE = "manifest.json"
CT2_MODEL_FILE = "model.bin"
VOICE_CONFIG_FILE = "voice.json"  # a Piper voice's phoneme map, sample rate and inference scales
# The files a folder of each format must hold; a manifest naming fewer describes a broken build.
REQUIRED_FILES: dict[str, frozenset[str]] = {
    "onnx": frozenset({MODEL_FILE, TOKENIZER_FILE}),
    "onnx_image": frozenset({MODEL_FILE, LABELS_FILE}),
    "ctranslate2": frozenset({CT2_MODEL_FILE, "config.json", TOKENIZER_FILE}),
    "piper": frozenset({MODEL_FILE, VOICE_CONFIG_FILE}),
}


class ModelManifest(BaseModel):
    """What a model folder holds and where it came from; written last, so its presence means done."""

    name: str
    version: str
    quantization: Quantization
    format: ModelFormat = "onnx"
    dimensions: int = Field(
        description="Embedding size; for Whisper, the model width (d_model); for a voice, its sample rate; "
        "for an image classifier, its number of classes."
    )
    max_seq_length: int = Field(
        description="Input tokens per sequence; for Whisper, decoder tokens; for a voice, phoneme ids; "
        "for an image classifier, the side of its square input in pixels."
    )
    files: dict[str, str] = Field(description="file name -> sha256 hex digest")
    source: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}+{self.quantization}"


@dataclass(frozen=True)
class ModelArtifact:
    """A verified model folder in the local cache."""

    path: Path
    manifest: ModelManifest

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE


@dataclass(frozen=True)
class BuildInfo:
    """What a packaged builder reports about the fp32 files it wrote."""

    source: str
    extra: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_quantization(quantization: str, allowed: Sequence[str] = ONNX_QUANTIZATIONS) -> Quantization:
    """``quantization`` if it is one of ``allowed`` (by default the ONNX runtimes' fp32 and int8;
    fp16 is only what CTranslate2 models ship in), else a ConfigurationError."""
    if quantization not in allowed or quantization not in QUANTIZATIONS:
        raise ConfigurationError(f"unknown quantization {quantization!r}; expected one of {tuple(allowed)}")
    return quantization


def is_plain_file_name(name: str) -> bool:
    # Manifests may come from a remote store: never let one reach outside the model folder.
    return bool(name) and "/" not in name and "\\" not in name and name not in {".", ".."}
