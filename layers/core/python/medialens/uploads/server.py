"""The server desk of the embedded profile: ``medialens serve`` takes the bytes itself (``PUT
/upload/<name>``, streamed into the drop bucket) because its blob store is a folder no browser
can write to. The metadata travels as the same ``x-amz-meta-*`` headers S3 reads."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from medialens.domain.assets import UploadOptions
from medialens.uploads.base import CompletedPart, UploadDesk, UploadTicket
from medialens.uploads.exceptions import UploadRefusedError

SERVER_UPLOAD_PATH = "/upload"
METADATA_HEADER = "x-amz-meta-"


class ServerUploadDesk(UploadDesk):
    def _ticket(
        self, key: str, content_type: str, size: int, options: UploadOptions, expires_at: datetime
    ) -> UploadTicket:
        name = key[len(self.folder) :]
        headers = {"Content-Type": content_type}
        headers.update({METADATA_HEADER + field: value for field, value in options.as_metadata().items()})
        return UploadTicket(
            key=key, method="PUT", url=f"{SERVER_UPLOAD_PATH}/{quote(name)}", headers=headers, expires_at=expires_at
        )

    def _finish_parts(self, key: str, upload_id: str, parts: list[CompletedPart]) -> None:
        raise UploadRefusedError("this server takes uploads whole (PUT), not in parts")

    def _abort_parts(self, key: str, upload_id: str) -> None:
        raise UploadRefusedError("this server takes uploads whole (PUT), not in parts")
