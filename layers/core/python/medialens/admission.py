"""Admission: the events that change what the drop bucket holds, and those that say a workflow
ended without recording its outcome.

- "Object Created" becomes one asset and one execution. The asset id comes from bucket, key and
  revision, and the execution is named by asset id and pipeline version, so a duplicate S3
  event, a redelivered SQS message or a re-run ingest can never start a second analysis of the
  same object revision.
- "Object Deleted" removes the key's assets that are no longer its current revision, with their
  moments and artifacts (``revisions``).
- A Step Functions execution that FAILED, TIMED_OUT or was ABORTED marks its asset FAILED when
  the workflow's own MarkFailed step did not (an execution-level timeout skips every Catch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, S3Model
from botocore.exceptions import ClientError

from medialens import aws
from medialens.adapters.storage.base import ObjectInfo
from medialens.domain.assets import Asset, AuditEvent, SourceObject, UploadOptions
from medialens.domain.steps import AssetRef, ExecutionInput
from medialens.ids import asset_id_for, execution_name_for
from medialens.observability import get_logger
from medialens.revisions import remove_object, settle_revisions
from medialens.services import Services
from medialens.settings import Settings

logger = get_logger("medialens-ingest")


class Admission(StrEnum):
    STARTED = "started"  # new asset, execution started
    RESUMED = "resumed"  # known asset not yet terminal: its execution was (re)started
    DUPLICATE = "duplicate"  # known asset already finished: nothing to do
    IGNORED = "ignored"  # not an object under the drop prefix (a folder marker, another prefix)
    GONE = "gone"  # the object was deleted before admission
    REMOVED = "removed"  # an object was deleted: its assets went with it
    WORKFLOW_ENDED = "workflow-ended"  # an execution ended badly: its asset was marked FAILED


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectRemoved:
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class ExecutionEnded:
    execution_name: str
    status: str  # FAILED, TIMED_OUT or ABORTED
    asset_id: str | None
    error: str | None = None
    cause: str | None = None


AdmissionEvent = ObjectCreated | ObjectRemoved | ExecutionEnded

DROP_EVENT_TYPES = ("Object Created", "Object Deleted")
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
FAILED_EXECUTION_STATES = ("FAILED", "TIMED_OUT", "ABORTED")


def drop_event_pattern(settings: Settings) -> dict[str, Any]:
    """The EventBridge rule that brings the drop bucket's changes to the ingest queue (CDK and the
    local provisioning declare the same rule)."""
    return {
        "source": ["aws.s3"],
        "detail-type": list(DROP_EVENT_TYPES),
        "detail": {"bucket": {"name": [settings.drop_bucket]}, "object": {"key": [{"prefix": settings.drop_prefix}]}},
    }


def execution_end_pattern(state_machine_arn: str) -> dict[str, Any]:
    """The EventBridge rule for executions that ended without success."""
    return {
        "source": ["aws.states"],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {"stateMachineArn": [state_machine_arn], "status": list(FAILED_EXECUTION_STATES)},
    }


def _version(version_id: str | None) -> str | None:
    return None if version_id in (None, "null") else version_id  # "null": an unversioned bucket


def _asset_of_execution(detail: dict[str, Any]) -> str | None:
    """The asset an execution analysed: from its input, else from its name (which starts with it)."""
    try:
        return ExecutionInput.model_validate_json(detail.get("input") or "").asset.asset_id
    except ValueError:
        name = str(detail.get("name") or "")
        return name.split("-p", 1)[0] or None


def _classic_records(event: dict[str, Any]) -> list[AdmissionEvent]:
    events: list[AdmissionEvent] = []
    for record in S3Model.model_validate(event).Records:
        obj = record.s3.object
        if obj is None:
            continue
        key, version = unquote_plus(obj.key), _version(obj.versionId)
        if record.eventName.startswith("ObjectCreated"):
            size = None if obj.size is None else int(obj.size)
            events.append(ObjectCreated(record.s3.bucket.name, key, size, obj.eTag, version))
        elif record.eventName.startswith("ObjectRemoved"):
            events.append(ObjectRemoved(record.s3.bucket.name, key))
    return events


def parse_events(body: str) -> list[AdmissionEvent]:
    """EventBridge "Object Created"/"Object Deleted" and classic S3 notifications (keys
    URL-encoded), read with Powertools' parser models, and Step Functions status changes;
    ``ValueError`` (pydantic's ValidationError is one) for anything else."""
    event: dict[str, Any] = json.loads(body)
    if event.get("Event") == "s3:TestEvent":  # S3's check that a notification target works
        return []
    kind = event.get("detail-type")
    if event.get("source") == "aws.s3" and kind in DROP_EVENT_TYPES:
        detail = S3EventNotificationEventBridgeModel.model_validate(event).detail
        obj = detail.object
        if kind == "Object Deleted":
            return [ObjectRemoved(detail.bucket.name, obj.key)]
        # Emitters disagree on the ETag's key (etag, eTag): admission heads the object for it anyway.
        etag = obj.etag or event["detail"]["object"].get("eTag") or None
        size = None if obj.size is None else int(obj.size)
        return [ObjectCreated(detail.bucket.name, obj.key, size, etag, _version(obj.version_id))]
    if event.get("source") == "aws.states" and kind == EXECUTION_STATUS_CHANGE:
        detail = event["detail"]
        status = str(detail["status"])
        if status not in FAILED_EXECUTION_STATES:
            return []
        return [
            ExecutionEnded(
                str(detail["name"]), status, _asset_of_execution(detail), detail.get("error"), detail.get("cause")
            )
        ]
    if "Records" in event:
        return _classic_records(event)
    raise ValueError("not an S3 object event or a Step Functions execution status change")


def _resolve(services: Services, event: ObjectCreated) -> ObjectInfo | None:
    """The authoritative size/ETag, and the real key: some emitters URL-encode keys, some do not.
    Read now, so a late event for a revision already replaced admits the current one."""
    for key in dict.fromkeys([event.key, unquote_plus(event.key)]):
        info = services.blobs.head(f"s3://{event.bucket}/{key}")
        if info is not None:
            return replace(info, version_id=event.version_id or info.version_id)
    return None


def handle(services: Services, event: AdmissionEvent) -> tuple[Admission, str | None]:
    """One admission event: what it did, and the asset it concerned."""
    match event:
        case ObjectCreated():
            return admit(services, event)
        case ObjectRemoved():
            removed = remove_object(services, event.bucket, event.key)
            return Admission.REMOVED, ",".join(removed) or None
        case ExecutionEnded():
            marked = record_execution_end(services, event)
            return (Admission.WORKFLOW_ENDED if marked else Admission.DUPLICATE), event.asset_id


def record_execution_end(services: Services, event: ExecutionEnded) -> bool:
    """Marks the asset FAILED when the execution that ended is its current one and it is not
    terminal yet (MarkFailed ran otherwise); True if it did."""
    if event.asset_id is None:
        return False
    asset = services.registry.get(event.asset_id)
    if asset is None or asset.status.terminal or asset.execution_name != event.execution_name:
        return False
    error = event.error or f"States.{event.status.title().replace('_', '')}"
    reason = f"the workflow {event.status.lower().replace('_', ' ')} before recording an outcome"
    if event.cause or event.error:
        reason += f": {' '.join(p for p in (event.error, event.cause) if p)}"
    services.registry.mark_failed(asset.asset_id, error, reason)
    services.registry.add_event(AuditEvent(asset_id=asset.asset_id, kind="workflow-ended", detail=event.status))
    settle_revisions(services, asset.source.bucket, asset.source.key)
    return True


def admit(services: Services, event: ObjectCreated) -> tuple[Admission, str | None]:
    settings = services.settings
    if event.key.endswith("/") or not event.key.startswith(settings.drop_prefix):
        return Admission.IGNORED, None
    info = _resolve(services, event)
    if info is None:
        logger.warning("object gone before admission", extra={"bucket": event.bucket, "key": event.key})
        return Admission.GONE, None
    asset, created = services.registry.create_if_absent(asset_for_object(services, info))
    asset_id = asset.asset_id
    if not created and asset.status.terminal:
        return Admission.DUPLICATE, asset_id
    if created:
        services.registry.add_event(AuditEvent(asset_id=asset_id, kind="queued", detail=asset.source.uri))
    start_execution(services, asset)
    return (Admission.STARTED if created else Admission.RESUMED), asset_id


def source_of(info: ObjectInfo) -> SourceObject:
    """The revision of an object as an asset records it, with the options its metadata asks for."""
    return SourceObject(
        bucket=info.bucket,
        key=info.key,
        etag=info.etag,
        size=info.size,
        version_id=info.version_id,
        options=UploadOptions.from_metadata(info.metadata),
    )


def asset_id_of(info: ObjectInfo) -> str:
    """The asset an object revision (as HEAD describes it) becomes."""
    source = source_of(info)
    return asset_id_for(source.bucket, source.key, source.revision)


def asset_for_object(services: Services, info: ObjectInfo) -> Asset:
    """A new QUEUED asset for an object revision, with its deterministic id and execution name."""
    source = source_of(info)
    asset_id = asset_id_for(source.bucket, source.key, source.revision)
    version = services.settings.pipeline_version
    return Asset(
        asset_id=asset_id,
        source=source,
        pipeline_version=version,
        execution_name=execution_name_for(asset_id, version),
    )


def asset_for_event(services: Services, event: ObjectCreated) -> Asset:
    """The asset an event names, from the object itself when it still exists."""
    info = _resolve(services, event) or ObjectInfo(
        event.bucket, event.key, event.size or 0, (event.etag or "unknown").strip('"'), event.version_id
    )
    return asset_for_object(services, info)


def execution_arn(services: Services, execution_name: str) -> str:
    machine = services.state_machine_arn
    return machine.replace(":stateMachine:", ":execution:") + f":{execution_name}"


def start_execution(services: Services, asset: Asset) -> bool:
    """Starts the asset's execution; an existing one with that name counts as started."""
    assert asset.execution_name is not None
    payload = ExecutionInput(
        asset=AssetRef(asset_id=asset.asset_id, source=asset.source, pipeline_version=asset.pipeline_version)
    )
    try:
        aws.stepfunctions(services.settings).start_execution(
            stateMachineArn=services.state_machine_arn,
            name=asset.execution_name,
            input=payload.model_dump_json(),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise
    services.registry.add_event(
        AuditEvent(asset_id=asset.asset_id, kind="execution-started", detail=asset.execution_name)
    )
    return True
