"""The AWS blob store: plain boto3 S3 calls (managed transfers for whole files)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from medialens.adapters.storage.base import BlobStore, ObjectInfo, parse_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3BlobStore(BlobStore):
    def __init__(self, s3: S3Client) -> None:
        self.s3 = s3

    def _put_kwargs(self, content_type: str | None, metadata: Mapping[str, str] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if metadata:
            kwargs["Metadata"] = dict(metadata)
        return kwargs

    def put_bytes(
        self, uri: str, data: bytes, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        bucket, key = parse_uri(uri)
        response = self.s3.put_object(Bucket=bucket, Key=key, Body=data, **self._put_kwargs(content_type, metadata))
        etag = response["ETag"].strip('"')
        return ObjectInfo(bucket, key, len(data), etag, response.get("VersionId"), dict(metadata or {}))

    def put_file(
        self, uri: str, path: Path, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        bucket, key = parse_uri(uri)
        extra = self._put_kwargs(content_type, metadata)
        self.s3.upload_file(str(path), bucket, key, ExtraArgs=extra or None)
        info = self.head(uri)
        if info is None:
            raise FileNotFoundError(f"upload of {uri} did not land")
        return info

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = parse_uri(uri)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if _not_found(error):
                raise FileNotFoundError(f"no such object: {uri}") from error
            raise

    def copy(self, source_uri: str, target_uri: str) -> ObjectInfo:
        # Server-side, type and metadata kept (CopyObject: up to 5 GB; artifacts are far smaller).
        source_bucket, source_key = parse_uri(source_uri)
        bucket, key = parse_uri(target_uri)
        try:
            self.s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": source_key})
        except ClientError as error:
            if _not_found(error):
                raise FileNotFoundError(f"no such object: {source_uri}") from error
            raise
        info = self.head(target_uri)
        if info is None:
            raise FileNotFoundError(f"copy to {target_uri} did not land")
        return info

    def read_range(self, uri: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        bucket, key = parse_uri(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")["Body"]
            return body.read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""  # asking past the end of a (possibly empty) object
            if _not_found(error):
                raise FileNotFoundError(f"no such object: {uri}") from error
            raise

    def download(self, uri: str, path: Path) -> Path:
        bucket, key = parse_uri(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(bucket, key, str(path))
        return path

    def head(self, uri: str) -> ObjectInfo | None:
        bucket, key = parse_uri(uri)
        try:
            response = self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _not_found(error):
                return None
            raise
        return ObjectInfo(
            bucket,
            key,
            response["ContentLength"],
            response["ETag"].strip('"'),
            response.get("VersionId"),
            {name.lower(): value for name, value in response.get("Metadata", {}).items()},
        )

    def list_objects(self, uri_prefix: str) -> Iterator[ObjectInfo]:
        bucket, prefix = parse_uri(uri_prefix)
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(bucket, item["Key"], item["Size"], item["ETag"].strip('"'))

    def delete(self, uri: str) -> bool:
        existed = self.head(uri) is not None
        bucket, key = parse_uri(uri)
        self.s3.delete_object(Bucket=bucket, Key=key)
        return existed

    def delete_prefix(self, uri_prefix: str) -> int:
        bucket, _ = parse_uri(uri_prefix)
        keys = [info.key for info in self.list_objects(uri_prefix)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self.s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
        return len(keys)
