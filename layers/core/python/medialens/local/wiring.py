"""How a local process wires the library: the one place the embedded profile's drop-bucket
outbox is attached, for the CLI, the API server and the runtime alike."""

from __future__ import annotations

from medialens.local.notifications import DropNotifications
from medialens.services import Services
from medialens.settings import Profile, Settings


def drop_outbox(settings: Settings) -> DropNotifications:
    """The embedded profile's S3 → EventBridge: "Object Created" events waiting for admission."""
    return DropNotifications(settings.home / "notifications.sqlite3")


def local_services(settings: Settings, outbox: DropNotifications | None = None) -> Services:
    """Services for a local process. Embedded, every object created in the drop bucket (an
    upload, a re-run's re-admission) is recorded in the outbox in the same process that wrote
    it, so no upload is lost while no pipeline runs; against an emulator, S3 sends the events."""
    if settings.profile is Profile.EMBEDDED:
        return Services(settings, on_drop_object_created=(outbox or drop_outbox(settings)).record)
    return Services(settings)
