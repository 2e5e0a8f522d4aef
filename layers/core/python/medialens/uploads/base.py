"""The upload desk: one base class owning the rules (which names and types, how large, which key),
and a backend per profile for how the bytes travel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medialens.adapters.storage.base import BlobStore, join_uri, parse_uri
from medialens.admission import asset_id_of
from medialens.domain.assets import MediaType, UploadOptions, utcnow
from medialens.media.detection import content_type_for, extensions_for
from medialens.settings import Settings
from medialens.uploads.exceptions import (
    UnsupportedUploadError,
    UploadIncompleteError,
    UploadRefusedError,
    UploadTooLargeError,
)

# Uploads land under <drop prefix>uploads/<file name>: the same name again is a new revision of
# the same file (it supersedes the earlier analysis once it succeeds), as a re-upload to S3 is.
UPLOADS_FOLDER = "uploads"
MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
MAX_NAME_CHARS = 255


def upload_name(name: str) -> str | None:
    """The file name an upload is stored under: its last path part, without control characters;
    None when nothing usable is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    if cleaned in ("", ".", "..") or cleaned.startswith("."):
        return None
    return cleaned[:MAX_NAME_CHARS]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UploadRequest(_Model):
    """A file the uploader is about to send."""

    name: str = Field(min_length=1, max_length=1024, description="The file's name; only its last part is kept.")
    size: int = Field(ge=1, description="The file's size in bytes: the ticket admits exactly this many.")
    options: UploadOptions = Field(default_factory=UploadOptions, description="Analysis beyond the default.")


class PartLink(_Model):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    url: str = Field(description="PUT the part's bytes here; keep the ETag header of the answer.")


class UploadTicket(_Model):
    """Where and how to send one file's bytes.

    PUT: send the file to ``url`` with ``headers``. POST: a form POST to ``url`` with ``fields``
    first and the file last (field ``file``). MULTIPART: PUT bytes ``[(n-1)*part_size, n*part_size)``
    to each part's URL, then complete with every part's ETag (or abort). Always finish with
    ``POST /uploads/complete``: it confirms the object and names the asset it becomes.
    """

    key: str = Field(description="The drop-bucket key the file lands under.")
    method: Literal["PUT", "POST", "MULTIPART"]
    url: str | None = Field(default=None, description="PUT and POST: where to send the file.")
    fields: dict[str, str] = Field(default_factory=dict, description="POST: the form fields, in this order.")
    headers: dict[str, str] = Field(default_factory=dict, description="PUT: headers to send with the bytes.")
    upload_id: str | None = Field(default=None, description="MULTIPART: the upload to complete or abort.")
    part_size: int | None = Field(default=None, description="MULTIPART: bytes per part (the last may be shorter).")
    parts: list[PartLink] = Field(default_factory=list, description="MULTIPART: one presigned URL per part.")
    expires_at: datetime = Field(description="The URLs stop working after this.")


class CompletedPart(_Model):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=128, description="The ETag header S3 answered the part's PUT with.")


class UploadCompletion(_Model):
    key: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=1, description="The size announced when the ticket was asked for.")
    upload_id: str | None = Field(default=None, max_length=1024, description="MULTIPART tickets only.")
    parts: list[CompletedPart] = Field(default_factory=list, max_length=MAX_PARTS)


class UploadAbort(_Model):
    key: str = Field(min_length=1, max_length=1024)
    upload_id: str = Field(min_length=1, max_length=1024)


class UploadedObject(_Model):
    """A file that arrived: the pipeline admits it on its own (its object-created event)."""

    key: str
    size: int
    etag: str
    asset_id: str = Field(description="The asset this revision becomes: poll GET /assets/{asset_id}.")


class UploadDesk(ABC):
    """Issues upload tickets into the drop bucket and completes them. Subclasses decide how the
    bytes travel; the rules (accepted types, size limit, key) are the same for all."""

    def __init__(self, settings: Settings, blobs: BlobStore) -> None:
        self.settings = settings
        self.blobs = blobs

    @property
    def folder(self) -> str:
        """The key prefix uploads land under (``incoming/uploads/``)."""
        return parse_uri(join_uri(self.settings.drop_bucket, self.settings.drop_prefix, UPLOADS_FOLDER))[1] + "/"

    def key_for(self, name: str) -> str:
        return self.folder + name

    def accepted(self, name: str, size: int) -> tuple[str, str]:
        """(stored name, content type) of a file the desk takes; refuses any other."""
        stored = upload_name(name)
        if stored is None:
            raise UploadRefusedError("the file needs a name (not hidden, not a folder)")
        content_type = content_type_for(stored)
        if content_type is None:
            kinds = ", ".join(extensions_for(*MediaType))
            raise UnsupportedUploadError(f"{stored}: not a kind of file medialens analyses; it takes {kinds}")
        limit = self.settings.upload_max_bytes
        if size > limit:
            raise UploadTooLargeError(f"{stored} is {size:,} bytes; uploads are at most {limit:,} bytes")
        return stored, content_type

    def open(self, request: UploadRequest) -> UploadTicket:
        name, content_type = self.accepted(request.name, request.size)
        expires_at = utcnow() + timedelta(seconds=self.settings.upload_presign_seconds)
        return self._ticket(self.key_for(name), content_type, request.size, request.options, expires_at)

    def complete(self, completion: UploadCompletion) -> UploadedObject:
        self._check_key(completion.key)
        if completion.upload_id is not None:
            if not completion.parts:
                raise UploadIncompleteError("a multipart upload completes with the ETag of every part")
            self._finish_parts(completion.key, completion.upload_id, completion.parts)
        info = self.blobs.head(join_uri(self.settings.drop_bucket, completion.key))
        if info is None:
            raise UploadIncompleteError(f"nothing arrived at {completion.key}: send the file before completing")
        if info.size != completion.size:
            raise UploadIncompleteError(
                f"{completion.key} holds {info.size:,} bytes, not the {completion.size:,} announced: upload it again"
            )
        return UploadedObject(key=info.key, size=info.size, etag=info.etag, asset_id=asset_id_of(info))

    def abort(self, abort: UploadAbort) -> None:
        self._check_key(abort.key)
        self._abort_parts(abort.key, abort.upload_id)

    def _check_key(self, key: str) -> None:
        """Only keys this desk hands out: completing is not a way to touch other objects."""
        name = key[len(self.folder) :] if key.startswith(self.folder) else ""
        if not name or upload_name(name) != name:
            raise UploadRefusedError(f"{key} is not an upload key (they start with {self.folder})")

    @abstractmethod
    def _ticket(
        self, key: str, content_type: str, size: int, options: UploadOptions, expires_at: datetime
    ) -> UploadTicket: ...

    @abstractmethod
    def _finish_parts(self, key: str, upload_id: str, parts: list[CompletedPart]) -> None: ...

    @abstractmethod
    def _abort_parts(self, key: str, upload_id: str) -> None: ...
