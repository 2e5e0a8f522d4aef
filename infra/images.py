"""Container images built from this repository (``containers/<name>/Dockerfile``): synth only
stages the files each Dockerfile reads; the image is built where ``cdk deploy`` runs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from infra.bundling import REPO_ROOT

CONTAINERS_DIR = REPO_ROOT / "containers"
# Every image builds from the repository root (it copies the library and the lock files): stage
# only what they read, so unrelated changes neither bloat the asset nor rebuild the image.
SHARED_CONTEXT_FILES = [
    "pyproject.toml",
    "constraints.txt",
    "requirements-models.txt",
    "README.md",
    "layers/core/python",
]


def image_context_files(container: str) -> list[str]:
    return [*SHARED_CONTEXT_FILES, f"containers/{container}"]


def container_image(scope: Construct, construct_id: str, container: str) -> ecr_assets.DockerImageAsset:
    """``containers/<container>/Dockerfile`` as an image asset (linux/amd64)."""
    dockerfile = CONTAINERS_DIR / container / "Dockerfile"
    if not dockerfile.is_file():
        raise FileNotFoundError(
            f"{dockerfile.relative_to(REPO_ROOT)} is missing: the {container} image cannot be built"
        )
    return ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        directory=str(REPO_ROOT),
        file=str(dockerfile.relative_to(REPO_ROOT)),
        platform=ecr_assets.Platform.LINUX_AMD64,
        ignore_mode=cdk.IgnoreMode.DOCKER,
        exclude=[
            "*",
            "**/*",
            *(f"!{path}" for path in image_context_files(container)),
            "**/__pycache__",
            "**/*.egg-info",
        ],
    )
