"""Wake the tailer on inotify events: one inotify descriptor on the directories of followed files.

The descriptor is read on the event loop itself (``loop.add_reader``), so one wake-up takes every
event queued since the last one: a file appended to 20 times between two turns of the loop costs
one read, one poke and one pass of the tailer, and no thread hands events over under the GIL (a
watchdog Observer, used before, spent ~0.2 ms of CPU per event in its two threads: more than
mtail's whole cost per line at 2,000 lines/s, docs/BENCHMARKS.md). Linux only, through libc's
``inotify_init1``/``inotify_add_watch``; elsewhere, or when the kernel refuses, `Watcher` raises
OSError and the tailer polls. The tailer polls as well, so a missed event only costs latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import stat
import struct
from collections.abc import Callable

from wechaty_exporter.exporter.follow import Follower

# The tailer's logger, as before this code left tailer.py: log lines keep their logger name.
log = logging.getLogger("wechaty_exporter.exporter.tailer")

_IN_MODIFY = 0x2  # a file in the directory was written to
_IN_ATTRIB = 0x4  # ... chmod: it may be readable again
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000  # events were lost: check every file
_IN_IGNORED = 0x8000  # the watch is gone (its directory was deleted or unmounted)
_IN_ONLYDIR = 0x1000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
# Not IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE: our own reads would wake us.
_MASK = (
    _IN_MODIFY | _IN_ATTRIB | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
    | _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_ONLYDIR
)  # fmt: skip
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)
_READ = 64 << 10


def _libc() -> ctypes.CDLL:
    """The C library, for its inotify calls (the process's own symbols when it has no name)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if not hasattr(libc, "inotify_init1"):
        raise OSError(errno.ENOSYS, "inotify is not available on this system")
    return libc


class Watcher:
    """An inotify watch on each directory our files need, read on the event loop.

    `poke(indices)` is called on the loop with the indices of the files an event concerns (all
    of them after a queue overflow); with `wake_all`, any event pokes (a rotated-away file is
    draining, its name may be anywhere now).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, poke: Callable[[frozenset[int]], None]
    ) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._fd = fd
        self._loop = loop
        self.poke = poke
        self.key_map: dict[str, frozenset[int]] = {}  # event path → indices of its files
        self.wake_all = False
        self._everyone: frozenset[int] = frozenset()
        self._watches: dict[str, tuple[int, tuple[int, int]]] = {}  # dir → (wd, (dev, ino))
        self._dirs: dict[int, str] = {}  # wd → dir
        self._failed: set[str] = set()
        self._paused = False
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        """Every queued event, read at once (the descriptor is non-blocking)."""
        hit: set[int] = set()
        key_map, everyone = self.key_map, self._everyone
        poke = self.wake_all
        while True:
            try:
                data = os.read(self._fd, _READ)
            except BlockingIOError:
                break
            except OSError as e:
                log.warning("reading inotify events failed (%s); polling", e)
                self._stop_reading()
                break
            if not data:
                break
            pos, size = 0, len(data)
            while pos < size:
                wd, mask, _, length = _HEADER.unpack_from(data, pos)
                name = data[pos + 16 : pos + 16 + length].rstrip(b"\0")
                pos += 16 + length
                if mask & _IN_Q_OVERFLOW:
                    hit |= everyone
                    poke = True
                    continue
                directory = self._dirs.get(wd)
                if directory is None:
                    continue
                if mask & _IN_IGNORED:  # gone: the next reconcile watches it again if it is back
                    del self._dirs[wd]
                    if self._watches.get(directory, (None,))[0] == wd:
                        del self._watches[directory]
                    continue
                if name:
                    found = key_map.get(os.path.join(directory, os.fsdecode(name)))
                    if found:
                        hit |= found
                        poke = True
            if size < _READ:
                break
        if poke:
            self.poke(frozenset(hit))

    def reconcile(self, files: list[Follower], *, full: bool) -> None:
        """Watch exactly the directories the files need; with full, re-check the ones watched
        (a directory deleted and made again under the same name needs a new watch)."""
        key_map: dict[str, set[int]] = {}
        wanted: set[str] = set()
        for f in files:
            wanted |= f.dirs
            for key in f.keys:
                key_map.setdefault(key, set()).add(f.index)
        self.key_map = {key: frozenset(ids) for key, ids in key_map.items()}
        self._everyone = frozenset(f.index for f in files)
        for d in list(self._watches):
            wd, ident = self._watches[d]
            if d in wanted and (not full or _dir_ident(d) == ident):
                continue
            del self._watches[d]
            self._dirs.pop(wd, None)
            self._libc.inotify_rm_watch(self._fd, wd)
        for d in wanted - self._watches.keys():
            found = _dir_ident(d)
            if found is None:
                continue
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(d), _MASK)
            if wd < 0:
                err = ctypes.get_errno()
                if d not in self._failed:
                    self._failed.add(d)
                    log.warning("cannot watch %s (%s); polling it", d, os.strerror(err))
                continue
            self._failed.discard(d)
            old = self._dirs.get(wd)  # the kernel gives the same wd for the same inode
            if old is not None and old != d:
                self._watches.pop(old, None)
            self._dirs[wd] = d
            self._watches[d] = (wd, found)

    def pause(self) -> None:
        """Stop reading events for a while: they wait in the kernel's queue, where repeats of
        the same event (a file appended to again and again) are merged into one."""
        if self._fd >= 0 and not self._paused:
            self._paused = True
            self._stop_reading()

    def resume(self) -> None:
        """Read events again (at once, if some came meanwhile)."""
        if self._fd >= 0 and self._paused:
            self._paused = False
            self._loop.add_reader(self._fd, self._on_readable)

    def _stop_reading(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            self._stop_reading()
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _dir_ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
