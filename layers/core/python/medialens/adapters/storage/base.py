"""The blob-store interface. Every address is ``s3://bucket/key`` in both profiles, so artifacts
and messages look the same locally and on AWS."""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None = None
    # The object's user metadata (S3's x-amz-meta-*, names lower-case); listings leave it empty.
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)``. Split as text, not parsed as a URL: a key may hold any character, and
    URL parsing would drop tabs and newlines and cut the key at ``?`` or ``#``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key.lstrip("/")


def join_uri(bucket: str, *parts: str) -> str:
    key = "/".join(p.strip("/") for p in parts if p)
    return f"s3://{bucket}/{key}"


class BlobStore(ABC):
    @abstractmethod
    def put_bytes(
        self, uri: str, data: bytes, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo: ...

    @abstractmethod
    def put_file(
        self, uri: str, path: Path, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo: ...

    @abstractmethod
    def get_bytes(self, uri: str) -> bytes: ...

    @abstractmethod
    def read_range(self, uri: str, start: int, length: int) -> bytes:
        """Bytes [start, start+length): probes read a file's head without fetching it whole."""

    @abstractmethod
    def download(self, uri: str, path: Path) -> Path: ...

    @abstractmethod
    def head(self, uri: str) -> ObjectInfo | None:
        """The object's size, ETag, version and user metadata; None if there is none."""

    @abstractmethod
    def list_objects(self, uri_prefix: str) -> Iterator[ObjectInfo]: ...

    def list_keys(self, uri_prefix: str) -> Iterator[str]:
        """The keys under a prefix, without what it costs a store to describe each object."""
        return (info.key for info in self.list_objects(uri_prefix))

    @abstractmethod
    def delete_prefix(self, uri_prefix: str) -> int: ...

    @abstractmethod
    def delete(self, uri: str) -> bool:
        """Removes one object; False if there was none."""

    @contextmanager
    def local_file(self, uri: str) -> Iterator[Path]:
        """A local path holding the object for the duration of the block (decoders want files).
        Stores whose objects are already files hand out the file itself; others download it."""
        with tempfile.TemporaryDirectory(prefix="medialens-") as tmp:
            name = PurePosixPath(parse_uri(uri)[1]).name or "object"
            yield self.download(uri, Path(tmp) / name)

    def copy(self, source_uri: str, target_uri: str) -> ObjectInfo:
        """A copy of one object under another name (stores that can, copy without moving the
        bytes through this process). Raises FileNotFoundError when the source is gone."""
        with self.local_file(source_uri) as path:
            return self.put_file(target_uri, path)

    def put_text(self, uri: str, text: str, content_type: str = "application/json") -> ObjectInfo:
        return self.put_bytes(uri, text.encode("utf-8"), content_type)

    def get_text(self, uri: str) -> str:
        return self.get_bytes(uri).decode("utf-8")
