"""infra/publish_models.py against moto S3: what the model store on AWS pulls back."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from infra.publish_models import publish
from moto import mock_aws

from medialens.ml.store.store import ModelStore

pytestmark = pytest.mark.infra


def test_published_models_are_pulled_back_verified(tmp_path: Path) -> None:
    cache = Path(os.environ["MEDIALENS_MODEL_CACHE"])
    local = ModelStore(cache)
    manifests = [m for m in local.list() if m.name == "all-minilm-l6-v2" and m.quantization == "int8"]
    if not manifests:
        pytest.fail(f"no int8 all-minilm-l6-v2 in {cache}: run `make models`")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        uris = publish(cache, "s3://artifacts/models/", ["all-minilm-l6-v2"])
        assert "s3://artifacts/models/all-minilm-l6-v2/1/int8/" in uris
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="artifacts", Prefix="models/")["Contents"]}
        assert "models/all-minilm-l6-v2/1/int8/manifest.json" in keys
        assert not any(k.endswith(".lock") for k in keys)
        # What a cold Lambda does: an empty cache pulls the model from the store.
        remote = ModelStore(tmp_path / "cold", s3_client=s3, remote_root="s3://artifacts/models/")
        pulled = remote.resolve("all-minilm-l6-v2", "int8")
        assert pulled.manifest.files == manifests[0].files


def test_nothing_to_publish_is_an_error(tmp_path: Path) -> None:
    with mock_aws(), pytest.raises(LookupError, match="make models"):
        publish(tmp_path, "s3://artifacts/models/", ["no-such-model"])
