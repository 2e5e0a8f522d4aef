"""Browser links for ``s3://`` objects: presigned S3 URLs on AWS, ``medialens serve`` URLs locally."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from medialens import aws
from medialens.adapters.storage.base import parse_uri
from medialens.services import Services
from medialens.settings import Profile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Where `medialens serve` serves blobs: /files/<bucket>/<key>, with byte ranges for seeking.
LOCAL_FILES_PATH = "/files"


class Links(Protocol):
    def url(self, uri: str) -> str | None:
        """A URL a browser can GET the object from, or None for an address that is not one."""


class LocalLinks:
    """Same-origin paths on the `medialens serve` server (the embedded profile's blob store)."""

    def __init__(self, base: str = LOCAL_FILES_PATH) -> None:
        self.base = base.rstrip("/")

    def url(self, uri: str) -> str | None:
        try:
            bucket, key = parse_uri(uri)
        except ValueError:
            return None
        return f"{self.base}/{quote(bucket)}/{quote(key)}"


class PresignedLinks:
    """Presigned GETs: computed locally (no request to S3), valid for ``expires_s`` seconds."""

    def __init__(self, s3: S3Client, expires_s: int) -> None:
        self.s3 = s3
        self.expires_s = expires_s

    def url(self, uri: str) -> str | None:
        try:
            bucket, key = parse_uri(uri)
        except ValueError:
            return None
        return self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.expires_s
        )


def links_for(services: Services) -> Links:
    settings = services.settings
    if settings.profile is Profile.EMBEDDED:
        return LocalLinks()
    return PresignedLinks(aws.presigning_s3(settings), settings.api_presign_seconds)
