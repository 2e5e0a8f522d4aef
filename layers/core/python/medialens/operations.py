"""Asset operations behind the API (and usable from any caller): re-run an asset's analysis,
delete an asset with everything derived from it, check the dependencies.

They run wherever the API runs: in a Lambda on AWS, or in ``medialens serve`` locally. Starting
an execution needs the state machine, which the embedded profile keeps in the process that runs
the pipeline; a process without it hands the object to that runner through the drop-bucket
notification outbox instead (the same path an upload takes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from medialens.admission import start_execution
from medialens.domain.assets import Asset, AssetStatus, AuditEvent
from medialens.domain.quality import AssetQuality
from medialens.errors import TransientError
from medialens.ids import execution_name_for
from medialens.orchestration.asl import WORKFLOW_TIMEOUT_S
from medialens.revisions import Deleted, remove_asset
from medialens.services import Services
from medialens.settings import Profile

REPROCESS_FAILED = "MediaLens.ReprocessNotStarted"


class OperationError(Exception):
    """An operation that cannot be done in the asset's present state."""


class AssetNotFoundError(OperationError):
    pass


class AssetBusyError(OperationError):
    """The asset is still being analysed: a second run or a delete would race the first."""


class SourceUnavailableError(OperationError):
    """The source object is gone, or has been replaced by a new revision (a new asset)."""


ExecutionStarter = Callable[[Services, Asset], None]


@dataclass(frozen=True, slots=True)
class Reprocessed:
    asset: Asset
    attempt: int


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: str
    ms: float


def existing_asset(services: Services, asset_id: str) -> Asset:
    """The asset, or AssetNotFoundError (the API answers 404)."""
    asset = services.registry.get(asset_id)
    if asset is None:
        raise AssetNotFoundError(f"no asset {asset_id}")
    return asset


def next_attempt(asset: Asset, pipeline_version: str) -> int:
    """The attempt number of the asset's next run under ``pipeline_version``: one more than the
    run its execution name records, 1 after a first run (attempt 0) or another version's run."""
    first = execution_name_for(asset.asset_id, pipeline_version)
    name = asset.execution_name or ""
    match = re.fullmatch(re.escape(first) + r"-r(\d+)", name)
    if match:
        return int(match.group(1)) + 1
    return 1


def orchestration_in_process(services: Services) -> bool:
    """Whether this process can reach the state machine: always on AWS and under an emulator;
    in the embedded profile only where a ``LocalRuntime`` runs (it points settings at its moto)."""
    settings = services.settings
    return not (settings.profile is Profile.EMBEDDED and settings.aws_endpoint_url is None)


def start_run(services: Services, asset: Asset) -> None:
    """Starts the asset's execution under its (new) execution name."""
    if orchestration_in_process(services):
        start_execution(services, asset)
        return
    # The embedded runner (another process) admits the object again: the asset is QUEUED, so
    # admission starts the execution its registry row now names.
    services.readmit(asset.source)


def reprocess(services: Services, asset_id: str, start: ExecutionStarter = start_run) -> Reprocessed:
    """Resets a finished asset to QUEUED and starts a new execution of the current pipeline,
    named ``execution_name_for(asset_id, version, attempt=n)`` so it never collides with an
    earlier run. The previous run's moments stay searchable until the new run replaces them."""
    asset = existing_asset(services, asset_id)
    if not asset.status.terminal:
        raise AssetBusyError(f"asset {asset_id} is {asset.status.value}; wait for the running analysis to finish")
    source = asset.source
    info = services.blobs.head(source.uri)
    if info is None:
        raise SourceUnavailableError(f"the source object {source.uri} no longer exists")
    if source.version_id is None and info.etag != source.etag:
        raise SourceUnavailableError(
            f"{source.uri} has changed since this asset was analysed; the new revision is a separate asset"
        )
    version = services.settings.pipeline_version
    attempts: list[int] = []

    def change(current: Asset) -> None:
        # Checked again inside the compare-and-set: of two concurrent requests, one wins.
        if not current.status.terminal:
            raise AssetBusyError(f"asset {asset_id} is {current.status.value}; a re-run was just started")
        attempt = next_attempt(current, version)
        attempts.append(attempt)
        current.status = AssetStatus.QUEUED
        current.stage = None
        current.error_code = current.error_reason = None
        current.timings = []  # the new run's stage timings, not a sum over runs
        current.quality = AssetQuality()  # and its own quality figures
        current.pipeline_version = version
        current.execution_name = execution_name_for(asset_id, version, attempt)

    queued = services.registry.mutate(asset_id, change)
    assert queued.execution_name is not None
    services.registry.add_event(AuditEvent(asset_id=asset_id, kind="reprocess", detail=queued.execution_name))
    try:
        start(services, queued)
    except Exception as error:
        # Nothing will run this asset: make that visible rather than leave it QUEUED forever.
        services.registry.mark_failed(asset_id, REPROCESS_FAILED, f"the re-run could not be started: {error}")
        raise TransientError(f"could not start the re-run of {asset_id}: {error}") from error
    return Reprocessed(asset=queued, attempt=attempts[-1])


def delete_asset(services: Services, asset_id: str) -> Deleted:
    """Removes a finished asset with everything derived from it (``revisions.remove_asset``). The
    source object in the drop bucket is the user's and stays."""
    asset = existing_asset(services, asset_id)
    if not asset.status.terminal:
        raise AssetBusyError(f"asset {asset_id} is {asset.status.value}; delete it once the analysis has finished")
    return remove_asset(services, asset)


NO_RUNNER = "no runner is processing this: start one with `medialens worker --until-idle` or `medialens serve`"


def stall_reason(services: Services, asset: Asset, now: datetime, runner_alive: bool | None = None) -> str | None:
    """Why an unfinished asset is not moving, when that is known: no embedded runner holds the
    pipeline, or it has not changed for longer than any workflow may run (its execution ended
    without recording an outcome). ``runner_alive``: the caller's reading, to ask once per list."""
    if asset.status.terminal:
        return None
    if runner_alive is None and services.runner_alive is not None:
        runner_alive = services.runner_alive()
    if runner_alive is False:
        return NO_RUNNER
    idle_s = (now - asset.updated_at).total_seconds()
    if idle_s > WORKFLOW_TIMEOUT_S:
        return (
            f"no progress for {idle_s / 3600:.1f} h, longer than a workflow may run: its execution ended "
            "without recording an outcome; re-run it"
        )
    return None


def _timed(check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as error:  # noqa: BLE001 - a health check reports any failure instead of raising it
        detail, ok = f"{type(error).__name__}: {error}", False
    return CheckResult(ok=ok, detail=detail, ms=round((time.perf_counter() - started) * 1000.0, 2))


def check_health(services: Services) -> dict[str, CheckResult]:
    """Index reachable, registry reachable, query embedding models loadable."""

    def index() -> str:
        return f"{services.index.count()} moments"

    def registry() -> str:
        services.registry.list_assets(limit=1)
        return "reachable"

    def model() -> str:
        loaded = []
        for embedder in (services.embedder, services.english_embedder):
            if embedder is not None:
                embedder.load()
                loaded.append(f"{embedder.version}, {embedder.dimensions} dimensions")
        return "; ".join(loaded)

    return {"index": _timed(index), "registry": _timed(registry), "model": _timed(model)}
