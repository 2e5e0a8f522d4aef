"""The embedded profile's S3 → EventBridge: a durable outbox of "Object Created" events.

Writing into the drop bucket appends an event row in the same process that wrote the file, so an
upload made by ``medialens ingest`` is never lost even if no pipeline runs at that moment; the
runner delivers pending rows to the ingest queue and marks them delivered once the asset exists.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from medialens.adapters.storage.base import ObjectInfo


def object_created_event(info: ObjectInfo, region: str, account: str = "000000000000") -> dict[str, object]:
    """An EventBridge "Object Created" event, shaped as S3 sends it."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": now,
        "region": region,
        "resources": [f"arn:aws:s3:::{info.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": info.bucket},
            "object": {"key": info.key, "size": info.size, "etag": info.etag, "version-id": info.version_id},
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": account,
            "reason": "PutObject",
        },
    }


@dataclass(frozen=True, slots=True)
class PendingNotification:
    row_id: int
    info: ObjectInfo


class DropNotifications:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS notifications (id INTEGER PRIMARY KEY AUTOINCREMENT, bucket TEXT, "
            "key TEXT, size INTEGER, etag TEXT, version_id TEXT, created_at TEXT, delivered_at TEXT)"
        )

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def record(self, info: ObjectInfo) -> None:
        self._db().execute(
            "INSERT INTO notifications (bucket, key, size, etag, version_id, created_at) VALUES (?,?,?,?,?,?)",
            (info.bucket, info.key, info.size, info.etag, info.version_id, datetime.now(UTC).isoformat()),
        )

    def pending(self, limit: int = 500) -> list[PendingNotification]:
        rows = self._db().execute(
            "SELECT id, bucket, key, size, etag, version_id FROM notifications WHERE delivered_at IS NULL "
            "ORDER BY id LIMIT ?",
            (limit,),
        )
        return [PendingNotification(r[0], ObjectInfo(r[1], r[2], r[3], r[4], r[5])) for r in rows]

    def mark_delivered(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        now = datetime.now(UTC).isoformat()
        marks = ",".join("?" * len(row_ids))
        self._db().execute(
            f"UPDATE notifications SET delivered_at = ? WHERE id IN ({marks})",
            (now, *row_ids),
        )

    def pending_count(self) -> int:
        row = self._db().execute("SELECT COUNT(*) FROM notifications WHERE delivered_at IS NULL").fetchone()
        return int(row[0])


def event_body(info: ObjectInfo, region: str) -> str:
    return json.dumps(object_created_event(info, region))
