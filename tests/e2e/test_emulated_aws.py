"""The emulated-AWS profile: every adapter is the AWS one, against a moto server reached through
AWS_ENDPOINT_URL exactly as a deployment reaches AWS. Admission is S3 → EventBridge → SQS; the
registry is DynamoDB; the workflow is the same ASL executed by the emulator."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from medialens.adapters.registry.dynamodb import DynamoAssetRegistry
from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.settings import Profile, get_settings

from .conftest import put_in_drop_bucket

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MOTO_PORT", str(port))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    requests.post(
        f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10
    ).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    yield endpoint
    server.stop()


def test_upload_to_s3_is_analysed_and_searchable(
    moto_endpoint: str,
    corpus: tuple[Path, dict[str, Any]],
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    folder, _ = corpus
    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"visibility_timeout_s": 5})
    assert settings.profile is Profile.AWS
    runtime = start_runtime(settings)  # provisions buckets, table, queues, rule and state machine

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    uploads = {
        "incoming/handbook.pdf": folder / "employee-handbook.pdf",
        "incoming/bad/empty.txt": folder / "bad/empty.txt",
    }
    asset_ids = put_in_drop_bucket(s3, settings.drop_bucket, uploads)
    s3.put_object(Bucket=settings.drop_bucket, Key="elsewhere/ignored.txt", Body=b"not under the drop prefix")

    assets = {a.asset_id: a for a in runtime.wait_for(asset_ids.values(), timeout_s=120)}
    handbook = assets[asset_ids["incoming/handbook.pdf"]]
    empty = assets[asset_ids["incoming/bad/empty.txt"]]
    assert handbook.status is AssetStatus.SUCCEEDED and handbook.moment_count > 0
    assert empty.status is AssetStatus.FAILED and "empty file" in (empty.error_reason or "")

    # The registry really is DynamoDB, and artifacts really are in the artifacts bucket.
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    registry = DynamoAssetRegistry(dynamodb, settings.assets_table)
    assert {a.asset_id for a in registry.iter_all()} == set(asset_ids.values())
    probe_key = handbook.artifacts["probe"].split("/", 3)[3]
    assert s3.head_object(Bucket=settings.artifacts_bucket, Key=probe_key)["ContentLength"] > 0

    assert runtime.services is not None
    hits = runtime.services.search.search(SearchQuery(text="how many vacation days per year", k=3)).hits
    assert hits and hits[0].asset_id == handbook.asset_id and hits[0].page == 2
    assert os.environ["AWS_ENDPOINT_URL"] == moto_endpoint
