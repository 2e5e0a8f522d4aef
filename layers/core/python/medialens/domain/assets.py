"""Assets: one per source object revision, with its status, error reason and stage timings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from medialens.domain.quality import AssetQuality


def utcnow() -> datetime:
    return datetime.now(UTC)


class MediaType(StrEnum):
    DOCUMENT = "document"
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"
    UNKNOWN = "unknown"


class AssetStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (AssetStatus.SUCCEEDED, AssetStatus.FAILED)


# S3 user metadata (x-amz-meta-medialens-*) that asks for optional analyses of one upload.
NARRATE_METADATA = "medialens-narrate"
LANGUAGE_METADATA = "medialens-language"
_TRUE = frozenset({"true", "1", "yes", "on"})
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


class UploadOptions(BaseModel):
    """What the uploader asked for beyond the default analysis, read from the object's metadata."""

    narrate: bool = Field(default=False, description="Documents: also narrate the text (audio + speech marks).")
    language: str | None = Field(
        default=None,
        description="The spoken language (ISO 639-1), when the uploader knows it: speech is transcribed in it "
        "instead of identifying it.",
    )

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        if value is not None and not LANGUAGE_CODE.match(value):
            raise ValueError(f"language must be an ISO 639-1 code such as 'sv', not {value!r}")
        return value

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> UploadOptions:
        # A malformed hint is ignored rather than failing the upload: the language is then identified.
        language = metadata.get(LANGUAGE_METADATA, "").strip().lower()
        return cls(
            narrate=metadata.get(NARRATE_METADATA, "").strip().lower() in _TRUE,
            language=language if LANGUAGE_CODE.match(language) else None,
        )

    def as_metadata(self) -> dict[str, str]:
        metadata = {NARRATE_METADATA: "true"} if self.narrate else {}
        return metadata | ({LANGUAGE_METADATA: self.language} if self.language else {})

    @property
    def fingerprint(self) -> str:
        """ "" for the defaults; otherwise what sets this analysis apart from the default one."""
        return ("+narrate" if self.narrate else "") + (f"+language={self.language}" if self.language else "")


class SourceObject(BaseModel):
    """Where the asset came from: the drop-bucket object and the revision that was analysed."""

    bucket: str
    key: str
    etag: str
    size: int = Field(ge=0)
    version_id: str | None = None
    options: UploadOptions = Field(default_factory=UploadOptions)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def revision(self) -> str:
        """The object revision and the options it was uploaded with: the same bytes uploaded again
        with other options are another analysis, so another asset."""
        return (self.version_id or self.etag) + self.options.fingerprint


class StageTiming(BaseModel):
    stage: str
    batch_size: int = Field(default=1, ge=1, description="Messages the call served (heavy steps batch across assets).")
    shared_by: int = Field(
        default=1, ge=1, description="Calls of the step the worker ran side by side, this one included (they share it)."
    )
    started_at: datetime
    ended_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def worker_seconds(self) -> float | None:
        """This asset's share of the worker's time: the call's seconds over the messages it
        served and the calls that ran beside it."""
        seconds = self.seconds
        return None if seconds is None else seconds / (self.batch_size * self.shared_by)


class Asset(BaseModel):
    asset_id: str
    source: SourceObject
    status: AssetStatus = AssetStatus.QUEUED
    media_type: MediaType | None = None
    error_code: str | None = None
    error_reason: str | None = None
    stage: str | None = Field(default=None, description="The stage running now, or the one that failed.")
    timings: list[StageTiming] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict, description="What probe found.")
    artifacts: dict[str, str] = Field(default_factory=dict, description="Artifact name -> s3:// URI.")
    content_sha256: str | None = Field(default=None, description="SHA-256 of the object's bytes (hex).")
    analysis_key: str | None = Field(
        default=None,
        description="What the analysis depends on (content, pipeline version, upload options, analysis settings, "
        "model versions), hashed: an asset that SUCCEEDED under the same key made everything this one would.",
    )
    reused_from: str | None = Field(
        default=None, description="The asset whose analysis was copied instead of analysing again (same key)."
    )
    moment_count: int = 0
    quality: AssetQuality = Field(
        default_factory=AssetQuality, description="What the models said of their work: confidence, drift inputs."
    )
    warnings: list[str] = Field(
        default_factory=list, description="What a person should look at although the analysis succeeded."
    )
    pipeline_version: str
    execution_name: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    row_version: int = Field(default=0, description="Optimistic-concurrency token of the registry row.")

    def stage_seconds(self) -> dict[str, float]:
        """Total seconds per stage; a stage run several times (Map, retries) adds up."""
        totals: dict[str, float] = {}
        for timing in self.timings:
            if timing.seconds is not None:
                totals[timing.stage] = totals.get(timing.stage, 0.0) + timing.seconds
        return totals

    @property
    def elapsed_seconds(self) -> float:
        return (self.updated_at - self.created_at).total_seconds()


class AuditEvent(BaseModel):
    asset_id: str
    kind: str
    detail: str = ""
    at: datetime = Field(default_factory=utcnow)
