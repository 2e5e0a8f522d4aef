"""The S3 desk: the browser sends the bytes straight to the drop bucket with presigned requests,
so no file passes through Lambda's 6 MB payload. A presigned POST's policy pins the key, the
content type, the metadata and the exact size; files from ``upload_multipart_bytes`` on go in
parts (a presigned PUT per part), which S3 joins on completion. Incomplete multipart uploads
that nobody completes or aborts are removed by the drop bucket's lifecycle rule."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from medialens import aws
from medialens.adapters.storage.base import BlobStore
from medialens.domain.assets import UploadOptions
from medialens.settings import Settings
from medialens.uploads.base import MAX_PARTS, CompletedPart, PartLink, UploadDesk, UploadTicket
from medialens.uploads.exceptions import UploadIncompleteError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024**2
METADATA_FIELD = "x-amz-meta-{}"


def part_size_for(size: int, preferred: int) -> int:
    """Bytes per part: the preferred size, or more (whole MiB) when the file would need more
    parts than S3 allows."""
    smallest = math.ceil(size / MAX_PARTS)
    return max(preferred, math.ceil(smallest / MIB) * MIB)


class S3UploadDesk(UploadDesk):
    def __init__(self, settings: Settings, blobs: BlobStore, s3: S3Client, signer: S3Client) -> None:
        """``s3`` makes the calls (create, complete, abort); ``signer`` presigns (SigV4)."""
        super().__init__(settings, blobs)
        self.s3 = s3
        self.signer = signer

    @classmethod
    def from_settings(cls, settings: Settings, blobs: BlobStore) -> S3UploadDesk:
        return cls(settings, blobs, aws.s3(settings), aws.presigning_s3(settings))

    def _ticket(
        self, key: str, content_type: str, size: int, options: UploadOptions, expires_at: datetime
    ) -> UploadTicket:
        if size >= self.settings.upload_multipart_bytes:
            return self._multipart_ticket(key, content_type, size, options, expires_at)
        bucket = self.settings.drop_bucket
        metadata = {METADATA_FIELD.format(name): value for name, value in options.as_metadata().items()}
        fields = {"Content-Type": content_type, **metadata}
        post = self.signer.generate_presigned_post(
            bucket,
            key,
            Fields=fields,
            Conditions=[
                {"Content-Type": content_type},
                *({name: value} for name, value in metadata.items()),
                ["content-length-range", size, size],
            ],
            ExpiresIn=self.settings.upload_presign_seconds,
        )
        return UploadTicket(key=key, method="POST", url=post["url"], fields=post["fields"], expires_at=expires_at)

    def _multipart_ticket(
        self, key: str, content_type: str, size: int, options: UploadOptions, expires_at: datetime
    ) -> UploadTicket:
        bucket = self.settings.drop_bucket
        created = self.s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type, Metadata=options.as_metadata()
        )
        upload_id = created["UploadId"]
        part_size = part_size_for(size, self.settings.upload_part_bytes)
        parts = [
            PartLink(
                part_number=number,
                url=self.signer.generate_presigned_url(
                    "upload_part",
                    Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                    ExpiresIn=self.settings.upload_presign_seconds,
                ),
            )
            for number in range(1, math.ceil(size / part_size) + 1)
        ]
        return UploadTicket(
            key=key, method="MULTIPART", upload_id=upload_id, part_size=part_size, parts=parts, expires_at=expires_at
        )

    def _finish_parts(self, key: str, upload_id: str, parts: list[CompletedPart]) -> None:
        ordered = sorted(parts, key=lambda part: part.part_number)
        try:
            self.s3.complete_multipart_upload(
                Bucket=self.settings.drop_bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in ordered]},
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            raise UploadIncompleteError(f"S3 did not join the parts ({code}: {message}); send them again") from error

    def _abort_parts(self, key: str, upload_id: str) -> None:
        try:
            self.s3.abort_multipart_upload(Bucket=self.settings.drop_bucket, Key=key, UploadId=upload_id)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchUpload":  # already gone: nothing to do
                raise
