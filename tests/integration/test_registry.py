"""Both registry backends pass the same behaviour tests: SQLite (embedded) and DynamoDB (moto)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from medialens.adapters.registry.base import AssetRegistry
from medialens.adapters.registry.dynamodb import DynamoAssetRegistry, table_definition
from medialens.adapters.registry.sqlite import SqliteAssetRegistry
from medialens.domain.assets import Asset, AssetStatus, AuditEvent, MediaType, SourceObject

pytestmark = pytest.mark.integration


def _atomic(write: Callable[..., Any], lock: threading.Lock) -> Callable[..., Any]:
    def serialised(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return write(*args, **kwargs)

    return serialised


@pytest.fixture(params=["sqlite", "dynamodb"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AssetRegistry]:
    if request.param == "sqlite":
        yield SqliteAssetRegistry(tmp_path / "registry.sqlite3")
        return
    # DynamoDB checks a write's condition and applies it atomically; moto's in-process backend
    # checks, then writes, so two threads can both pass the same check and one write is lost.
    # Its conditional writes are made atomic here, as the service's are: what is tested is our
    # compare-and-set loop, not moto's locking.
    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name), lock))
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_definition("assets"))
        yield DynamoAssetRegistry(client, "assets")


def _asset(n: int) -> Asset:
    source = SourceObject(bucket="drop", key=f"incoming/{n}.txt", etag=f"e{n}", size=n)
    return Asset(asset_id=f"a{n:04d}", source=source, pipeline_version="1", execution_name=f"a{n:04d}-p1")


def test_create_is_idempotent(registry: AssetRegistry) -> None:
    stored, created = registry.create_if_absent(_asset(1))
    assert created and stored.status is AssetStatus.QUEUED
    registry.start_stage("a0001", "probe")
    again, created_again = registry.create_if_absent(_asset(1))
    assert not created_again
    assert again.status is AssetStatus.RUNNING  # the stored asset, not the new object
    assert registry.get("missing") is None


def test_statuses_answer_for_the_assets_that_exist(registry: AssetRegistry) -> None:
    for n in range(1, 4):
        registry.create_if_absent(_asset(n))
    registry.start_stage("a0002", "probe")
    registry.mark_failed("a0003", "MediaLens.InvalidMedia", "corrupt")
    wanted = ["a0001", "a0002", "a0003", "missing"]
    assert registry.statuses(wanted) == {
        "a0001": AssetStatus.QUEUED,
        "a0002": AssetStatus.RUNNING,
        "a0003": AssetStatus.FAILED,
    }
    assert registry.statuses([]) == {}


def test_a_wait_returns_once_every_asset_has_finished_in_the_order_asked(registry: AssetRegistry) -> None:
    for n in (1, 2):
        registry.create_if_absent(_asset(n))
    registry.mark_failed("a0002", "MediaLens.InvalidMedia", "corrupt")
    seen: list[list[str]] = []
    finisher = threading.Timer(0.3, lambda: registry.mark_succeeded("a0001", moment_count=3))
    finisher.start()
    assets = registry.wait_until_finished(
        ["a0002", "a0001"],
        timeout_s=30,
        on_progress=lambda now: seen.append([a.status.value for a in now]),
        poll_s=0.05,
        progress_every_s=0.0,
    )
    finisher.join()
    assert [(a.asset_id, a.status) for a in assets] == [("a0002", AssetStatus.FAILED), ("a0001", AssetStatus.SUCCEEDED)]
    assert seen[0] == ["FAILED", "QUEUED"] and seen[-1] == ["FAILED", "SUCCEEDED"]
    # One that never comes: the deadline ends the wait with the ones that exist.
    assert [a.moment_count for a in registry.wait_until_finished(["a0001", "missing"], timeout_s=0.2)] == [3]


def test_stage_timings_and_success(registry: AssetRegistry) -> None:
    registry.create_if_absent(_asset(1))
    registry.start_stage("a0001", "probe")
    registry.record_probe("a0001", MediaType.DOCUMENT, {"mime_type": "application/pdf"})
    registry.end_stage("a0001", "probe")
    for _ in range(2):  # a Map step runs a stage several times; durations add up
        registry.start_stage("a0001", "embed_text")
        registry.end_stage("a0001", "embed_text")
    asset = registry.mark_succeeded("a0001", moment_count=7)
    assert asset.status is AssetStatus.SUCCEEDED and asset.moment_count == 7
    assert asset.media_type is MediaType.DOCUMENT
    assert set(asset.stage_seconds()) == {"probe", "embed_text"}
    assert len([t for t in asset.timings if t.stage == "embed_text"]) == 2
    assert [e.kind for e in registry.events("a0001")] == ["succeeded"]


def test_step_reason_wins_over_the_workflow_error(registry: AssetRegistry) -> None:
    registry.create_if_absent(_asset(1))
    registry.start_stage("a0001", "extract_document")
    registry.record_error("a0001", "MediaLens.InvalidMedia", "PDF is corrupt", stage="extract_document")
    failed = registry.mark_failed("a0001", "MediaLens.InvalidMedia", None)
    assert failed.status is AssetStatus.FAILED
    assert failed.error_reason == "PDF is corrupt"
    assert failed.stage == "extract_document"
    # A late message cannot resurrect a terminal asset.
    registry.record_error("a0001", "MediaLens.Transient", "late")
    assert registry.get("a0001").error_reason == "PDF is corrupt"  # type: ignore[union-attr]


def test_success_of_a_retry_clears_the_earlier_reason(registry: AssetRegistry) -> None:
    registry.create_if_absent(_asset(1))
    registry.start_stage("a0001", "index_moments")
    registry.record_error("a0001", "MediaLens.Transient", "index busy", stage="index_moments")
    registry.start_stage("a0001", "index_moments")
    registry.end_stage("a0001", "index_moments")
    failed = registry.mark_failed("a0001", "States.Timeout", "finalize timed out")
    assert failed.error_reason == "finalize timed out"


def test_failure_without_step_reason_uses_the_workflow_reason(registry: AssetRegistry) -> None:
    registry.create_if_absent(_asset(2))
    failed = registry.mark_failed("a0002", "MediaLens.UnsupportedMediaType", "unsupported media type")
    assert (failed.error_code, failed.error_reason) == (
        "MediaLens.UnsupportedMediaType",
        "unsupported media type",
    )


def test_concurrent_updates_are_not_lost(registry: AssetRegistry) -> None:
    registry.create_if_absent(_asset(1))

    def add(n: int) -> None:
        registry.add_artifacts("a0001", {f"artifact-{n}": f"s3://x/{n}"})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    asset = registry.get("a0001")
    assert asset is not None
    assert len(asset.artifacts) == 8
    assert asset.row_version == 8


def test_listing_pages_through_everything_once(registry: AssetRegistry) -> None:
    for n in range(7):
        registry.create_if_absent(_asset(n))
        registry.add_event(AuditEvent(asset_id=f"a{n:04d}", kind="queued"))
    registry.mark_failed("a0003", "X", "bad")
    seen, cursor = [], None
    while True:
        page, cursor = registry.list_assets(limit=3, cursor=cursor)
        assert len(page) <= 3
        seen += [a.asset_id for a in page]
        if cursor is None:
            break
    assert sorted(seen) == [f"a{n:04d}" for n in range(7)]
    failed, _ = registry.list_assets(status=AssetStatus.FAILED)
    assert [a.asset_id for a in failed] == ["a0003"]
    assert len(registry.iter_all(status=AssetStatus.QUEUED)) == 6


def test_delete_removes_asset_and_events(registry: AssetRegistry) -> None:
    registry.create_if_absent(_asset(1))
    registry.add_event(AuditEvent(asset_id="a0001", kind="queued"))
    assert registry.delete("a0001")
    assert registry.get("a0001") is None
    assert registry.events("a0001") == []
    assert not registry.delete("a0001")


def test_the_revisions_of_one_key_are_found_together(registry: AssetRegistry) -> None:
    for n, key in ((1, "incoming/a.txt"), (2, "incoming/b.txt"), (3, "incoming/a.txt")):
        asset = _asset(n)
        asset.source.key = key
        registry.create_if_absent(asset)
    assert [a.asset_id for a in registry.by_source("drop", "incoming/a.txt")] == ["a0001", "a0003"]
    assert registry.by_source("drop", "incoming/none.txt") == []
    assert registry.by_source("other", "incoming/a.txt") == []
    registry.delete("a0001")
    assert [a.asset_id for a in registry.by_source("drop", "incoming/a.txt")] == ["a0003"]


def test_only_finished_analyses_are_found_by_their_key(registry: AssetRegistry) -> None:
    for n in (1, 2, 3, 4):
        registry.create_if_absent(_asset(n))

    def keyed(key: str) -> Callable[[Asset], None]:
        def change(asset: Asset) -> None:
            asset.analysis_key = key

        return change

    for n, key in ((1, "k1"), (2, "k1"), (3, "k1"), (4, "k2")):
        registry.mutate(f"a{n:04d}", keyed(key))
    assert registry.analysed_as("k1") == []  # none finished yet
    registry.mark_succeeded("a0001", moment_count=3)
    registry.mark_succeeded("a0003", moment_count=3)
    registry.mark_failed("a0002", "MediaLens.InvalidMedia", "broken")
    registry.mark_succeeded("a0004", moment_count=1)
    assert [a.asset_id for a in registry.analysed_as("k1")] == ["a0003", "a0001"]  # newest first
    assert [a.asset_id for a in registry.analysed_as("k2")] == ["a0004"]
    registry.delete("a0003")
    assert [a.asset_id for a in registry.analysed_as("k1")] == ["a0001"]
    assert registry.analysed_as("k3") == []
