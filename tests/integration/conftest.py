"""Integration fixtures: one model store per test session, built once from packaged weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from medialens.ml.ocr import RapidOcrRecognizer
from medialens.ml.store.manifest import ModelArtifact
from medialens.ml.store.store import ModelStore

FIXTURES = Path(__file__).parents[1] / "fixtures"
MINILM = "all-minilm-l6-v2"


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """One model cache per test session: building fp32 + int8 takes a few seconds, so tests that
    change or corrupt models copy folders out of it instead of rebuilding here."""
    return ModelStore(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def minilm_fp32(model_store: ModelStore) -> ModelArtifact:
    return model_store.resolve(MINILM, "fp32")


@pytest.fixture(scope="session")
def minilm_int8(model_store: ModelStore, minilm_fp32: ModelArtifact) -> ModelArtifact:
    return model_store.resolve(MINILM, "int8")


@pytest.fixture(scope="session")
def minilm_reference() -> dict[str, Any]:
    """Embeddings from sentence-transformers + torch (scripts/make_embedding_reference.py)."""
    data: dict[str, Any] = json.loads((FIXTURES / "minilm_reference.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def recognizer() -> RapidOcrRecognizer:
    """One OCR model per session, on one thread (results are the same on more)."""
    return RapidOcrRecognizer(intra_op_threads=1)
