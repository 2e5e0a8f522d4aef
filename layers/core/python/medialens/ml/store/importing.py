"""Model folders a user supplies, registered in the local model store (``medialens models import``):
a store folder copied from elsewhere, or a CLIP-style pair of ONNX encoders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pydantic import ValidationError

from medialens.errors import ConfigurationError
from medialens.ml import clip  # the CLIP layouts live with the runtime that reads them
from medialens.ml.store.manifest import (
    MANIFEST_FILE,
    ModelArtifact,
    ModelManifest,
    check_quantization,
    is_plain_file_name,
    sha256_file,
)
from medialens.ml.store.store import ModelStore

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

    return store.materialise(store.folder(name, version, quant), produce, reuse=None)


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
    if not all(is_plain_file_name(f) for f in manifest.files):
        raise ConfigurationError(f"the manifest in {source} names files outside its folder")

    def produce(staged: Path) -> ModelManifest:
        for file_name, digest in manifest.files.items():
            shutil.copyfile(source / file_name, staged / file_name)
            if sha256_file(staged / file_name) != digest:
                raise ConfigurationError(f"{source / file_name} does not match the sha256 in its manifest")
        return manifest

    folder = store.folder(manifest.name, manifest.version, manifest.quantization)
    return store.materialise(folder, produce, reuse=lambda existing: existing.files == manifest.files)
