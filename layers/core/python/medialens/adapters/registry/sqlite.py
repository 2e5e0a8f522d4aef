"""The embedded profile's DynamoDB: one SQLite file in WAL mode, shared by the runner process
and any CLI process that reads status."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from medialens.adapters.registry.base import AssetRegistry
from medialens.domain.assets import Asset, AssetStatus, AuditEvent

STATUS_QUERY_IDS = 500  # ids per IN (...) query: under SQLite's limit on bound parameters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    asset_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    row_version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_by_status ON assets (status, created_at, asset_id);
CREATE INDEX IF NOT EXISTS assets_by_created ON assets (created_at, asset_id);
CREATE INDEX IF NOT EXISTS assets_by_source
    ON assets (json_extract(body, '$.source.bucket'), json_extract(body, '$.source.key'));
CREATE INDEX IF NOT EXISTS assets_by_analysis
    ON assets (json_extract(body, '$.analysis_key')) WHERE status = 'SUCCEEDED';
CREATE TABLE IF NOT EXISTS asset_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT NOT NULL,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_asset ON asset_events (asset_id, id);
"""


def _encode_cursor(created_at: str, asset_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, asset_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, asset_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as error:
        raise ValueError("invalid cursor") from error
    return str(created_at), str(asset_id)


class SqliteAssetRegistry(AssetRegistry):
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)  # runs outside BEGIN: executescript commits itself

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not cross threads.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def create_if_absent(self, asset: Asset) -> tuple[Asset, bool]:
        with self._connect(write=True) as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO assets (asset_id, status, created_at, row_version, body) VALUES (?,?,?,?,?)",
                (
                    asset.asset_id,
                    asset.status.value,
                    asset.created_at.isoformat(),
                    asset.row_version,
                    asset.model_dump_json(),
                ),
            )
            created = cursor.rowcount == 1
        if created:
            return asset, True
        existing = self.get(asset.asset_id)
        assert existing is not None  # inserted by someone else a moment ago; rows are never removed here
        return existing, False

    def get(self, asset_id: str) -> Asset | None:
        row = self._connection().execute("SELECT body FROM assets WHERE asset_id = ?", (asset_id,)).fetchone()
        return Asset.model_validate_json(row[0]) if row else None

    def statuses(self, asset_ids: Sequence[str]) -> dict[str, AssetStatus]:
        found: dict[str, AssetStatus] = {}
        connection = self._connection()
        for start in range(0, len(asset_ids), STATUS_QUERY_IDS):
            chunk = list(asset_ids[start : start + STATUS_QUERY_IDS])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT asset_id, status FROM assets WHERE asset_id IN ({marks})"
            found |= {row[0]: AssetStatus(row[1]) for row in connection.execute(query, chunk)}
        return found

    def _compare_and_set(self, asset: Asset, expected_version: int) -> bool:
        with self._connect(write=True) as db:
            cursor = db.execute(
                "UPDATE assets SET status = ?, row_version = ?, body = ? WHERE asset_id = ? AND row_version = ?",
                (
                    asset.status.value,
                    asset.row_version,
                    asset.model_dump_json(),
                    asset.asset_id,
                    expected_version,
                ),
            )
            return cursor.rowcount == 1

    def list_assets(
        self, status: AssetStatus | None = None, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Asset], str | None]:
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if cursor:
            created_at, asset_id = _decode_cursor(cursor)
            clauses.append("(created_at, asset_id) > (?, ?)")
            params += [created_at, asset_id]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = (
            self._connection()
            .execute(
                f"SELECT body, created_at, asset_id FROM assets {where} ORDER BY created_at, asset_id LIMIT ?",
                (*params, limit + 1),
            )
            .fetchall()
        )
        assets = [Asset.model_validate_json(row[0]) for row in rows[:limit]]
        next_cursor = _encode_cursor(rows[limit - 1][1], rows[limit - 1][2]) if len(rows) > limit else None
        return assets, next_cursor

    def count(self, status: AssetStatus) -> int:
        row = self._connection().execute("SELECT COUNT(*) FROM assets WHERE status = ?", (status.value,)).fetchone()
        return int(row[0])

    def by_source(self, bucket: str, key: str) -> list[Asset]:
        rows = (
            self._connection()
            .execute(
                "SELECT body FROM assets WHERE json_extract(body, '$.source.bucket') = ? "
                "AND json_extract(body, '$.source.key') = ? ORDER BY created_at, asset_id",
                (bucket, key),
            )
            .fetchall()
        )
        return [Asset.model_validate_json(row[0]) for row in rows]

    def analysed_as(self, analysis_key: str) -> list[Asset]:
        rows = (
            self._connection()
            .execute(
                "SELECT body FROM assets WHERE status = 'SUCCEEDED' AND json_extract(body, '$.analysis_key') = ? "
                "ORDER BY created_at DESC, asset_id",
                (analysis_key,),
            )
            .fetchall()
        )
        return [Asset.model_validate_json(row[0]) for row in rows]

    def delete(self, asset_id: str) -> bool:
        with self._connect(write=True) as db:
            removed = db.execute("DELETE FROM assets WHERE asset_id = ?", (asset_id,)).rowcount == 1
            db.execute("DELETE FROM asset_events WHERE asset_id = ?", (asset_id,))
        return removed

    def add_event(self, event: AuditEvent) -> None:
        with self._connect(write=True) as db:
            db.execute(
                "INSERT INTO asset_events (asset_id, at, kind, detail) VALUES (?,?,?,?)",
                (event.asset_id, event.at.isoformat(), event.kind, event.detail),
            )

    def events(self, asset_id: str) -> list[AuditEvent]:
        rows = (
            self._connection()
            .execute("SELECT at, kind, detail FROM asset_events WHERE asset_id = ? ORDER BY id", (asset_id,))
            .fetchall()
        )
        return [
            AuditEvent.model_validate({"asset_id": asset_id, "at": r[0], "kind": r[1], "detail": r[2]}) for r in rows
        ]
