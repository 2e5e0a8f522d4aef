"""The embedded profile's S3: ``<root>/<bucket>/<key>``, atomic writes, S3-style ETags; user
metadata beside the tree in ``<root>/.metadata/<bucket>/<key>.json`` (no bucket name starts with
a dot, so it is never listed as one)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from medialens.adapters.storage.base import BlobStore, ObjectInfo, parse_uri

ObjectCreatedHook = Callable[[ObjectInfo], None]
ObjectRemovedHook = Callable[[str], None]  # the removed object's s3:// URI


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FilesystemBlobStore(BlobStore):
    """A directory per bucket. ``on_created`` and ``on_removed`` play S3's event notifications."""

    def __init__(
        self, root: Path, on_created: ObjectCreatedHook | None = None, on_removed: ObjectRemovedHook | None = None
    ) -> None:
        self.root = root
        self.on_created = on_created
        self.on_removed = on_removed

    def path_for(self, uri: str) -> Path:
        bucket, key = parse_uri(uri)
        parts = [bucket, *key.split("/")]
        if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
            raise ValueError(f"unsafe object key: {uri!r}")
        return self.root.joinpath(*parts)

    def _metadata_path(self, uri: str) -> Path:
        path = self.path_for(uri)
        return self.root / ".metadata" / path.relative_to(self.root).parent / f"{path.name}.json"

    def _metadata(self, uri: str) -> dict[str, str]:
        try:
            stored = json.loads(self._metadata_path(uri).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return {str(name): str(value) for name, value in stored.items()} if isinstance(stored, dict) else {}

    def _info(self, uri: str, path: Path, metadata: bool = True) -> ObjectInfo:
        bucket, key = parse_uri(uri)
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=path.stat().st_size,
            etag=_md5_file(path),
            metadata=self._metadata(uri) if metadata else {},
        )

    def _commit(self, uri: str, write: Callable[[Path], None], metadata: Mapping[str, str] | None) -> ObjectInfo:
        target = self.path_for(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Metadata first: whoever sees the object (the created hook, admission) sees its metadata.
        sidecar = self._metadata_path(uri)
        if metadata:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            sidecar.write_text(json.dumps({name.lower(): value for name, value in metadata.items()}), encoding="utf-8")
        else:
            sidecar.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            write(tmp)
            tmp.replace(target)  # atomic: a reader sees the old object or the new one, never half
        finally:
            tmp.unlink(missing_ok=True)
        info = self._info(uri, target)
        if self.on_created is not None:
            self.on_created(info)
        return info

    def put_bytes(
        self, uri: str, data: bytes, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        def write(tmp: Path) -> None:
            tmp.write_bytes(data)

        return self._commit(uri, write, metadata)

    def put_file(
        self, uri: str, path: Path, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        def write(tmp: Path) -> None:
            shutil.copyfile(path, tmp)

        return self._commit(uri, write, metadata)

    def get_bytes(self, uri: str) -> bytes:
        return self._existing(uri).read_bytes()

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        with self._existing(uri).open("rb") as fh:
            fh.seek(start)
            return fh.read(length)

    def download(self, uri: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._existing(uri), path)
        return path

    @contextmanager
    def local_file(self, uri: str) -> Iterator[Path]:
        yield self._existing(uri)  # already a file: no copy

    def head(self, uri: str) -> ObjectInfo | None:
        path = self.path_for(uri)
        return self._info(uri, path) if path.is_file() else None

    def _paths(self, uri_prefix: str) -> Iterator[tuple[str, str, Path]]:
        bucket, prefix = parse_uri(uri_prefix if "/" in uri_prefix[5:] else uri_prefix + "/")
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            return
        for path in sorted(bucket_dir.rglob("*")):
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            key = path.relative_to(bucket_dir).as_posix()
            if key.startswith(prefix):
                yield bucket, key, path

    def list_objects(self, uri_prefix: str) -> Iterator[ObjectInfo]:
        for bucket, key, path in self._paths(uri_prefix):
            yield self._info(f"s3://{bucket}/{key}", path, metadata=False)  # as S3's listings

    def list_keys(self, uri_prefix: str) -> Iterator[str]:
        return (key for _, key, _ in self._paths(uri_prefix))  # no ETag: no file is hashed

    def delete(self, uri: str) -> bool:
        path = self.path_for(uri)
        if not path.is_file():
            return False
        path.unlink(missing_ok=True)
        self._metadata_path(uri).unlink(missing_ok=True)
        if self.on_removed is not None:
            self.on_removed(uri)
        return True

    def delete_prefix(self, uri_prefix: str) -> int:
        removed = 0
        for bucket, key, _ in list(self._paths(uri_prefix)):
            removed += self.delete(f"s3://{bucket}/{key}")
        return removed

    def _existing(self, uri: str) -> Path:
        path = self.path_for(uri)
        if not path.is_file():
            raise FileNotFoundError(f"no such object: {uri}")
        return path
