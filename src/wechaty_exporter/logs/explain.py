"""`wechaty-exporter explain`: what the exporter makes of a log, line by line, and what it misses.

Pure: bytes in (any split), a report out; the CLI reads the file and prints. For each file: which
lines became which events under which dialect or rule (`LineParser.source`), which login QRs were
rejected and why, which events were suspect (a chat message may have forged them: counted, not
applied) and why, lines a rule took without an event (a status that is none, a two-line entry
whose second line never came), and the near misses: lines that look like scan, login, logout or
QR text (`NEAR_MISS`) but gave no event. Chat messages (``Message#...``) are never near misses.
Then the bot's end state.

Fast on a big log: the parser's `skipper` passes over the lines that cannot hold an event
without decoding them, and one re2 search finds the near misses among those; at most `limit`
lines of each kind are kept (the first ones, and for events the last ones too), with counts.
Login QRs are shown by their host only.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import re2

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.structure import strip
from wechaty_exporter.logs.events import (
    SUSPECT_REASONS,
    ErrorLogged,
    Event,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    RejectedQr,
    Scan,
    ScanStatus,
    Suspect,
    is_decisive,
)
from wechaty_exporter.logs.state import BotState

__all__ = ["NEAR_MISS", "Explainer", "FileReport", "Findings", "redact", "render_text", "report"]

_NEAR = (
    r"scan|log(?:ged)?[ _-]?(?:in|out)|qr ?code|weixin\.qq\.com|wechat\.com|waiting\(2\)"
    r"|扫码|二维码|登录|登出|退出"
)
_near_options = re2.Options()
_near_options.case_sensitive = False
_near_options.never_nl = True
_near_options.never_capture = True
NEAR_MISS = re2.compile(_NEAR, _near_options)  # on bytes: finds the candidates in a block
_CHAT = b"Message#"
_SHOW_CHARS = 200
_REDACT_RE = re.compile(
    r"((?:weixin\.qq\.com|wechat\.com)(?::\d+)?(?:/|%2F))[^\s'\"<>,)]+", re.IGNORECASE
)


def redact(text: str) -> str:
    """`text` with the path of every WeChat login URL cut (a login QR is a credential)."""
    return _REDACT_RE.sub(r"\1…", text)


def _qr_host(url: str) -> str:
    rest = url.partition("://")[2]
    return re.split(r"[/?#]", rest, maxsplit=1)[0] + "/…"


@dataclass(frozen=True, slots=True)
class Seen:
    """One line worth showing: its number, what read it, and what it says."""

    line: int
    source: str
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "source": self.source or None, "what": self.what}


@dataclass(slots=True)
class Findings:
    """Lines of one kind: how many, the first `limit` (and with `tail`, the last `limit`)."""

    limit: int
    tail: bool = False
    count: int = 0
    first: list[Seen] = field(default_factory=list)
    last: deque[Seen] = field(default_factory=deque)

    def add(self, seen: Seen) -> None:
        self.count += 1
        if len(self.first) < self.limit:
            self.first.append(seen)
        elif self.tail:
            self.last.append(seen)
            if len(self.last) > self.limit:
                self.last.popleft()

    @property
    def omitted(self) -> int:
        return self.count - len(self.first) - len(self.last)

    def to_dict(self) -> dict[str, Any]:
        shown = [s.to_dict() for s in (*self.first, *self.last)]
        return {"count": self.count, "shown": shown, "omitted": self.omitted}


@dataclass(slots=True)
class FileReport:
    """What one file says: its dialect, its events and its near misses."""

    path: str
    dialect: str  # as configured: "auto", a profile or a custom dialect
    limit: int
    speaks: str | None = None
    lines: int = 0
    decisive: int = 0
    errors: int = 0
    events: Findings = field(init=False)
    rejected: Findings = field(init=False)
    suspects: Findings = field(init=False)
    notes: Findings = field(init=False)
    near_misses: Findings = field(init=False)

    def __post_init__(self) -> None:
        self.events = Findings(self.limit, tail=True)
        self.rejected = Findings(self.limit)
        self.suspects = Findings(self.limit)
        self.notes = Findings(self.limit)
        self.near_misses = Findings(self.limit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dialect": self.dialect,
            "speaks": self.speaks,
            "lines": self.lines,
            "decisive_events": self.decisive,
            "error_lines": self.errors,
            "events": self.events.to_dict(),
            "rejected_qrs": self.rejected.to_dict(),
            "suspect_events": self.suspects.to_dict(),
            "no_event": self.notes.to_dict(),
            "near_misses": self.near_misses.to_dict(),
        }


def describe(event: Event) -> str:
    """An event in words, its QR cut to the host."""
    if isinstance(event, Login):
        return f"login user={event.user!r}" if event.user else "login"
    if isinstance(event, Logout):
        words = f"logout user={event.user!r}" if event.user else "logout"
        return words + (f" reason={event.reason!r}" if event.reason else "")
    if isinstance(event, Scan):
        status = f"scan {event.status.name.title()}({int(event.status)})"
        if event.qrcode is not None:
            return f"{status} qr={_qr_host(event.qrcode)}"
        if event.status is ScanStatus.WAITING:
            return f"{status}, no QR in the log"
        return status
    if isinstance(event, RejectedQr):
        return f"rejected QR: {event.reason}"
    if isinstance(event, Suspect):
        return f"{describe(event.event)}, not applied: {suspect_words(event.reason)}"
    if isinstance(event, ProbeReceived):
        return f"duet probe {event.seq} received from {event.sender}"
    if isinstance(event, ProbeSent):
        return f"duet probe {event.seq} sent to {event.to}"
    return "error line"


def suspect_words(reason: str) -> str:
    """A suspect event's reason in words, with its `reason` label."""
    return f"{SUSPECT_REASONS.get(reason, reason)} ({reason})"


def _shown(raw: bytes) -> str:
    text = strip(raw.decode("utf-8", "replace"))
    if len(text) > _SHOW_CHARS:
        text = text[:_SHOW_CHARS] + "…"
    return redact(text)


class Explainer:
    """Explain one file: feed its bytes (split anywhere), then `finish`."""

    def __init__(
        self,
        path: str,
        parser: LineParser,
        state: BotState,
        now: float,
        *,
        limit: int = 20,
        max_line: int = 65536,
    ) -> None:
        self._parser = parser
        self._state = state
        self._now = now
        self._max_line = max_line
        self._rest = b""
        self._skipping = False  # inside an overlong line: drop bytes up to its newline
        self.report = FileReport(path, parser.dialect_name, limit)

    def feed(self, chunk: bytes) -> None:
        """The next bytes of the file."""
        if self._skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                return
            chunk, self._skipping = chunk[nl:], False
        data = self._rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > self._max_line:
                self._rest, self._skipping = data[: self._max_line], True
            else:
                self._rest = data
            return
        self._rest = data[cut + 1 :]
        self._block(data, cut + 1)

    def finish(self) -> FileReport:
        """The report, once the last bytes are fed."""
        if self._rest:
            self._block(self._rest, len(self._rest))
            self._rest = b""
        self.report.speaks = self._parser.spoken
        self._state.saw_lines(self.report.lines, self._now)
        return self.report

    def _block(self, data: bytes, size: int) -> None:
        parser, report = self._parser, self.report
        skip = parser.skipper(data, size, self._max_line)
        pos = 0
        while pos < size:
            quiet = skip(pos)
            if quiet > pos:
                parser.skipped(data, pos, quiet)
                self._near_misses(data, pos, quiet)
                pos = quiet
                if pos >= size:
                    break
            stop = data.find(b"\n", pos, size)
            if stop < 0:
                stop = size
            raw = data[pos:stop]
            report.lines += 1
            line = raw.decode("utf-8", "replace")[: self._max_line]
            events = parser.feed(line, self._now)
            self._took(events, raw)
            pos = stop + 1

    def _took(self, events: list[Event], raw: bytes) -> None:
        parser, report, state = self._parser, self.report, self._state
        number = report.lines
        source = parser.source or ""
        for note in parser.notes:
            report.notes.add(Seen(number, parser.dialect_name, note))
        for event in events:
            applied = state.apply(event)
            first = number - parser.entry_lines + 1
            if isinstance(applied, Suspect):
                report.suspects.add(Seen(first, source, describe(applied)))
                continue
            if isinstance(event, ErrorLogged):
                report.errors += 1
                continue
            if isinstance(event, RejectedQr):
                report.rejected.add(Seen(first, source, f"{event.reason}: {_shown(raw)}"))
                continue
            if is_decisive(event) or (isinstance(event, Scan) and event.qrcode is not None):
                report.decisive += 1  # a Waiting scan taken (not a suspect) settled the state
            report.events.add(Seen(first, source, describe(event)))
        quiet = not events and parser.source is None and not parser.notes
        if quiet and _CHAT not in raw and NEAR_MISS.search(raw) is not None:
            report.near_misses.add(Seen(number, "", _shown(raw)))

    def _near_misses(self, data: bytes, start: int, end: int) -> None:
        """Count the skipped lines in data[start:end] and note those that look like events."""
        report = self.report
        base, counted = report.lines, start
        pos = start
        while pos < end:
            hit = NEAR_MISS.search(data, pos, end)
            if hit is None:
                break
            line_start = data.rfind(b"\n", start, hit.start()) + 1 or start
            line_end = data.find(b"\n", hit.start(), end)
            line_end = end if line_end < 0 else line_end
            base += data.count(b"\n", counted, line_start)
            counted = line_start
            raw = data[line_start:line_end]
            if _CHAT not in raw:
                report.near_misses.add(Seen(base + 1, "", _shown(raw)))
            pos = line_end + 1
        report.lines += data.count(b"\n", start, end) + (data[end - 1 : end] != b"\n")


def _stamp(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def state_document(state: BotState) -> dict[str, Any]:
    """The end state, QR cut to its host."""
    return {
        "logged_in": state.logged_in,
        "user": state.user,
        "qr_pending": state.qr is not None,
        "qr": _qr_host(state.qr.qrcode) if state.qr else None,
        "qr_seen_at": _stamp(state.qr.seen_at if state.qr else None),
        "since": _stamp(state.since),
        "logins_total": state.logins_total,
        "logouts_total": state.logouts_total,
        "qr_codes_total": state.qr_codes_total,
        "rejected_qr_total": state.rejected_qr_total,
        "suspect_events_total": state.suspect_total,
        "suspect_events": {reason: n for reason, n in state.suspects.items() if n},
        "errors_total": state.errors_total,
        "lines_total": state.lines_total,
    }


def report(bot: str, files: list[FileReport], state: BotState) -> dict[str, Any]:
    """The whole explanation, as `--format json` prints it."""
    return {
        "bot": bot,
        "files": [f.to_dict() for f in files],
        "state": state_document(state),
        "decisive": any(f.decisive for f in files),
    }


_COLOURS = {"head": "1", "event": "32", "rejected": "31", "note": "35", "near": "33", "dim": "2"}


def render_text(bot: str, files: list[FileReport], state: BotState, *, colour: bool = False) -> str:
    """The explanation for a terminal; ANSI colours when `colour`."""

    def paint(kind: str, text: str) -> str:
        return f"\x1b[{_COLOURS[kind]}m{text}\x1b[0m" if colour else text

    out: list[str] = []
    for f in files:
        speaks = f"speaks {f.speaks}" if f.speaks else "no event found"
        out.append(paint("head", f.path) + f": {f.lines} lines, dialect {f.dialect}, {speaks}")
        sections = (
            (f.events, "event", "events"),
            (f.rejected, "rejected", "rejected QRs"),
            (f.suspects, "rejected", "suspect events (a chat message may have forged them)"),
            (f.notes, "note", "taken by a rule, no event"),
            (f.near_misses, "near", "near misses (look like events, match nothing)"),
        )
        for found, kind, title in sections:
            if not found.count:
                continue
            out.append(f"  {title}: {found.count}")
            shown = [*found.first, *found.last]
            width = max(len(str(seen.line)) for seen in shown)
            for i, seen in enumerate(shown):
                if i == len(found.first) and found.omitted:
                    out.append(paint("dim", f"    … {found.omitted} more"))
                source = f"{seen.source}  " if seen.source else ""
                out.append(f"    line {seen.line:>{width}}  {source}{paint(kind, seen.what)}")
            if not found.last and found.omitted:
                out.append(paint("dim", f"    … {found.omitted} more"))
        if f.errors:
            out.append(f"  error lines: {f.errors}")
    s = state_document(state)
    if s["logged_in"] is None:
        words = "state unknown (no login, logout or scan found)"
    else:
        words = "logged in" if s["logged_in"] else "logged out"
    if s["qr_pending"]:
        words += f", QR pending ({s['qr']}, since {s['qr_seen_at']})"
    if s["user"]:
        words += f", account {s['user']!r}"
    counts = (
        f"{s['logins_total']} login(s), {s['logouts_total']} logout(s), "
        f"{s['qr_codes_total']} QR(s), {s['rejected_qr_total']} rejected QR(s)"
    )
    if s["suspect_events_total"]:
        counts += f", {s['suspect_events_total']} suspect event(s)"
    out.append(paint("head", f"bot {bot}: ") + f"{words}; {counts}")
    if not any(f.decisive for f in files):
        out.append(
            "no login, logout or Waiting/Confirmed scan found: the exporter would say "
            "'state unknown'. Rules for this log: docs/dialects.md"
        )
    return "\n".join(out) + "\n"
