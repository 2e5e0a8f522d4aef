"""Revisions and removals without the workflow: the terminal steps, an object removed or
replaced, executions that ended without an outcome, and what status says of stuck work."""

from __future__ import annotations

from datetime import timedelta

import pytest

from medialens import operations
from medialens.admission import ExecutionEnded, ObjectRemoved, asset_for_object, handle, record_execution_end
from medialens.domain.assets import Asset, AssetStatus, MediaType, utcnow
from medialens.domain.moments import Modality, Moment
from medialens.domain.steps import AssetRef, FailureInfo, FinalizeInput, IndexResult, MarkFailedInput
from medialens.local.wiring import local_services
from medialens.orchestration.asl import WORKFLOW_TIMEOUT_S
from medialens.pipeline import finalize
from medialens.services import Services
from medialens.settings import Settings

pytestmark = pytest.mark.integration

KEY = "incoming/notes.txt"


@pytest.fixture
def services(settings: Settings) -> Services:
    return local_services(settings)


def _revision(services: Services, text: str) -> Asset:
    """Writes ``text`` at KEY (a new revision) and records its asset with one indexed moment and
    one artifact, as a finished analysis would have left it."""
    settings = services.settings
    info = services.blobs.put_bytes(f"s3://{settings.drop_bucket}/{KEY}", text.encode())
    asset, _ = services.registry.create_if_absent(asset_for_object(services, info))
    services.registry.start_stage(asset.asset_id, "probe")
    moment = Moment(
        moment_id=f"m-{asset.asset_id}",
        asset_id=asset.asset_id,
        source=info.uri,
        media_type=MediaType.DOCUMENT,
        modality=Modality.DOCUMENT,
        text=text,
        page=1,
        pipeline_version="1",
    )
    services.index.upsert([moment])
    services.blobs.put_text(services.artifact_uri(asset.asset_id, "document.json"), "{}")
    return asset


def _ref(asset: Asset) -> AssetRef:
    return AssetRef(asset_id=asset.asset_id, source=asset.source, pipeline_version=asset.pipeline_version)


def _succeed(services: Services, asset: Asset) -> None:
    finalize.finalize(services, _ref(asset), FinalizeInput(indexed=IndexResult(indexed=1)))


def _fail(services: Services, asset: Asset) -> None:
    failure = FailureInfo(Error="MediaLens.CorruptMedia", Cause="unreadable")
    finalize.mark_failed(services, _ref(asset), MarkFailedInput(error=failure))


def _left(services: Services) -> list[str]:
    return [a.asset_id for a in services.registry.by_source(services.settings.drop_bucket, KEY)]


def test_an_older_revision_that_finishes_last_retires_itself(services: Services) -> None:
    old = _revision(services, "budget review in the aquarium")
    new = _revision(services, "budget review in the planetarium")
    _succeed(services, new)
    assert _left(services) == [old.asset_id, new.asset_id]  # the old one is still running
    _succeed(services, old)
    assert _left(services) == [new.asset_id]
    assert services.index.count(old.asset_id) == 0 and services.index.count(new.asset_id) == 1
    assert list(services.blobs.list_keys(services.artifact_uri(old.asset_id) + "/")) == []


def test_nobody_sees_the_new_revision_succeeded_beside_the_one_it_supersedes(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever polls status (the CLI, the page, a test) and sees SUCCEEDED must find the older
    revision already gone: the old one is retired before the new one is marked."""
    old = _revision(services, "budget review in the aquarium")
    _succeed(services, old)
    new = _revision(services, "budget review in the planetarium")
    left_when_marked: list[list[str]] = []
    mark_succeeded = services.registry.mark_succeeded

    def observed(asset_id: str, moment_count: int) -> Asset:
        left_when_marked.append(_left(services))
        return mark_succeeded(asset_id, moment_count=moment_count)

    monkeypatch.setattr(services.registry, "mark_succeeded", observed)
    _succeed(services, new)
    assert left_when_marked == [[new.asset_id]]
    assert services.registry.get(new.asset_id).status is AssetStatus.SUCCEEDED  # type: ignore[union-attr]


def test_a_new_revision_that_fails_leaves_the_old_answers_in_place(services: Services) -> None:
    old = _revision(services, "budget review in the aquarium")
    _succeed(services, old)
    broken = _revision(services, "garbled")
    _fail(services, broken)
    assert _left(services) == [old.asset_id, broken.asset_id]
    assert services.index.count(old.asset_id) == 1
    # Fixed and uploaded again: that revision supersedes both.
    fixed = _revision(services, "budget review in the planetarium")
    _succeed(services, fixed)
    assert _left(services) == [fixed.asset_id]


def test_a_removed_object_takes_finished_assets_now_and_running_ones_when_they_end(services: Services) -> None:
    done = _revision(services, "first draft")
    _succeed(services, done)
    running = _revision(services, "second draft")
    services.blobs.delete(running.source.uri)
    outcome, removed = handle(services, ObjectRemoved(services.settings.drop_bucket, KEY))
    assert outcome.value == "removed" and removed == done.asset_id
    assert _left(services) == [running.asset_id]
    _succeed(services, running)  # the analysis ends after its object is gone: nothing stays
    assert _left(services) == []
    assert services.index.count() == 0


def test_an_execution_that_ended_without_its_outcome_fails_its_asset(services: Services) -> None:
    asset = _revision(services, "stuck")
    assert asset.execution_name is not None
    stale = ExecutionEnded("an-earlier-run", "ABORTED", asset.asset_id)
    assert not record_execution_end(services, stale)  # a re-run's predecessor: not this run
    ended = ExecutionEnded(asset.execution_name, "TIMED_OUT", asset.asset_id)
    assert record_execution_end(services, ended)
    stored = services.registry.get(asset.asset_id)
    assert stored is not None and stored.status is AssetStatus.FAILED
    assert stored.error_code == "States.TimedOut" and "timed out before recording an outcome" in (
        stored.error_reason or ""
    )
    assert not record_execution_end(services, ended)  # already terminal: nothing more


def test_stuck_work_says_why(services: Services, settings: Settings) -> None:
    asset = _revision(services, "waiting")
    now = utcnow()
    assert operations.stall_reason(services, asset, now, runner_alive=False) == operations.NO_RUNNER
    assert operations.stall_reason(services, asset, now, runner_alive=True) is None
    # No runner holds this home's lock in this test: the embedded wiring reads it.
    assert operations.stall_reason(services, asset, now) == operations.NO_RUNNER
    later = asset.updated_at + timedelta(seconds=WORKFLOW_TIMEOUT_S + 3600)
    reason = operations.stall_reason(services, asset, later, runner_alive=True)
    assert reason is not None and "longer than a workflow may run" in reason
    _succeed(services, asset)
    finished = services.registry.get(asset.asset_id)
    assert finished is not None and operations.stall_reason(services, finished, later, runner_alive=False) is None
