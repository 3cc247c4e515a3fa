"""Follow log files through rotation and truncation and yield their complete lines (no parsing).

Shape (after watchfiles' ``awatch``)::

    tailer = Tailer({"/var/log/bot.log": saved_cursor_or("end")})
    async for batch in tailer.run(stop_event):
        for line in batch.lines: ...
        save(batch.path, tailer.cursor(batch.path))

How files are followed
----------------------
* Wake-ups come from inotify (watchdog's ``Observer``) on the parent directory of every path and
  on the directory of a symlinked path's target. The observer thread only pokes the event loop;
  all reading happens on the loop. A poll every ``poll_interval`` seconds re-checks every file
  with one ``os.stat`` each (missed events, queue overflow, directories that appear later, NFS).
  ``use_inotify=False`` polls only.
* Rotation: the path now names another file (``stat(path)`` gives another device/inode than the
  open descriptor: rename + create, delete + recreate, symlink flipped) or names nothing
  (rename/delete without create). The old descriptor is drained first and its lines are yielded
  with ``rotated=True``; then the new file is read from byte 0. The old descriptor stays open for
  ``rotate_wait`` seconds and is drained again, because a writer that keeps its file open goes on
  writing there until it reopens (logrotate's ``create`` + SIGHUP). When it is closed, a final
  partial line without newline is yielded too.
* Truncation (copytruncate, ``pm2 flush``, ``: > log``): same inode and the size fell below what we
  have read, or the first ``min(size, 1024)`` bytes no longer hash to what they did. Reading
  restarts at 0. Known limit: a file truncated and rewritten past our position whose first bytes
  are identical to the old ones (a fixed banner > 1 KiB) cannot be told from appends.
  copytruncate itself loses whatever the writer writes between logrotate's copy and its truncate.
* Only complete lines are yielded; a partial line waits for its newline (except the drained tail
  of a rotated-away file). A line longer than ``max_line_bytes`` is cut to its first
  ``max_line_bytes`` bytes, the rest is dropped up to the newline, and it is yielded when the newline
  arrives; memory stays bounded whatever the writer does.
* Bytes are decoded as UTF-8 with ``errors="replace"``; a trailing ``"\\r"`` is kept.
* Anything that is not a readable regular file (directory, FIFO, device, permission denied) is
  never opened for blocking reads: ``present`` goes False, ``read_errors`` counts the problem
  once, one warning is logged, and the path is retried every poll.

Starting points (``Start``)
---------------------------
The start applies to the file found at the path when ``run()`` first sees a regular file there;
a path missing at that first look is read from byte 0 whenever it appears.

* ``Cursor``: resume at its offset when the file's first ``fingerprint_len`` bytes still hash to
  its fingerprint (same inode, or a copy moved back); if the file is now shorter than the offset
  it was truncated (counted, read from 0). Otherwise it was replaced while we were down (counted as
  a rotation, read from 0).
* ``int``: that byte offset, clamped to the file size. An offset inside a line skips to just after
  the next newline, so a line is never yielded without its beginning.
* ``"start"``: byte 0. ``"end"``: the current size, same rule (a partial last line is skipped).

Saving a position: save ``tailer.cursor(path)`` (or the ``cursor`` of a batch whose ``rotated`` is
False); a rotated batch's cursor describes the old file, not the one at the path.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where reading stands in one file; JSON-able through to_dict()/from_dict()."""

    offset: int
    inode: int
    device: int
    fingerprint: str
    fingerprint_len: int

    def to_dict(self) -> dict[str, int | str]:
        return {
            "offset": self.offset,
            "inode": self.inode,
            "device": self.device,
            "fingerprint": self.fingerprint,
            "fingerprint_len": self.fingerprint_len,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cursor:
        """Build a Cursor from to_dict()'s output; ValueError when a field is missing or wrong."""
        try:
            fields = {
                name: data[name] for name in ("offset", "inode", "device", "fingerprint_len")
            }
            fingerprint = data["fingerprint"]
        except (KeyError, TypeError) as e:
            raise ValueError(f"cursor: missing field {e}") from None
        for name, value in fields.items():
            if type(value) is not int or value < 0:
                raise ValueError(f"cursor: {name} must be a non-negative integer, got {value!r}")
        if not isinstance(fingerprint, str) or len(fingerprint) != 64:
            raise ValueError(f"cursor: fingerprint must be 64 hex digits, got {fingerprint!r}")
        try:
            int(fingerprint, 16)
        except ValueError:
            raise ValueError(f"cursor: fingerprint must be hex, got {fingerprint!r}") from None
        if fields["fingerprint_len"] > FINGERPRINT_BYTES:
            raise ValueError(f"cursor: fingerprint_len above {FINGERPRINT_BYTES}")
        return cls(fingerprint=fingerprint, **fields)


@dataclass
class FileStats:
    """Live health of one path, read by the metrics collector at scrape time."""

    present: bool = False
    rotations: int = 0
    truncations: int = 0
    read_errors: int = 0
    lines_cut: int = 0
    lines_read: int = 0
    last_read_at: float | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Lines:
    """A batch of complete lines read from one path in one go."""

    path: str
    lines: list[str]
    cursor: Cursor
    start_offset: int
    rotated: bool = False


Start: TypeAlias = Cursor | int | Literal["start", "end"]


def _fingerprint(fd: int, length: int) -> tuple[int, str]:
    head = os.pread(fd, length, 0)
    return len(head), hashlib.sha256(head).hexdigest()


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class _Reader:
    """One open file descriptor and the bytes of the line it is in the middle of."""

    __slots__ = (
        "cut",
        "dev",
        "fd",
        "fp_hex",
        "fp_len",
        "ino",
        "max_line",
        "offset",
        "partial",
        "read_pos",
        "seen",
        "skip",
        "stats",
    )

    def __init__(self, fd: int, st: os.stat_result, max_line: int, stats: FileStats) -> None:
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.max_line = max_line
        self.stats = stats
        self.offset = 0  # start of the line in `partial`: first byte not yet yielded
        self.read_pos = 0  # next byte to read; offset + bytes buffered or dropped
        self.partial = bytearray()  # at most max_line bytes
        self.cut = False  # partial holds a cut line; drop bytes until the newline
        self.skip = False  # started mid-line; drop bytes until the newline, yield nothing
        self.seen: tuple[int, int] = (-1, -1)  # (size, mtime_ns) when last verified
        self.fp_len, self.fp_hex = _fingerprint(fd, FINGERPRINT_BYTES)

    def seek(self, pos: int) -> None:
        """Start reading at pos; inside a line, skip to after its newline."""
        self.offset = self.read_pos = pos
        self.partial.clear()
        self.cut = False
        self.skip = pos > 0 and os.pread(self.fd, 1, pos - 1) != b"\n"

    def cursor(self) -> Cursor:
        return Cursor(self.offset, self.ino, self.dev, self.fp_hex, self.fp_len)

    def rewritten(self, st: os.stat_result) -> bool:
        """True when the file was truncated (or truncated and rewritten) under us."""
        if (st.st_size, st.st_mtime_ns) == self.seen:
            return False
        self.seen = (st.st_size, st.st_mtime_ns)
        if st.st_size < self.read_pos:
            return True
        head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        if hashlib.sha256(head[: self.fp_len]).hexdigest() != self.fp_hex:
            return True
        self.fp_len, self.fp_hex = len(head), hashlib.sha256(head).hexdigest()
        return False

    def read(self, chunk: int, until: int) -> Iterator[tuple[list[str], int]]:
        """Read in chunks up to at least `until` (or EOF); yield (lines, start offset) per chunk."""
        while True:
            data = os.pread(self.fd, chunk, self.read_pos)
            if not data:
                return
            if self.fp_len < FINGERPRINT_BYTES and self.read_pos < FINGERPRINT_BYTES:
                self.fp_len, self.fp_hex = _fingerprint(self.fd, FINGERPRINT_BYTES)
            self.read_pos += len(data)
            lines, start = self._feed(data)
            if lines:
                yield lines, start
            if len(data) < chunk or self.read_pos >= until:
                return

    def _feed(self, data: bytes) -> tuple[list[str], int]:
        """Take the next bytes of the file; return the lines they complete and where the first began."""
        limit = self.max_line
        start = self.offset
        last = data.rfind(b"\n")
        if last < 0:
            if not (self.skip or self.cut):
                room = limit - len(self.partial)
                if len(data) > room:
                    self.partial += data[:room]
                    self.cut = True
                    self.stats.lines_cut += 1
                else:
                    self.partial += data
            return [], start
        chunk_start = self.read_pos - len(data)
        lines: list[str] = []
        body_from = 0
        if self.skip or self.cut or self.partial:
            first = data.find(b"\n")
            body_from = first + 1
            if self.skip:
                self.skip = False
                start = chunk_start + body_from
            else:
                if not self.cut:
                    self.partial += data[:first]
                    if len(self.partial) > limit:
                        del self.partial[limit:]
                        self.stats.lines_cut += 1
                lines.append(self.partial.decode("utf-8", "replace"))
            self.partial.clear()
            self.cut = False
        if body_from <= last:
            body = data[body_from:last]
            pieces = body.split(b"\n") if len(body) > limit else None
            if pieces is None or max(map(len, pieces)) <= limit:
                lines.extend(body.decode("utf-8", "replace").split("\n"))
            else:
                for piece in pieces:
                    if len(piece) > limit:
                        piece = piece[:limit]
                        self.stats.lines_cut += 1
                    lines.append(piece.decode("utf-8", "replace"))
        tail = data[last + 1 :]
        if len(tail) > limit:
            self.partial += tail[:limit]
            self.cut = True
            self.stats.lines_cut += 1
        else:
            self.partial += tail
        self.offset = chunk_start + last + 1
        return lines, start

    def flush(self) -> list[str]:
        """The final partial line of a file nobody will write to any more (empty when none)."""
        if self.skip or not (self.partial or self.cut):
            return []
        line = self.partial.decode("utf-8", "replace")
        self.partial.clear()
        self.cut = False
        self.offset = self.read_pos
        return [line]

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
