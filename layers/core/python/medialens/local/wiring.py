"""How a local process wires the library: the one place the embedded profile's drop-bucket
outbox is attached, for the CLI, the API server and the runtime alike."""

from __future__ import annotations

from filelock import FileLock, Timeout

from medialens.local.notifications import DropNotifications
from medialens.services import Services
from medialens.settings import Profile, Settings


def drop_outbox(settings: Settings) -> DropNotifications:
    """The embedded profile's S3 → EventBridge: "Object Created" events waiting for admission."""
    return DropNotifications(settings.home / "notifications.sqlite3")


def runner_lock(settings: Settings) -> FileLock:
    """The lock the one embedded runner per MEDIALENS_HOME holds."""
    settings.home.mkdir(parents=True, exist_ok=True)
    return FileLock(str(settings.home / "runner.lock"))


def runner_active(settings: Settings) -> bool:
    """Whether a process (this one included) runs the embedded pipeline for this home now."""
    lock = runner_lock(settings)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def local_services(settings: Settings, outbox: DropNotifications | None = None) -> Services:
    """Services for a local process. Embedded, every object created in the drop bucket (an
    upload, a re-run's re-admission) is recorded in the outbox in the same process that wrote
    it, so no upload is lost while no pipeline runs; against an emulator, S3 sends the events."""
    if settings.profile is Profile.EMBEDDED:
        return Services(
            settings, drop_notifier=outbox or drop_outbox(settings), runner_alive=lambda: runner_active(settings)
        )
    return Services(settings)
