"""The bot's self-log: its own puppet's events, appended in the format the exporter parses.

The bot appends its own puppet's events to a file (`--self-log`, default
``<state-dir>/self.log``, ``-`` for stdout) in the format `logs.dialects.selflog.format_self_log`
writes and the exporter parses, one line per event, values JSON-escaped so no name, reason or QR
can start a line of its own::

    2026-11-25T09:00:01.000+08:00 INFO wechaty-exporter scan {"status":2,"qrcode":"https://..."}
    2026-11-25T09:00:10.500+08:00 INFO wechaty-exporter login {"user":"Peer\\n伙伴","id":"wxid_p"}
    2026-11-25T22:00:00.000+08:00 INFO wechaty-exporter logout {"user":"Peer\\n伙伴","id":"wxid_p",
        "reason":"kicked"}   (one line)

``scan``: ``status`` (ScanStatus number) and ``qrcode`` (the puppet's payload or null); ``login``:
``user`` (display name or null) and ``id``; ``logout``: ``user``, ``id``, ``reason`` (or null).

The duet probe (``bot.probe``, `bot.PeerBot`) adds ``probe_sent`` (``to``: the peer's bot name,
``seq``) after each probe sent, ``probe_failed`` at level WARN (``to``, ``error``: a short text)
when one could not be sent, and ``probe`` (``from``: the sender's bot name, ``seq``) when the
peer's probe reached this bot; the exporter reads ``probe`` and ``probe_sent``.

The exporter tails that file (``serve --log alice=/path/alice.self.log``): two bots rescuing each
other plus one exporter form the duet with no other code. Kinds that are not events, ignored by the
parser: ``puppet`` (``state`` connected / stopped, and lost at level ERROR, counted in
``wechaty_log_errors_total``) and ``heartbeat`` (every `heartbeat` seconds, so a quiet but running
bot's log never looks stale, default every 10 min). A login line names the account once
ContactPayload answered (or gives up after `lookup_timeout`); lines are written in the order the
events arrived, stamped with their arrival time. Each reconnect logs the login the puppet service
announces again. The file (it holds login QRs) is opened with O_APPEND and O_NOFOLLOW
(`privatefiles.open_private`: a symbolic link, another user's file or a hard-linked one is
refused), mode 0640 (the exporter reads it through the bots' group; an older file with more is
tightened to that), and reopened when rotated away. Never point the exporter at the bot's stderr
instead: python-wechaty logs contact names as they are (`compat.one_line_logs` escapes their line
breaks in this process).

Why the puppet, not Wechaty's events: python-wechaty emits ``login`` once per start (a re-login
after a logout reaches only the puppet), and its scan handler raises after its listeners ran, so
plugins never see a scan. `SelfLogger.follow` therefore hooks every puppet a bot creates, before
its event stream opens. `plugin.ExporterPlugin` does the same inside an existing python-wechaty bot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from wechaty_exporter.logs.dialects.selflog import format_self_log
from wechaty_exporter.peerbot import compat
from wechaty_exporter.privatefiles import open_private

__all__ = ["Clock", "Fields", "SelfLog", "SelfLogger"]

log = logging.getLogger(__name__)

Fields = Mapping[str, object]
Clock = Callable[[], float]
SELF_LOG_MODE = 0o640  # the exporter reads it as a member of the bots' group (operations.md)


class SelfLog:
    """Appends self-log lines to a file (reopened when rotated away), or to stdout for None."""

    def __init__(self, path: Path | None, *, stream: TextIO | None = None) -> None:
        self.path = path
        self._stream = stream
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else "stdout"

    def open(self) -> None:
        """Open the file now, so an unusable path fails at start. Raises OSError."""
        if self.path is not None:
            self._file(self.path)

    def write(self, kind: str, fields: Fields, *, at: float, level: str = "INFO") -> None:
        """One line; a failure to write is logged, never raised."""
        line = format_self_log(kind, fields, at, level) + "\n"
        try:
            if self.path is None:
                stream = self._stream if self._stream is not None else sys.stdout
                stream.write(line)
                stream.flush()
                return
            data = line.encode("utf-8")
            fd = self._file(self.path)
            while data:
                data = data[os.write(fd, data) :]
        except OSError as exc:
            log.error("cannot write the self-log %s: %s", self, exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _file(self, path: Path) -> int:
        try:
            st = os.stat(path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            ident = None
        if self._fd is not None and ident != self._ident:
            self.close()  # rotated away or deleted: continue in a file at the path
        if self._fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = open_private(path, flags, SELF_LOG_MODE)
            st = os.fstat(self._fd)
            self._ident = (st.st_dev, st.st_ino)
        return self._fd


class SelfLogger:
    """Writes the scan/login/logout events of a bot's puppets to a SelfLog, in arrival order."""

    def __init__(self, out: SelfLog, *, clock: Clock = time.time, lookup_timeout: float = 5.0):
        self.out = out
        self._clock = clock
        self._lookup_timeout = lookup_timeout
        self._names: dict[str, str] = {}  # contact id → display name, for logout lines
        self._bots: weakref.WeakSet[Any] = weakref.WeakSet()
        self._puppets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._tail: asyncio.Future[None] | None = None

    def follows(self, bot: Any) -> bool:
        return bot in self._bots

    def follow(self, bot: Any) -> None:
        """Log the events of every puppet `bot` starts from now on (each restart makes one)."""
        if bot in self._bots:
            return
        self._bots.add(bot)
        compat.on_new_puppet(bot, lambda puppet: self.attach(bot, puppet))

    def attach(self, bot: Any, puppet: Any) -> None:
        """Log the events of this one puppet, from its next event on."""
        if puppet in self._puppets:
            return
        self._puppets.add(puppet)
        compat.on_puppet_event(puppet, "scan", lambda payload: self._scan(payload))
        compat.on_puppet_event(
            puppet, "login", lambda payload: self.logged_in(bot, payload.contact_id)
        )
        compat.on_puppet_event(puppet, "logout", lambda payload: self._logout(payload))

    def logged_in(self, bot: Any, contact_id: str | None) -> None:
        """A login line for `contact_id`, named once its ContactPayload answered."""
        if not contact_id:
            return

        async def fields() -> Fields:
            name = await self._display_name(bot, contact_id)
            if name:
                self._names[contact_id] = name
            return {"user": name, "id": contact_id}

        self._append("login", fields)

    def note(self, kind: str, fields: Fields, *, level: str = "INFO") -> None:
        """A line of a kind that is not an event (``puppet``, ``heartbeat``)."""

        async def same() -> Fields:
            return fields

        self._append(kind, same, level=level)

    def probe_sent(self, to: str, seq: int) -> None:
        """Duet probe `seq` went out to peer bot `to`."""
        self.note("probe_sent", {"to": to, "seq": seq})

    def probe_failed(self, to: str, error: str) -> None:
        """A duet probe to peer bot `to` could not be sent (WARN)."""
        self.note("probe_failed", {"to": to, "error": error}, level="WARN")

    def probe_received(self, sender: str, seq: int) -> None:
        """Duet probe `seq` of peer bot `sender` reached this bot."""
        self.note("probe", {"from": sender, "seq": seq})

    async def flush(self) -> None:
        """Wait until every line so far is written."""
        if self._tail is not None:
            await asyncio.wait({self._tail})

    def _scan(self, payload: Any) -> None:
        status = getattr(payload.status, "value", payload.status)
        qrcode = payload.qrcode or None
        self.note("scan", {"status": int(status), "qrcode": qrcode})

    def _logout(self, payload: Any) -> None:
        contact_id: str = payload.contact_id or ""

        async def fields() -> Fields:  # the name as known once earlier lines were written
            name = self._names.get(contact_id)
            return {"user": name, "id": contact_id or None, "reason": payload.data or None}

        self._append("logout", fields)

    def _append(
        self, kind: str, fields: Callable[[], Awaitable[Fields]], *, level: str = "INFO"
    ) -> None:
        at = self._clock()
        previous = self._tail
        self._tail = asyncio.ensure_future(self._write(previous, kind, fields, at, level))

    async def _write(
        self,
        previous: asyncio.Future[None] | None,
        kind: str,
        fields: Callable[[], Awaitable[Fields]],
        at: float,
        level: str,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        try:
            values = await fields()
        except Exception:  # a bug here must not cost the lines after it
            log.exception("self-log: cannot describe the %s event", kind)
            return
        self.out.write(kind, values, at=at, level=level)

    async def _display_name(self, bot: Any, contact_id: str) -> str | None:
        try:
            async with asyncio.timeout(self._lookup_timeout):
                record = await compat.contact_record(bot, contact_id)
        except Exception as exc:
            log.warning("self-log: no name for %s (%r); logging its id", contact_id, exc)
            return self._names.get(contact_id)
        return record.name or None
