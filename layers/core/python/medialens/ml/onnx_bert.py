"""Writes a BERT sentence encoder (mean pooling + L2 normalisation) as an ONNX graph, straight
from a Hugging Face safetensors checkpoint: no torch at build time or at run time.

The graph follows ``transformers.BertModel`` (post-LayerNorm, exact erf GELU) and the
sentence-transformers ``Pooling(mean)`` + ``Normalize`` modules, so its output matches
``SentenceTransformer.encode(..., normalize_embeddings=True)``. Needs the ``models`` extra.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17  # the first opset with LayerNormalization
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"

# Added to attention scores of padded keys: exp() of it underflows to exactly 0 in float32, so
# padding cannot change the other tokens, while staying finite (no inf - inf = NaN).
_MASK_NEGATIVE = -1.0e9


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float
    hidden_act: str

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            hidden_size=raw["hidden_size"],
            num_layers=raw["num_hidden_layers"],
            num_heads=raw["num_attention_heads"],
            intermediate_size=raw["intermediate_size"],
            layer_norm_eps=raw["layer_norm_eps"],
            hidden_act=raw["hidden_act"],
        )


class _GraphBuilder:
    """Collects nodes and initializers; every helper returns the name of its output."""

    def __init__(self, weights: dict[str, npt.NDArray[np.generic]]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: npt.ArrayLike, dtype: type[np.generic] = np.float32) -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, key: str, transpose: bool = False) -> str:
        array = self.weights[key].astype(np.float32)
        # torch Linear stores (out, in); MatMul wants (in, out).
        return self.const(key, np.ascontiguousarray(array.T) if transpose else array)

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x: str, prefix: str) -> str:
        # Node names start with the checkpoint's prefix: the int8 build selects nodes by name.
        y = self.op("MatMul", [x, self.weight(f"{prefix}.weight", transpose=True)], hint=prefix)
        return self.op("Add", [y, self.weight(f"{prefix}.bias")], hint=prefix)

    def layer_norm(self, x: str, prefix: str, eps: float) -> str:
        scale, bias = self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")
        return self.op("LayerNormalization", [x, scale, bias], hint=prefix, axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        # Exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))): opset 17 has no Gelu op, and BERT's "gelu"
        # is the erf form, not the tanh approximation. onnxruntime fuses this pattern into Gelu.
        erf = self.op("Erf", [self.op("Div", [x, self.const("sqrt2", math.sqrt(2.0))])])
        one_plus = self.op("Add", [erf, self.const("one", 1.0)])
        return self.op("Mul", [self.op("Mul", [x, one_plus]), self.const("half", 0.5)], hint="gelu")


def _attention(g: _GraphBuilder, x: str, mask_bias: str, prefix: str, cfg: BertConfig) -> str:
    head_dim = cfg.hidden_size // cfg.num_heads
    split_heads = g.const("split_heads", [0, 0, cfg.num_heads, head_dim], np.int64)

    def heads(name: str, perm: list[int]) -> str:
        projected = g.linear(x, f"{prefix}.self.{name}")
        return g.op("Transpose", [g.op("Reshape", [projected, split_heads])], perm=perm)

    q = heads("query", [0, 2, 1, 3])  # (B, heads, S, d)
    k = heads("key", [0, 2, 3, 1])  # (B, heads, d, S): transposed for Q @ K^T
    v = heads("value", [0, 2, 1, 3])
    scores = g.op("MatMul", [q, k])
    scores = g.op("Mul", [scores, g.const("scale", 1.0 / math.sqrt(head_dim))])
    probs = g.op("Softmax", [g.op("Add", [scores, mask_bias])], axis=-1)
    context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    merged = g.op("Reshape", [context, g.const("merge_heads", [0, 0, cfg.hidden_size], np.int64)])
    attended = g.linear(merged, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", [attended, x]), f"{prefix}.output.LayerNorm", cfg.layer_norm_eps)


def _encoder_layer(g: _GraphBuilder, x: str, mask_bias: str, index: int, cfg: BertConfig) -> str:
    prefix = f"encoder.layer.{index}"
    attended = _attention(g, x, mask_bias, f"{prefix}.attention", cfg)
    hidden = g.gelu(g.linear(attended, f"{prefix}.intermediate.dense"))
    out = g.linear(hidden, f"{prefix}.output.dense")
    return g.layer_norm(g.op("Add", [out, attended]), f"{prefix}.output.LayerNorm", cfg.layer_norm_eps)


def build_bert_graph(weights: Mapping[str, npt.NDArray[np.generic]], cfg: BertConfig) -> onnx.ModelProto:
    """The whole encoder: ids in, (batch, hidden) unit vectors out."""
    if cfg.hidden_act != "gelu":
        raise ValueError(f"only exact-erf 'gelu' BERT checkpoints are supported, not {cfg.hidden_act!r}")
    # Checkpoints saved by older transformers prefix every tensor with "bert.".
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    g = _GraphBuilder(weights)
    input_ids, attention_mask, token_type_ids = INPUT_NAMES

    # Embeddings: word + absolute position (0..S-1) + token type, then LayerNorm.
    seq_len = g.op("Gather", [g.op("Shape", [input_ids]), g.const("axis1", 1, np.int64)], axis=0)
    positions = g.op("Range", [g.const("zero", 0, np.int64), seq_len, g.const("step", 1, np.int64)])
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), input_ids], axis=0)
    pos = g.op("Gather", [g.weight("embeddings.position_embeddings.weight"), positions], axis=0)
    types = g.op("Gather", [g.weight("embeddings.token_type_embeddings.weight"), token_type_ids], axis=0)
    summed = g.op("Add", [g.op("Add", [words, pos]), types])
    x = g.layer_norm(summed, "embeddings.LayerNorm", cfg.layer_norm_eps)

    # (B, S) mask -> (B, 1, 1, S) additive bias on every head's scores.
    mask = g.op("Cast", [attention_mask], to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.const("one", 1.0), mask])
    mask_bias = g.op("Mul", [inverted, g.const("mask_negative", _MASK_NEGATIVE)])
    mask_bias = g.op("Unsqueeze", [mask_bias, g.const("axes12", [1, 2], np.int64)])

    for index in range(cfg.num_layers):
        x = _encoder_layer(g, x, mask_bias, index, cfg)

    # Masked mean pooling, clamped like sentence-transformers (1e-9), then L2 normalisation
    # clamped like torch.nn.functional.normalize (1e-12).
    mask3 = g.op("Unsqueeze", [mask, g.const("axes2", [2], np.int64)])
    axis1 = g.const("axes1", [1], np.int64)
    summed_tokens = g.op("ReduceSum", [g.op("Mul", [x, mask3]), axis1], keepdims=0)
    counts = g.op("ReduceSum", [mask3, axis1], keepdims=0)
    mean = g.op("Div", [summed_tokens, g.op("Max", [counts, g.const("min_count", 1e-9)])])
    norm = g.op("ReduceL2", [mean], axes=[1], keepdims=1)
    normalised = g.op("Max", [norm, g.const("min_norm", 1e-12)])
    g.nodes.append(helper.make_node("Div", [mean, normalised], [OUTPUT_NAME], name=OUTPUT_NAME))

    dims = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in INPUT_NAMES]
    output = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", cfg.hidden_size])
    graph = helper.make_graph(g.nodes, "bert_sentence_encoder", inputs, [output], g.initializers)
    # IR 8 is the version that goes with opset 17: older onnxruntime builds can still load it.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    model.producer_name = "medialens.ml.onnx_bert"
    onnx.checker.check_model(model)
    return model


def build_bert_sentence_encoder(model_dir: Path, out_path: Path) -> None:
    """Reads ``model.safetensors`` + ``config.json`` from ``model_dir`` and writes ``out_path``."""
    cfg = BertConfig.from_json(model_dir / "config.json")
    weights = load_file(str(model_dir / "model.safetensors"))
    model = build_bert_graph(weights, cfg)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out_path))
