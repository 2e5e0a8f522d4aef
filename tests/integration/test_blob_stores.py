"""Both blob stores pass the same behaviour tests: the directory tree and S3 (moto)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from medialens.adapters.storage.base import BlobStore, ObjectInfo, parse_uri
from medialens.adapters.storage.filesystem import FilesystemBlobStore
from medialens.adapters.storage.s3 import S3BlobStore

pytestmark = pytest.mark.integration


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "filesystem":
        yield FilesystemBlobStore(tmp_path / "blobs")
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="bucket")
        yield S3BlobStore(client)


def test_round_trip_with_s3_style_etags(store: BlobStore, tmp_path: Path) -> None:
    info = store.put_bytes("s3://bucket/a/b.txt", b"hello world", "text/plain")
    assert info == ObjectInfo("bucket", "a/b.txt", 11, hashlib.md5(b"hello world").hexdigest(), info.version_id)
    assert store.get_bytes("s3://bucket/a/b.txt") == b"hello world"
    assert store.read_range("s3://bucket/a/b.txt", 6, 100) == b"world"
    assert store.head("s3://bucket/a/b.txt") == info
    source = tmp_path / "upload.bin"
    source.write_bytes(b"\x00" * 1000)
    assert store.put_file("s3://bucket/a/c.bin", source).size == 1000
    assert store.download("s3://bucket/a/c.bin", tmp_path / "out" / "c.bin").read_bytes() == b"\x00" * 1000


def test_missing_objects(store: BlobStore) -> None:
    assert store.head("s3://bucket/nope") is None
    with pytest.raises(FileNotFoundError):
        store.get_bytes("s3://bucket/nope")


def test_empty_object_reads_empty(store: BlobStore) -> None:
    store.put_bytes("s3://bucket/empty.txt", b"")
    assert store.head("s3://bucket/empty.txt").size == 0  # type: ignore[union-attr]
    assert store.read_range("s3://bucket/empty.txt", 0, 1024) == b""


def test_list_and_delete_by_prefix(store: BlobStore) -> None:
    for key in ("derived/a1/x.json", "derived/a1/y/z.json", "derived/a2/x.json"):
        store.put_text(f"s3://bucket/{key}", "{}")
    assert sorted(i.key for i in store.list_objects("s3://bucket/derived/a1/")) == [
        "derived/a1/x.json",
        "derived/a1/y/z.json",
    ]
    assert store.delete_prefix("s3://bucket/derived/a1/") == 2
    assert [i.key for i in store.list_objects("s3://bucket/derived/")] == ["derived/a2/x.json"]


def test_filesystem_store_rejects_escaping_keys(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    for bad in ("s3://bucket/../etc/passwd", "s3://bucket/a/../../b", "s3://bucket/a//b"):
        with pytest.raises(ValueError, match="unsafe"):
            store.put_bytes(bad, b"x")


def test_filesystem_store_notifies_created_objects(tmp_path: Path) -> None:
    created: list[ObjectInfo] = []
    store = FilesystemBlobStore(tmp_path / "blobs", on_created=created.append)
    store.put_bytes("s3://drop/incoming/x.txt", b"x")
    assert [c.key for c in created] == ["incoming/x.txt"]


def test_parse_uri_rejects_other_schemes() -> None:
    assert parse_uri("s3://b/k/e/y") == ("b", "k/e/y")
    with pytest.raises(ValueError, match="not an s3"):
        parse_uri("file:///tmp/x")


def test_keys_keep_every_character_a_url_would_drop_or_cut(store: BlobStore) -> None:
    """S3 keys may hold any character: tab, newline, ? and # must neither vanish nor end the key,
    or two files would land on one object."""
    keys = ["in/a\tb.txt", "in/a\nb.txt", "in/ab.txt", "in/report?v=2.txt", "in/notes#1.txt"]
    for number, key in enumerate(keys):
        store.put_bytes(f"s3://bucket/{key}", str(number).encode())
    for number, key in enumerate(keys):
        assert store.get_bytes(f"s3://bucket/{key}") == str(number).encode(), key
    assert sorted(store.list_keys("s3://bucket/in/")) == sorted(keys)
    assert sorted(info.key for info in store.list_objects("s3://bucket/in/")) == sorted(keys)
    assert parse_uri("s3://bucket/in/a\tb.txt") == ("bucket", "in/a\tb.txt")
