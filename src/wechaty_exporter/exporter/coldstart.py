"""Cold start: recover a bot's state from the end of its log, without reading the whole log.

With no saved state, the exporter reads the log backwards in growing blocks until a block holds
a decisive event (login, logout, Waiting or Confirmed scan), then replays the events from the
start of the last decisive entry to the end: they set the login state, the pending QR and the
counters. Start-up cost depends on how far back the last decisive event is, not on the size of
the log. The tailer then follows from `end`.

Every byte read also goes through a scratch replay (`History`), which gives what `replay` would
say about the account name, the times (`since`, last login, logout and error) and the logout
reason (taken only while the bot is logged out) whenever their evidence lies within those bytes;
it is applied without its counters. When the bytes read name no account (the last decisive entry
is a logout or a scan, say), the blocks keep growing, within the same `max_scan` budget, until
they reach a login that names it: a logged-in bot's last login usually does, so the common case
reads no more than before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from wechaty_exporter.exporter.files import Cursor, cursor_at, open_regular
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import Event, is_decisive
from wechaty_exporter.logs.state import BotState, PendingQr

FIRST_BLOCK = 64 * 1024
DEFAULT_MAX_SCAN = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class History:
    """What a replay of every byte read says, beyond the replayed events.

    Each field is what `replay` of the whole file says whenever the event that set it lies
    within the bytes read (always, when they reach the file's first line). Else it is None;
    `since` is then the first decisive event read (the state has held at least since then).
    """

    user: str | None = None  # the account named by the last login read
    since: float | None = None  # when the login state last changed
    last_login: float | None = None
    last_logout: float | None = None
    last_error: float | None = None
    qr: PendingQr | None = None  # the pending QR, seen first where the same QR was first printed
    logout_reason: str | None = None  # what the last logout read said, while still logged out

    @classmethod
    def of(cls, s: BotState) -> History:
        return cls(s.user, s.since, s.last_login, s.last_logout, s.last_error, s.qr,
                   s.logout_reason)  # fmt: skip


@dataclass(slots=True)
class ColdStart:
    """What a backward scan found in one file."""

    end: int  # offset just after the last complete line: where tailing starts
    cursor: Cursor  # `end` as a saveable position in this very file
    events: list[Event] = field(default_factory=list)  # from the last decisive entry on
    lines: int = 0  # lines replayed (from the last decisive entry to `end`)
    scanned: int = 0  # bytes read backwards: to the last decisive entry, or to the account name
    found: bool = False  # a decisive event was found
    gave_up: bool = False  # stopped at max_scan bytes without finding one
    history: History = History()  # every byte read, replayed (see History)

    def apply(self, state: BotState) -> None:
        """Replay the events into `state`, then take the account name and the times from the
        history. Its counters are not taken: they count from the last decisive entry."""
        since, login, logout, error = (
            state.since,
            state.last_login,
            state.last_logout,
            state.last_error,
        )
        for event in self.events:
            state.apply(event)
        if not self.found:
            return
        h = self.history
        if h.user is not None:
            state.user = h.user
        if state.since != since and h.since is not None:  # these events set the login state
            state.since = h.since
        # The history has every event replayed and those before: it replaces what they set.
        state.last_login = _latest(login, h.last_login)
        state.last_logout = _latest(logout, h.last_logout)
        state.last_error = _latest(error, h.last_error)
        if state.qr is not None and h.qr is not None and h.qr.qrcode == state.qr.qrcode:
            state.qr = h.qr  # the same QR printed again (by a second logger) is not a new one
        # The reason is kept while the bot stays logged out (logs/state.py): the logout that
        # gave it usually lies before the last decisive entry (the QR printed after it).
        if state.logged_in is False and h.logout_reason is not None:
            state.logout_reason = h.logout_reason


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _replay(
    data: bytes, new_parser: Callable[[], LineParser], now: float
) -> tuple[list[Event], int, bool, BotState]:
    """Events and line count from the last decisive entry in `data` (complete lines) onward,
    and the state after every event of `data`."""
    parser = new_parser()
    scratch = BotState()
    entries: list[tuple[int, list[Event]]] = []  # (line index where the entry starts, events)
    last_decisive = -1
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for index, raw in enumerate(lines):
        events = parser.feed(raw.decode("utf-8", "replace"), now)
        if events:
            start = index - parser.entry_lines + 1
            entries.append((start, events))
            for event in events:
                scratch.apply(event)
            if any(is_decisive(e) for e in events):
                last_decisive = start
    if last_decisive < 0:
        return [], 0, False, scratch
    replay = [e for start, events in entries if start >= last_decisive for e in events]
    return replay, len(lines) - last_decisive, True, scratch


def _scratch(data: bytes, new_parser: Callable[[], LineParser], now: float) -> BotState:
    """The state after every event of `data` (the fast path: only the events matter here)."""
    scratch = BotState()
    for event in new_parser().feed_block(data, now):
        scratch.apply(event)
    return scratch


def scan_backwards(
    path: str,
    new_parser: Callable[[], LineParser],
    *,
    now: float | None = None,
    first_block: int = FIRST_BLOCK,
    max_scan: int = DEFAULT_MAX_SCAN,
) -> ColdStart:
    """Find the last decisive entry of `path` reading backwards. Raises OSError if unreadable.

    Once found, keeps reading further back (same growing blocks, same `max_scan`) only while
    the bytes read name no account. `now` is the read time given to lines without a full date;
    by default the file's mtime, the best bound there is for lines written before the exporter
    started.
    """
    f, st = _open_regular(path)
    with f:
        when = st.st_mtime if now is None else now
        end = _end_of_last_line(f, st.st_size)
        result = ColdStart(end=end, cursor=cursor_at(f.fileno(), st, end))
        window = first_block
        while True:
            start = max(0, end - window)
            f.seek(start)
            data = f.read(end - start)
            result.scanned = end - start
            if start > 0:
                cut = data.find(b"\n")
                data = data[cut + 1 :] if cut >= 0 else b""
            if result.found:  # looking further back for the account name
                scratch = _scratch(data, new_parser, when)
            else:
                events, lines, found, scratch = _replay(data, new_parser, when)
                if found:
                    result.events, result.lines, result.found = events, lines, True
            if result.found:
                result.history = History.of(scratch)
                if scratch.user is not None:
                    return result
            if start == 0:
                return result
            if window >= max_scan:
                result.gave_up = not result.found
                return result
            window = min(window * 4, max_scan)


def _open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """files.open_regular, as the tailer opens logs (never blocks on a FIFO; OSError for anything
    not a regular file), as a blocking file object, with its fstat."""
    fd, st = open_regular(path)
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def _end_of_last_line(f: BinaryIO, size: int) -> int:
    """Offset just after the last newline (a partial last line is left for the tailer)."""
    pos = size
    block = 4096
    while pos > 0:
        start = max(0, pos - block)
        f.seek(start)
        chunk = f.read(pos - start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
        block = min(block * 4, 1 << 20)
    return 0
