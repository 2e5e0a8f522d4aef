"""The core layer: what goes in (fast checks) and one real bundling through CDK (slow: pip
downloads Lambda's manylinux wheels), plus an import check of the same closure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from infra.bundling import (
    PROVIDED_DISTRIBUTIONS,
    UNUSED_DISTRIBUTIONS,
    LayerSpec,
    bundle_layer,
    core_layer_code,
    layer_requirements,
    normalise,
)

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
# Lambda: 250 MB unzipped for the function and all its layers; leave room for Powertools (~30 MB).
LAYER_BUDGET_BYTES = 200 * 2**20


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_requirements_exclude_what_lambda_provides() -> None:
    names = {normalise(r.split(">")[0].split("=")[0].split("<")[0]) for r in layer_requirements()}
    assert {"onnxruntime", "numpy", "tokenizers", "pypdfium2", "opensearch-py", "pydantic-settings"} <= names
    assert not names & PROVIDED_DISTRIBUTIONS
    assert normalise("Typing_Extensions") == "typing-extensions"


def test_layer_hash_follows_its_inputs(tmp_path: Path) -> None:
    source = tmp_path / "core"
    shutil.copytree(REPO_ROOT / "layers" / "core" / "python" / "medialens", source / "python" / "medialens")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text((REPO_ROOT / "constraints.txt").read_text())
    spec = LayerSpec(source=source, constraints=constraints)
    first = spec.digest()
    (source / "python" / "medialens" / "__pycache__").mkdir(exist_ok=True)
    (source / "python" / "medialens" / "__pycache__" / "x.pyc").write_bytes(b"noise")
    assert spec.digest() == first  # bytecode is not an input
    constraints.write_text(constraints.read_text() + "\nextra-pin==1.0\n")
    assert spec.digest() != first
    constraints.write_text((REPO_ROOT / "constraints.txt").read_text())
    (source / "python" / "medialens" / "ids.py").write_text("# changed\n")
    assert spec.digest() != first


@pytest.mark.slow
def test_real_bundling_builds_the_layer_for_lambda(tmp_path: Path) -> None:
    """CDK runs the local bundling (no Docker) and stages python/medialens + manylinux wheels."""
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Layer")
    started = time.perf_counter()
    layer = lambda_.LayerVersion(
        stack, "Core", code=core_layer_code(), compatible_runtimes=[lambda_.Runtime.PYTHON_3_12]
    )
    elapsed = time.perf_counter() - started
    staged = sorted((tmp_path / "cdk.out").glob("asset.*"))
    assert len(staged) == 1, staged
    python = staged[0] / "python"
    for package in (
        "medialens",
        "numpy",
        "onnxruntime",
        "tokenizers",
        "pypdfium2",
        "opensearchpy",
        "pydantic_settings",
    ):
        assert (python / package).is_dir(), package
    for package in ("pydantic", "boto3", "botocore", "aws_lambda_powertools", "huggingface_hub", "grpc"):
        assert not (python / package).exists(), package
    # Linux x86_64 CPython 3.12 binaries, not this machine's interpreter's.
    assert list((python / "onnxruntime" / "capi").glob("*cpython-312-x86_64-linux-gnu.so"))
    assert not list(python.rglob("__pycache__"))
    size = _size(python)
    assert size < LAYER_BUDGET_BYTES, f"layer is {size / 2**20:.0f} MiB"
    assert layer.layer_version_arn  # the asset is wired into the layer
    print(f"\nlayer bundled in {elapsed:.1f}s, {size / 2**20:.0f} MiB unzipped")


@pytest.mark.slow
def test_trimmed_closure_imports_every_handler(tmp_path: Path) -> None:
    """The same resolution for this interpreter, with Lambda's provided packages alongside and
    nothing else on sys.path: proves UNUSED_DISTRIBUTIONS drops nothing the code imports."""
    layer, provided = tmp_path / "layer", tmp_path / "provided"
    version = ".".join(map(str, sys.version_info[:3]))
    bundle_layer(LayerSpec(), layer, python_version=version)
    assert not {normalise(p.name.split("-")[0]) for p in (layer / "python").glob("*.dist-info")} & UNUSED_DISTRIBUTIONS
    wanted = [*sorted(PROVIDED_DISTRIBUTIONS - {"aws-lambda-powertools"}), "aws-lambda-powertools[tracer,parser]"]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(provided),
            "-c",
            str(REPO_ROOT / "constraints.txt"),
            *wanted,
        ],
        check=True,
        capture_output=True,
    )
    modules = [
        "medialens.handlers.ingest",
        "medialens.handlers.light",
        "medialens.handlers.dlq",
        "medialens.worker.tasks",
        "medialens.ml.text_embedding",
        "medialens.pipeline.documents",
        "medialens.adapters.registry.dynamodb",
        "medialens.adapters.storage.s3",
        "opensearchpy",
        "requests_aws4auth",
    ]
    if (REPO_ROOT / "layers/core/python/medialens/handlers/api.py").exists():
        modules.append("medialens.handlers.api")
    script = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(layer / 'python')!r}, {str(provided)!r}]\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "POWERTOOLS_TRACE_DISABLED": "true"}
    # -S: no site-packages, so only the layer and the provided set can satisfy imports.
    result = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
