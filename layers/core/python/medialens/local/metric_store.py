"""The embedded profile's metric store: every metric the code emits (``observability.emit``,
``count``, ``stage_latency``) lands here as a timestamped sample when EMF is off, with the
runtime's own samples (queue depth, GPU). ``medialens report`` reads it for the time series that
assets cannot tell: queues, API latency per route, GPU use. Kept for ``RETENTION``."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from medialens.insight.report import API_RESPONSES, SAMPLED_METRICS, MetricSample
from medialens.settings import Settings

RETENTION = timedelta(days=30)
FLUSH_EVERY_S = 1.0


class MetricStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            # Samples are observations: a crash may lose the last ones, but no write waits for a
            # disk flush (each one did, and the store cost 3.4 % of ingest wall time).
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS samples (at REAL NOT NULL, name TEXT NOT NULL, dimensions TEXT NOT NULL,"
                " value REAL NOT NULL)"
            )
            self._connection.execute("CREATE INDEX IF NOT EXISTS samples_by_name ON samples (name, at)")
            self._connection.execute("DELETE FROM samples WHERE at < ?", (time.time() - RETENTION.total_seconds(),))
        # The code that emits a metric only appends it; a thread writes them in batches, so no
        # step waits for SQLite (one insert per sample cost 2 % of ingest wall time in threads).
        # It starts with the first sample: a store opened to read a report starts none.
        self._pending: list[tuple[float, str, str, float]] = []
        self._pending_lock = threading.Lock()
        self._closed = threading.Event()
        self._writer: threading.Thread | None = None

    def record(self, name: str, value: float, dimensions: Mapping[str, str]) -> None:
        row = (time.time(), name, json.dumps(dict(sorted(dimensions.items()))), float(value))
        with self._pending_lock:
            self._pending.append(row)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_pending, name="metric-store", daemon=True)
                self._writer.start()

    def flush(self) -> None:
        with self._pending_lock:
            rows, self._pending = self._pending, []
        if rows:
            with self._lock:
                self._connection.executemany("INSERT INTO samples VALUES (?, ?, ?, ?)", rows)

    def _write_pending(self) -> None:
        while not self._closed.wait(FLUSH_EVERY_S):
            self.flush()

    def samples(
        self, names: Sequence[str], since: datetime, until: datetime, prefixes: Sequence[str] = ()
    ) -> list[MetricSample]:
        """The samples of these metrics (and of the families with these prefixes) in [since, until)."""
        self.flush()
        wanted = " OR ".join(["name = ?"] * len(names) + ["name LIKE ?"] * len(prefixes)) or "0"
        query = f"SELECT at, name, dimensions, value FROM samples WHERE ({wanted}) AND at >= ? AND at < ? ORDER BY at"
        arguments = (*names, *(prefix + "%" for prefix in prefixes), since.timestamp(), until.timestamp())
        with self._lock:
            rows = self._connection.execute(query, arguments).fetchall()
        return [
            MetricSample(at=datetime.fromtimestamp(at, tz=since.tzinfo), name=name, dimensions=json.loads(d), value=v)
            for at, name, d, v in rows
        ]

    def close(self) -> None:
        self._closed.set()
        if self._writer is not None:
            self._writer.join(timeout=5)
        self.flush()
        with self._lock:
            self._connection.close()


def metric_store_path(settings: Settings) -> Path:
    return settings.home / "metrics.sqlite3"


def sampled(settings: Settings, since: datetime, until: datetime) -> list[MetricSample]:
    """The report's sampled series of the window (queues, API, GPU), where a store exists."""
    path = metric_store_path(settings)
    if not path.exists():
        return []
    store = MetricStore(path)
    try:
        return store.samples(SAMPLED_METRICS, since, until, prefixes=[API_RESPONSES])
    finally:
        store.close()
