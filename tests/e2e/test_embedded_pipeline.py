"""The real ASL on moto's interpreter, the Lambda handlers behind the local event-source poller,
the heavy worker loop, SQLite, LanceDB and the packaged embedding model: the whole pipeline."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from medialens import aws
from medialens.admission import execution_arn
from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchMode, SearchQuery
from medialens.domain.steps import StepName
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import plan_uploads, upload
from medialens.pipeline.catalog import CATALOG
from medialens.settings import Settings
from medialens.worker import tasks

from .conftest import closed_executions, fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _find(runtime: LocalRuntime, query: str, k: int = 3) -> list[Any]:
    assert runtime.services is not None
    return runtime.services.search.search(SearchQuery(text=query, k=k, mode=SearchMode.HYBRID)).hits


def test_sample_corpus_end_to_end(
    start_runtime: Callable[..., LocalRuntime], corpus: tuple[Path, dict[str, Any]]
) -> None:
    folder, expected = corpus
    runtime = start_runtime()
    uploaded, assets = ingest_and_wait(runtime, [folder])
    by_path = {u.key.split("/", 2)[2]: assets[u.asset_id] for u in uploaded}

    # Every input is accounted for: the good ones indexed, the bad ones FAILED with their reason.
    assert len(by_path) == len(expected["files"])
    for item in expected["files"]:
        asset = by_path[item["path"]]
        assert asset.status.value == item["status"], (item["path"], asset.error_reason)
        if item["status"] == "FAILED":
            assert item["reason_contains"] in (asset.error_reason or ""), asset.error_reason
            assert asset.error_code == item["error"]
        else:
            assert asset.moment_count > 0
            assert {"probe", "document"} <= set(asset.artifacts)
            assert {"probe", "extract_document", "embed_text", "index_moments"} <= set(asset.stage_seconds())

    # The example searches find their answers (file, page and text) in the top three.
    for query in expected["queries"]:
        hits = _find(runtime, query["query"])
        assert any(
            hit.source.endswith("/" + query["expect_file"])
            and (query["expect_page"] is None or hit.page == query["expect_page"])
            and query["expect_text_contains"] in hit.text
            for hit in hits
        ), (query, [(h.source, h.page, h.text[:80]) for h in hits])


def test_same_file_twice_is_one_asset_and_one_execution(
    start_runtime: Callable[..., LocalRuntime], corpus: tuple[Path, dict[str, Any]]
) -> None:
    folder, _ = corpus
    runtime = start_runtime()
    notes = folder / "meeting-notes.txt"
    first, _ = ingest_and_wait(runtime, [notes])
    second, again = ingest_and_wait(runtime, [notes])
    assert first[0].asset_id == second[0].asset_id
    asset = again[second[0].asset_id]
    assert asset.status is AssetStatus.SUCCEEDED
    assert runtime.services is not None
    moments_before = runtime.services.index.count(asset.asset_id)
    started = [e for e in runtime.services.registry.events(asset.asset_id) if e.kind == "execution-started"]
    assert [e.detail for e in started] == [asset.execution_name]
    sfn = aws.stepfunctions(runtime.settings)
    arn = execution_arn(runtime.services, asset.execution_name or "")
    (execution,) = closed_executions(lambda: [sfn.describe_execution(executionArn=arn)])
    assert execution["status"] == "SUCCEEDED"
    assert runtime.services.registry.iter_all() == [asset]
    assert runtime.services.index.count(asset.asset_id) == moments_before == asset.moment_count


def test_a_step_that_never_answers_is_dead_lettered_and_fails_fast(
    start_runtime: Callable[..., LocalRuntime],
    corpus: tuple[Path, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Step Functions throttles the probe's answer every time: the message is redelivered until
    maxReceiveCount, lands in the DLQ, and the DLQ handler fails the task long before its timeout."""
    folder, _ = corpus
    original = tasks.TaskAnswerer.success

    def throttled(self: tasks.TaskAnswerer, token: str, result: Any) -> bool:
        if getattr(result, "media_type", None) is not None:  # the probe's result
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "SendTaskSuccess")
        return original(self, token, result)

    monkeypatch.setattr(tasks.TaskAnswerer, "success", throttled)
    runtime = start_runtime()
    uploaded, assets = ingest_and_wait(runtime, [folder / "meeting-notes.txt"], timeout_s=60)
    asset = assets[uploaded[0].asset_id]
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code == "MediaLens.DeadLettered"
    assert "step probe was never answered" in (asset.error_reason or "")
    assert runtime.services is not None
    archived = list(runtime.services.blobs.list_objects(f"s3://{runtime.settings.artifacts_bucket}/dead-letters/"))
    assert len(archived) == 1


def test_a_step_that_stops_heartbeating_times_out_into_failed(
    start_runtime: Callable[..., LocalRuntime],
    corpus: tuple[Path, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The index step hangs past HeartbeatSeconds: States.Timeout, no retry left, MarkFailed."""
    folder, _ = corpus
    spec = CATALOG[StepName.INDEX_MOMENTS]
    original = spec.run
    assert original is not None

    def hanging(*args: Any) -> Any:
        time.sleep(6)
        return original(*args)

    monkeypatch.setitem(CATALOG, StepName.INDEX_MOMENTS, dataclasses.replace(spec, run=hanging))

    def short_heartbeat(definition: dict[str, Any]) -> None:
        definition["States"]["IndexMoments"].update(TimeoutSeconds=30, HeartbeatSeconds=2, Retry=[])

    runtime = start_runtime(state_machine_overrides=short_heartbeat)
    uploaded, assets = ingest_and_wait(runtime, [folder / "meeting-notes.txt"], timeout_s=60)
    asset = assets[uploaded[0].asset_id]
    assert asset.status is AssetStatus.FAILED
    assert asset.error_code in ("States.Timeout", "States.HeartbeatTimeout")
    assert asset.error_reason == f"step index_moments timed out ({asset.error_code}); no worker answered in time"


def test_a_heavy_worker_that_is_gone_still_ends_failed(
    start_runtime: Callable[..., LocalRuntime], corpus: tuple[Path, dict[str, Any]]
) -> None:
    """No heavy worker runs, so the embedding tasks inside the Map time out. Whether the emulator
    routes that through the Map's Catch (AWS does) or fails the execution outright (moto does),
    the asset must end FAILED with a reason: the execution watcher is the safety net."""
    folder, _ = corpus

    def short_timeouts(definition: dict[str, Any]) -> None:
        per_output = definition["States"]["EmbedPassages"]["ItemProcessor"]["States"]["EmbedOutput"]
        embed = per_output["ItemProcessor"]["States"]["EmbedBatch"]
        embed.update(TimeoutSeconds=4, HeartbeatSeconds=2, Retry=[])

    runtime = start_runtime(run_heavy_worker=False, state_machine_overrides=short_timeouts)
    uploaded, assets = ingest_and_wait(runtime, [folder / "meeting-notes.txt"], timeout_s=60)
    asset = assets[uploaded[0].asset_id]
    assert asset.status is AssetStatus.FAILED
    assert asset.error_reason


def test_uploads_made_while_no_pipeline_runs_are_picked_up_later(
    corpus: tuple[Path, dict[str, Any]], start_runtime: Callable[..., LocalRuntime], settings: Settings
) -> None:
    """The CLI uploads, then dies: the outbox keeps the events and the next runner admits them."""
    from medialens.local.notifications import DropNotifications
    from medialens.local.uploads import plan_uploads, upload
    from medialens.services import Services

    folder, _ = corpus
    notifications = DropNotifications(settings.home / "notifications.sqlite3")
    offline = Services(settings, drop_notifier=notifications)
    plan, _ = plan_uploads([folder / "product-faq.html"], settings.drop_prefix)
    uploaded = upload(offline, plan)
    assert notifications.pending_count() == 1

    runtime = start_runtime()
    assets = runtime.wait_for([uploaded[0].asset_id], timeout_s=120)
    assert [a.status for a in assets] == [AssetStatus.SUCCEEDED]
    assert runtime.pending_admissions() == 0


def test_unfinished_assets_resume_after_a_crash(
    corpus: tuple[Path, dict[str, Any]], start_runtime: Callable[..., LocalRuntime]
) -> None:
    """A runner died mid-analysis (its moto state is gone): the next one restarts the execution."""
    folder, _ = corpus
    first = start_runtime(run_heavy_worker=False)
    assert first.services is not None
    from medialens.local.uploads import plan_uploads, upload

    plan, _ = plan_uploads([folder / "product-faq.html"], first.settings.drop_prefix)
    asset_id = upload(first.services, plan)[0].asset_id
    first.wait_for([asset_id], timeout_s=10)  # stuck at embedding: no heavy worker
    stuck = first.services.registry.get(asset_id)
    assert stuck is not None and stuck.status is AssetStatus.RUNNING
    first.stop()
    # With no runner alive the stuck asset is flagged, not left to look busy.
    status = subprocess.run(
        [str(Path(sys.executable).with_name("medialens")), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},  # one line per asset: the note is not wrapped
        timeout=120,
        check=False,
    )
    assert "no runner is processing this" in status.stdout and "no runner is processing them" in status.stderr

    second = start_runtime()
    assets = second.wait_for([asset_id], timeout_s=120)
    assert [a.status for a in assets] == [AssetStatus.SUCCEEDED]
    assert second.services is not None
    assert "resumed" in [e.kind for e in second.services.registry.events(asset_id)]


def test_an_upload_sent_to_a_runner_that_died_before_admitting_it_is_admitted_by_the_next(
    corpus: tuple[Path, dict[str, Any]], start_runtime: Callable[..., LocalRuntime], settings: Settings
) -> None:
    """The outbox acknowledges a row only once its asset exists: a runner killed between sending
    the event to its (in-memory) queue and admitting it leaves the row for the next runner."""
    from medialens.local.uploads import plan_uploads, upload
    from medialens.local.wiring import drop_outbox, local_services

    folder, _ = corpus
    outbox = drop_outbox(settings)
    plan, _ = plan_uploads([folder / "product-faq.html"], settings.drop_prefix)
    uploaded = upload(local_services(settings, outbox), plan)
    outbox.mark_sent([row.row_id for row in outbox.pending()])  # sent, then the runner died
    assert outbox.pending_count() == 1

    runtime = start_runtime()
    assets = runtime.wait_for([uploaded[0].asset_id], timeout_s=120)
    assert [a.status for a in assets] == [AssetStatus.SUCCEEDED]
    assert runtime.wait_until_idle(timeout_s=30) and runtime.pending_admissions() == 0


def test_objects_in_the_drop_bucket_that_nothing_recorded_are_admitted_and_deleted_assets_stay_deleted(
    corpus: tuple[Path, dict[str, Any]], start_runtime: Callable[..., LocalRuntime], settings: Settings
) -> None:
    from medialens import operations
    from medialens.ids import asset_id_for
    from medialens.services import Services

    folder, _ = corpus
    # Written into the drop bucket with no outbox row (a process died between the two, or by hand).
    unrecorded = Services(settings).blobs.put_file(
        f"s3://{settings.drop_bucket}/{settings.drop_prefix}notes.txt", folder / "meeting-notes.txt"
    )
    asset_id = asset_id_for(unrecorded.bucket, unrecorded.key, unrecorded.etag)
    first = start_runtime()
    assert [a.status for a in first.wait_for([asset_id], timeout_s=120)] == [AssetStatus.SUCCEEDED]
    assert first.services is not None
    operations.delete_asset(first.services, asset_id)  # the user removes it; the source object stays
    first.stop()

    second = start_runtime()
    assert second.wait_until_idle(timeout_s=30)
    assert second.services is not None and second.services.registry.get(asset_id) is None


def _keyword(runtime: LocalRuntime, query: str) -> list[Any]:
    assert runtime.services is not None
    return runtime.services.search.search(SearchQuery(text=query, k=5, mode=SearchMode.KEYWORD)).hits


def test_a_new_revision_supersedes_the_old_and_a_removed_object_leaves_the_index(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime()
    assert runtime.services is not None
    registry, blobs = runtime.services.registry, runtime.services.blobs
    notes = tmp_path / "notes.txt"
    notes.write_text("The quarterly budget review moved to the aquarium on Thursday.\n")
    (first,), _ = ingest_and_wait(runtime, [notes])
    assert any(hit.asset_id == first.asset_id for hit in _keyword(runtime, "aquarium"))

    # The same key, new content: a new asset, and once it has succeeded the old one is gone.
    notes.write_text("The quarterly budget review moved to the planetarium on Friday.\n")
    (second,), assets = ingest_and_wait(runtime, [notes])
    assert second.key == first.key and second.asset_id != first.asset_id
    assert assets[second.asset_id].status is AssetStatus.SUCCEEDED
    assert registry.get(first.asset_id) is None
    assert list(blobs.list_keys(runtime.services.artifact_uri(first.asset_id) + "/")) == []
    assert _keyword(runtime, "aquarium") == []
    assert [hit.asset_id for hit in _keyword(runtime, "planetarium")] == [second.asset_id]
    assert any(e.kind == "superseded" and first.asset_id in e.detail for e in registry.events(second.asset_id))

    # Removed from the drop bucket: the asset, its moments and its artifacts go.
    blobs.delete(f"s3://{runtime.settings.drop_bucket}/{second.key}")
    assert runtime.wait_until_idle(timeout_s=60)
    assert registry.get(second.asset_id) is None and registry.by_source(runtime.settings.drop_bucket, second.key) == []
    assert _keyword(runtime, "planetarium") == []
    assert list(blobs.list_keys(runtime.services.artifact_uri(second.asset_id) + "/")) == []


def test_executions_in_flight_stay_under_the_cap_and_everything_finishes(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(fast_settings(local_max_executions=2))
    assert runtime.services is not None
    registry = runtime.services.registry
    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(8):
        (notes / f"note-{n}.txt").write_text(f"Note {n}: the ferry to island {n} leaves at dawn.\n")
    plan, _ = plan_uploads([notes], runtime.settings.drop_prefix)
    uploaded = upload(runtime.services, plan)
    busiest = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        # One read of every asset: counting QUEUED, then RUNNING, counts an asset that starts
        # running in between twice.
        unfinished = sum(not asset.status.terminal for asset in registry.iter_all())
        busiest = max(busiest, unfinished)
        if runtime.idle():
            break
        time.sleep(0.05)
    assert busiest <= 2
    statuses = [a.status for a in runtime.wait_for([u.asset_id for u in uploaded], timeout_s=10)]
    assert statuses == [AssetStatus.SUCCEEDED] * 8
