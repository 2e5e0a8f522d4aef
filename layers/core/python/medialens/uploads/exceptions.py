"""What can go wrong with an upload, in words the uploader can act on."""

from __future__ import annotations

from medialens.errors import MediaLensError


class UploadError(MediaLensError):
    """An upload that cannot go ahead as asked."""


class UploadRefusedError(UploadError):
    """Not an upload the desk takes: no usable name, a key it did not hand out, a method this
    desk does not offer."""


class UnsupportedUploadError(UploadRefusedError):
    """A kind of file medialens does not analyse."""


class UploadTooLargeError(UploadError):
    """The file is larger than the configured limit."""


class UploadIncompleteError(UploadError):
    """Completing an upload whose bytes did not all arrive (no object, a missing part, a size
    other than announced)."""
