"""`wechaty-exporter replay`: the exporter's parser and state machine over whole files, once.

Also the reference the torture tests compare a live exporter against: the state after following
a log through rotations must equal the state after replaying every line it was given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Sequence

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.qr import DEFAULT_QR_HOSTS
from wechaty_exporter.logs.dialects.rules import Dialect
from wechaty_exporter.logs.state import BotState

CHUNK = 256 << 10  # small enough to stay in the CPU cache while it is scanned


def replay_lines(state: BotState, parser: LineParser, lines: Iterable[str], now: float) -> int:
    """Feed lines through `parser` into `state`; returns how many lines there were."""
    feed, apply = parser.feed, state.apply
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
) -> None:
    """Replay one file into `state`. Lines without a full date get the file's mtime.

    Reads 256 KiB blocks; `LineParser.feed_block` skips the lines that cannot hold an event
    without decoding them, so replay runs at close to the speed of reading the file.
    `dialect`: the file's rules (None: the built-in detection).
    """
    hosts = tuple(qr_hosts) if qr_hosts else DEFAULT_QR_HOSTS
    parser = LineParser(hosts, self_log_qr_only=self_log_qr_only, dialect=dialect)
    apply = state.apply
    lines = 0
    with open(path, "rb") as f:
        now = os.fstat(f.fileno()).st_mtime
        rest, skipping = b"", False
        while chunk := f.read(CHUNK):
            if skipping:  # inside an overlong line: drop bytes up to its newline
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                chunk, skipping = chunk[nl:], False
            data = rest + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest, skipping = (data[:max_line], True) if len(data) > max_line else (data, False)
                continue
            rest = data[cut + 1 :]
            lines += data.count(b"\n", 0, cut + 1)
            for event in parser.feed_block(data, now, max_line, end=cut + 1):
                apply(event)
        if rest:
            lines += 1
            for event in parser.feed(rest.decode("utf-8", "replace"), now):
                apply(event)
    state.saw_lines(lines, now)


def replay_files(
    targets: Sequence[tuple[str, str]],
    *,
    qr_hosts: Sequence[str] | None = None,
    self_log_qr_bots: Collection[str] = (),
    dialects: Callable[[str, str], Dialect | None] | None = None,
) -> dict[str, BotState]:
    """(bot, path) pairs → each bot's state (first-seen order), files replayed as given;
    `dialects(bot, path)` gives each file's rules (None: the built-in detection)."""
    states: dict[str, BotState] = {}
    for bot, path in targets:
        state = states.setdefault(bot, BotState())
        dialect = dialects(bot, path) if dialects is not None else None
        only = bot in self_log_qr_bots
        replay_file(state, path, qr_hosts=qr_hosts, self_log_qr_only=only, dialect=dialect)
    return states
