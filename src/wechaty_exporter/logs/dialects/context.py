"""What every dialect handler needs from its LineParser: the date zone, the QR policy, statuses.

Scan statuses: the number decides (``Waiting(2)``); a number outside 0..5 is not an event. A
Waiting scan whose QR fails `check_qr`, is missing, or was cut by the per-line cap becomes a
RejectedQr; other statuses carry no QR.

Users and reasons are returned as logged, except that lone surrogates become U+FFFD.

`DialectContext.vet` marks what a chat message may have forged (one context per file): under
``qr_source: self-log`` every login, logout or scan of another dialect becomes a `Suspect`
(``not_from_self_log``), counted and never applied: a plain line may be forged by a chat message,
a self-log line cannot. Else a Waiting scan with a QR whose line is `chat_sized` (Wechaty's
`Message#toString()` keeps 70 characters of chat text, newlines included: a chat message of a
newline and a whole event line that short writes that line) is marked `chat_sized`: the state
counts it as a suspect (``waiting_while_logged_in``) when the bot is logged in. A login of those
dialects carries its `source`: one naming another account than such a login did, while logged
in, is a suspect too (``login_of_another_account``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import tzinfo

from wechaty_exporter.logs.dialects.qr import (
    check_qr_normalized,
    compile_qr_shapes,
    normalize_hosts,
)
from wechaty_exporter.logs.dialects.structure import When, date_seconds, json_object, strip
from wechaty_exporter.logs.events import Event, Login, Logout, RejectedQr, Scan, ScanStatus, Suspect

__all__ = ["ERROR_LEVELS", "STATUSES", "STATUS_BY_NAME", "DialectContext", "text"]

STATUSES = tuple(ScanStatus)
STATUS_BY_NAME = {s.name: s for s in ScanStatus} | {"UNSPECIFIED": ScanStatus.UNKNOWN}
ERROR_LEVELS = frozenset({"ERR", "ERROR", "CRITICAL", "FATAL"})

_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
SELF_LOG_SOURCE = "self-log"
CHAT_TEXT_MAX = 70  # characters of chat text Wechaty's Message#toString() keeps
# Where the text of an event line starts: its brolog head, or QRCodeTerminal's URL line.
_EVENT_TEXT_RE = re.compile(
    r"\d\d:\d\d:\d\d +(?:ERR|WARN|INFO|VERB|SILL) +|QR Code Image URL: ", re.ASCII
)
# The built-in dialects whose lines a chat message written raw can forge at their full length.
_CHAT_FORGEABLE = frozenset({"brolog", "eventlogger", "qrcode-terminal"})


def chat_sized(line: str) -> bool:
    """True when the event text of `line` (from its brolog head on, inside any wrapper, each
    part of a pm2 JSON message apart) fits in the 70 characters of chat text that Wechaty's
    `Message#toString()` writes: a chat message of a newline and that text writes it whole."""
    line = strip(line)
    pieces = [line]
    brace = line.find('{"')
    if brace >= 0 and line.endswith("}"):
        fields = json_object(line[brace:])
        message = fields.get("message") if fields is not None else None
        if isinstance(message, str):
            pieces = message.split("\n")
    for piece in pieces:
        piece = strip(piece)
        m = _EVENT_TEXT_RE.search(piece)
        # the text from the event's head on, and the newline before it
        if m is not None and len(piece) - m.start() + 1 <= CHAT_TEXT_MAX:
            return True
    return False


def text(value: str | None) -> str | None:
    """A user or reason as logged (None when empty), lone surrogates replaced by U+FFFD."""
    if not value:
        return None
    return _SURROGATE_RE.sub("\ufffd", value)


def _not_from_self_log(event: Event) -> Event:
    """A login, a logout or a scan of a known status as a Suspect; any other event as is."""
    if isinstance(event, Login | Logout) or (
        isinstance(event, Scan) and event.status is not ScanStatus.UNKNOWN
    ):
        return Suspect(event.at, "not_from_self_log", event)
    return event


class DialectContext:
    """The settings of one LineParser, and the events they decide, for its dialect handlers."""

    __slots__ = ("_hosts", "_self_log_qr_only", "_shapes", "_tz")

    def __init__(
        self,
        allowed_qr_hosts: Sequence[str],
        tz: tzinfo | None,
        self_log_qr_only: bool,
        qr_shapes: Sequence[str] | None = None,
    ) -> None:
        self._hosts = normalize_hosts(allowed_qr_hosts)
        self._shapes = compile_qr_shapes(qr_shapes)
        self._self_log_qr_only = self_log_qr_only
        self._tz = tz

    def vet(self, events: list[Event], source: str | None, line: str) -> list[Event]:
        """`events` of one physical `line` (read by `source`), with what a chat message may have
        forged turned into `Suspect` events: under ``qr_source: self-log``, every login, logout
        or scan of another dialect (``not_from_self_log``: the self-log alone says that bot's
        state). Else, in a built-in plain-text dialect, a Waiting scan with a QR on a
        `chat_sized` line is marked so, and a login with its `source` (logs/state.py)."""
        if self._self_log_qr_only:
            if source == SELF_LOG_SOURCE:
                return events
            return [_not_from_self_log(e) for e in events]
        if source not in _CHAT_FORGEABLE:
            return events
        out = events
        for i, e in enumerate(events):
            if isinstance(e, Login):
                out = list(out) if out is events else out
                out[i] = replace(e, source=source)
            elif (
                isinstance(e, Scan)
                and e.status is ScanStatus.WAITING
                and e.qrcode is not None
                and chat_sized(line)
            ):
                out = list(out) if out is events else out
                out[i] = replace(e, chat_sized=True)
        return out

    def at(self, when: When, now: float) -> float:
        """Unix time of `when` (a date in the parser's zone, a known time or None: `now`)."""
        if when is None:
            return now
        if isinstance(when, float):
            return when
        return date_seconds(when, self._tz, now)

    def scan(
        self,
        at: float,
        number: int,
        qr: str | None,
        cut: bool,
        out: list[Event],
        *,
        self_log: bool = False,
    ) -> None:
        """Append the event of a scan with status `number` (none if it is not a status)."""
        if number >= len(STATUSES):
            return
        if number == ScanStatus.WAITING:
            out.append(self.waiting(at, qr, cut, self_log=self_log))
        else:
            out.append(Scan(at, STATUSES[number]))

    def waiting(
        self, at: float, qr: str | None, cut: bool, *, self_log: bool = False
    ) -> Scan | RejectedQr:
        """A Waiting scan with a valid QR, else the RejectedQr that says why not."""
        if self._self_log_qr_only and not self_log:
            return RejectedQr(at, "qr not from the self-log")
        if cut:
            return RejectedQr(at, "qr too long")
        if not qr:
            return RejectedQr(at, "missing qr")
        url, reason = check_qr_normalized(qr.strip(" \t"), self._hosts, self._shapes)
        if url is None:
            return RejectedQr(at, reason or "invalid qr")
        return Scan(at, ScanStatus.WAITING, url)
