"""Base classes for model runtimes, after Immich's ML service: lazy load on first use, one
instance per (name, version, quantization) kept in a process-wide cache."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]
Model = TypeVar("Model")


class InferenceModel(ABC):
    """A model that is loaded once, lazily, and is safe to call from several threads."""

    name: str

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @abstractmethod
    def _load(self) -> None:
        """Read weights and build the session."""

    @property
    @abstractmethod
    def version(self) -> str:
        """``name@version+quantization``: recorded on every artifact and moment it produced."""


class TextEmbedder(InferenceModel):
    """Sentences in, L2-normalised float32 vectors out."""

    @property
    @abstractmethod
    def dimensions(self) -> int: ...

    @abstractmethod
    def embed(self, texts: Sequence[str], batch_size: int = 32) -> FloatMatrix:
        """Embeds ``texts`` in batches; returns shape (len(texts), dimensions)."""

    def embed_query(self, text: str) -> FloatMatrix:
        vector: FloatMatrix = self.embed([text])[0]
        return vector


class ModelCache(Generic[Model]):
    """One instance per configuration key, per process: a model is loaded once and shared by
    every thread that asks for the same settings."""

    def __init__(self) -> None:
        self._models: dict[Hashable, Model] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, create: Callable[[], Model]) -> Model:
        with self._lock:
            if key not in self._models:
                self._models[key] = create()
            return self._models[key]

    def clear(self) -> None:
        """Forget every instance (tests, and processes whose settings changed)."""
        with self._lock:
            self._models.clear()


def describe(model: InferenceModel) -> dict[str, Any]:
    return {"name": model.name, "version": model.version, "loaded": model.loaded}
