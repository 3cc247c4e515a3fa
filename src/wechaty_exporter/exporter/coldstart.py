"""Cold start: recover a bot's state from the end of its log, without reading the whole log.

With no saved state, the exporter reads the log backwards in growing blocks until a block holds
a decisive event (login, logout, Waiting or Confirmed scan), then replays the events from the
start of the last decisive entry to the end. Start-up cost depends on how far back the last
decisive event is, not on the size of the log. The tailer then follows from `end`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from wechaty_exporter.exporter.files import Cursor, cursor_at, open_regular
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import Event, is_decisive

FIRST_BLOCK = 64 * 1024
DEFAULT_MAX_SCAN = 256 * 1024 * 1024


@dataclass(slots=True)
class ColdStart:
    """What a backward scan found in one file."""

    end: int  # offset just after the last complete line: where tailing starts
    cursor: Cursor  # `end` as a saveable position in this very file
    events: list[Event] = field(default_factory=list)  # from the last decisive entry on
    lines: int = 0  # lines replayed (from the last decisive entry to `end`)
    scanned: int = 0  # bytes read backwards to find it
    found: bool = False  # a decisive event was found
    gave_up: bool = False  # stopped at max_scan bytes without finding one


def _replay(
    data: bytes, new_parser: Callable[[], LineParser], now: float
) -> tuple[list[Event], int, bool]:
    """Events and line count from the last decisive entry in `data` (complete lines) onward."""
    parser = new_parser()
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
            if any(is_decisive(e) for e in events):
                last_decisive = start
    if last_decisive < 0:
        return [], 0, False
    replay = [e for start, events in entries if start >= last_decisive for e in events]
    return replay, len(lines) - last_decisive, True


def scan_backwards(
    path: str,
    new_parser: Callable[[], LineParser],
    *,
    now: float | None = None,
    first_block: int = FIRST_BLOCK,
    max_scan: int = DEFAULT_MAX_SCAN,
) -> ColdStart:
    """Find the last decisive entry of `path` reading backwards. Raises OSError if unreadable.

    `now` is the read time given to lines without a full date; by default the file's mtime, the
    best bound there is for lines written before the exporter started.
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
            events, lines, found = _replay(data, new_parser, when)
            if found:
                result.events, result.lines, result.found = events, lines, True
                return result
            if start == 0:
                return result
            if window >= max_scan:
                result.gave_up = True
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
