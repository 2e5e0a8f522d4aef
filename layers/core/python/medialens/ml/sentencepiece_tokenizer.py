"""A Unigram vocabulary run by SentencePiece, for the text encoders whose vocabulary is large.

multilingual-e5-small's vocabulary holds 250,002 pieces. ``tokenizers`` keeps a Unigram
vocabulary in a trie of per-character maps: 254 MB of resident memory and about a second to
load from its 17 MB ``tokenizer.json``. SentencePiece (the library that vocabulary was made
with) keeps it in a double-array trie: ~60 MB, loaded from a 5 MB model file in a fraction of
that. The token ids are the same: the normalisation stays ``tokenizers``' (a Sequence without a
vocabulary, rebuilt from the two character classes the model's manifest records), SentencePiece
gets the normalised text with its own normalisation off, and the word-boundary mark is placed as
``tokenizers``' Metaspace places it (tests compare both on multilingual and random text).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medialens.errors import ConfigurationError

# What the builder records in the manifest's ``extra`` under this key: SentencePieceSettings.
MANIFEST_KEY = "sentencepiece"


class SentencePieceSettings(BaseModel):
    """How token ids are made around SentencePiece's: the normalisation before it, the
    sequence marks after it (``<s> ... </s>`` for e5)."""

    bos_id: int
    eos_id: int
    pad_id: int = Field(description="What a batch is padded with (masked out).")
    # Characters removed, and characters read as a space, before NFKC (see text_normalizer).
    drop: str = ""
    space: str = ""


def _char_class(chars: str) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def text_normalizer(drop: str, space: str) -> Any:
    """Removes ``drop``'s characters, turns ``space``'s into a space, applies NFKC and collapses
    runs of spaces: the normalisation the packed e5 tokenizer performs (``tokenizers``' object)."""
    from tokenizers import Regex, normalizers

    steps: list[Any] = []
    if drop:
        steps.append(normalizers.Replace(Regex(_char_class(drop)), ""))
    if space:
        steps.append(normalizers.Replace(Regex(_char_class(space)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    return normalizers.Sequence(steps)


def unigram_model_proto(pieces: Sequence[tuple[str, float]], unk_id: int) -> bytes:
    """A SentencePiece Unigram model of ``pieces`` (text, score) in id order, normalising nothing
    and adding no boundary mark of its own (both happen before it). Every piece but the unknown
    one is NORMAL, as in the ``tokenizers`` model, where ``<s>`` in a text is a piece too."""
    from sentencepiece import sentencepiece_model_pb2 as model_pb2  # generated protobuf code: untyped

    proto: Any = model_pb2

    model = proto.ModelProto()
    model.trainer_spec.model_type = proto.TrainerSpec.UNIGRAM
    model.trainer_spec.unk_id = unk_id
    model.trainer_spec.bos_id = model.trainer_spec.eos_id = model.trainer_spec.pad_id = -1
    model.trainer_spec.byte_fallback = False
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = False
    model.normalizer_spec.remove_extra_whitespaces = False
    model.normalizer_spec.escape_whitespaces = True  # a space becomes the boundary mark "▁"
    kinds = proto.ModelProto.SentencePiece
    for number, (text, score) in enumerate(pieces):
        piece = model.pieces.add()
        piece.piece, piece.score = text, score
        piece.type = kinds.UNKNOWN if number == unk_id else kinds.NORMAL
    return bytes(model.SerializeToString())


class SentencePieceTokenizer:
    """Texts in, token ids out: ``<s>`` + the pieces of the normalised text + ``</s>``, cut to
    ``max_length`` ids as ``tokenizers``' truncation cuts them. Thread-safe (SentencePiece's
    encode is const; the normaliser keeps no state)."""

    def __init__(self, model_proto: bytes, settings: SentencePieceSettings, max_length: int) -> None:
        import sentencepiece

        if max_length < 3:
            raise ValueError("max_length must leave room for a piece between the sequence marks")
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as error:
            raise ConfigurationError(f"not a SentencePiece model: {error}") from error
        self._processor = processor
        self._normalizer = text_normalizer(settings.drop, settings.space)
        self._bos, self._eos = settings.bos_id, settings.eos_id
        self._max_pieces = max_length - 2

    @classmethod
    def load(cls, path: Path, settings: SentencePieceSettings, max_length: int) -> SentencePieceTokenizer:
        return cls(path.read_bytes(), settings, max_length)

    def _prepared(self, text: str) -> str:
        normalized: str = self._normalizer.normalize_str(text)
        # Metaspace's "always": a boundary mark in front unless the text starts with one (or is empty).
        return normalized if not normalized or normalized.startswith(" ") else " " + normalized

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        pieces = self._processor.encode([self._prepared(text) for text in texts])
        return [[self._bos, *ids[: self._max_pieces], self._eos] for ids in pieces]
