"""`wechaty-exporter replay`: the exporter's parser and state machine over whole files, once.

Also the reference the torture tests compare a live exporter against: the state after following
a log through rotations must equal the state after replaying every line it was given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.qr import DEFAULT_QR_HOSTS
from wechaty_exporter.logs.state import BotState

if TYPE_CHECKING:
    from wechaty_exporter.logs.dialects.rules import Dialect

CHUNK = 4 << 20  # bytes read at once; the prefilter searches a whole block in one pass


class LineBlock:
    """Complete lines as a follower read them: `first` (already decoded) then every line of
    `data` (bytes, each ending in "\\n", none longer than the reader's line cap).

    A sequence of str to whoever iterates it (decoded on first use, UTF-8 with errors replaced,
    as the reader always did); `replay_lines` hands `data` whole to `LineParser.feed_block`, so
    a live batch of chat lines is searched once and never decoded or split.
    """

    __slots__ = ("_decoded", "_len", "data", "first")

    def __init__(self, first: list[str], data: bytes) -> None:
        self.first = first
        self.data = data
        self._len = len(first) + data.count(b"\n")
        self._decoded: list[str] | None = None

    def _lines(self) -> list[str]:
        if self._decoded is None:
            rest = self.data.decode("utf-8", "replace").split("\n")[:-1] if self.data else []
            self._decoded = self.first + rest
        return self._decoded

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines())

    def __getitem__(self, index: int) -> str:
        return self._lines()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineBlock):
            return self._lines() == other._lines()
        return isinstance(other, list) and self._lines() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LineBlock({self._lines()!r})"


def replay_lines(state: BotState, parser: LineParser, lines: Iterable[str], now: float) -> int:
    """Feed lines through `parser` into `state`; returns how many lines there were.

    A `LineBlock`'s bytes go to `LineParser.feed_block` in one piece (the same events as
    feeding each line, tests/logs/test_prefilter.py)."""
    feed, apply = parser.feed, state.apply
    if isinstance(lines, LineBlock):
        for line in lines.first:
            for event in feed(line, now):
                apply(event)
        if lines.data:
            for event in parser.feed_block(lines.data, now):
                apply(event)
        state.saw_lines(len(lines), now)
        return len(lines)
    count = 0
    for line in lines:
        count += 1
        for event in feed(line, now):
            apply(event)
    state.saw_lines(count, now)
    return count


def replay_file(
    state: BotState,
    path: str,
    *,
    qr_hosts: Sequence[str] | None = None,
    self_log_qr_only: bool = False,
    max_line: int = 65536,
    dialect: Dialect | None = None,
    qr_shapes: Sequence[str] | None = None,
) -> None:
    """Replay one file into `state`. Lines without a full date get the file's mtime.

    Reads 4 MiB blocks into one reused buffer; `LineParser.feed_block` searches each block for
    the few lines that may hold an event and skips the others without decoding them, so replay
    runs at a small multiple of the speed of reading the file (docs/BENCHMARKS.md).
    `dialect`: the file's rules (None: the built-in detection).
    """
    hosts = tuple(qr_hosts) if qr_hosts else DEFAULT_QR_HOSTS
    parser = LineParser(
        hosts, self_log_qr_only=self_log_qr_only, dialect=dialect, qr_shapes=qr_shapes
    )
    apply = state.apply
    lines = 0
    with open(path, "rb", buffering=0) as f:
        now = os.fstat(f.fileno()).st_mtime
        buf = bytearray(2 * CHUNK)
        have = 0  # bytes in buf: the partial line carried over, then what was just read
        skipping = False  # inside an overlong line: drop bytes up to its newline
        while True:
            if len(buf) < have + CHUNK:
                buf.extend(bytes(have + CHUNK - len(buf)))
            with memoryview(buf) as view:
                got = f.readinto(view[have : have + CHUNK])
            if not got:
                break
            if skipping:
                nl = buf.find(b"\n", have, have + got)
                if nl < 0:
                    continue
                del buf[have:nl]
                got -= nl - have
                skipping = False
            end = have + got
            cut = buf.rfind(b"\n", 0, end)
            if cut < 0:
                have, skipping = (max_line, True) if end > max_line else (end, False)
                continue
            lines += buf.count(b"\n", 0, cut + 1)
            for event in parser.feed_block(buf, now, max_line, end=cut + 1):
                apply(event)
            have = end - cut - 1
            buf[:have] = buf[cut + 1 : end]
        if have:
            lines += 1
            for event in parser.feed(buf[:have].decode("utf-8", "replace"), now):
                apply(event)
    state.saw_lines(lines, now)


def replay_files(
    targets: Sequence[tuple[str, str]],
    *,
    qr_hosts: Sequence[str] | None = None,
    self_log_qr_bots: Collection[str] = (),
    dialects: Callable[[str, str], Dialect | None] | None = None,
    qr_shapes: Sequence[str] | None = None,
) -> dict[str, BotState]:
    """(bot, path) pairs → each bot's state (first-seen order), files replayed as given;
    `dialects(bot, path)` gives each file's rules (None: the built-in detection)."""
    states: dict[str, BotState] = {}
    for bot, path in targets:
        state = states.setdefault(bot, BotState())
        dialect = dialects(bot, path) if dialects is not None else None
        only = bot in self_log_qr_bots
        replay_file(
            state, path, qr_hosts=qr_hosts, self_log_qr_only=only, dialect=dialect,
            qr_shapes=qr_shapes,
        )  # fmt: skip
    return states
