"""OnnxTextEmbedder against the real sentence-transformers output, on onnxruntime (CPU)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medialens.errors import ConfigurationError
from medialens.ml.base import FloatMatrix, reset_models
from medialens.ml.store.manifest import ModelArtifact
from medialens.ml.store.store import ModelStore
from medialens.ml.text_embedding import OnnxTextEmbedder, get_text_embedder
from medialens.settings import Settings

pytestmark = pytest.mark.integration

MINILM = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def fp32(model_store: ModelStore, minilm_fp32: ModelArtifact) -> OnnxTextEmbedder:
    return OnnxTextEmbedder(model_store, MINILM, "fp32", intra_op_threads=2)


@pytest.fixture(scope="module")
def int8(model_store: ModelStore, minilm_int8: ModelArtifact) -> OnnxTextEmbedder:
    return OnnxTextEmbedder(model_store, MINILM, "int8", intra_op_threads=2)


def _reference(reference: dict[str, Any]) -> tuple[list[str], FloatMatrix]:
    return reference["sentences"], np.asarray(reference["embeddings"], dtype=np.float32)


def _cosines(a: FloatMatrix, b: FloatMatrix) -> FloatMatrix:
    return np.asarray((a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)), dtype=np.float32)


def test_reference_covers_truncation_and_short_texts(minilm_reference: dict[str, Any]) -> None:
    counts = minilm_reference["token_counts_untruncated"]
    assert max(counts) > 256 and min(counts) <= 4
    assert minilm_reference["max_seq_length"] == 256


def test_fp32_matches_sentence_transformers(fp32: OnnxTextEmbedder, minilm_reference: dict[str, Any]) -> None:
    sentences, expected = _reference(minilm_reference)
    got = fp32.embed(sentences)  # one mixed-length batch: exercises sorting and order restoration
    assert got.dtype == np.float32 and got.shape == (len(sentences), 384)
    cosines = _cosines(got, expected)
    for sentence, cosine in zip(sentences, cosines, strict=True):
        assert cosine >= 0.9999, f"cos {cosine:.6f} for {sentence[:60]!r}"
    assert np.abs(got - expected).max() < 1e-4


def test_int8_stays_close_to_sentence_transformers(int8: OnnxTextEmbedder, minilm_reference: dict[str, Any]) -> None:
    sentences, expected = _reference(minilm_reference)
    for batch_size in (1, 32):  # int8 activations are quantised per batch, so check both ways
        cosines = _cosines(int8.embed(sentences, batch_size=batch_size), expected)
        for sentence, cosine in zip(sentences, cosines, strict=True):
            assert cosine >= 0.98, f"batch {batch_size}: cos {cosine:.4f} for {sentence[:60]!r}"
        assert cosines.mean() >= 0.99


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_outputs_are_unit_vectors(
    quantization: str, fp32: OnnxTextEmbedder, int8: OnnxTextEmbedder, minilm_reference: dict[str, Any]
) -> None:
    embedder = fp32 if quantization == "fp32" else int8
    vectors = embedder.embed(minilm_reference["sentences"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.version == f"{MINILM}@1+{quantization}"
    assert embedder.dimensions == 384


def test_padding_and_batching_do_not_change_embeddings(
    fp32: OnnxTextEmbedder, model_store: ModelStore, minilm_reference: dict[str, Any]
) -> None:
    sentences: list[str] = minilm_reference["sentences"]
    alone = np.stack([fp32.embed([s])[0] for s in sentences])
    # No token budget: one batch, every text padded to the truncated long one's 256 tokens.
    unbounded = OnnxTextEmbedder(model_store, MINILM, "fp32", max_batch_tokens=10**9)
    one_batch = unbounded.embed(sentences, batch_size=len(sentences))
    small_batches = fp32.embed(sentences, batch_size=3)
    np.testing.assert_allclose(one_batch, alone, atol=1e-5)
    np.testing.assert_allclose(small_batches, alone, atol=1e-5)
    np.testing.assert_allclose(fp32.embed_query(sentences[3]), alone[3], atol=1e-5)


def test_batches_respect_size_and_token_budget(model_store: ModelStore) -> None:
    embedder = OnnxTextEmbedder(model_store, MINILM, "fp32", max_batch_tokens=100)
    lengths = [10, 256, 30, 12, 30, 11, 5]
    batches = list(embedder._batches(lengths, batch_size=2))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [1]  # longer than the budget: alone
    for batch in batches:
        assert len(batch) <= 2
        assert lengths[batch[0]] == max(lengths[i] for i in batch)  # padded to the first
        assert len(batch) == 1 or len(batch) * lengths[batch[0]] <= 100


def test_duplicates_and_empty_strings(fp32: OnnxTextEmbedder) -> None:
    vectors = fp32.embed(["", "same text", "", "same text"])
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    np.testing.assert_allclose(vectors[1], vectors[3], atol=1e-6)
    assert np.isfinite(vectors).all()


def test_empty_input_needs_no_model(model_store: ModelStore) -> None:
    embedder = OnnxTextEmbedder(model_store, MINILM, "fp32")
    empty = embedder.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    assert not embedder.loaded


def test_rejects_a_bare_string_and_bad_batch_size(fp32: OnnxTextEmbedder) -> None:
    with pytest.raises(TypeError):
        fp32.embed("not a list")
    with pytest.raises(ValueError, match="batch_size"):
        fp32.embed(["text"], batch_size=0)


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
def test_a_vacation_question_finds_the_paid_leave_passage(
    quantization: str, fp32: OnnxTextEmbedder, int8: OnnxTextEmbedder
) -> None:
    embedder = fp32 if quantization == "fp32" else int8
    passages = [
        "The data centre keeps its server rooms at eighteen degrees with redundant cooling.",
        "Full-time staff receive twenty-five days of paid leave each calendar year, plus public holidays.",
        "Quarterly revenue rose eleven percent, led by subscription renewals in Europe.",
        "Our cafeteria serves a vegetarian lunch menu every Wednesday.",
        "Submit expense reports within thirty days of travel using the finance portal.",
    ]
    query = embedder.embed_query("How many vacation days do I get per year?")
    scores = embedder.embed(passages) @ query
    assert int(np.argmax(scores)) == 1, scores
    assert scores[1] - np.sort(scores)[-2] > 0.1, scores


def test_concurrent_calls_agree(fp32: OnnxTextEmbedder, minilm_reference: dict[str, Any]) -> None:
    sentences: list[str] = minilm_reference["sentences"][:6]
    expected = fp32.embed(sentences)
    results: list[FloatMatrix] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(fp32.embed(sentences, batch_size=4))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 4
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_lazy_load_resolves_from_the_store(model_store: ModelStore, minilm_fp32: ModelArtifact) -> None:
    embedder = OnnxTextEmbedder(model_store, MINILM, "fp32", intra_op_threads=1)
    assert not embedder.loaded
    embedder.embed(["load me"])
    assert embedder.loaded
    assert embedder.artifact.path == minilm_fp32.path
    assert embedder.providers[-1] == "CPUExecutionProvider"


def test_unknown_quantization_is_a_configuration_error(model_store: ModelStore) -> None:
    with pytest.raises(ConfigurationError, match="fp16"):
        OnnxTextEmbedder(model_store, MINILM, "fp16")


@pytest.fixture
def fresh_embedders() -> Iterator[None]:
    reset_models()
    yield
    reset_models()


@pytest.mark.usefixtures("fresh_embedders")
def test_get_text_embedder_is_cached_per_model_and_cache(
    model_store: ModelStore, minilm_int8: ModelArtifact, tmp_path: Path
) -> None:
    settings = Settings(
        home=tmp_path,
        model_cache=model_store.cache_dir,
        text_embedding_model=MINILM,
        text_embedding_quantization="int8",
    )
    embedder = get_text_embedder(settings)
    assert isinstance(embedder, OnnxTextEmbedder)
    assert embedder is get_text_embedder(settings.model_copy())
    assert embedder.version == f"{MINILM}@1+int8"
    other = get_text_embedder(settings.model_copy(update={"text_embedding_quantization": "fp32"}))
    assert other is not embedder and other.version == f"{MINILM}@1+fp32"
    assert embedder.embed(["paid leave"]).shape == (1, 384)
    assert embedder.artifact.path == minilm_int8.path  # served from the cache, not rebuilt elsewhere
