"""The project's Lambda layer (``layers/core``), bundled on this machine without Docker.

The layer holds the ``medialens`` package and its third-party dependencies as Lambda's Python 3.12
on x86_64 needs them: pip resolves and downloads manylinux wheels for that platform (never
sdists, so nothing is compiled here), pinned by ``constraints.txt``. Packages that the Lambda
runtime (boto3 and friends) or the Powertools layer (Powertools, pydantic, the X-Ray SDK) already
provide are left out, so each module exists once on ``sys.path``.

Bundling downloads wheels, which is slow for unit tests: the ``aws:cdk:bundling-stacks`` context
(``[]`` skips bundling, as ``cdk deploy --exclusively`` does) stages the source folder instead,
with the same asset hash inputs, and one test runs the real bundling.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[1]
CORE_LAYER_DIR = REPO_ROOT / "layers" / "core"
PACKAGE_NAME = "medialens"

PYTHON_VERSION = "3.12"
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34): every manylinux tag up to 2_34 loads.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
# Extras of the project that Lambda code imports: `api` is the OpenSearch client (opensearch-py,
# SigV4 signing) that the index writes and the search API use.
LAYER_EXTRAS = ("api",)
# Provided at run time by the Lambda Python runtime (the AWS SDK) or by the Powertools layer, which
# bundles all its extras (pydantic v2, the X-Ray SDK). Normalised distribution names.
PROVIDED_DISTRIBUTIONS = frozenset(
    {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "python-dateutil",
        "six",
        "urllib3",
        "aws-lambda-powertools",
        "aws-xray-sdk",
        "wrapt",
        "pydantic",
        "pydantic-core",
        "typing-extensions",
        "annotated-types",
        "typing-inspection",
    }
)
# Declared dependencies that Lambda code never imports, dropped to keep the layer well inside
# Lambda's 250 MB unzipped limit (with the Powertools layer): opensearch-py's gRPC transport
# (opensearch-protobufs, grpcio) and tokenizers' Hub download client (huggingface-hub and what
# only it needs). Used: onnxruntime's packaging/protobuf/flatbuffers, requests. The layer test
# imports every handler from a trimmed closure, so a wrong entry here fails there.
UNUSED_DISTRIBUTIONS = frozenset(
    {
        "opensearch-protobufs",
        "grpcio",
        "huggingface-hub",
        "hf-xet",
        "httpx2",
        "httpx2-jsfetch",
        "httpcore2",
        "anyio",
        "h11",
        "truststore",
        "fsspec",
        "tqdm",
        "colorama",
        "pyyaml",
        "filelock",
        "click",
        "tomli",
    }
)
# Bump when the bundling procedure changes in a way the inputs below do not capture.
BUNDLING_REVISION = "1"
_SKIPPED_NAMES = ("__pycache__", "*.pyc", "*.egg-info")


def normalise(name: str) -> str:
    """PEP 503 normalisation: ``Typing_Extensions`` and ``typing.extensions`` are one project."""
    return "-".join(name.replace("_", "-").replace(".", "-").lower().split("-"))


def _requirement_name(requirement: str) -> str:
    for separator in ("[", "<", ">", "=", "!", "~", ";", " "):
        requirement = requirement.split(separator, 1)[0]
    return normalise(requirement)


def layer_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The project's runtime requirements plus the layer's extras, minus what Lambda provides."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements: list[str] = list(project["dependencies"])
    for extra in LAYER_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    return sorted({r for r in requirements if _requirement_name(r) not in PROVIDED_DISTRIBUTIONS})


def _files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


@dataclass(frozen=True)
class LayerSpec:
    """Everything the layer's content depends on; its digest is the asset hash."""

    source: Path = CORE_LAYER_DIR
    constraints: Path = REPO_ROOT / "constraints.txt"
    requirements: tuple[str, ...] = field(default_factory=lambda: tuple(layer_requirements()))

    @property
    def package_dir(self) -> Path:
        return self.source / "python" / PACKAGE_NAME

    def digest(self) -> str:
        h = hashlib.sha256()
        inputs = [BUNDLING_REVISION, PYTHON_VERSION, PLATFORMS, self.requirements, sorted(UNUSED_DISTRIBUTIONS)]
        h.update(json.dumps(inputs).encode())
        h.update(self.constraints.read_bytes())
        for path in _files(self.package_dir):
            h.update(str(path.relative_to(self.package_dir)).encode())
            h.update(path.read_bytes())
        return h.hexdigest()


def _pip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip failed ({' '.join(command)}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def _platform_args(python_version: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def resolve(spec: LayerSpec, work_dir: Path, python_version: str = PYTHON_VERSION) -> list[tuple[str, str]]:
    """The dependency closure for Lambda's platform as (name, version), minus provided and unused ones."""
    report = work_dir / "resolution.json"
    _pip(
        [
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--report",
            str(report),
            "--target",
            str(work_dir / "unused"),
            *_platform_args(python_version),
            "-c",
            str(spec.constraints),
            *spec.requirements,
        ]
    )
    resolved: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["install"]
    pins = {(normalise(item["metadata"]["name"]), item["metadata"]["version"]) for item in resolved}
    dropped = PROVIDED_DISTRIBUTIONS | UNUSED_DISTRIBUTIONS
    return sorted(pin for pin in pins if pin[0] not in dropped)


def bundle_layer(spec: LayerSpec, output_dir: Path, python_version: str = PYTHON_VERSION) -> None:
    """Writes ``python/medialens`` and ``python/<dependencies>`` into ``output_dir``. Tests pass
    this interpreter's version to import the same closure here."""
    target = output_dir / "python"
    target.mkdir(parents=True, exist_ok=True)
    work_dir = output_dir.parent / f".{output_dir.name}.pip"
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        pins = resolve(spec, work_dir, python_version)
        _pip(
            [
                "install",
                "--quiet",
                "--no-deps",
                "--no-compile",  # Lambda compiles on import; .pyc files would only bloat the zip
                "--target",
                str(target),
                *_platform_args(python_version),
                *(f"{name}=={version}" for name, version in pins),
            ]
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts with this machine's shebang
    shutil.copytree(spec.package_dir, target / PACKAGE_NAME, ignore=shutil.ignore_patterns(*_SKIPPED_NAMES))


@jsii.implements(cdk.ILocalBundling)
class LocalLayerBundling:
    """CDK's local bundling hook: runs instead of the Docker image, which this machine lacks."""

    def __init__(self, spec: LayerSpec) -> None:
        self.spec = spec

    # jsii passes the BundlingOptions positionally; the typed interface spells them as keywords.
    def try_bundle(self, output_dir: str, *_options: Any, **_keywords: Any) -> bool:
        bundle_layer(self.spec, Path(output_dir))
        return True


def core_layer_code(spec: LayerSpec | None = None) -> lambda_.Code:
    """The layer's code asset: bundled locally; hashed by its inputs, not by pip's output, so a
    re-synth with unchanged inputs re-uses the uploaded layer."""
    spec = spec or LayerSpec()
    return lambda_.Code.from_asset(
        str(spec.source),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=spec.digest(),
        exclude=["**/__pycache__", "**/*.egg-info"],
        bundling=cdk.BundlingOptions(
            # Only used where local bundling declines; ours never does, so no Docker is needed.
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            local=LocalLayerBundling(spec),
        ),
    )
