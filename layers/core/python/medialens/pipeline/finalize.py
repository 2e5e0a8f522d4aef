"""Terminal steps: SUCCEEDED with counts, or FAILED with the reason a person can act on."""

from __future__ import annotations

from medialens.domain.assets import AuditEvent
from medialens.domain.steps import AssetRef, FailureInfo, FinalizeInput, MarkFailedInput, TerminalResult
from medialens.errors import UnsupportedMediaError
from medialens.revisions import settle_revisions
from medialens.services import Services


def finalize(services: Services, asset: AssetRef, request: FinalizeInput) -> TerminalResult:
    # The newest revision of the key now answers for it; or, if the object was removed while it
    # was analysed, nothing does. Settled first, so whoever sees SUCCEEDED never sees the
    # superseded revision beside it (settling again is harmless if this step is retried).
    retired = settle_revisions(services, asset.source.bucket, asset.source.key, succeeding=asset.asset_id)
    if asset.asset_id in retired:
        return TerminalResult(status="SUCCEEDED")  # its object was removed meanwhile: it went with it
    services.registry.mark_succeeded(asset.asset_id, moment_count=request.indexed.indexed)
    return TerminalResult(status="SUCCEEDED")


def _describe(services: Services, asset: AssetRef, failure: FailureInfo) -> str:
    if failure.error == UnsupportedMediaError.error_name:
        stored = services.registry.get(asset.asset_id)
        probe = stored.metadata if stored else {}
        kind = f"{probe.get('mime_type', 'unknown')} ({probe.get('extension') or 'no extension'})"
        return f"unsupported media type: {kind}; this pipeline has no analysis branch for it yet"
    if failure.error in ("States.Timeout", "States.HeartbeatTimeout"):
        stored = services.registry.get(asset.asset_id)
        stage = stored.stage if stored else None
        return f"step {stage or 'unknown'} timed out ({failure.error}); no worker answered in time"
    return failure.cause or failure.error


def mark_failed(services: Services, asset: AssetRef, request: MarkFailedInput) -> TerminalResult:
    failure = request.error
    reason = _describe(services, asset, failure)
    stored = services.registry.mark_failed(asset.asset_id, failure.error, reason)
    services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="workflow-error", detail=failure.error))
    settle_revisions(services, asset.source.bucket, asset.source.key)  # an object removed meanwhile goes
    return TerminalResult(status="FAILED", reason=stored.error_reason)
