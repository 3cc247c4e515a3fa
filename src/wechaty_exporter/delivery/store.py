"""What the receiver already delivered, on disk, so a restart neither repeats nor loses a message.

Two kinds of record, each with an expiry (Unix seconds):
- an alert key (fingerprint|status|startsAt) once every message about it was accepted: repeats and
  Alertmanager-HA duplicates of it are skipped until it expires;
- a message id (alert key|contact|step) once the messenger accepted that one message: a retry after
  a partial failure sends only the rest;
- an outage (one per bot): the logged-out alert whose QR was delivered, to whom, the hash of the
  QR last sent and how many newer ones followed (`refresh`), so refreshes survive a restart and
  two receivers sharing the store refresh a bot together.

`claim` inserts a message id only if absent (atomic, across processes sharing the file): a sender
that claims before sending never sends what another sender claimed (at most once).

Delivery is at-least-once: a crash between the messenger accepting a message and the marker being
written repeats that one message. SQLite in WAL mode with synchronous=FULL; writes are tiny, so the
calls are synchronous.

The store names the bots and admins of every outage, so it is private (`privatefiles`): its state
dir is created 0700 and refused when others may write it; the database is created 0600 before
SQLite opens it (its -wal and -shm files take the database's mode), an older 0644 one and its
companions are tightened, and a symbolic link at any of them is refused, never followed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from wechaty_exporter.privatefiles import open_private, private_dir

FILENAME = "receiver.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_done (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS messages_sent (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_done_expiry ON alerts_done (expires_at);
CREATE INDEX IF NOT EXISTS messages_sent_expiry ON messages_sent (expires_at);
CREATE TABLE IF NOT EXISTS qr_outages (
  bot TEXT PRIMARY KEY, alert_key TEXT NOT NULL, resolved_key TEXT NOT NULL,
  recipients TEXT NOT NULL, qr_hash TEXT NOT NULL, sent_at REAL NOT NULL,
  refreshes INTEGER NOT NULL DEFAULT 0, expires_at REAL NOT NULL
);
"""


def _make_private(path: Path) -> None:
    """Create the database 0600 (or tighten it), and its companions, refusing links."""
    os.close(open_private(path, os.O_RDWR | os.O_CREAT))
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.close(open_private(f"{path}{suffix}", os.O_RDONLY))


@dataclass(frozen=True, slots=True)
class Outage:
    """A bot logged out whose login QR reached `recipients`; the QR last sent was `qr_hash`."""

    bot: str
    alert_key: str  # the firing alert's dedupe key
    resolved_key: str  # its resolved twin's: once delivered, the outage is over
    recipients: tuple[str, ...]
    qr_hash: str
    sent_at: float  # when a QR last went out (the rescue or a refresh)
    refreshes: int = 0
    expires_at: float = 0.0


class DeliveryStore:
    """Dedupe keys and per-message sent markers with expiry, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            _make_private(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_state_dir(cls, state_dir: Path | str) -> DeliveryStore:
        """The store in `state_dir` (created 0700). Raises UnsafePathError when others may
        write `state_dir`."""
        return cls(private_dir(state_dir) / FILENAME)

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

    def claim(self, message_id: str, expires_at: float, now: float) -> bool:
        """Record `message_id` unless a live record of it exists; True when this call did."""
        self._db.execute(
            "DELETE FROM messages_sent WHERE id = ? AND expires_at <= ?", (message_id, now)
        )
        cursor = self._db.execute(
            "INSERT INTO messages_sent (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            (message_id, expires_at),
        )
        return cursor.rowcount == 1

    def release(self, message_id: str) -> None:
        """Forget a claim whose message could not be sent, so a later attempt may send it."""
        self._db.execute("DELETE FROM messages_sent WHERE id = ?", (message_id,))

    # --- outages (QR refresh) ------------------------------------------------------------------

    def open_outage(self, outage: Outage) -> None:
        """Start watching `outage.bot` (a new alert replaces the old one; the same alert again
        keeps its refresh count)."""
        self._db.execute(
            "INSERT INTO qr_outages (bot, alert_key, resolved_key, recipients, qr_hash, sent_at,"
            " refreshes, expires_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (bot) DO UPDATE"
            " SET refreshes = CASE WHEN alert_key = excluded.alert_key THEN refreshes ELSE 0 END,"
            " alert_key = excluded.alert_key, resolved_key = excluded.resolved_key,"
            " recipients = excluded.recipients, qr_hash = excluded.qr_hash,"
            " sent_at = excluded.sent_at, expires_at = excluded.expires_at",
            (
                outage.bot,
                outage.alert_key,
                outage.resolved_key,
                json.dumps(list(outage.recipients)),
                outage.qr_hash,
                outage.sent_at,
                outage.expires_at,
            ),
        )

    def outages(self, now: float) -> list[Outage]:
        rows = self._db.execute(
            "SELECT bot, alert_key, resolved_key, recipients, qr_hash, sent_at, refreshes,"
            " expires_at FROM qr_outages WHERE expires_at > ? ORDER BY bot",
            (now,),
        ).fetchall()
        return [
            Outage(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], *row[5:])
            for row in rows
        ]

    def outage_refreshed(self, bot: str, alert_key: str, qr_hash: str, sent_at: float) -> None:
        self._db.execute(
            "UPDATE qr_outages SET qr_hash = ?, sent_at = ?, refreshes = refreshes + 1"
            " WHERE bot = ? AND alert_key = ? AND qr_hash != ?",
            (qr_hash, sent_at, bot, alert_key, qr_hash),
        )

    def end_outage(self, bot: str, alert_key: str) -> None:
        self._db.execute("DELETE FROM qr_outages WHERE bot = ? AND alert_key = ?", (bot, alert_key))

    def purge(self, now: float) -> int:
        """Drop expired records; returns how many."""
        removed = 0
        for table in ("alerts_done", "messages_sent", "qr_outages"):
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
