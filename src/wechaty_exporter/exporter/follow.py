"""Follow one configured path through rotation and truncation: which file it names, from where.

A ``Follower`` is everything the tailer knows about one path: the file open at it, rotated-away
files still being drained, where the first file opened starts, and the path's health
(``FileStats``). ``check()`` reads whatever is new; the tailer decides when to call it. The rules
it applies are in the tailer's module docstring.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from wechaty_exporter.exporter.files import (
    FINGERPRINT_BYTES,
    Cursor,
    NotRegularFile,
    file_kind,
    fingerprint,
    open_regular,
)
from wechaty_exporter.exporter.reader import Reader
from wechaty_exporter.logs.replay import LineBlock

# The tailer's logger, as before this code left tailer.py: log lines keep their logger name.
log = logging.getLogger("wechaty_exporter.exporter.tailer")

_REMEMBER_CLOSED = 8  # rotated-away files per path whose end we remember


@dataclass
class FileStats:
    """Live health of one path, read by the metrics collector at scrape time."""

    present: bool = False
    rotations: int = 0
    truncations: int = 0
    read_errors: int = 0
    lines_cut: int = 0
    lines_read: int = 0
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Lines:
    """Complete lines read from one path in one go; `cursor` is the position after them.

    `lines` is a `LineBlock` (bytes, decoded only if iterated) when read from the file, a list
    for the last partial line of a rotated-away file."""

    path: str
    lines: list[str] | LineBlock
    cursor: Cursor
    start_offset: int
    rotated: bool = False


Start: TypeAlias = Cursor | int | Literal["start", "end"]


def check_start(path: str, start: object) -> Start:
    """`start` if it is a valid Start for `path`; ValueError otherwise."""
    if isinstance(start, Cursor) or start in ("start", "end"):
        return start
    if type(start) is int and start >= 0:
        return start
    raise ValueError(f"{path}: start must be a Cursor, a byte offset >= 0, 'start' or 'end'")


@dataclass(eq=False)
class Follower:
    """Everything the tailer knows about one configured path."""

    path: str
    index: int
    stats: FileStats
    start: Start
    max_line: int
    read_chunk: int
    rotate_wait: float
    start_pending: bool = True  # `start` not yet applied (no file opened at this path yet)
    reader: Reader | None = None
    draining: list[tuple[Reader, float]] = field(default_factory=list)  # (reader, close at)
    closed: dict[tuple[int, int], Cursor] = field(default_factory=dict)  # recent, by (dev, ino)
    problem_key: str | None = None
    cut_warned: bool = False  # the first cut line was logged
    keys: frozenset[str] = frozenset()  # event paths that concern this file
    dirs: frozenset[str] = frozenset()  # directories to watch for it
    relocated: bool = False  # keys/dirs changed when a file was opened; the tailer resets it

    def locate(self) -> bool:
        """Recompute the watched paths (a symlink's target may have moved); True if changed."""
        absolute = os.path.abspath(self.path)
        parent = os.path.realpath(os.path.dirname(absolute))
        link = os.path.join(parent, os.path.basename(absolute))
        target = os.path.realpath(absolute)
        keys = frozenset({link, target})
        dirs = frozenset({parent, os.path.dirname(target)})
        changed = keys != self.keys or dirs != self.dirs
        self.keys, self.dirs = keys, dirs
        return changed

    def suspend(self) -> None:
        """Close every descriptor; the next run starts where this one stopped."""
        if self.reader is not None:
            self.start, self.start_pending = self.reader.cursor(), True
            self.reader.close()
            self.reader = None
        for reader, _ in self.draining:
            reader.close()
        self.draining.clear()
        self.relocated = False  # the next run's first pass re-locates and re-watches everything

    def check(self, now: float) -> Iterator[Lines]:
        """Read whatever is new for the path: old descriptors first, then the file at the path."""
        if self.draining:
            still: list[tuple[Reader, float]] = []
            for old, close_at in self.draining:
                yield from self._drain(old, final=now >= close_at)
                if old.closed:
                    continue
                if now >= close_at:
                    self._retire(old)
                else:
                    still.append((old, close_at))
            self.draining = still
        try:
            st: os.stat_result | None = os.stat(self.path)
            error: OSError | None = None
        except OSError as e:
            st, error = None, e
        reader = self.reader
        if reader is not None:
            if st is not None and (st.st_dev, st.st_ino) == (reader.dev, reader.ino):
                yield from self._follow(reader, st)
                return
            # The path leads elsewhere now (or nowhere): the file was rotated away.
            self.reader = None
            self.stats.rotations += 1
            log.info(
                "%s: rotated away (inode %d); draining it, then following the path",
                self.path,
                reader.ino,
            )
            final = self.rotate_wait <= 0
            yield from self._drain(reader, final=final)
            if final:
                self._retire(reader)
            elif not reader.closed:
                self.draining.append((reader, now + self.rotate_wait))
        if st is None:
            assert error is not None
            if error.errno == errno.ENOENT:
                first = self.start_pending
                self.start_pending = False
                self.problem(
                    "missing",
                    "file not found; waiting for it to appear",
                    read_error=False,
                    loud=first,
                )
            elif isinstance(error, PermissionError):
                self.problem("denied", "permission denied", read_error=True)
            else:
                self.problem(
                    f"stat:{error.errno}", f"cannot stat: {error.strerror}", read_error=True
                )
            return
        if not stat.S_ISREG(st.st_mode):
            kind = file_kind(st.st_mode)
            self.problem(kind, f"is {kind}, not a regular file", read_error=True)
            return
        opened = self._open()
        if opened is not None:
            yield from self._follow(*opened)

    def _open(self) -> tuple[Reader, os.stat_result] | None:
        try:
            fd, st = open_regular(self.path)
        except FileNotFoundError:
            return None  # gone since the stat; the next check says so
        except PermissionError:
            self.problem("denied", "permission denied", read_error=True)
            return None
        except NotRegularFile as e:  # swapped between stat and open
            self.problem(e.kind, f"is {e.kind}, not a regular file", read_error=True)
            return None
        except OSError as e:
            self.problem(f"open:{e.errno}", f"cannot open: {e.strerror}", read_error=True)
            return None
        try:
            reader = self._revive(fd, st)
            if reader is None:
                reader = Reader(fd, st, self.max_line, self.stats)
                reader.seek(self._start_position(reader, st))
                reader.seen = (st.st_size, st.st_mtime_ns)
        except OSError as e:
            os.close(fd)
            self.problem(f"read:{e.errno}", f"read failed: {e.strerror}", read_error=True)
            return None
        self.reader = reader
        self._fine()
        log.info("%s: following inode %d from byte %d", self.path, reader.ino, reader.read_pos)
        if self.locate():
            self.relocated = True
        return reader, st

    def _revive(self, fd: int, st: os.stat_result) -> Reader | None:
        """The path leads back to a file we were draining (renamed back, symlink flipped back)."""
        for i, (old, _) in enumerate(self.draining):
            if (old.dev, old.ino) == (st.st_dev, st.st_ino):
                del self.draining[i]
                os.close(fd)
                log.info("%s: inode %d is back; going on where it was", self.path, old.ino)
                return old
        return None

    def _retire(self, reader: Reader) -> None:
        """Close a rotated-away file, remembering where it ended in case the path leads back."""
        self.closed[reader.dev, reader.ino] = reader.cursor()
        while len(self.closed) > _REMEMBER_CLOSED:
            del self.closed[next(iter(self.closed))]
        reader.close()

    def _start_position(self, reader: Reader, st: os.stat_result) -> int:
        earlier = self.closed.pop((st.st_dev, st.st_ino), None)
        if earlier is not None:  # followed before, in this run: go on where it ended
            return self._resume(reader, st, earlier, replaced_counts=False)
        if not self.start_pending:
            return 0
        self.start_pending = False
        start = self.start
        if isinstance(start, Cursor):
            return self._resume(reader, st, start, replaced_counts=True)
        if start == "start":
            return 0
        if start == "end":
            return st.st_size
        return min(start, st.st_size)

    def _resume(
        self,
        reader: Reader,
        st: os.stat_result,
        cursor: Cursor,
        *,
        replaced_counts: bool,
    ) -> int:
        """Where to go on in a file a cursor was taken from, if it still is that file."""
        same = cursor.fingerprint_len <= st.st_size and (
            fingerprint(reader.fd, cursor.fingerprint_len)[1] == cursor.fingerprint
        )
        if not same:
            if replaced_counts:
                self.stats.rotations += 1
            log.info("%s: replaced since the saved cursor; reading from the start", self.path)
            return 0
        if st.st_size < cursor.offset:
            self.stats.truncations += 1
            log.info("%s: truncated since the saved cursor; reading from the start", self.path)
            return 0
        return cursor.offset

    def _follow(self, reader: Reader, st: os.stat_result) -> Iterator[Lines]:
        """Read the open file at the path, after checking it was not truncated under us."""
        try:
            if reader.rewritten(st):
                self.stats.truncations += 1
                log.info(
                    "%s: truncated (size %d, had read %d); reading from the start",
                    self.path,
                    st.st_size,
                    reader.read_pos,
                )
                reader.seek(0)
                reader.fp_len, reader.fp_hex = fingerprint(reader.fd, FINGERPRINT_BYTES)
            if st.st_size > reader.read_pos:
                yield from self._read(reader, st.st_size, rotated=False)
        except OSError as e:
            self.problem(f"read:{e.errno}", f"read failed: {e.strerror}", read_error=True)
            return
        if self.problem_key is not None:
            self._fine()

    def _drain(self, reader: Reader, *, final: bool) -> Iterator[Lines]:
        """Read what is left in a rotated-away file; with final, its last partial line too."""
        try:
            yield from self._read(reader, os.fstat(reader.fd).st_size, rotated=True)
        except OSError as e:
            log.warning("%s: reading the rotated-away file failed: %s", self.path, e.strerror)
            self.stats.read_errors += 1
            reader.close()
            return
        if final:
            start = reader.offset
            lines = reader.flush()
            if lines:
                yield self._batch(reader, lines, start, rotated=True)

    def _read(self, reader: Reader, until: int, *, rotated: bool) -> Iterator[Lines]:
        for lines, start in reader.read(self.read_chunk, until):
            if self.stats.lines_cut and not self.cut_warned:
                self.cut_warned = True
                log.warning(
                    "%s: a line longer than %d bytes was cut to its first %d bytes (further cut "
                    "lines are only counted: wechaty_exporter_log_lines_cut_total)",
                    self.path,
                    self.max_line,
                    self.max_line,
                )
            yield self._batch(reader, lines, start, rotated=rotated)

    def _batch(
        self, reader: Reader, lines: list[str] | LineBlock, start: int, *, rotated: bool
    ) -> Lines:
        self.stats.lines_read += len(lines)
        return Lines(self.path, lines, reader.cursor(), start, rotated)

    def problem(self, key: str, text: str, *, read_error: bool, loud: bool = True) -> None:
        """Record what is wrong with the path; count and log it once per distinct problem."""
        self.stats.present = False
        self.stats.problem = text
        if self.problem_key == key:
            return
        self.problem_key = key
        if read_error:
            self.stats.read_errors += 1
        log.log(logging.WARNING if read_error or loud else logging.INFO, "%s: %s", self.path, text)

    def _fine(self) -> None:
        if self.problem_key is not None:
            log.info("%s: readable again", self.path)
        self.problem_key = None
        self.stats.problem = None
        self.stats.present = True
