"""Base classes for model runtimes, after Immich's ML service: lazy load on first use, one
instance per (name, version, quantization) kept in one process-wide cache."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt

from medialens.errors import ConfigurationError
from medialens.ml.store.manifest import ModelArtifact
from medialens.ml.store.store import ModelStore

FloatMatrix = npt.NDArray[np.float32]


class InferenceModel(ABC):
    """A model that is loaded once, lazily, and is safe to call from several threads.

    It owns its whole lifecycle: the name, the version asked for, the quantization (or the label
    the runtime computes in), the model store it resolves from (none for a runtime that ships its
    own weights), the resolved ``artifact``, the execution ``providers`` and the ``version``
    recorded on every artifact it produces. A subclass implements what differs: ``_load_from``
    (the runtime, from a resolved artifact) or, for a model without a store, ``_load``; and its
    inference methods.
    """

    name: str

    def __init__(
        self,
        name: str | None = None,
        quantization: str = "fp32",
        version: str | None = None,
        *,
        store: ModelStore | None = None,
        stored_quantization: str | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        """``name`` None keeps the class's ``name``. ``quantization`` goes into ``version``;
        ``stored_quantization`` (default: the same) is the one resolved from ``store``. ``version``
        None: the store's default for ``name``. ``providers`` None or empty:
        :func:`medialens.ml.onnx.select_providers` when the session is built."""
        if name is not None:
            self.name = name
        self.quantization = quantization
        self.store = store
        self._stored_quantization = stored_quantization or quantization
        self._requested_version = version or (store.default_version(self.name) if store is not None else None)
        self._requested_providers = list(providers) if providers is not None else None
        self._artifact: ModelArtifact | None = None
        self._active_providers: list[str] = []  # set by _load: what the runtime actually uses
        self._load_lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def requested_version(self) -> str:
        """The version this model resolves and records."""
        if self._requested_version is None:
            raise NotImplementedError(f"{type(self).__name__} has no version: pass one or a model store")
        return self._requested_version

    @property
    def version(self) -> str:
        """``name@version+quantization``: recorded on every artifact and moment it produced."""
        return f"{self.name}@{self.requested_version}+{self.quantization}"

    @property
    def artifact(self) -> ModelArtifact:
        """The verified model folder the runtime loaded (resolving and loading it first)."""
        if self.store is None:
            raise AttributeError(f"{type(self).__name__} ships its own weights: it has no model-store artifact")
        self.load()
        assert self._artifact is not None
        return self._artifact

    @property
    def providers(self) -> list[str]:
        """The execution providers the loaded runtime uses, CUDA first when it is used (empty for a
        runtime that is not onnxruntime)."""
        self.load()
        return list(self._active_providers)

    def load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def _load(self) -> None:
        """Read weights and build the session: by default, resolve the artifact from the store and
        hand it to ``_load_from``. A model without a store overrides this instead."""
        artifact = self._resolve()
        self._load_from(artifact)
        self._artifact = artifact

    def _resolve(self) -> ModelArtifact:
        """A verified local copy of the model (cached, pulled or built by the store)."""
        if self.store is None:
            raise ConfigurationError(f"{self.version} has no model store to resolve from")
        return self.store.resolve(self.name, self._stored_quantization, self.requested_version)

    def _load_from(self, artifact: ModelArtifact) -> None:
        """Builds the runtime from a resolved artifact (models with a store)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither _load nor _load_from")


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


# --- the process-wide cache ---------------------------------------------------------------------

Model = TypeVar("Model", bound=InferenceModel)

# One instance per (kind, configuration key), per process: a model is loaded once and shared by
# every thread that asks for the same settings.
_models: dict[tuple[str, Hashable], InferenceModel] = {}
_models_lock = threading.Lock()


def cached_model(kind: str, key: Hashable, create: Callable[[], Model]) -> Model:
    """The process-wide ``kind`` of model for ``key`` (its settings), created on first request."""
    with _models_lock:
        if (kind, key) not in _models:
            _models[kind, key] = create()
        return cast(Model, _models[kind, key])


def reset_models() -> None:
    """Forget every instance of every kind (tests, and processes whose settings changed)."""
    with _models_lock:
        _models.clear()
