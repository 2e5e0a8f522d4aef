"""The embedded profile's S3 → EventBridge: a durable outbox of "Object Created" and "Object
Deleted" events.

Writing into (or removing from) the drop bucket appends an event row in the same process that
did it, so an upload made by ``medialens ingest`` is never lost even if no pipeline runs at that
moment. The runner sends pending rows to the ingest queue (which lives in memory, with the
runner) and acknowledges a row only once admission has settled it: its asset exists, or the
object is gone or outside the drop prefix (for a removal: no finished asset of its key is left).
A runner that dies in between leaves the row unacknowledged, and the next one sends it again
(admission is idempotent, so a second delivery is harmless).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from medialens.adapters.storage.base import ObjectInfo

CREATED = "Object Created"
DELETED = "Object Deleted"


class Change(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


def object_event(
    info: ObjectInfo, region: str, change: Change = Change.CREATED, account: str = "000000000000"
) -> dict[str, object]:
    """An EventBridge "Object Created" or "Object Deleted" event, shaped as S3 sends it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj: dict[str, object] = {"key": info.key, "version-id": info.version_id}
    detail: dict[str, object] = {
        "version": "0",
        "bucket": {"name": info.bucket},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account,
    }
    if change is Change.CREATED:
        obj |= {"size": info.size, "etag": info.etag}
        detail["reason"] = "PutObject"
    else:
        detail |= {"reason": "DeleteObject", "deletion-type": "Permanently Deleted"}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": CREATED if change is Change.CREATED else DELETED,
        "source": "aws.s3",
        "account": account,
        "time": now,
        "region": region,
        "resources": [f"arn:aws:s3:::{info.bucket}"],
        "detail": detail,
    }


@dataclass(frozen=True, slots=True)
class PendingNotification:
    row_id: int
    info: ObjectInfo
    change: Change = Change.CREATED


class DropNotifications:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._db()
        db.execute(
            "CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT, "
            "key TEXT, size INTEGER, etag TEXT, version_id TEXT, created_at TEXT, delivered_at TEXT)"
        )
        # sent_at: handed to the ingest queue, not yet settled by admission (outboxes made before it
        # have no column: every row they still hold undelivered is simply pending).
        columns = {row[1] for row in db.execute("PRAGMA table_info(notifications)")}
        for column, kind in (("sent_at", "TEXT"), ("change", "TEXT NOT NULL DEFAULT 'created'")):
            if column not in columns:
                db.execute(f"ALTER TABLE notifications ADD COLUMN {column} {kind}")
        db.execute("CREATE INDEX IF NOT EXISTS notifications_object ON notifications (bucket, key, etag)")

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def _insert(self, info: ObjectInfo, change: Change) -> None:
        self._db().execute(
            "INSERT INTO notifications (bucket, key, size, etag, version_id, created_at, change) "
            "VALUES (?,?,?,?,?,?,?)",
            (
                info.bucket,
                info.key,
                info.size,
                info.etag,
                info.version_id,
                datetime.now(UTC).isoformat(),
                change.value,
            ),
        )

    def record(self, info: ObjectInfo) -> None:
        """An object was created (or is announced again, for a re-run)."""
        self._insert(info, Change.CREATED)

    def record_removed(self, bucket: str, key: str) -> None:
        self._insert(ObjectInfo(bucket, key, 0, ""), Change.REMOVED)

    def _rows(self, where: str, limit: int) -> list[PendingNotification]:
        rows = self._db().execute(
            "SELECT id, bucket, key, size, etag, version_id, change FROM notifications "
            f"WHERE {where} ORDER BY id LIMIT ?",
            (limit,),
        )
        return [PendingNotification(r[0], ObjectInfo(r[1], r[2], r[3], r[4], r[5]), Change(r[6])) for r in rows]

    def pending(self, limit: int = 500) -> list[PendingNotification]:
        """Rows not yet sent to the ingest queue."""
        return self._rows("delivered_at IS NULL AND sent_at IS NULL", limit)

    def unsettled(self, limit: int = 500) -> list[PendingNotification]:
        """Rows sent to the ingest queue whose admission has not been seen to settle yet."""
        return self._rows("delivered_at IS NULL AND sent_at IS NOT NULL", limit)

    def _stamp(self, column: str, row_ids: list[int]) -> None:
        if not row_ids:
            return
        marks = ",".join("?" * len(row_ids))
        self._db().execute(
            f"UPDATE notifications SET {column} = ? WHERE id IN ({marks})",
            (datetime.now(UTC).isoformat(), *row_ids),
        )

    def mark_sent(self, row_ids: list[int]) -> None:
        self._stamp("sent_at", row_ids)

    def mark_delivered(self, row_ids: list[int]) -> None:
        """Admission settled these rows: they are never sent again."""
        self._stamp("delivered_at", row_ids)

    def resend_unsettled(self) -> int:
        """Whatever a previous runner sent but never saw settle goes out again (its queue died with it)."""
        cursor = self._db().execute("UPDATE notifications SET sent_at = NULL WHERE delivered_at IS NULL")
        return int(cursor.rowcount)

    def known_keys(self) -> set[str]:
        """Every key the outbox ever recorded (created or removed)."""
        return {row[0] for row in self._db().execute("SELECT DISTINCT key FROM notifications")}

    def sent_count(self) -> int:
        """Rows handed to the ingest queue and not yet settled."""
        row = (
            self._db()
            .execute("SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL AND sent_at IS NOT NULL")
            .fetchone()
        )
        return int(row[0])

    def pending_count(self) -> int:
        """Rows admission has not settled yet, sent or not."""
        row = self._db().execute("SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL").fetchone()
        return int(row[0])


def event_body(notification: PendingNotification, region: str) -> str:
    return json.dumps(object_event(notification.info, region, notification.change))
