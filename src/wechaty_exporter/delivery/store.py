"""What the receiver already delivered, on disk, so a restart neither repeats nor loses a message.

Two kinds of record, each with an expiry (Unix seconds):
- an alert key (fingerprint|status|startsAt) once every message about it was accepted: repeats and
  Alertmanager-HA duplicates of it are skipped until it expires;
- a message id (alert key|contact|step) once the messenger accepted that one message: a retry after
  a partial failure sends only the rest.

Delivery is at-least-once: a crash between the messenger accepting a message and the marker being
written repeats that one message. SQLite in WAL mode with synchronous=FULL; writes are tiny, so the
calls are synchronous.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

FILENAME = "receiver.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_done (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS messages_sent (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_done_expiry ON alerts_done (expires_at);
CREATE INDEX IF NOT EXISTS messages_sent_expiry ON messages_sent (expires_at);
"""


class DeliveryStore:
    """Dedupe keys and per-message sent markers with expiry, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: Path | str) -> DeliveryStore:
        directory = Path(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory / FILENAME)

    def is_done(self, key: str, now: float) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM alerts_done WHERE key = ? AND expires_at > ?", (key, now)
        ).fetchone()
        return row is not None

    def mark_done(self, key: str, expires_at: float) -> None:
        self._db.execute(
            "INSERT INTO alerts_done (key, expires_at) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at",
            (key, expires_at),
        )

    def is_sent(self, message_id: str, now: float) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM messages_sent WHERE id = ? AND expires_at > ?", (message_id, now)
        ).fetchone()
        return row is not None

    def mark_sent(self, message_id: str, expires_at: float) -> None:
        self._db.execute(
            "INSERT INTO messages_sent (id, expires_at) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            (message_id, expires_at),
        )

    def purge(self, now: float) -> int:
        """Drop expired records; returns how many."""
        removed = 0
        for table in ("alerts_done", "messages_sent"):
            cursor = self._db.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))
            removed += cursor.rowcount
        return removed

    def check(self) -> bool:
        """True when the database answers (readiness)."""
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        self._db.close()
