"""Registry interface. Backends store whole ``Asset`` documents with a version number; every
change is a compare-and-set through ``mutate``, so parallel steps (Map branches) never lose
each other's timings and a terminal status is never overwritten by a late message."""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from medialens.domain.assets import Asset, AssetStatus, AuditEvent, MediaType, StageTiming, utcnow
from medialens.domain.quality import EmbeddingSummary, QualitySample


class ConcurrentUpdateError(RuntimeError):
    """Another writer kept winning the compare-and-set."""


class AssetRegistry(ABC):
    max_attempts = 20

    # --- storage primitives --------------------------------------------------------------------

    @abstractmethod
    def create_if_absent(self, asset: Asset) -> tuple[Asset, bool]:
        """Store ``asset`` unless its id exists; returns the stored asset and whether it is new."""

    @abstractmethod
    def get(self, asset_id: str) -> Asset | None: ...

    @abstractmethod
    def _compare_and_set(self, asset: Asset, expected_version: int) -> bool:
        """Replace the stored asset if its row_version is still ``expected_version``."""

    @abstractmethod
    def list_assets(
        self, status: AssetStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Asset], str | None]:
        """Assets oldest first, with a cursor for the next page (None at the end)."""

    @abstractmethod
    def by_source(self, bucket: str, key: str) -> list[Asset]:
        """Every asset of one drop-bucket key (its revisions), oldest first."""

    @abstractmethod
    def analysed_as(self, analysis_key: str) -> list[Asset]:
        """The assets that SUCCEEDED under ``analysis_key`` (see ``Asset.analysis_key``), newest first."""

    @abstractmethod
    def delete(self, asset_id: str) -> bool: ...

    @abstractmethod
    def add_event(self, event: AuditEvent) -> None: ...

    @abstractmethod
    def events(self, asset_id: str) -> list[AuditEvent]: ...

    # --- operations built on compare-and-set -----------------------------------------------------

    def mutate(self, asset_id: str, change: Callable[[Asset], None]) -> Asset:
        for attempt in range(self.max_attempts):
            current = self.get(asset_id)
            if current is None:
                raise KeyError(f"unknown asset {asset_id}")
            updated = current.model_copy(deep=True)
            change(updated)
            updated.updated_at = utcnow()
            updated.row_version = current.row_version + 1
            if self._compare_and_set(updated, current.row_version):
                return updated
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # back off from the other writer
        raise ConcurrentUpdateError(f"asset {asset_id}: too many concurrent updates")

    def count(self, status: AssetStatus) -> int:
        """Assets in one status (backends with an index answer without reading them)."""
        return len(self.iter_all(status=status))

    def statuses(self, asset_ids: Sequence[str]) -> dict[str, AssetStatus]:
        """The status of each asset that exists (backends that can answer without reading whole
        assets do: a waiter asks this many times a second)."""
        found = (self.get(asset_id) for asset_id in asset_ids)
        return {asset.asset_id: asset.status for asset in found if asset is not None}

    def wait_until_finished(
        self,
        asset_ids: Iterable[str],
        timeout_s: float,
        on_progress: Callable[[list[Asset]], None] | None = None,
        poll_s: float = 0.2,
        progress_every_s: float = 0.5,
    ) -> list[Asset]:
        """Blocks until every asset is SUCCEEDED or FAILED (or the timeout passes); returns the
        ones that exist, in the order asked. Polls the statuses alone and reads an asset whole once
        it has finished, so a wait on hundreds of assets takes little from the pipeline it waits
        for; ``on_progress`` (which gets the unfinished ones read whole too) every
        ``progress_every_s``."""
        wanted = list(dict.fromkeys(asset_ids))
        finished: dict[str, Asset] = {}
        deadline = time.monotonic() + timeout_s
        last_progress = 0.0

        def in_order() -> list[Asset]:
            found = (finished.get(asset_id) or self.get(asset_id) for asset_id in wanted)
            return [asset for asset in found if asset is not None]

        while True:
            unfinished = [asset_id for asset_id in wanted if asset_id not in finished]
            for asset_id, status in self.statuses(unfinished).items():
                asset = self.get(asset_id) if status.terminal else None
                if asset is not None and asset.status.terminal:
                    finished[asset_id] = asset
            done = len(finished) == len(wanted)
            if on_progress is not None and (done or time.monotonic() - last_progress >= progress_every_s):
                on_progress(in_order())
                last_progress = time.monotonic()
            if done or time.monotonic() > deadline:
                return in_order()
            time.sleep(poll_s)

    def iter_all(self, status: AssetStatus | None = None) -> list[Asset]:
        assets: list[Asset] = []
        cursor: str | None = None
        while True:
            page, cursor = self.list_assets(status=status, limit=500, cursor=cursor)
            assets.extend(page)
            if cursor is None:
                return assets

    def start_stage(
        self, asset_id: str, stage: str, at: datetime | None = None, batch_size: int = 1, shared_by: int = 1
    ) -> Asset:
        def change(asset: Asset) -> None:
            if asset.status is AssetStatus.QUEUED:
                asset.status = AssetStatus.RUNNING
            asset.stage = stage
            timing = StageTiming(stage=stage, started_at=at or utcnow(), batch_size=batch_size, shared_by=shared_by)
            asset.timings.append(timing)

        return self.mutate(asset_id, change)

    def end_stage(self, asset_id: str, stage: str, at: datetime | None = None) -> Asset:
        """Close the stage's open timing; a success also clears the reason of an earlier failed try."""

        def change(asset: Asset) -> None:
            if not asset.status.terminal:
                asset.error_code = asset.error_reason = None
            for timing in reversed(asset.timings):
                if timing.stage == stage and timing.ended_at is None:
                    timing.ended_at = at or utcnow()
                    return

        return self.mutate(asset_id, change)

    def add_quality(
        self,
        asset_id: str,
        samples: Sequence[QualitySample] = (),
        embedding: EmbeddingSummary | None = None,
        language: str | None = None,
    ) -> Asset:
        """Merges what a step measured of its model's work into the asset's quality summary."""

        def change(asset: Asset) -> None:
            asset.quality.add(samples, embedding, language)

        return self.mutate(asset_id, change)

    def record_probe(self, asset_id: str, media_type: MediaType, metadata: dict[str, object]) -> Asset:
        def change(asset: Asset) -> None:
            asset.media_type = media_type
            asset.metadata = dict(metadata)

        return self.mutate(asset_id, change)

    def add_artifacts(self, asset_id: str, artifacts: dict[str, str]) -> Asset:
        return self.mutate(asset_id, lambda asset: asset.artifacts.update(artifacts))

    def record_error(self, asset_id: str, code: str, reason: str, stage: str | None = None) -> Asset:
        """Keep a step's reason before the workflow's Catch makes it terminal (moto drops Cause)."""

        def change(asset: Asset) -> None:
            if asset.status.terminal:
                return
            asset.error_code, asset.error_reason = code, reason
            if stage:
                asset.stage = stage
            for timing in reversed(asset.timings):
                if timing.stage == (stage or asset.stage) and timing.ended_at is None:
                    timing.ended_at = utcnow()
                    break

        return self.mutate(asset_id, change)

    def mark_failed(self, asset_id: str, code: str, reason: str | None) -> Asset:
        """Make the failure terminal. A reason the failing step recorded is more specific than what
        the workflow's Catch carries, so it is kept."""

        def change(asset: Asset) -> None:
            if asset.status is AssetStatus.SUCCEEDED:
                return
            asset.status = AssetStatus.FAILED
            if not asset.error_reason:
                asset.error_code, asset.error_reason = code, reason or code

        asset = self.mutate(asset_id, change)
        self.add_event(AuditEvent(asset_id=asset_id, kind="failed", detail=asset.error_reason or code))
        return asset

    def mark_succeeded(self, asset_id: str, moment_count: int) -> Asset:
        def change(asset: Asset) -> None:
            asset.status = AssetStatus.SUCCEEDED
            asset.stage = None
            asset.error_code = asset.error_reason = None
            asset.moment_count = moment_count

        asset = self.mutate(asset_id, change)
        self.add_event(AuditEvent(asset_id=asset_id, kind="succeeded", detail=f"{moment_count} moments"))
        return asset
