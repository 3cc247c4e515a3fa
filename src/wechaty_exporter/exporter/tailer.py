"""Follow log files through rotation and truncation and yield their complete lines (no parsing).

Shape (after watchfiles' ``awatch``)::

    tailer = Tailer({"/var/log/bot.log": saved_cursor_or("end")})
    async for batch in tailer.run(stop_event):
        for line in batch.lines: ...
        save(batch.path, tailer.cursor(batch.path))

How files are followed
----------------------
* Wake-ups come from inotify (``watch.py``: one descriptor read on the event loop) on the parent
  directory of every path and on the directory of a symlinked path's target; one wake-up takes
  every event queued since the last. All reading happens on the loop. A busy log is read in
  batches (over 500 lines/s; at 2,000 lines/s every 100 ms, ``GAP_PER_LINE``), a quieter one at
  once. A poll every ``poll_interval`` seconds re-checks every file with one ``os.stat`` each
  (missed events, queue overflow, directories that appear later, NFS). ``use_inotify=False``
  polls only.
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

Where the code is
-----------------
``tailer.py`` wakes up and decides which paths to check; ``follow.py`` applies the rules above to
one path (``Follower``); ``reader.py`` turns one open file's bytes into lines; ``watch.py`` is the
inotify layer; ``files.py`` holds ``Cursor`` and ``open_regular``, shared with the cold start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping

from wechaty_exporter.exporter.files import Cursor
from wechaty_exporter.exporter.follow import FileStats, Follower, Lines, Start, check_start
from wechaty_exporter.exporter.watch import Watcher

log = logging.getLogger(__name__)

# A busy log is read in batches: when the files gave more than BUSY lines/s over the last
# second, a pass that inotify woke is followed by the next one only GAP_PER_LINE seconds per
# line/s later (at most MAX_GAP): at 2,000 lines/s, 10 passes a second instead of one per write,
# so following a busy log costs less CPU per line than mtail's 250 ms poll (docs/BENCHMARKS.md,
# benchmark 8). Below BUSY lines/s every write is read at once (detection in milliseconds).
BUSY = 500.0
GAP_PER_LINE = 50e-6
MAX_GAP = 0.1


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
        max_gap: float = MAX_GAP,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        if max_line_bytes < 1 or read_chunk < 1:
            raise ValueError("max_line_bytes and read_chunk must be >= 1")
        if rotate_wait < 0:
            raise ValueError("rotate_wait must be >= 0")
        self._poll_interval = poll_interval
        self._max_gap = max_gap
        self._use_inotify = use_inotify
        self.stats: dict[str, FileStats] = {path: FileStats() for path in starts}
        self._files = [
            Follower(
                path,
                i,
                self.stats[path],
                check_start(path, start),
                max_line=max_line_bytes,
                read_chunk=read_chunk,
                rotate_wait=rotate_wait,
            )
            for i, (path, start) in enumerate(starts.items())
        ]
        self._by_path = {f.path: f for f in self._files}
        self._pending: set[int] = set()
        self._poked = False  # inotify woke the loop since the last pass
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
        stop_task.add_done_callback(lambda _: wake.set())
        next_poll = loop.time()
        counted, count_since, gap = 0, next_poll, 0.0  # lines read since, and the gap they make
        try:
            while not stop.is_set():  # the first pass is full: it locates every file
                wake.clear()
                poked, self._pending = self._pending, set()
                now = loop.time()
                full = now >= next_poll
                if full:
                    next_poll = now + self._poll_interval
                    todo = self._files
                else:
                    todo = [f for f in self._files if f.index in poked or f.draining]
                if now - count_since >= 1.0:
                    rate = counted / (now - count_since)
                    gap = min(self._max_gap, rate * GAP_PER_LINE) if rate > BUSY else 0.0
                    counted, count_since = 0, now
                for f in todo:
                    try:
                        for batch in f.check(now):
                            counted += len(batch.lines)
                            yield batch
                            if stop.is_set():
                                return
                    except Exception as e:  # a bug must not stop the other files being followed
                        log.exception("%s: unexpected error while reading", f.path)
                        f.problem("internal", f"internal error: {e!r}", read_error=True)
                    if (full and f.reader is None and f.locate()) or f.relocated:
                        f.relocated = False
                        self._relocated = True
                if watcher is not None:
                    watcher.wake_all = any(f.draining for f in self._files)
                    if full or self._relocated:
                        self._relocated = False
                        watcher.reconcile(self._files, full=full)
                deadline = min(
                    [next_poll] + [close_at for f in self._files for _, close_at in f.draining]
                )
                if not wake.is_set():  # one Event and one timer: cheap enough for every pass
                    timer = loop.call_at(deadline, wake.set)
                    await wake.wait()
                    timer.cancel()
                if self._poked and not stop.is_set():
                    self._poked = False
                    rest = now + gap - loop.time()
                    if rest > 0:  # a busy file: let its writes pile up, then read them at once
                        if watcher is not None:
                            watcher.pause()  # the kernel merges the events meanwhile
                        await asyncio.sleep(rest)
                        if watcher is not None:
                            watcher.resume()
        finally:
            stop_task.cancel()
            if watcher is not None:
                watcher.close()
            for f in self._files:
                f.suspend()
            self._running = False

    def _start_watcher(
        self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event
    ) -> Watcher | None:
        def poke(indices: frozenset[int]) -> None:  # runs on the loop, once per batch of events
            self._pending |= indices
            self._poked = True
            wake.set()

        try:
            return Watcher(loop, poke)
        except OSError as e:
            log.warning("inotify unavailable (%s); polling every %gs", e, self._poll_interval)
            return None
