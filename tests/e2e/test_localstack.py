"""The emulated-AWS profile against LocalStack: S3 upload → EventBridge → SQS → ingest → Step
Functions (the real ASL) → light and heavy workers → index → search, every adapter the AWS one.

Runs only when ``MEDIALENS_LOCALSTACK=1`` (``make localstack-test`` starts LocalStack, sets it and
``AWS_ENDPOINT_URL``, and stops LocalStack afterwards). The flow mirrors test_emulated_aws.py,
which runs the same against a moto server; resources get per-run names, so the suite can run
again against a LocalStack that is still up.

``MEDIALENS_LOCALSTACK_DYNAMODB=moto``: LocalStack on the host (no Docker) cannot run DynamoDB
(it needs DynamoDB Local, a Java 21 program it downloads), so the registry table then lives on
an in-process moto server and every other service on LocalStack. The library sends all services
to one AWS_ENDPOINT_URL, so the test routes the dynamodb client itself.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from medialens import aws
from medialens.adapters.registry.dynamodb import DynamoAssetRegistry
from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.settings import Profile, get_settings

from .conftest import closed_executions, put_in_drop_bucket

# Read at import: the suite's autouse fixture clears MEDIALENS_* and AWS_ENDPOINT_URL per test.
ENABLED = os.environ.get("MEDIALENS_LOCALSTACK") == "1"
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
DYNAMODB_ON_MOTO = os.environ.get("MEDIALENS_LOCALSTACK_DYNAMODB") == "moto"

pytestmark = [
    pytest.mark.localstack,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(not ENABLED, reason="set MEDIALENS_LOCALSTACK=1 with LocalStack running (make localstack-test)"),
]


@pytest.fixture
def localstack(monkeypatch: pytest.MonkeyPatch) -> str:
    health = requests.get(f"{ENDPOINT}/_localstack/health", timeout=5)
    health.raise_for_status()
    services = health.json()["services"]
    wanted = ["s3", "sqs", "stepfunctions", "events"] + ([] if DYNAMODB_ON_MOTO else ["dynamodb"])
    for service in wanted:
        assert services.get(service) in ("available", "running"), (service, services.get(service))
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    return ENDPOINT


@pytest.fixture
def dynamodb_endpoint(localstack: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Where the registry table lives: LocalStack, or a moto server (see the module docstring)."""
    if not DYNAMODB_ON_MOTO:
        yield localstack
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    original = aws.client
    clients: dict[str, Any] = {}

    def client(service: str, settings: Any = None) -> Any:
        if service != "dynamodb":
            return original(service, settings)
        if "dynamodb" not in clients:
            region = (settings or get_settings()).region
            clients["dynamodb"] = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
        return clients["dynamodb"]

    monkeypatch.setattr(aws, "client", client)
    yield endpoint
    server.stop()


def test_upload_is_analysed_and_searchable_on_localstack(
    localstack: str,
    dynamodb_endpoint: str,
    corpus: tuple[Path, dict[str, Any]],
    start_runtime: Callable[..., LocalRuntime],
) -> None:
    folder, _ = corpus
    run = uuid.uuid4().hex[:8]
    get_settings.cache_clear()
    settings = get_settings().model_copy(
        update={
            "visibility_timeout_s": 5,
            "drop_bucket": f"medialens-drop-{run}",
            "artifacts_bucket": f"medialens-artifacts-{run}",
            "assets_table": f"medialens-assets-{run}",
            "ingest_queue": f"medialens-ingest-{run}",
            "light_queue": f"medialens-light-{run}",
            "heavy_queue": f"medialens-heavy-{run}",
            "state_machine_name": f"medialens-analyze-asset-{run}",
        }
    )
    assert settings.profile is Profile.AWS
    started = time.perf_counter()
    runtime = start_runtime(settings)  # provisions buckets, table, queues, rule and state machine
    assert runtime.resources.state_machine_arn.startswith("arn:aws:states:")

    s3 = boto3.client("s3", endpoint_url=localstack, region_name=settings.region)
    uploads = {
        "incoming/handbook.pdf": folder / "employee-handbook.pdf",
        "incoming/bad/empty.txt": folder / "bad/empty.txt",
    }
    asset_ids = put_in_drop_bucket(s3, settings.drop_bucket, uploads)
    s3.put_object(Bucket=settings.drop_bucket, Key="elsewhere/ignored.txt", Body=b"not under the drop prefix")

    assets = {a.asset_id: a for a in runtime.wait_for(asset_ids.values(), timeout_s=180)}
    handbook = assets[asset_ids["incoming/handbook.pdf"]]
    empty = assets[asset_ids["incoming/bad/empty.txt"]]
    assert handbook.status is AssetStatus.SUCCEEDED and handbook.moment_count > 0, handbook
    assert empty.status is AssetStatus.FAILED and "empty file" in (empty.error_reason or ""), empty

    # The registry is LocalStack's DynamoDB, artifacts are in its S3, and the workflow ran on its
    # Step Functions (both executions exist there, one succeeded and one failed).
    dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=settings.region)
    registry = DynamoAssetRegistry(dynamodb, settings.assets_table)
    assert {a.asset_id for a in registry.iter_all()} == set(asset_ids.values())
    probe_key = handbook.artifacts["probe"].split("/", 3)[3]
    assert s3.head_object(Bucket=settings.artifacts_bucket, Key=probe_key)["ContentLength"] > 0
    sfn = boto3.client("stepfunctions", endpoint_url=localstack, region_name=settings.region)
    machine = runtime.resources.state_machine_arn
    executions = closed_executions(lambda: sfn.list_executions(stateMachineArn=machine)["executions"])
    assert sorted(e["status"] for e in executions) == ["FAILED", "SUCCEEDED"]

    assert runtime.services is not None
    hits = runtime.services.search.search(SearchQuery(text="how many vacation days per year", k=3)).hits
    assert hits and hits[0].asset_id == handbook.asset_id and hits[0].page == 2
    where = "moto server" if DYNAMODB_ON_MOTO else "LocalStack"
    print(
        f"\nLocalStack pipeline: {time.perf_counter() - started:.1f}s from provisioning to search; DynamoDB on {where}"
    )
