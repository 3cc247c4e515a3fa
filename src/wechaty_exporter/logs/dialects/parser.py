"""Line -> events: `LineParser` strips a line's wrappers and hands what is left to its dialect.

Pure: no I/O, no clock. `LineParser.feed(line, now)` takes one physical line (without its
"\\n") and the time it was read, and returns the events the log's *structure* proves: the level
and logger fields and a message anchored as a whole, never a substring of chat text. A
`Message#Text[...]\\tonScan: Waiting(2) - ...` line is a chat message and yields nothing.

Each dialect family is documented in its module: `brolog` (TypeScript Wechaty, with
wechaty-plugin-contrib EventLogger and QRCodeTerminal), `pywechaty` (python-wechaty) and
`selflog` (this project's own bot). The wrappers, dates and read caps are in `structure`, scan
statuses and the QR policy in `context`, login-QR validation in `qr`, and the `feed_block`
prefilter in `prefilter`.

A parser given a `Dialect` (`rules`: a bot's custom rules, or a built-in profile in rule form)
reads each line with its rules first; with mode ``instead`` (the default) the built-in detection
never runs, with ``alongside`` it reads the lines no rule took. `source` names what produced the
last line's events (a family, ``brolog``, or ``<dialect>/<rule>``), `spoken` the dialect of the
first event, for `explain` and the exporter's "speaks" line.

Self-log lines are trusted only in a log that holds nothing else. This project's bot and the
TypeScript plugin write their self-log to a file of its own; a self-log line in a log that has
shown any other line (a bot's console, where chat text lands raw) may have been written by a chat
message, so its events become `Suspect` (``self_log_in_mixed_log``) from then on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING

from wechaty_exporter.logs.dialects.brolog import BROLOG_RE, QRT_URL, brolog_events
from wechaty_exporter.logs.dialects.context import DialectContext
from wechaty_exporter.logs.dialects.prefilter import CANDIDATES, literal_search, quiet_run
from wechaty_exporter.logs.dialects.pywechaty import PYTHON_RE, python_events
from wechaty_exporter.logs.dialects.qr import DEFAULT_QR_HOSTS
from wechaty_exporter.logs.dialects.selflog import SELF_LOG_NAME, SELF_RE, self_log_events
from wechaty_exporter.logs.dialects.structure import (
    ANSI_RE,
    DATE_RE,
    DATE_WRAPPER_RE,
    DIALECT_RE,
    HEAD_CAP,
    MAX_WRAPPERS,
    PM2_CONSOLE_RE,
    When,
    json_object,
    line_rest,
    strip,
)
from wechaty_exporter.logs.events import (
    Event,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    Scan,
    ScanStatus,
    Suspect,
)

if TYPE_CHECKING:  # the rules (and re2's rule options) are imported only when a dialect is given
    from wechaty_exporter.logs.dialects.patterns import Regex
    from wechaty_exporter.logs.dialects.rules import Dialect, RuleMatcher

__all__ = ["LineParser", "long_line_start"]

_JSON_MAX_PARTS = 1000  # lines of one pm2 JSON message that are parsed
ANSI_BYTES_RE = re.compile(ANSI_RE.pattern.encode("ascii"))  # `strip`'s escapes, in UTF-8 bytes

_BLANK = " \t\r\n\f\v"  # what a blank line holds (ASCII only: the same in str and bytes)
_NON_BLANK_BYTES = re.compile(rb"[^ \t\r\n\f\v]")


def _mixed(event: Event) -> Event:
    """A self-log event read in a log that also holds other lines, as a Suspect if it says
    anything (a login, logout, scan of a known status or a probe)."""
    if isinstance(event, Login | Logout | ProbeReceived | ProbeSent) or (
        isinstance(event, Scan) and event.status is not ScanStatus.UNKNOWN
    ):
        return Suspect(event.at, "self_log_in_mixed_log", event)
    return event


# What the wrapper loop found inside a line.
_NONE, _BROLOG, _PYTHON, _SELF, _JSON = range(5)

Skip = Callable[[int], int]


def line_starts(line: str, when: When) -> list[tuple[int, When]]:
    """Where `line` may start after its wrappers (0 first, then after each pm2 prefix or date
    wrapper, as `LineParser` strips them), each with the date of the wrappers so far."""
    starts: list[tuple[int, When]] = [(0, when)]
    pos = 0
    for _ in range(MAX_WRAPPERS):
        if "0" <= line[pos : pos + 1] <= "9" and line[pos + 4 : pos + 5] == "-":
            w = DATE_WRAPPER_RE.match(line, pos)
            if w is None:
                break
            when = w
        else:
            w = PM2_CONSOLE_RE.match(line, pos)
            if w is None:
                break
        pos = w.end()
        starts.append((pos, when))
    return starts


def _brolog_family(head: str, m: re.Match[str]) -> str:
    prefix = m.group(2)
    if prefix == "EventLogger" or head.startswith("EventLogger", m.end()):
        return "eventlogger"
    if prefix == "QRCodeTerminal" or head.startswith("QRCodeTerminal ", m.end()):
        return "qrcode-terminal"
    return "brolog"


def _valid_utf8(data: bytes | bytearray, size: int) -> bool:
    block = data[:size]
    if block.isascii():
        return True
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def long_line_start(data: bytes | bytearray, start: int, end: int, max_chars: int) -> int:
    """The start of the first line in data[start:end] longer than `max_chars` bytes, else -1.

    A line that long holds a whole window of (max_chars + 2) // 2 bytes of a grid over the
    range: only a window without a newline is looked at closer."""
    step = (max_chars + 2) // 2
    for at in range(start, end, step):
        if data.find(b"\n", at, min(at + step, end)) >= 0:
            continue
        line = data.rfind(b"\n", start, at) + 1 or start
        stop = data.find(b"\n", at, end)
        if (end if stop < 0 else stop) - line > max_chars:
            return line
    return -1


class LineParser:
    """One per log file (it holds the two-line QRCodeTerminal entry in progress)."""

    __slots__ = (
        "_ctx", "_pending_at", "_pending_fresh", "_rules", "entry_lines", "mixed", "notes",
        "source", "spoken",
    )  # fmt: skip

    def __init__(
        self,
        allowed_qr_hosts: Sequence[str] = DEFAULT_QR_HOSTS,
        tz: tzinfo | None = None,
        *,
        self_log_qr_only: bool = False,
        dialect: Dialect | None = None,
        qr_shapes: Sequence[str] | None = None,
    ) -> None:
        """`self_log_qr_only`: take login QRs only from self-log lines, which a chat message
        cannot forge; a Waiting scan of any plain-text dialect becomes a RejectedQr.
        `dialect`: rules read before (or instead of) the built-in detection.
        `qr_shapes`: the login-QR shapes (None: `qr.DEFAULT_QR_SHAPES`)."""
        self._ctx = DialectContext(allowed_qr_hosts, tz, self_log_qr_only, qr_shapes)
        self._pending_at: float | None = None  # a QRCodeTerminal Waiting line awaits its URL line
        self._pending_fresh = False  # ... and it was set by the current physical line
        self._rules: RuleMatcher | None = None
        if dialect is not None:
            from wechaty_exporter.logs.dialects.rules import RuleMatcher

            self._rules = RuleMatcher(dialect)
        self.entry_lines = 1
        self.source: str | None = None  # what took the last line: "brolog", "<dialect>/<rule>"
        self.spoken: str | None = None  # the dialect of the first event
        self.mixed = False  # a line that is not a self-log line was seen (module docstring)
        self.notes: list[str] = []  # why a line a rule took gave no event (for explain)

    @property
    def dialect_name(self) -> str:
        """``auto`` (the built-in detection) or the name of the parser's dialect."""
        return self._rules.dialect.name if self._rules is not None else "auto"

    def feed(self, line: str, now: float) -> list[Event]:
        """Events proven by one physical line (without "\\n"), read at `now` (Unix seconds)."""
        self.entry_lines = 1
        self._pending_fresh = False
        self.source = None
        if self.notes:
            self.notes = []
        if self._rules is not None:
            self._rules.lines += 1
        out: list[Event] = []
        self._line(line, now, None, True, out)
        if out:  # what a forged line may have written becomes a Suspect (context.py)
            out = self._ctx.vet(out, self.source, line)
        if out and self.spoken is None and self.source is not None:
            self.spoken = self.source.partition("/")[0]
        return out

    @property
    def awaiting_continuation(self) -> bool:
        """True while a two-line entry (QRCodeTerminal's, or a rule's) waits for its line."""
        return self._pending_at is not None or (self._rules is not None and self._rules.pending)

    def feed_block(
        self,
        data: bytes | bytearray,
        now: float,
        max_chars: int | None = None,
        end: int | None = None,
    ) -> list[Event]:
        """Events of every line of `data[:end]`, as if each line were fed in turn.

        Lines end in "\\n"; a last line without one is fed too. Each line is decoded as UTF-8
        (errors replaced) and cut to `max_chars` characters before `feed`. Runs of lines that
        provably hold no event (chat, puppet chatter: most of a log) are skipped by one regex,
        without being decoded or split; tests/logs/test_prefilter.py checks the equivalence.
        """
        size = len(data) if end is None else end
        skip = self.skipper(data, size, max_chars)
        feed = self.feed
        out: list[Event] = []
        pos = 0
        while pos < size:
            start, pos = pos, skip(pos)
            if pos > start and not self.mixed:
                self.skipped(data, start, pos)
            if pos >= size:
                break
            stop = data.find(b"\n", pos, size)
            if stop < 0:
                stop = size
            line = data[pos:stop].decode("utf-8", "replace")
            if max_chars is not None and len(line) > max_chars:
                line = line[:max_chars]
            out += feed(line, now)
            pos = stop + 1
        return out

    def skipped(self, data: bytes | bytearray, start: int, end: int) -> None:
        """Lines `data[start:end]` were skipped by the `skipper` (they are not self-log lines,
        which always hold a candidate): as if fed, for `mixed`."""
        if not self.mixed and _NON_BLANK_BYTES.search(data, start, end) is not None:
            self.mixed = True

    def skipper(self, data: bytes | bytearray, size: int, max_chars: int | None = None) -> Skip:
        """For `data[:size]` (whole lines): pos (a line start) → the end of the run of lines from
        there that provably yield no event and leave the parser unchanged (pos if none).

        Built-in detection: `prefilter.CANDIDATES` finds the lines that may hold an event, the
        others are skipped; a found line is skipped too when `quiet_run` proves it chat.

        A dialect whose every pattern holds a literal (`Dialect.literals`): only the lines
        `prefilter.literal_search` finds may be read by the rules; with mode ``alongside`` one
        search finds those and the built-in candidates, and a found line the rules may read is
        never skipped. Other dialects: their re2 prefilter finds the next
        line a rule could take (none: no skipping); with mode ``alongside`` the run must also be
        one the built-in prefilter skips; nothing is skipped in a block that is not valid UTF-8
        or over a line longer than `max_chars` bytes (cut, it could read differently).
        Nothing is skipped while an entry waits for its next line.
        """
        rules = self._rules
        if rules is None:
            return self._builtin_skipper(data, size, CANDIDATES)
        dialect = rules.dialect
        if dialect.literals is not None:
            own = literal_search(dialect.literals, builtin=False)
            if not dialect.instead:  # one pass finds the lines either may read
                both = literal_search(dialect.literals, builtin=True)
                return self._builtin_skipper(data, size, both, own)
            return self._literal_skipper(data, size, own)
        builtin: Skip | None = None
        if not dialect.instead:
            builtin = self._builtin_skipper(data, size, CANDIDATES)
        prefilter = dialect.prefilter
        if prefilter is None or not _valid_utf8(data, size):
            return lambda pos: pos
        hit = -1  # the start of the next line a rule could take (none before it)

        def custom(pos: int) -> int:
            nonlocal hit
            if self._pending_at is not None or rules.pending:
                return pos
            start = pos
            while True:
                if hit < pos:
                    m = prefilter.search(data, pos, size)
                    hit = size if m is None else max(pos, data.rfind(b"\n", pos, m.start()) + 1)
                if hit > pos:
                    break
                # A found line with an ANSI escape (the prefilter finds them all): skipped when,
                # without its escapes (as the rules read it), the prefilter finds nothing in it.
                stop = data.find(b"\n", pos, size)
                if stop < 0 or data.find(b"\x1b", pos, stop) < 0:
                    break
                if max_chars is not None and stop - pos > max_chars:
                    break
                if prefilter.search(ANSI_BYTES_RE.sub(b"", data[pos:stop])) is not None:
                    break
                pos = stop + 1
            end = max(hit, pos) if hit > pos else pos
            if max_chars is not None and end - start > max_chars:
                long = long_line_start(data, start, end, max_chars)
                if long >= 0:
                    end = long
            if builtin is not None and end > start:
                end = min(end, builtin(start))
            return end

        return custom

    def _builtin_skipper(
        self, data: bytes | bytearray, size: int, candidates: Regex, rules_read: Regex = None
    ) -> Skip:
        """`skipper` for the built-in detection: up to the next line `candidates` finds (one
        search per find, over the raw bytes), past each found line `quiet_run` proves chat.
        `rules_read` (mode ``alongside``): a found line it finds too is a line the rules may
        take, never skipped (`candidates` finds both kinds)."""
        search = candidates.search
        quiet: Callable[[bytes | bytearray, int, int], re.Match[bytes] | None] | None = None
        find, rfind = data.find, data.rfind
        rules = self._rules
        hit = -1  # the start of the next found line (none before it); size: none left

        def builtin(pos: int) -> int:
            nonlocal hit, quiet
            if self._pending_at is not None:  # the next line completes or cancels it
                return pos
            if rules is not None and rules.pending:
                return pos
            while True:
                if hit < pos:
                    m = search(data, pos, size)
                    hit = size if m is None else max(pos, rfind(b"\n", pos, m.start()) + 1)
                if hit > pos:
                    return hit
                stop = find(b"\n", pos, size)  # a found line at pos: is it chat all the same?
                if stop < 0:
                    return pos
                if rules_read is not None and rules_read.search(data, pos, stop) is not None:
                    return pos
                if quiet is None:
                    quiet = quiet_run(data.find(b"\x1b", 0, size) >= 0).match
                run = quiet(data, pos, stop + 1)
                if run is None or run.end() <= pos:
                    return pos
                pos = run.end()

        return builtin

    def _literal_skipper(self, data: bytes | bytearray, size: int, search: Regex) -> Skip:
        """`skipper` for rules read instead of the built-in detection, each holding a literal:
        up to the next line `search` finds (`Dialect.literal_search`)."""
        rules = self._rules
        assert rules is not None
        find = search.search
        rfind = data.rfind
        hit = -1

        def literal(pos: int) -> int:
            nonlocal hit
            if self._pending_at is not None or rules.pending:
                return pos
            if hit < pos:
                m = find(data, pos, size)
                hit = size if m is None else max(pos, rfind(b"\n", pos, m.start()) + 1)
            return hit

        return literal

    def _custom(
        self,
        rules: RuleMatcher,
        raw: str,
        now: float,
        when: When,
        allow_json: bool,
        out: list[Event],
    ) -> bool:
        """Read `raw` with the dialect's rules; True when they took it (or it was pm2 JSON)."""
        line = strip(raw)
        if allow_json:
            for pos, _ in line_starts(line, when):
                if line.startswith("{", pos):
                    if self._pm2_json(raw, line, pos, False, now, out):
                        return True
                    break
        name = rules.line(line, when, now, self._ctx, out, line_starts)
        if rules.note is not None:
            self.notes.append(rules.note)
        if name is None:
            return False
        if rules.entry_lines > self.entry_lines:
            self.entry_lines = rules.entry_lines
        self.source = f"{rules.dialect.name}/{name}"
        return True

    def _line(self, raw: str, now: float, when: When, allow_json: bool, out: list[Event]) -> None:
        rules = self._rules
        if rules is not None:
            if self._custom(rules, raw, now, when, allow_json, out):
                self.mixed = True
                return
            if rules.dialect.instead:
                return
        truncated = len(raw) > HEAD_CAP
        head = raw[:HEAD_CAP] if truncated else raw
        if "\x1b" in head:
            head = ANSI_RE.sub("", head)
        if head.endswith("\r"):
            head = head[:-1]
        # Strip wrappers until a dialect shows. Most lines are chat, rejected by one anchored
        # regex that also classifies the lines that may hold an event.
        pos = 0
        kind = _NONE
        m: re.Match[str] | None = None
        for _ in range(MAX_WRAPPERS + 1):
            d = DIALECT_RE.match(head, pos)
            if d is not None:
                group = d.lastgroup
                if group == "brolog":
                    m, kind = BROLOG_RE.match(head, pos), _BROLOG
                elif group == "python":
                    m = PYTHON_RE.match(head, pos)
                    kind, when = _PYTHON, m
                break
            c = head[pos : pos + 1]
            if c == "{":
                if allow_json:
                    kind = _JSON
                break
            if "0" <= c <= "9" and head[pos + 4 : pos + 5] == "-":
                if SELF_LOG_NAME in head:
                    m = SELF_RE.match(head, pos)
                    if m is not None:
                        kind, when = _SELF, m
                        break
                w = DATE_WRAPPER_RE.match(head, pos)
                if w is None:
                    break
                when, pos = w, w.end()
                continue
            w = PM2_CONSOLE_RE.match(head, pos)
            if w is None:
                break
            pos = w.end()

        if kind == _JSON:
            if not self._pm2_json(raw, head, pos, truncated, now, out):
                self.mixed = True
            return
        if kind != _SELF and not self.mixed and raw.strip(_BLANK):
            self.mixed = True
        pending = self._pending_at
        if pending is not None:
            self._pending_at = None
            if kind == _NONE and head.startswith(QRT_URL, pos):
                qr = head[pos + len(QRT_URL) :].strip(" \t")
                out.append(self._ctx.waiting(pending, qr, truncated))
                self.source = "qrcode-terminal"
                if not self._pending_fresh:
                    self.entry_lines = 2
                return
        if m is None:
            return
        count = len(out)
        if kind == _BROLOG:
            waiting_at = brolog_events(head, m, truncated, when, now, self._ctx, out)
            if waiting_at is not None:  # a QRCodeTerminal entry: the next line has its URL
                self._pending_at = waiting_at
                self._pending_fresh = True
                self.source = "qrcode-terminal"
            elif len(out) > count:
                self.source = _brolog_family(head, m)
        elif kind == _PYTHON:
            python_events(head, m, truncated, when, now, self._ctx, out)
            if len(out) > count:
                self.source = "python-wechaty"
        elif kind == _SELF:
            ctx = self._ctx
            self_log_events(raw, head, m, truncated, ctx.at(when, now), ctx, out)
            if len(out) > count:
                self.source = "self-log"
                if self.mixed:
                    out[count:] = [_mixed(e) for e in out[count:]]

    def _pm2_json(
        self, raw: str, head: str, pos: int, truncated: bool, now: float, out: list[Event]
    ) -> bool:
        """Read a pm2 JSON line: each part of its message is a line. False if it is not one."""
        body = line_rest(raw, head, pos, truncated)
        if body is None or not body.endswith("}"):
            return False
        fields = json_object(body)
        if fields is None:
            return False
        message = fields.get("message")
        if not isinstance(message, str) or (
            "app_name" not in fields and "process_id" not in fields
        ):
            return False
        stamp = fields.get("timestamp")
        when: When = None
        if isinstance(stamp, str):
            when = DATE_RE.match(stamp)
        elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
            when = float(stamp) / 1000.0 if stamp > 1e11 else float(stamp)
        parts = message.split("\n", _JSON_MAX_PARTS)
        if parts[-1] == "":
            parts.pop()
        for part in parts:
            self._line(part, now, when, False, out)
        return True
