"""The profile's upload desk."""

from __future__ import annotations

from medialens.services import Services
from medialens.settings import Profile
from medialens.uploads.base import UploadDesk


def upload_desk(services: Services) -> UploadDesk:
    """Presigned S3 uploads on AWS; locally the serving process takes the bytes itself."""
    if services.settings.profile is Profile.EMBEDDED:
        from medialens.uploads.server import ServerUploadDesk

        return ServerUploadDesk(services.settings, services.blobs)
    from medialens.uploads.s3 import S3UploadDesk

    return S3UploadDesk.from_settings(services.settings, services.blobs)
