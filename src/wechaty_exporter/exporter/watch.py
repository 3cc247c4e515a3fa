"""Wake the tailer on inotify events: a watchdog Observer on the directories of followed files.

The observer thread only pokes the event loop with the indices of the files an event concerns;
all reading happens on the loop. The tailer polls as well, so a missed event only costs latency.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable

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

from wechaty_exporter.exporter.follow import Follower

# The tailer's logger, as before this code left tailer.py: log lines keep their logger name.
log = logging.getLogger("wechaty_exporter.exporter.tailer")


class _Handler(FileSystemEventHandler):
    """Runs in watchdog's observer thread: turns an event into a poke of the loop, nothing more."""

    def __init__(self, watcher: Watcher) -> None:
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


class Watcher:
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

    def reconcile(self, files: list[Follower], *, full: bool) -> None:
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
