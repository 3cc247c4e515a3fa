"""The exporter's engine: tailer → parser → state, with start-up recovery and periodic saves.

One Monitor owns every bot's state. It is driven by one asyncio task (`run`) and read by the
HTTP handlers on the same loop, so no locks are needed. Each file is read in its dialect
(`bots.<name>.dialect`, default `auto`); the dialect a file turns out to speak is logged once,
when its first event is parsed (`bot alice: /path speaks brolog`), and shown per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from wechaty_exporter.exporter import statefile
from wechaty_exporter.exporter.coldstart import scan_backwards
from wechaty_exporter.exporter.collector import BotView, FileView
from wechaty_exporter.exporter.files import Cursor
from wechaty_exporter.exporter.follow import Lines, Start
from wechaty_exporter.exporter.settings import ExporterSettings
from wechaty_exporter.exporter.tailer import Tailer
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.replay import replay_lines
from wechaty_exporter.logs.state import BotState, PendingQr

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StartReport:
    """How start-up went, for the log line and the tests."""

    resumed: tuple[str, ...]  # paths resumed from the state file
    cold: tuple[str, ...]  # paths recovered by a backward scan
    seconds: float


class Monitor:
    """Every bot's state, kept current from its log files."""

    def __init__(
        self,
        settings: ExporterSettings,
        *,
        clock: Callable[[], float] = time.time,
        use_inotify: bool = True,
        save_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._use_inotify = use_inotify
        self._save_interval = save_interval
        self._bot_of = settings.logs()
        self.bots: dict[str, BotState] = {bot: BotState() for bot, _ in settings.bots}
        # bot → the time from which its counters count every change (None: from the first
        # line of its logs). Set at start-up; kept in the state file across restarts.
        self.counting_since: dict[str, float | None] = {bot: None for bot in self.bots}
        self._parsers: dict[str, dict[tuple[int, int], LineParser]] = {}
        self.speaks: dict[str, str] = {}  # path → the dialect of its first event
        self._cursors: dict[str, tuple[str, Cursor]] = {}
        self._tailer: Tailer | None = None
        self._dirty = False
        self._save_wanted = asyncio.Event()  # a state changed: write it now (off the loop)
        self._writing: asyncio.Future[None] | None = None  # the state file write in flight
        self.ready = asyncio.Event()
        self.start_report: StartReport | None = None

    def _new_parser(self, bot: str, path: str) -> LineParser:
        only = bot in self.settings.self_log_qr_bots
        dialect = self.settings.dialect(bot, path)
        return LineParser(
            self.settings.qr_hosts,
            self_log_qr_only=only,
            dialect=dialect,
            qr_shapes=self.settings.qr_shapes,
        )

    def _heard(self, bot: str, path: str, parser: LineParser) -> None:
        """Log, once per file, the dialect of the first event parsed from it."""
        if parser.spoken is not None and path not in self.speaks:
            self.speaks[path] = parser.spoken
            log.info("bot %s: %s speaks %s", bot, path, parser.spoken)

    # -- reading side (HTTP handlers) --------------------------------------------------------

    def snapshot(self) -> list[BotView]:
        """Every bot with its files' health, for the collector and the API."""
        stats = self._tailer.stats if self._tailer else {}
        views = []
        for bot, paths in self.settings.bots:
            files = []
            for path in paths:
                st = stats.get(path)
                files.append(
                    FileView(
                        path=path,
                        present=bool(st and st.present),
                        rotations=st.rotations if st else 0,
                        truncations=st.truncations if st else 0,
                        read_errors=st.read_errors if st else 0,
                        lines_cut=st.lines_cut if st else 0,
                        dialect=self.settings.dialect_name(bot, path),
                        speaks=self.speaks.get(path),
                    )
                )
            views.append(BotView(bot, self.bots[bot], tuple(files)))
        return views

    def pending_qr(self, bot: str) -> PendingQr | None:
        state = self.bots.get(bot)
        return state.qr if state else None

    # -- start-up ----------------------------------------------------------------------------

    def recover(self) -> dict[str, Start]:
        """Load saved state, or scan logs backwards; return where the tailer starts per file.

        Blocking file I/O: run it in a thread at start-up.
        """
        began = time.perf_counter()
        saved = statefile.Saved()
        if self.settings.state_dir is not None:
            saved = statefile.load(
                self.settings.state_dir, self.settings.qr_hosts, self.settings.qr_shapes
            )
        starts: dict[str, Start] = {}
        resumed, cold = [], []
        started = self._clock()
        for bot in self.bots:
            if bot in saved.bots:
                self.bots[bot] = saved.bots[bot]
                # A state file from before counting_since was kept: counted from now at least.
                self.counting_since[bot] = saved.counting_since.get(bot, started)
        for path, bot in self._bot_of.items():
            entry = saved.cursors.get(path)
            if entry is not None and entry[0] == bot and bot in saved.bots:
                starts[path] = entry[1]
                self._cursors[path] = entry
                resumed.append(path)
                continue
            starts[path] = self._cold_start(path, bot, started)
            cold.append(path)
        self.start_report = StartReport(tuple(resumed), tuple(cold), time.perf_counter() - began)
        return starts

    def _cold_start(self, path: str, bot: str, started: float) -> Start:
        """Recover `bot` from the end of `path`; its counters count from the entry replayed.

        A file read from its beginning (missing or unreadable now, or holding no decisive
        entry at all) is counted whole; one with none in the last max_scan bytes from `started`.
        """
        made: list[LineParser] = []

        def new_parser() -> LineParser:
            made.append(self._new_parser(bot, path))
            return made[-1]

        try:
            found = scan_backwards(path, new_parser)
        except FileNotFoundError:
            return "start"  # waited for; read from its beginning once it appears
        except OSError as exc:
            log.warning("cold start: cannot read %s (%s); will keep trying", path, exc.strerror)
            return "start"
        for parser in made:
            self._heard(bot, path, parser)
        state = self.bots[bot]
        found.apply(state)
        state.saw_lines(found.lines, self._clock())
        counted_from = found.events[0].at if found.events else started if found.gave_up else None
        self.counting_since[bot] = _latest(self.counting_since[bot], counted_from)
        if found.gave_up:
            log.warning(
                "cold start: no login, logout or QR in the last %d MiB of %s; state stays unknown",
                found.scanned >> 20,
                path,
            )
        # Recorded now, so a crash before the first save of a later change still resumes here
        # with the state just recovered, instead of scanning back again and losing the counts.
        self._cursors[path] = (bot, found.cursor)
        self._dirty = True
        return found.cursor

    # -- the loop ----------------------------------------------------------------------------

    def ingest(self, chunk: Lines) -> None:
        """Apply a batch of lines from one file."""
        bot = self._bot_of[chunk.path]
        state = self.bots[bot]
        parser = self._parser_for(chunk)
        now = self._clock()
        before = (state.logged_in, state.qr, state.known)
        replay_lines(state, parser, chunk.lines, now)
        if chunk.path not in self.speaks:
            self._heard(bot, chunk.path, parser)
        # The drained tail of a rotated-away file may arrive after lines of its successor: the
        # position to save is always the file now at the path (None: not there yet).
        cursor = chunk.cursor if not chunk.rotated else self._current_cursor(chunk.path)
        if cursor is not None:
            self._cursors[chunk.path] = (bot, cursor)
        self._dirty = True
        if (state.logged_in, state.qr, state.known) != before:
            self._save_wanted.set()  # rare and precious: persisted at once, by _saver

    def _parser_for(self, chunk: Lines) -> LineParser:
        """One parser per file (path, device, inode): an entry in progress never spans files."""
        per_path = self._parsers.setdefault(chunk.path, {})
        key = (chunk.cursor.device, chunk.cursor.inode)
        parser = per_path.get(key)
        if parser is None:
            while len(per_path) >= 3:  # this file, and the rotated ones still being drained
                del per_path[next(iter(per_path))]
            parser = per_path[key] = self._new_parser(self._bot_of[chunk.path], chunk.path)
        return parser

    def _current_cursor(self, path: str) -> Cursor | None:
        return self._tailer.cursor(path) if self._tailer is not None else None

    def _snapshot(self) -> bytes | None:
        """State and positions together, as the state file's bytes (None: nothing to save)."""
        if self.settings.state_dir is None or not self._dirty:
            return None
        cursors = dict(self._cursors)
        if self._tailer is not None:
            for path, bot in self._bot_of.items():
                if path not in cursors and (cur := self._tailer.cursor(path)) is not None:
                    cursors[path] = (bot, cur)
        self._dirty = False
        return statefile.encode(self.bots, cursors, self.counting_since)

    def _write(self, data: bytes) -> None:
        assert self.settings.state_dir is not None
        try:
            statefile.write(self.settings.state_dir, data)
        except OSError as exc:
            self._dirty = True
            log.error("cannot save state to %s: %s", self.settings.state_dir, exc)

    def save(self) -> None:
        """Write state and positions together, blocking (no-op without a state dir)."""
        data = self._snapshot()
        if data is not None:
            self._write(data)

    async def run(self, stop: asyncio.Event) -> None:
        """Recover, then follow every log until `stop` is set; saves as it goes and at the end."""
        starts = await asyncio.to_thread(self.recover)
        report = self.start_report
        assert report is not None
        log.info(
            "watching %d file(s) of %d bot(s): %d resumed from saved state, %d cold-started "
            "in %.0f ms",
            len(starts),
            len(self.bots),
            len(report.resumed),
            len(report.cold),
            report.seconds * 1000,
        )
        self._tailer = Tailer(
            starts,
            poll_interval=self.settings.poll_interval,
            max_line_bytes=self.settings.max_line_bytes,
            use_inotify=self._use_inotify,
        )
        self.save()
        _freeze_startup_heap()
        self.ready.set()
        saver = asyncio.create_task(self._saver())
        try:
            async for chunk in self._tailer.run(stop):
                self.ingest(chunk)
        finally:
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver
            if self._writing is not None:  # let the last write finish before the final one
                with contextlib.suppress(Exception):
                    await self._writing
            self.save()

    async def _saver(self) -> None:
        """Save at once after a state change, else every save_interval when lines were read.

        The snapshot is taken on the loop, where states and positions agree; the write (two
        fsyncs) runs in a thread, one at a time, so a slow disk delays saves, never reading or
        serving /metrics. Changes during a write are saved right after it.
        """
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._save_wanted.wait(), self._save_interval)
            self._save_wanted.clear()
            data = self._snapshot()
            if data is None:
                continue
            self._writing = loop.run_in_executor(None, self._write, data)
            await asyncio.shield(self._writing)
            self._writing = None


def _latest(a: float | None, b: float | None) -> float | None:
    """The later of two times, where None (from the first line) is the earliest of all."""
    return b if a is None else a if b is None else max(a, b)


_heap_frozen = False


def _freeze_startup_heap() -> None:
    """Move every object alive after start-up to the permanent GC generation, once per process.

    Each scrape allocates ~2,000 samples (100 bots), so full collections come every ~50 scrapes;
    walking the start-up heap (modules, aiohttp, the app) stalled the loop 12-18 ms each time,
    most of /metrics' p99. Frozen objects are never scanned; later garbage is collected as usual.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()
