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
  partial line without newline is yielded too. A path that leads back to a file followed earlier
  in this run (renamed back, symlink flipped back) goes on where that file ended.
* Truncation (copytruncate, ``pm2 flush``, ``: > log``): same inode and the size fell below what we
  have read, or the first ``min(size, 1024)`` bytes no longer hash to what they did. Reading
  restarts at 0. Known limit: a file truncated and rewritten past our position whose first bytes
  are identical to the old ones (a fixed banner > 1 KiB) cannot be told from appends.
  copytruncate itself loses whatever the writer writes between logrotate's copy and its truncate.
* Only complete lines are yielded; a partial line waits for its newline (except the drained tail
  of a rotated-away file). A line longer than ``max_line_bytes`` is cut to its first
  ``max_line_bytes`` bytes, the rest is dropped up to the newline, and it is yielded when the
  newline arrives; memory stays bounded whatever the writer does. The first cut per path is
  logged as a warning; every cut is counted in ``lines_cut``.
* Bytes are decoded as UTF-8 with ``errors="replace"``; a trailing ``"\\r"`` is kept.
* Anything that is not a readable regular file (directory, FIFO, device, permission denied) is
  never opened for blocking reads: ``present`` goes False, ``read_errors`` counts the problem
  once, one warning is logged, and the path is retried every poll.

Starting points (``Start``)
---------------------------
The start applies to the first file ``run()`` opens at the path; a path missing at the first
look is read from byte 0 whenever it appears.

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
import contextlib
import errno
import hashlib
import logging
import os
import stat
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
_REMEMBER_CLOSED = 8  # rotated-away files per path whose end we remember
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
            fields = {name: data[name] for name in ("offset", "inode", "device", "fingerprint_len")}
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
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Lines:
    """Complete lines read from one path in one go; `cursor` is the position after them."""

    path: str
    lines: list[str]
    cursor: Cursor
    start_offset: int
    rotated: bool = False


Start: TypeAlias = Cursor | int | Literal["start", "end"]


def _fingerprint(fd: int, length: int) -> tuple[int, str]:
    head = os.pread(fd, length, 0)
    return len(head), hashlib.sha256(head).hexdigest()


def cursor_at(fd: int, st: os.stat_result, offset: int) -> Cursor:
    """The Cursor for `offset` in the open regular file `fd` (`st` its fstat), as the tailer
    itself records it."""
    length, digest = _fingerprint(fd, min(st.st_size, FINGERPRINT_BYTES))
    return Cursor(offset, st.st_ino, st.st_dev, digest, length)


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


class NotRegularFile(OSError):
    """open_regular() found a directory, FIFO, device or socket; `kind` says which."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, "not a regular file", path)
        self.kind = kind


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """Open `path` read-only and non-blocking (a plain open of a FIFO waits for a writer forever)
    and fstat it; anything but a regular file is closed again and raises NotRegularFile."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, _kind(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


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
        """Take the next bytes; return the lines they complete and where the first one began."""
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

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


@dataclass(eq=False)
class _File:
    """Everything the tailer knows about one configured path."""

    path: str
    index: int
    stats: FileStats
    start: Start
    start_pending: bool = True  # `start` not yet applied (no file opened at this path yet)
    reader: _Reader | None = None
    draining: list[tuple[_Reader, float]] = field(default_factory=list)  # (reader, close at)
    closed: dict[tuple[int, int], Cursor] = field(default_factory=dict)  # recent, by (dev, ino)
    problem_key: str | None = None
    cut_warned: bool = False  # the first cut line was logged
    keys: frozenset[str] = frozenset()  # event paths that concern this file
    dirs: frozenset[str] = frozenset()  # directories to watch for it

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


def _check_start(path: str, start: object) -> Start:
    if isinstance(start, Cursor) or start in ("start", "end"):
        return start
    if type(start) is int and start >= 0:
        return start
    raise ValueError(f"{path}: start must be a Cursor, a byte offset >= 0, 'start' or 'end'")


class Tailer:
    """Follow several log files at once; see the module docstring for the rules."""

    def __init__(
        self,
        starts: Mapping[str, Start],
        *,
        poll_interval: float = 1.0,
        max_line_bytes: int = 65536,
        use_inotify: bool = True,
        read_chunk: int = 1 << 20,
        rotate_wait: float = 5.0,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        if max_line_bytes < 1 or read_chunk < 1:
            raise ValueError("max_line_bytes and read_chunk must be >= 1")
        if rotate_wait < 0:
            raise ValueError("rotate_wait must be >= 0")
        self._poll_interval = poll_interval
        self._max_line = max_line_bytes
        self._use_inotify = use_inotify
        self._read_chunk = read_chunk
        self._rotate_wait = rotate_wait
        self.stats: dict[str, FileStats] = {path: FileStats() for path in starts}
        self._files = [
            _File(path, i, self.stats[path], _check_start(path, start))
            for i, (path, start) in enumerate(starts.items())
        ]
        self._by_path = {f.path: f for f in self._files}
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._poke_scheduled = False
        self._relocated = False  # some file's watched paths changed since the last reconcile
        self._running = False

    def cursor(self, path: str) -> Cursor | None:
        """Where reading stands in the file now open at path (None when none is open)."""
        reader = self._by_path[path].reader
        return reader.cursor() if reader is not None else None

    async def run(self, stop: asyncio.Event) -> AsyncGenerator[Lines, None]:
        """Yield batches of lines as they are written, until `stop` is set."""
        if self._running:
            raise RuntimeError("Tailer.run() is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        watcher = self._start_watcher(loop, wake) if self._use_inotify else None
        stop_task = asyncio.ensure_future(stop.wait())
        wake_task: asyncio.Future[Any] | None = None
        next_poll = loop.time()
        try:
            while not stop.is_set():  # the first pass is full: it locates every file
                wake.clear()
                with self._lock:
                    poked, self._pending = self._pending, set()
                    self._poke_scheduled = False
                now = loop.time()
                full = now >= next_poll
                if full:
                    next_poll = now + self._poll_interval
                    todo = self._files
                else:
                    todo = [f for f in self._files if f.index in poked or f.draining]
                for f in todo:
                    try:
                        for batch in self._check(f, now):
                            yield batch
                            if stop.is_set():
                                return
                    except Exception as e:  # a bug must not stop the other files being followed
                        log.exception("%s: unexpected error while reading", f.path)
                        self._problem(f, "internal", f"internal error: {e!r}", read_error=True)
                    if full and f.reader is None and f.locate():
                        self._relocated = True
                if watcher is not None:
                    watcher.wake_all = any(f.draining for f in self._files)
                    if full or self._relocated:
                        self._relocated = False
                        watcher.reconcile(self._files, full=full)
                deadline = min(
                    [next_poll] + [close_at for f in self._files for _, close_at in f.draining]
                )
                if wake_task is None:
                    wake_task = asyncio.ensure_future(wake.wait())
                done, _ = await asyncio.wait(
                    {stop_task, wake_task},
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if wake_task in done:
                    wake_task = None
        finally:
            for task in (stop_task, wake_task):
                if task is not None:
                    task.cancel()
            if watcher is not None:
                watcher.close()
            for f in self._files:
                if f.reader is not None:
                    f.start, f.start_pending = f.reader.cursor(), True
                    f.reader.close()
                    f.reader = None
                for reader, _ in f.draining:
                    reader.close()
                f.draining.clear()
            self._running = False

    # -- one path -------------------------------------------------------------------------------

    def _check(self, f: _File, now: float) -> Iterator[Lines]:
        """Read whatever is new for one path: old descriptors first, then the file at the path."""
        if f.draining:
            still: list[tuple[_Reader, float]] = []
            for old, close_at in f.draining:
                yield from self._drain(f, old, final=now >= close_at)
                if old.closed:
                    continue
                if now >= close_at:
                    self._retire(f, old)
                else:
                    still.append((old, close_at))
            f.draining = still
        try:
            st: os.stat_result | None = os.stat(f.path)
            error: OSError | None = None
        except OSError as e:
            st, error = None, e
        reader = f.reader
        if reader is not None:
            if st is not None and (st.st_dev, st.st_ino) == (reader.dev, reader.ino):
                yield from self._follow(f, reader, st)
                return
            # The path leads elsewhere now (or nowhere): the file was rotated away.
            f.reader = None
            f.stats.rotations += 1
            log.info(
                "%s: rotated away (inode %d); draining it, then following the path",
                f.path,
                reader.ino,
            )
            final = self._rotate_wait <= 0
            yield from self._drain(f, reader, final=final)
            if final:
                self._retire(f, reader)
            elif not reader.closed:
                f.draining.append((reader, now + self._rotate_wait))
        if st is None:
            assert error is not None
            if error.errno == errno.ENOENT:
                first = f.start_pending
                f.start_pending = False
                self._problem(
                    f,
                    "missing",
                    "file not found; waiting for it to appear",
                    read_error=False,
                    loud=first,
                )
            elif isinstance(error, PermissionError):
                self._problem(f, "denied", "permission denied", read_error=True)
            else:
                self._problem(
                    f, f"stat:{error.errno}", f"cannot stat: {error.strerror}", read_error=True
                )
            return
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            self._problem(f, kind, f"is {kind}, not a regular file", read_error=True)
            return
        opened = self._open(f)
        if opened is not None:
            yield from self._follow(f, *opened)

    def _open(self, f: _File) -> tuple[_Reader, os.stat_result] | None:
        try:
            fd, st = open_regular(f.path)
        except FileNotFoundError:
            return None  # gone since the stat; the next check says so
        except PermissionError:
            self._problem(f, "denied", "permission denied", read_error=True)
            return None
        except NotRegularFile as e:  # swapped between stat and open
            self._problem(f, e.kind, f"is {e.kind}, not a regular file", read_error=True)
            return None
        except OSError as e:
            self._problem(f, f"open:{e.errno}", f"cannot open: {e.strerror}", read_error=True)
            return None
        try:
            reader = self._revive(f, fd, st)
            if reader is None:
                reader = _Reader(fd, st, self._max_line, f.stats)
                reader.seek(self._start_position(f, reader, st))
                reader.seen = (st.st_size, st.st_mtime_ns)
        except OSError as e:
            os.close(fd)
            self._problem(f, f"read:{e.errno}", f"read failed: {e.strerror}", read_error=True)
            return None
        f.reader = reader
        self._fine(f)
        log.info("%s: following inode %d from byte %d", f.path, reader.ino, reader.read_pos)
        if f.locate():
            self._relocated = True
        return reader, st

    def _revive(self, f: _File, fd: int, st: os.stat_result) -> _Reader | None:
        """The path leads back to a file we were draining (renamed back, symlink flipped back)."""
        for i, (old, _) in enumerate(f.draining):
            if (old.dev, old.ino) == (st.st_dev, st.st_ino):
                del f.draining[i]
                os.close(fd)
                log.info("%s: inode %d is back; going on where it was", f.path, old.ino)
                return old
        return None

    def _retire(self, f: _File, reader: _Reader) -> None:
        """Close a rotated-away file, remembering where it ended in case the path leads back."""
        f.closed[reader.dev, reader.ino] = reader.cursor()
        while len(f.closed) > _REMEMBER_CLOSED:
            del f.closed[next(iter(f.closed))]
        reader.close()

    def _start_position(self, f: _File, reader: _Reader, st: os.stat_result) -> int:
        earlier = f.closed.pop((st.st_dev, st.st_ino), None)
        if earlier is not None:  # followed before, in this run: go on where it ended
            return self._resume(f, reader, st, earlier, replaced_counts=False)
        if not f.start_pending:
            return 0
        f.start_pending = False
        start = f.start
        if isinstance(start, Cursor):
            return self._resume(f, reader, st, start, replaced_counts=True)
        if start == "start":
            return 0
        if start == "end":
            return st.st_size
        return min(start, st.st_size)

    def _resume(
        self,
        f: _File,
        reader: _Reader,
        st: os.stat_result,
        cursor: Cursor,
        *,
        replaced_counts: bool,
    ) -> int:
        """Where to go on in a file a cursor was taken from, if it still is that file."""
        same = cursor.fingerprint_len <= st.st_size and (
            _fingerprint(reader.fd, cursor.fingerprint_len)[1] == cursor.fingerprint
        )
        if not same:
            if replaced_counts:
                f.stats.rotations += 1
            log.info("%s: replaced since the saved cursor; reading from the start", f.path)
            return 0
        if st.st_size < cursor.offset:
            f.stats.truncations += 1
            log.info("%s: truncated since the saved cursor; reading from the start", f.path)
            return 0
        return cursor.offset

    def _follow(self, f: _File, reader: _Reader, st: os.stat_result) -> Iterator[Lines]:
        """Read the open file at the path, after checking it was not truncated under us."""
        try:
            if reader.rewritten(st):
                f.stats.truncations += 1
                log.info(
                    "%s: truncated (size %d, had read %d); reading from the start",
                    f.path,
                    st.st_size,
                    reader.read_pos,
                )
                reader.seek(0)
                reader.fp_len, reader.fp_hex = _fingerprint(reader.fd, FINGERPRINT_BYTES)
            if st.st_size > reader.read_pos:
                yield from self._read(f, reader, st.st_size, rotated=False)
        except OSError as e:
            self._problem(f, f"read:{e.errno}", f"read failed: {e.strerror}", read_error=True)
            return
        if f.problem_key is not None:
            self._fine(f)

    def _drain(self, f: _File, reader: _Reader, *, final: bool) -> Iterator[Lines]:
        """Read what is left in a rotated-away file; with final, its last partial line too."""
        try:
            yield from self._read(f, reader, os.fstat(reader.fd).st_size, rotated=True)
        except OSError as e:
            log.warning("%s: reading the rotated-away file failed: %s", f.path, e.strerror)
            f.stats.read_errors += 1
            reader.close()
            return
        if final:
            start = reader.offset
            lines = reader.flush()
            if lines:
                yield self._batch(f, reader, lines, start, rotated=True)

    def _read(self, f: _File, reader: _Reader, until: int, *, rotated: bool) -> Iterator[Lines]:
        for lines, start in reader.read(self._read_chunk, until):
            if f.stats.lines_cut and not f.cut_warned:
                f.cut_warned = True
                log.warning(
                    "%s: a line longer than %d bytes was cut to its first %d bytes (further cut "
                    "lines are only counted: wechaty_exporter_log_lines_cut_total)",
                    f.path,
                    self._max_line,
                    self._max_line,
                )
            yield self._batch(f, reader, lines, start, rotated=rotated)

    def _batch(
        self, f: _File, reader: _Reader, lines: list[str], start: int, *, rotated: bool
    ) -> Lines:
        f.stats.lines_read += len(lines)
        return Lines(f.path, lines, reader.cursor(), start, rotated)

    def _problem(
        self, f: _File, key: str, text: str, *, read_error: bool, loud: bool = True
    ) -> None:
        """Record what is wrong with a path; count and log it once per distinct problem."""
        f.stats.present = False
        f.stats.problem = text
        if f.problem_key == key:
            return
        f.problem_key = key
        if read_error:
            f.stats.read_errors += 1
        log.log(logging.WARNING if read_error or loud else logging.INFO, "%s: %s", f.path, text)

    def _fine(self, f: _File) -> None:
        if f.problem_key is not None:
            log.info("%s: readable again", f.path)
        f.problem_key = None
        f.stats.problem = None
        f.stats.present = True

    # -- inotify --------------------------------------------------------------------------------

    def _start_watcher(
        self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event
    ) -> _Watcher | None:
        def poke(indices: frozenset[int]) -> None:  # runs in the observer thread
            with self._lock:
                self._pending |= indices
                if self._poke_scheduled:
                    return
                self._poke_scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop closed while the observer stopped
                loop.call_soon_threadsafe(wake.set)

        try:
            return _Watcher(poke)
        except OSError as e:
            log.warning("inotify unavailable (%s); polling every %gs", e, self._poll_interval)
            return None


class _Handler(FileSystemEventHandler):
    """Runs in watchdog's observer thread: turns an event into a poke of the loop, nothing more."""

    def __init__(self, watcher: _Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        watcher = self._watcher
        key_map = watcher.key_map
        hit: frozenset[int] = frozenset()
        for p in (event.src_path, event.dest_path):
            if p:
                hit |= key_map.get(os.fsdecode(p), frozenset())
        if hit or watcher.wake_all:
            watcher.poke(hit)


_EVENTS: list[type[FileSystemEvent]] = [
    FileModifiedEvent,  # IN_MODIFY, IN_ATTRIB (a chmod may make a file readable again)
    FileCreatedEvent,  # IN_CREATE, IN_MOVED_TO
    FileDeletedEvent,  # IN_DELETE
    FileMovedEvent,  # IN_MOVED_FROM/TO
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]  # not IN_OPEN/IN_CLOSE_NOWRITE: our own reads would wake us


class _Watcher:
    """A watchdog Observer on the directories of our files, kept in step with them."""

    def __init__(self, poke: Callable[[frozenset[int]], None]) -> None:
        self.poke = poke
        self.key_map: dict[str, frozenset[int]] = {}  # replaced whole, read by the observer thread
        self.wake_all = False  # a rotated-away file is draining: wake on any event
        self._handler = _Handler(self)
        self._watches: dict[str, tuple[ObservedWatch, tuple[int, int]]] = {}
        self._failed: set[str] = set()
        self._observer = Observer()
        self._observer.start()

    def reconcile(self, files: list[_File], *, full: bool) -> None:
        """Watch exactly the directories the files need; with full, re-check the ones watched."""
        key_map: dict[str, set[int]] = {}
        wanted: set[str] = set()
        for f in files:
            wanted |= f.dirs
            for key in f.keys:
                key_map.setdefault(key, set()).add(f.index)
        self.key_map = {key: frozenset(ids) for key, ids in key_map.items()}
        alive = {e.watch for e in self._observer.emitters if e.is_alive()} if full else set()
        for d in list(self._watches):
            watch, ident = self._watches[d]
            if d in wanted and not full:
                continue
            if d in wanted and watch in alive and _dir_ident(d) == ident:
                continue
            del self._watches[d]
            with contextlib.suppress(KeyError, OSError):
                self._observer.unschedule(watch)
        for d in wanted - self._watches.keys():
            found = _dir_ident(d)
            if found is None:
                continue
            try:
                watch = self._observer.schedule(self._handler, d, event_filter=_EVENTS)
            except OSError as e:
                if d not in self._failed:
                    self._failed.add(d)
                    log.warning("cannot watch %s (%s); polling it", d, e)
                continue
            self._failed.discard(d)
            self._watches[d] = (watch, found)

    def close(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)


def _dir_ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
