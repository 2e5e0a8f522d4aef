"""Admission: an "Object Created" event becomes one asset and one execution.

The asset id comes from bucket, key and revision, and the execution is named by asset id and
pipeline version, so a duplicate S3 event, a redelivered SQS message or a re-run ingest can
never start a second analysis of the same object revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel, S3Model
from botocore.exceptions import ClientError

from medialens import aws
from medialens.adapters.storage.base import ObjectInfo
from medialens.domain.assets import Asset, AuditEvent, SourceObject
from medialens.domain.steps import AssetRef, ExecutionInput
from medialens.ids import asset_id_for, execution_name_for
from medialens.observability import get_logger
from medialens.services import Services

logger = get_logger("medialens-ingest")


class Admission(StrEnum):
    STARTED = "started"  # new asset, execution started
    RESUMED = "resumed"  # known asset not yet terminal: its execution was (re)started
    DUPLICATE = "duplicate"  # known asset already finished: nothing to do
    IGNORED = "ignored"  # not an object under the drop prefix (a folder marker, another prefix)
    GONE = "gone"  # the object was deleted before admission


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None


def _version(version_id: str | None) -> str | None:
    return None if version_id in (None, "null") else version_id  # "null": an unversioned bucket


def parse_object_created(body: str) -> list[ObjectCreated]:
    """EventBridge "Object Created" events and classic S3 notifications (keys URL-encoded), read
    with Powertools' parser models; ``ValueError`` (pydantic's ValidationError is one) for
    anything else."""
    event: dict[str, Any] = json.loads(body)
    if event.get("Event") == "s3:TestEvent":  # S3's check that a notification target works
        return []
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        detail = S3EventNotificationEventBridgeModel.model_validate(event).detail
        obj = detail.object
        # Emitters disagree on the ETag's key (etag, eTag): admission heads the object for it anyway.
        etag = obj.etag or event["detail"]["object"].get("eTag") or None
        size = None if obj.size is None else int(obj.size)
        return [ObjectCreated(detail.bucket.name, obj.key, size, etag, _version(obj.version_id))]
    if "Records" in event:
        return [
            ObjectCreated(
                record.s3.bucket.name,
                unquote_plus(record.s3.object.key),
                None if record.s3.object.size is None else int(record.s3.object.size),
                record.s3.object.eTag,
                _version(record.s3.object.versionId),
            )
            for record in S3Model.model_validate(event).Records
            if record.eventName.startswith("ObjectCreated") and record.s3.object is not None
        ]
    raise ValueError("not an S3 Object Created event")


def _resolve(services: Services, event: ObjectCreated) -> ObjectInfo | None:
    """The authoritative size/ETag, and the real key: some emitters URL-encode keys, some do not."""
    for key in dict.fromkeys([event.key, unquote_plus(event.key)]):
        info = services.blobs.head(f"s3://{event.bucket}/{key}")
        if info is not None:
            return ObjectInfo(info.bucket, info.key, info.size, info.etag, event.version_id or info.version_id)
    return None


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


def asset_for_object(services: Services, info: ObjectInfo) -> Asset:
    """A new QUEUED asset for an object revision, with its deterministic id and execution name."""
    source = SourceObject(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size, version_id=info.version_id)
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
