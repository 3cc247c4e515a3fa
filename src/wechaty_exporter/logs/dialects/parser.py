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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo

from wechaty_exporter.logs.dialects.brolog import BROLOG_RE, QRT_URL, brolog_events
from wechaty_exporter.logs.dialects.context import DialectContext
from wechaty_exporter.logs.dialects.prefilter import QUIET_RUN, QUIET_RUN_ESC
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
)
from wechaty_exporter.logs.events import Event

__all__ = ["LineParser"]

_JSON_MAX_PARTS = 1000  # lines of one pm2 JSON message that are parsed

# What the wrapper loop found inside a line.
_NONE, _BROLOG, _PYTHON, _SELF, _JSON = range(5)


class LineParser:
    """One per log file (it holds the two-line QRCodeTerminal entry in progress)."""

    __slots__ = ("_ctx", "_pending_at", "_pending_fresh", "entry_lines")

    def __init__(
        self,
        allowed_qr_hosts: Sequence[str] = DEFAULT_QR_HOSTS,
        tz: tzinfo | None = None,
        *,
        self_log_qr_only: bool = False,
    ) -> None:
        """`self_log_qr_only`: take login QRs only from self-log lines, which a chat message
        cannot forge; a Waiting scan of any plain-text dialect becomes a RejectedQr."""
        self._ctx = DialectContext(allowed_qr_hosts, tz, self_log_qr_only)
        self._pending_at: float | None = None  # a QRCodeTerminal Waiting line awaits its URL line
        self._pending_fresh = False  # ... and it was set by the current physical line
        self.entry_lines = 1

    def feed(self, line: str, now: float) -> list[Event]:
        """Events proven by one physical line (without "\\n"), read at `now` (Unix seconds)."""
        self.entry_lines = 1
        self._pending_fresh = False
        out: list[Event] = []
        self._line(line, now, None, True, out)
        return out

    @property
    def awaiting_continuation(self) -> bool:
        """True while a QRCodeTerminal Waiting line waits for its URL line."""
        return self._pending_at is not None

    def feed_block(
        self, data: bytes, now: float, max_chars: int | None = None, end: int | None = None
    ) -> list[Event]:
        """Events of every line of `data[:end]`, as if each line were fed in turn.

        Lines end in "\\n"; a last line without one is fed too. Each line is decoded as UTF-8
        (errors replaced) and cut to `max_chars` characters before `feed`. Runs of lines that
        provably hold no event (chat, puppet chatter: most of a log) are skipped by one regex,
        without being decoded or split; tests/logs/test_prefilter.py checks the equivalence.
        """
        size = len(data) if end is None else end
        quiet = (QUIET_RUN_ESC if data.find(b"\x1b", 0, size) >= 0 else QUIET_RUN).match
        feed = self.feed
        out: list[Event] = []
        pos = 0
        while pos < size:
            if self._pending_at is None:  # else the next line completes or cancels the entry
                run = quiet(data, pos, size)
                if run is not None:  # always: the pattern may match nothing
                    pos = run.end()
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

    def _line(self, raw: str, now: float, when: When, allow_json: bool, out: list[Event]) -> None:
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
            self._pm2_json(raw, head, pos, truncated, now, out)
            return
        pending = self._pending_at
        if pending is not None:
            self._pending_at = None
            if kind == _NONE and head.startswith(QRT_URL, pos):
                qr = head[pos + len(QRT_URL) :].strip(" \t")
                out.append(self._ctx.waiting(pending, qr, truncated))
                if not self._pending_fresh:
                    self.entry_lines = 2
                return
        if m is None:
            return
        if kind == _BROLOG:
            waiting_at = brolog_events(head, m, truncated, when, now, self._ctx, out)
            if waiting_at is not None:  # a QRCodeTerminal entry: the next line has its URL
                self._pending_at = waiting_at
                self._pending_fresh = True
        elif kind == _PYTHON:
            python_events(head, m, truncated, when, now, self._ctx, out)
        elif kind == _SELF:
            ctx = self._ctx
            self_log_events(raw, head, m, truncated, ctx.at(when, now), ctx, out)

    def _pm2_json(
        self, raw: str, head: str, pos: int, truncated: bool, now: float, out: list[Event]
    ) -> None:
        body = line_rest(raw, head, pos, truncated)
        if body is None or not body.endswith("}"):
            return
        fields = json_object(body)
        if fields is None:
            return
        message = fields.get("message")
        if not isinstance(message, str) or (
            "app_name" not in fields and "process_id" not in fields
        ):
            return
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
