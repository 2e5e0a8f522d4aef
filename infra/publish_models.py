"""Publishes the local model store to a deployment's S3 model store (``MEDIALENS_MODEL_STORE_URI``).

The API Lambda pulls its query-embedding model from there on a cold start (the GPU image bakes
its own). Run after the first deploy and whenever a model version changes:

    .venv/bin/python -m infra.publish_models --env dev            # root from the data stack's output
    .venv/bin/python -m infra.publish_models --uri s3://bucket/models/ --name all-minilm-l6-v2

Only verified models are published (``ModelStore.resolve`` re-checks every sha256), each with
the manifest written last, so a reader never sees a half-uploaded model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import boto3

from medialens.ml.store.store import ModelStore, model_uri
from medialens.settings import get_settings


def stack_output(stack: str, key: str, region: str | None = None) -> str:
    described = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack)
    for output in described["Stacks"][0].get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise LookupError(f"stack {stack} has no output {key}: deploy it first")


def publish(cache_dir: Path, root_uri: str, names: Sequence[str] = ()) -> list[str]:
    """Uploads every cached model (or those named) under ``root_uri``; returns their URIs."""
    store = ModelStore(cache_dir, s3_client=boto3.client("s3"), remote_root=root_uri)
    published = []
    for manifest in store.list():
        if names and manifest.name not in names:
            continue
        artifact = store.resolve(manifest.name, manifest.quantization, manifest.version)
        target = model_uri(root_uri, manifest.name, manifest.version, manifest.quantization)
        published.append(store.publish(artifact, target))
    if not published:
        raise LookupError(f"no models in {cache_dir}{' named ' + ', '.join(names) if names else ''}: run make models")
    return published


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--env", help="read the ModelStoreUri output of medialens-<env>-data")
    where.add_argument("--uri", help="s3://bucket/prefix/ of the model store")
    parser.add_argument("--name", action="append", default=[], help="only this model (repeatable)")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    root = args.uri or stack_output(f"medialens-{args.env}-data", "ModelStoreUri", args.region)
    for uri in publish(get_settings().models_dir, root, args.name):
        print(uri)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
