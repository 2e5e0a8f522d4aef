"""Sentence embeddings on onnxruntime, from a model in the model store (no torch).

onnxruntime and the tokenizer are imported when a model loads: a process that builds an embedder
only for its dimensions (a keyword search) never imports them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from medialens.ml.base import FloatMatrix, TextEmbedder, cached_model
from medialens.ml.sentencepiece_tokenizer import MANIFEST_KEY as SENTENCEPIECE_MANIFEST_KEY
from medialens.ml.sentencepiece_tokenizer import SentencePieceSettings
from medialens.ml.store.catalog import PACKAGED_MODELS
from medialens.ml.store.manifest import SENTENCEPIECE_FILE, ModelArtifact, check_quantization
from medialens.ml.store.store import ModelStore, store_for
from medialens.settings import Settings, get_settings

if TYPE_CHECKING:
    import onnxruntime as ort

# Texts in, each text's token ids out (sequence marks included, truncated to the model's window).
TokenIds = Callable[[Sequence[str]], list[list[int]]]


def _token_ids_for(artifact: ModelArtifact) -> tuple[TokenIds, int]:
    """The artifact's tokenizer and its padding id: SentencePiece when the build wrote one for a
    large vocabulary (the same ids in a quarter of the memory: ml.sentencepiece_tokenizer), else
    tokenizer.json."""
    settings = artifact.manifest.extra.get(SENTENCEPIECE_MANIFEST_KEY)
    window = artifact.manifest.max_seq_length
    if settings is not None and (artifact.path / SENTENCEPIECE_FILE).is_file():
        from medialens.ml.sentencepiece_tokenizer import SentencePieceTokenizer

        parsed = SentencePieceSettings.model_validate(settings)
        tokenizer = SentencePieceTokenizer.load(artifact.path / SENTENCEPIECE_FILE, parsed, window)
        return tokenizer.encode_batch, parsed.pad_id
    from tokenizers import Tokenizer

    vocabulary = Tokenizer.from_file(str(artifact.tokenizer_path))
    pad_id = int((vocabulary.padding or {}).get("pad_id", 0))
    # The packaged tokenizer.json carries an export's settings (truncate at 128, pad every
    # sequence to 128): use the model's window instead, and no fixed padding.
    vocabulary.enable_truncation(max_length=window)
    vocabulary.no_padding()  # embed pads each batch itself (with pad_id), to that batch's longest text

    def token_ids(texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in vocabulary.encode_batch(list(texts))]

    return token_ids, pad_id


class OnnxTextEmbedder(TextEmbedder):
    """A BERT-style sentence encoder whose graph ends in pooled, L2-normalised embeddings.

    Loads lazily: the first ``embed`` resolves the model from the store (building or pulling it if
    needed), then creates the tokenizer and the session. ``embed`` is safe to call from several
    threads: onnxruntime sessions are, and the tokenizer is only configured during load.
    """

    def __init__(
        self,
        store: ModelStore,
        name: str,
        quantization: str,
        version: str | None = None,
        *,
        intra_op_threads: int = 0,
        max_batch_tokens: int = 1024,
        providers: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name, check_quantization(quantization), version, store=store, providers=providers)
        self._intra_op_threads = intra_op_threads  # 0: onnxruntime's default, one per physical core
        self._max_batch_tokens = max_batch_tokens
        self._pad_id = 0
        # Models trained with instructions (e5: "query: " / "passage: ") name them in their manifest.
        self._query_prefix = self._passage_prefix = ""
        self._token_ids: TokenIds | None = None
        self._session: ort.InferenceSession | None = None
        self._input_names: set[str] = set()

    @property
    def dimensions(self) -> int:
        if self._artifact is not None:
            return self._artifact.manifest.dimensions
        spec = PACKAGED_MODELS.get(self.name)
        if spec is not None and spec.version == self.requested_version:
            return spec.dimensions
        return self.artifact.manifest.dimensions

    def _load_from(self, artifact: ModelArtifact) -> None:
        from medialens.ml.onnx import create_session

        self._token_ids, self._pad_id = _token_ids_for(artifact)
        session = create_session(
            artifact.model_path,
            providers=self._requested_providers,
            intra_op_threads=self._intra_op_threads,
            inter_op_threads=1,  # the graph is one chain: no parallel branches to run
            # Batches run from one short query to 1,024 tokens of passages: an arena would keep the
            # longest batch's buffers for good. Measured (e5-small int8, 320 passages of 20-380
            # words, 2 cores): +212 MB kept with the arena, +47 MB without, 8 % more time.
            memory_arena=False,
        )
        self._input_names = {node.name for node in session.get_inputs()}
        self._query_prefix = str(artifact.manifest.extra.get("query_prefix", ""))
        self._passage_prefix = str(artifact.manifest.extra.get("passage_prefix", ""))
        self._active_providers = list(session.get_providers())
        self._session = session

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> FloatMatrix:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts; use embed_query for one string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        self.load()
        return self._encode([self._passage_prefix + text for text in texts], batch_size)

    def embed_query(self, text: str) -> FloatMatrix:
        self.load()
        vector: FloatMatrix = self._encode([self._query_prefix + text], 1)[0]
        return vector

    def _encode(self, texts: list[str], batch_size: int) -> FloatMatrix:
        assert self._token_ids is not None and self._session is not None
        sequences = self._token_ids(texts)
        lengths = [len(sequence) for sequence in sequences]
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for indices in self._batches(lengths, batch_size):
            longest = lengths[indices[0]]
            ids = np.full((len(indices), longest), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(indices), longest), dtype=np.int64)
            for row, index in enumerate(indices):
                ids[row, : lengths[index]] = sequences[index]
                mask[row, : lengths[index]] = 1
            types = np.zeros_like(ids)  # one sequence per text: every token is of type 0
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            feed = {name: value for name, value in feed.items() if name in self._input_names}
            (vectors,) = self._session.run(["sentence_embedding"], feed)
            out[indices] = vectors
        return out

    def _batches(self, lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
        """Indices longest first, at most ``batch_size`` texts and ``max_batch_tokens`` padded
        tokens a batch (a longer text goes alone): similar lengths waste little on padding, and
        attention's batch x heads x length^2 scores stay small enough to be fast on CPU."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        batch: list[int] = []
        for index in order:
            if batch and (len(batch) == batch_size or (len(batch) + 1) * lengths[batch[0]] > self._max_batch_tokens):
                yield batch
                batch = []
            batch.append(index)
        if batch:
            yield batch


def get_text_embedder(settings: Settings | None = None, name: str | None = None) -> TextEmbedder:
    """The process-wide embedder for ``name`` (default: the configured text embedding model), one
    per (name, quantization, cache)."""
    settings = settings or get_settings()
    model = name or settings.text_embedding_model
    key = (model, settings.text_embedding_quantization, settings.models_dir.resolve())
    return cached_model(
        "text_embedder",
        key,
        lambda: OnnxTextEmbedder(store_for(settings), model, settings.text_embedding_quantization),
    )


def get_english_embedder(settings: Settings | None = None) -> TextEmbedder | None:
    """The English-trained embedder used beside the multilingual one, or None when none is set."""
    settings = settings or get_settings()
    name = settings.english_embedding_model
    if not name or name == settings.text_embedding_model:
        return None
    return get_text_embedder(settings, name)
