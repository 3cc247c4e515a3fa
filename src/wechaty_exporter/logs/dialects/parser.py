"""Line -> events for every log dialect a Wechaty bot writes, and login-QR unwrapping/validation.

Pure: no I/O, no clock. `LineParser.feed(line, now)` takes one physical line (without its
"\\n") and the time it was read, and returns the events the log's *structure* proves: the level
and logger fields and a message anchored as a whole, never a substring of chat text. A
`Message#Text[...]\\tonScan: Waiting(2) - ...` line is a chat message and yields nothing.

Dialects (after the wrappers below are stripped)
  brolog (TypeScript Wechaty)   ``HH:MM:SS LEVEL Prefix message``, LEVEL in ERR WARN INFO VERB SILL:
      ``onScan: Waiting(2) - <qr or wrapped qr>``, ``onScan: Scanned(3)``, ``Contact<Name> login``,
      ``Contact<Name> logout[ reason]`` (``ContactSelf<..>`` too). ERR -> ErrorLogged.
  wechaty-plugin-contrib EventLogger  ``EventLogger scan: <qr>,<status>,<data>``,
      ``login: Contact<Name>``, ``logout: Contact<Name>,<reason>`` (as the message of any prefix,
      as the plugin writes it, or after a prefix ``EventLogger``).
  wechaty-plugin-contrib QRCodeTerminal  ``QRCodeTerminal Login QR Code Status: Waiting(2)`` and, on
      the very next line only, ``QR Code Image URL: <url>``: the Scan is emitted when the URL line
      arrives (`entry_lines` = 2); any other line in between cancels the entry without an event.
      Other statuses (``Timeout(5)`` also prints a URL line, ``onScan: Scanned(3)``) are emitted at
      once with no QR; a URL line that completes nothing is not an event.
  python-wechaty   ``YYYY-MM-DD HH:MM:SS,mmm - <logger> - <LEVEL> - <message>``: ERROR/CRITICAL of
      any logger -> ErrorLogged; events only from logger ``Wechaty``: ``receive <scan> event
      <EventScanPayload(status=<ScanStatus.Waiting: 2>, qrcode='...', data=None)>`` (status also a
      bare int or ``ScanStatus.Name``; qrcode a Python repr or None), ``receive <login> event
      <EventLoginPayload(contact_id='wxid')>`` (user = the contact id), ``receive <logout> event
      <EventLogoutPayload(contact_id='wxid', data='reason')>``. Dates are in the parser's `tz`.
  self-log         this project's own bot, format below.

Wrappers, in any combination: ANSI escapes anywhere, a trailing CR, ``pm2 --time`` /
``log_date_format`` prefixes (``2026-11-25T10:00:00: ``, ``2026-11-25 10:00:00 +08:00: ``),
``pm2 logs`` console prefixes (``0|bob  | ``, ``PM2      | ``), ``docker logs -t`` stamps
(``2026-11-25T02:00:00.123456789Z ``) and pm2 ``log_type json`` lines (each "\\n"-separated part
of ``message`` is parsed as a line, at the JSON ``timestamp``; a JSON object without pm2's
``message`` + ``app_name``/``process_id`` keys is not an event).

Timestamps: the innermost full date wins (the dialect's own date, else the nearest wrapper's);
a line with only a time of day (brolog) or none gets `now`. A date without an offset is in `tz`
(None: the local zone). An impossible date falls back to `now`.

Scan statuses: the number decides (``Waiting(2)``); a number outside 0..5 is not an event. A
Waiting scan whose QR fails `check_qr`, is missing, or was cut by the per-line cap becomes a
RejectedQr; other statuses carry no QR. Only the first 8 KiB of a line is read for structure
(JSON bodies of pm2 and self-log lines up to 1 MiB), so any string is parsed in bounded time.

Self-log format (stable contract)::

    <RFC 3339 local time with ms and offset> <LEVEL> wechaty-exporter <kind> <compact JSON object>

    2026-11-25T10:00:00.123+08:00 INFO wechaty-exporter scan {"status":2,"qrcode":"https://login.weixin.qq.com/l/abc"}
    2026-11-25T10:00:05.000+08:00 INFO wechaty-exporter login {"user":"Bob","id":"wxid_1"}
    2026-11-25T18:30:00.000+08:00 INFO wechaty-exporter logout {"user":"Bob","reason":"kicked"}

Kinds ``scan`` (``status`` int, ``qrcode`` str or null), ``login`` (``user``, ``id``) and ``logout``
(``user``, ``reason``) are events; level ERROR/ERR/CRITICAL is an error; other kinds are
ignored. JSON escapes newlines, so no value can forge a line. Non-ASCII is written as is,
except line separators U+0085/U+2028/U+2029 and lone surrogates, which are escaped.

Users and reasons are returned as logged, except that lone surrogates become U+FFFD.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from urllib.parse import parse_qsl, unquote

from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)

__all__ = [
    "DEFAULT_QR_HOSTS",
    "QR_MAX_LENGTH",
    "SELF_LOG_NAME",
    "LineParser",
    "check_qr",
    "format_self_log",
    "unwrap_qr",
]

DEFAULT_QR_HOSTS: tuple[str, ...] = ("weixin.qq.com", "wechat.com")
SELF_LOG_NAME = "wechaty-exporter"
QR_MAX_LENGTH = 2048  # an unwrapped QR payload longer than this is rejected

_QR_RAW_MAX = 8192  # a wrapped QR longer than this is rejected before unwrapping
_HEAD_CAP = 8192  # characters of a line read for structure
_JSON_CAP = 1 << 20  # characters of a line a JSON body may span
_JSON_MAX_PARTS = 1000  # lines of one pm2 JSON message that are parsed
_MAX_WRAPPERS = 4
_MAX_UNWRAP = 4

_STATUSES = tuple(ScanStatus)
_STATUS_BY_NAME = {s.name: s for s in ScanStatus} | {"UNSPECIFIED": ScanStatus.UNKNOWN}
_ERROR_LEVELS = frozenset({"ERR", "ERROR", "CRITICAL", "FATAL"})

# ---------------------------------------------------------------------------------------------
# QR codes

_PATH_WRAPPERS = tuple(
    f"{scheme}://{host}/qrcode/"
    for scheme in ("https", "http")
    for host in ("wechaty.js.org", "wechaty.github.io")
)
_QUERY_WRAPPERS = (
    "https://api.qrserver.com/v1/create-qr-code",
    "http://api.qrserver.com/v1/create-qr-code",
)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# Printable ASCII without space and backslash (browsers read "\" as "/" in http URLs).
_QR_CHARS_RE = re.compile(r"[\x21-\x5b\x5d-\x7e]+\Z")
_AUTHORITY_END_RE = re.compile(r"[/?#]")
_AUTHORITY_RE = re.compile(r"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?)(?::[0-9]{1,5})?\Z")


def unwrap_qr(raw: str) -> str:
    """Strip QR-image wrappers (wechaty.js.org, wechaty.github.io, api.qrserver.com), nested or not.

    >>> unwrap_qr("https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2Fabc")
    'https://login.weixin.qq.com/l/abc'

    A string that is not a wrapper is returned unchanged.
    """
    for _ in range(_MAX_UNWRAP):
        inner = _unwrap_once(raw)
        if inner is None:
            break
        raw = inner
    return raw


def _unwrap_once(s: str) -> str | None:
    low = s[:64].lower()
    for prefix in _PATH_WRAPPERS:
        if low.startswith(prefix):
            rest = s[len(prefix) :]
            # Raw form keeps its scheme ("https://..."); the encoded form has "%3A" instead.
            return rest if _SCHEME_RE.match(rest) else unquote(rest)
    for prefix in _QUERY_WRAPPERS:
        if low.startswith(prefix):
            tail = s[len(prefix) :]
            if tail.startswith("/"):
                tail = tail[1:]
            if not tail.startswith("?"):
                return None
            for key, value in parse_qsl(tail[1:].partition("#")[0], keep_blank_values=True):
                if key == "data":
                    return value
            return None
    return None


def _normalize_hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    if isinstance(hosts, str):  # one host, not a sequence of one-letter hosts
        hosts = (hosts,)
    return tuple(h for h in (host.strip().lower().rstrip(".") for host in hosts) if h)


def check_qr(
    raw: str, allowed_hosts: Sequence[str] = DEFAULT_QR_HOSTS
) -> tuple[str | None, str | None]:
    """Unwrap `raw` and accept it only as a WeChat login URL: ``(url, None)`` or ``(None, reason)``.

    Valid: scheme http or https, no userinfo, only printable ASCII (no whitespace, control
    characters or backslash), at most `QR_MAX_LENGTH` characters, and a host equal to an allowed
    host or a subdomain of one (label-exact, case-insensitive, a trailing dot tolerated).
    Reasons: "missing qr", "qr too long", "bad character", "not a url", "scheme not allowed",
    "userinfo not allowed", "bad host", "host not allowed".
    """
    return _check_qr(raw, _normalize_hosts(allowed_hosts))


def _check_qr(raw: str, hosts: tuple[str, ...]) -> tuple[str | None, str | None]:
    if not raw:
        return None, "missing qr"
    if len(raw) > _QR_RAW_MAX:
        return None, "qr too long"
    url = unwrap_qr(raw)
    if not url:
        return None, "missing qr"
    if len(url) > QR_MAX_LENGTH:
        return None, "qr too long"
    if _QR_CHARS_RE.match(url) is None:
        return None, "bad character"
    scheme = _SCHEME_RE.match(url)
    if scheme is None:
        return None, "not a url"
    if scheme.group().lower() not in ("http:", "https:"):
        return None, "scheme not allowed"
    if not url.startswith("//", scheme.end()):
        return None, "not a url"
    authority = _AUTHORITY_END_RE.split(url[scheme.end() + 2 :], maxsplit=1)[0]
    if "@" in authority:
        return None, "userinfo not allowed"
    m = _AUTHORITY_RE.match(authority)
    if m is None:
        return None, "bad host"
    host = m.group(1).lower().rstrip(".")
    for allowed in hosts:
        if host == allowed or host.endswith("." + allowed):
            return url, None
    return None, "host not allowed"


# ---------------------------------------------------------------------------------------------
# Self-log

_KIND_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_LEVEL_RE = re.compile(r"[A-Z]+\Z")
_JSON_UNSAFE_RE = re.compile(r"[\u0085\u2028\u2029\ud800-\udfff]")


def format_self_log(kind: str, fields: Mapping[str, object], at: float, level: str = "INFO") -> str:
    """One self-log line (without "\\n") in the format documented above, `at` in the local zone.

    >>> format_self_log("login", {"user": "Bob", "id": "wxid_1"}, 0.0)  # doctest: +SKIP
    '1970-01-01T08:00:00.000+08:00 INFO wechaty-exporter login {"user":"Bob","id":"wxid_1"}'
    """
    if _KIND_RE.match(kind) is None:
        raise ValueError(f"self-log kind must match [a-z][a-z0-9_]*: {kind!r}")
    if _LEVEL_RE.match(level) is None:
        raise ValueError(f"self-log level must match [A-Z]+: {level!r}")
    stamp = datetime.fromtimestamp(at, UTC).astimezone().isoformat(timespec="milliseconds")
    body = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"), default=str)
    body = _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)
    return f"{stamp} {level} {SELF_LOG_NAME} {kind} {body}"


# ---------------------------------------------------------------------------------------------
# Line structure

_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# Date and time fragments shared by the line-structure patterns below.
_YMD = r"\d{4}-\d\d-\d\d"
_HMS = r"\d\d:\d\d:\d\d"
_PY_STAMP = rf"{_YMD} {_HMS},\d{{3}} - "  # python logging's asctime and separator
# y mo d sep h mi s fsep frac offset
_DATE_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)([T ])(\d\d):(\d\d):(\d\d)"
    r"(?:([.,])(\d{1,9}))?( ?(?:Z|[+-]\d\d(?::?\d\d)?))?",
    re.ASCII,
)
_PM2_CONSOLE_RE = re.compile(r"(?:\d{1,6}\|)?[^\s|]{1,64} *\| ", re.ASCII)
# A pm2 --time / log_date_format prefix ("<date>: ") or a docker logs -t stamp ("<date>Z ").
_DATE_WRAPPER_RE = re.compile(
    rf"{_YMD}[T ]{_HMS}(?:[.,]\d{{1,9}})?"
    r"(?:(?: ?(?:Z|[+-]\d\d(?::?\d\d)?))?: |(?:Z|[+-]\d\d:?\d\d) )",
    re.ASCII,
)
_PYTHON_RE = re.compile(_PY_STAMP + r"(\S+) - ([A-Z]+) - ", re.ASCII)
_SELF_RE = re.compile(
    rf"{_YMD}T{_HMS}(?:\.\d{{1,9}})?(?:Z|[+-]\d\d:?\d\d)"
    rf" ([A-Z]+) {SELF_LOG_NAME} ([a-z][a-z0-9_]*) ",
    re.ASCII,
)
_BROLOG_RE = re.compile(_HMS + r" +(ERR|WARN|INFO|VERB|SILL) +(\S+)(?: |\Z)", re.ASCII)
# Classifies an unwrapped brolog or python-wechaty line: "brolog" / "python" when it may hold
# an event (an error level, or a message that starts like one), "chat" when it cannot.
_DIALECT_RE = re.compile(
    rf"(?P<brolog>{_HMS} +(?:ERR|(?:WARN|INFO|VERB|SILL) +(?:EventLogger |QRCodeTerminal "
    r"|\S+ (?=onScan: |Contact|EventLogger |QRCodeTerminal ))))"
    rf"|(?P<python>{_PY_STAMP}\S+ - "
    r"(?:ERROR|CRITICAL|FATAL|[A-Z]+ - receive <))"
    rf"|(?P<chat>{_HMS} |{_PY_STAMP})",
    re.ASCII,
)

_ONSCAN_RE = re.compile(r"onScan: ([A-Za-z]+)\((\d{1,3})\)(?: - (.*))?\Z", re.ASCII | re.DOTALL)
_CONTACT_RE = re.compile(r"Contact(?:Self)?<(.*)> (login|logout)(?:[ :,] ?(.*))?\Z", re.DOTALL)
_EL_SCAN_RE = re.compile(r"scan: (.*?),(\d{1,3}),(.*)\Z", re.ASCII | re.DOTALL)
_EL_LOGIN_RE = re.compile(r"login: Contact(?:Self)?<(.*)>\Z", re.DOTALL)
_EL_LOGOUT_RE = re.compile(r"logout: Contact(?:Self)?<(.*?)>(?:,(.*))?\Z", re.DOTALL)
_QRT_STATUS_RE = re.compile(
    r"(?:Login QR Code Status|onScan): ([A-Za-z]+)\((\d{1,3})\)\Z", re.ASCII
)
_QRT_URL = "QR Code Image URL: "

_PY_STR = r"""(None|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_PY_SCAN_RE = re.compile(
    r"scan> event <EventScanPayload\(status="
    r"(?:<ScanStatus\.\w+: (\d{1,3})>|(\d{1,3})|ScanStatus\.(\w+)), qrcode=",
    re.ASCII,
)
_PY_SCAN_TAIL_RE = re.compile(_PY_STR + r"(?:, data=.*)?\)>\Z", re.DOTALL)
_PY_LOGIN_RE = re.compile(
    r"login> event <EventLoginPayload\(contact_id=" + _PY_STR + r"\)>\Z", re.DOTALL
)
_PY_LOGOUT_RE = re.compile(
    r"logout> event <EventLogoutPayload\(contact_id="
    + _PY_STR
    + r"(?:, data="
    + _PY_STR
    + r")?\)>\Z",
    re.DOTALL,
)
_PY_ESCAPE_RE = re.compile(
    r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.DOTALL
)
_PY_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")

# What the wrapper loop found inside a line.
_NONE, _BROLOG, _PYTHON, _SELF, _JSON = range(5)


def _quiet_run(esc: bool) -> re.Pattern[bytes]:
    """A run of complete lines (bytes) that provably yield no event (`LineParser.feed_block`).

    Invariant: a line is consumed only when the wrapper loop of `LineParser._line` would stop at
    the "chat" group of `_DIALECT_RE`, directly or after pm2 --time / docker / pm2 console
    wrappers, or when it is a pm2 JSON object whose one message part is such a line. Such a line
    yields nothing and leaves a parser that awaits no continuation line unchanged. With `esc`, a
    line holding an ANSI escape is consumed only as a brolog line with a coloured level (a shape
    whose stripped form is known); every other line is left to `feed`.
    """
    kw = r"(?:onScan: |Contact|EventLogger |QRCodeTerminal )"
    brolog_tail = (
        rf"(?! *+(?:ERR|(?:WARN|INFO|VERB|SILL) ++(?:EventLogger |QRCodeTerminal |\S++ {kw})))"
    )
    python_tail = r"(?!\S++ - (?:ERROR|CRITICAL|FATAL|[A-Z]++ - receive <))"
    python_head = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - "
    # _DIALECT_RE gives "chat" here: the brolog and python groups fail, the chat group matches.
    chat = rf"(?:\d\d:\d\d:\d\d {brolog_tail}|{python_head}{python_tail})"
    date = rf"(?>{_DATE_WRAPPER_RE.pattern})"
    console = rf"(?>{_PM2_CONSOLE_RE.pattern})"
    # One turn of the wrapper loop that does not stop: no dialect, not JSON, then a wrapper.
    step = (
        rf"(?!\d\d:\d\d:\d\d |{python_head})"
        rf"(?:(?=\d...-)(?!{_SELF_RE.pattern}){date}|(?![{{])(?!\d...-){console})"
    )
    string = r'[^"\\\n]*+(?:\\[t"\\/bfr][^"\\\n]*+)*+'  # no \u escape, no "\n" inside
    value = r'(?:"[^"\\\n]*+"|[-+.0-9eE]++|true|false|null)'
    pm2_json = (
        rf'\{{"message":"{chat}{string}(?:\\n)?"(?:,"(?!message")[A-Za-z_]++":{value})*+\}}\r?'
    )
    rest = r"[^\n]*+"
    plain = (
        rf"{chat}{rest}"
        rf"|{date}{chat}{rest}"  # pm2 --time, docker -t (DATE_WRAPPER implies no dialect or self)
        rf"|(?![{{]){console}{chat}{rest}"  # pm2 logs
        rf"|{pm2_json}"
        rf"|(?:{step}){{1,{_MAX_WRAPPERS}}}{chat}{rest}"
    )
    if not esc:
        line = rf"(?:{plain})\n"
    else:
        colour = r"\x1b\[[0-9;]*+m"
        coloured = (
            rf"\d\d:\d\d:\d\d {colour}(?:INFO|VERB|SILL|WARN){colour} ++"
            rf"(?!EventLogger |QRCodeTerminal )[^\s\x1b]++ (?!{kw})[^\n\x1b]*+"
        )
        line = rf"(?:(?=[^\n\x1b]*+\n)(?:{plain})|{coloured})\n"
    return re.compile(rf"(?:{line})*+".encode("ascii"))


_QUIET_RUN = _quiet_run(esc=False)
_QUIET_RUN_ESC = _quiet_run(esc=True)

# A wrapper or dialect date: a match starting at the date (converted only when an event needs
# it), a Unix time already known (pm2 JSON numbers), or None.
_When = re.Match[str] | float | None


def _date_seconds(found: re.Match[str], zone: tzinfo | None, fallback: float) -> float:
    """Unix time of the date at the start of `found` (a line's or a wrapper's), else `fallback`."""
    m = _DATE_RE.match(found.string, found.start())
    if m is None:
        return fallback
    year, month, day, _, hour, minute, second, _, frac, offset = m.groups()
    try:
        if offset:
            offset = offset.lstrip()
            if offset == "Z":
                zone = UTC
            else:
                digits = offset[1:].replace(":", "")
                delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
                zone = timezone(-delta if offset[0] == "-" else delta)
        micro = int(frac[:6].ljust(6, "0")) if frac else 0
        stamp = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
        return stamp.timestamp()
    except (ValueError, OverflowError, OSError):
        return fallback


def _py_unrepr(literal: str) -> str | None:
    """The value of a Python str repr (or None for ``None``), as python-wechaty logs payloads."""
    if literal == "None":
        return None
    return _PY_ESCAPE_RE.sub(_py_escape, literal[1:-1])


def _py_escape(m: re.Match[str]) -> str:
    simple = m.group(4)
    if simple is not None:
        return _PY_SIMPLE_ESCAPES.get(simple, m.group())
    code = int(m.group(1) or m.group(2) or m.group(3), 16)
    return chr(code) if code <= 0x10FFFF else "\ufffd"


def _text(value: str | None) -> str | None:
    if not value:
        return None
    return _SURROGATE_RE.sub("\ufffd", value)


def _strip(raw: str) -> str:
    if "\x1b" in raw:
        raw = _ANSI_RE.sub("", raw)
    return raw[:-1] if raw.endswith("\r") else raw


class LineParser:
    """One per log file (it holds the two-line QRCodeTerminal entry in progress)."""

    __slots__ = (
        "_hosts", "_pending_at", "_pending_fresh", "_self_log_qr_only", "_tz", "entry_lines",
    )  # fmt: skip

    def __init__(
        self,
        allowed_qr_hosts: Sequence[str] = DEFAULT_QR_HOSTS,
        tz: tzinfo | None = None,
        *,
        self_log_qr_only: bool = False,
    ) -> None:
        """`self_log_qr_only`: take login QRs only from self-log lines, which a chat message
        cannot forge; a Waiting scan of any plain-text dialect becomes a RejectedQr."""
        self._hosts = _normalize_hosts(allowed_qr_hosts)
        self._self_log_qr_only = self_log_qr_only
        self._tz = tz
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
        quiet = (_QUIET_RUN_ESC if data.find(b"\x1b", 0, size) >= 0 else _QUIET_RUN).match
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

    def _when(self, when: _When, now: float) -> float:
        if when is None:
            return now
        if isinstance(when, float):
            return when
        return _date_seconds(when, self._tz, now)

    def _line(self, raw: str, now: float, when: _When, allow_json: bool, out: list[Event]) -> None:
        truncated = len(raw) > _HEAD_CAP
        head = raw[:_HEAD_CAP] if truncated else raw
        if "\x1b" in head:
            head = _ANSI_RE.sub("", head)
        if head.endswith("\r"):
            head = head[:-1]
        # Strip wrappers until a dialect shows. Most lines are chat, rejected by one anchored
        # regex that also classifies the lines that may hold an event.
        pos = 0
        kind = _NONE
        m: re.Match[str] | None = None
        for _ in range(_MAX_WRAPPERS + 1):
            d = _DIALECT_RE.match(head, pos)
            if d is not None:
                group = d.lastgroup
                if group == "brolog":
                    m, kind = _BROLOG_RE.match(head, pos), _BROLOG
                elif group == "python":
                    m = _PYTHON_RE.match(head, pos)
                    kind, when = _PYTHON, m
                break
            c = head[pos : pos + 1]
            if c == "{":
                if allow_json:
                    kind = _JSON
                break
            if "0" <= c <= "9" and head[pos + 4 : pos + 5] == "-":
                if SELF_LOG_NAME in head:
                    m = _SELF_RE.match(head, pos)
                    if m is not None:
                        kind, when = _SELF, m
                        break
                w = _DATE_WRAPPER_RE.match(head, pos)
                if w is None:
                    break
                when, pos = w, w.end()
                continue
            w = _PM2_CONSOLE_RE.match(head, pos)
            if w is None:
                break
            pos = w.end()

        if kind == _JSON:
            self._pm2_json(raw, head, pos, truncated, now, out)
            return
        pending = self._pending_at
        if pending is not None:
            self._pending_at = None
            if kind == _NONE and head.startswith(_QRT_URL, pos):
                qr = head[pos + len(_QRT_URL) :].strip(" \t")
                out.append(self._waiting(pending, qr, truncated))
                if not self._pending_fresh:
                    self.entry_lines = 2
                return
        if m is None:
            return
        if kind == _BROLOG:
            self._brolog(head, m, truncated, when, now, out)
        elif kind == _PYTHON:
            self._python(head, m, truncated, when, now, out)
        elif kind == _SELF:
            self._self_log(raw, head, m, truncated, self._when(when, now), out)

    # -- dialects -------------------------------------------------------------------------------

    def _brolog(
        self,
        head: str,
        m: re.Match[str],
        truncated: bool,
        when: _When,
        now: float,
        out: list[Event],
    ) -> None:
        pos = m.end()
        if m.group(1) == "ERR":
            out.append(ErrorLogged(self._when(when, now)))
        prefix = m.group(2)
        if prefix == "EventLogger":
            self._event_logger(head, pos, truncated, when, now, out)
            return
        if prefix == "QRCodeTerminal":
            self._qrcode_terminal(head, pos, when, now, out)
            return
        c = head[pos : pos + 1]
        if c == "o":
            s = _ONSCAN_RE.match(head, pos)
            if s is not None:
                self._scan(self._when(when, now), int(s.group(2)), s.group(3), truncated, out)
        elif c == "C":
            s = _CONTACT_RE.match(head, pos)
            if s is None:
                return
            if s.group(2) == "login":
                if s.group(3) is None:
                    out.append(Login(self._when(when, now), _text(s.group(1))))
            else:
                reason = s.group(3)
                out.append(
                    Logout(
                        self._when(when, now), _text(s.group(1)), _text(reason and reason.strip())
                    )
                )
        elif c == "E":
            if head.startswith("EventLogger ", pos):
                self._event_logger(head, pos + 12, truncated, when, now, out)
        elif c == "Q" and head.startswith("QRCodeTerminal ", pos):
            self._qrcode_terminal(head, pos + 15, when, now, out)

    def _event_logger(
        self, head: str, pos: int, truncated: bool, when: _When, now: float, out: list[Event]
    ) -> None:
        c = head[pos : pos + 1]
        if c == "s" and head.startswith("scan: ", pos):
            s = _EL_SCAN_RE.match(head, pos)
            if s is not None:
                self._scan(self._when(when, now), int(s.group(2)), s.group(1), False, out)
            elif truncated:  # the status comes after the QR, which the cap cut
                out.append(RejectedQr(self._when(when, now), "qr too long"))
        elif c == "l":
            s = _EL_LOGIN_RE.match(head, pos)
            if s is not None:
                out.append(Login(self._when(when, now), _text(s.group(1))))
                return
            s = _EL_LOGOUT_RE.match(head, pos)
            if s is not None:
                out.append(Logout(self._when(when, now), _text(s.group(1)), _text(s.group(2))))

    def _qrcode_terminal(
        self, head: str, pos: int, when: _When, now: float, out: list[Event]
    ) -> None:
        s = _QRT_STATUS_RE.match(head, pos)
        if s is None:
            return
        number = int(s.group(2))
        if number >= len(_STATUSES):
            return
        at = self._when(when, now)
        if number == ScanStatus.WAITING:
            self._pending_at = at
            self._pending_fresh = True
        else:
            out.append(Scan(at, _STATUSES[number]))

    def _python(
        self,
        head: str,
        m: re.Match[str],
        truncated: bool,
        when: _When,
        now: float,
        out: list[Event],
    ) -> None:
        pos = m.end()
        if m.group(2) in _ERROR_LEVELS:
            out.append(ErrorLogged(self._when(when, now)))
        if not head.startswith("receive <", pos) or m.group(1) != "Wechaty":
            return
        at = self._when(when, now)
        pos += 9
        c = head[pos : pos + 1]
        if c == "s":
            s = _PY_SCAN_RE.match(head, pos)
            if s is None:
                return
            number_text = s.group(1) or s.group(2)
            if number_text is not None:
                number = int(number_text)
            else:
                name = s.group(3).upper().removeprefix("SCAN_STATUS_")
                status = _STATUS_BY_NAME.get(name)
                if status is None:
                    return
                number = int(status)
            if number >= len(_STATUSES):
                return
            if number != ScanStatus.WAITING:
                out.append(Scan(at, _STATUSES[number]))
                return
            t = _PY_SCAN_TAIL_RE.match(head, s.end())
            if t is None:
                if truncated:
                    out.append(RejectedQr(at, "qr too long"))
                return
            self._scan(at, number, _py_unrepr(t.group(1)), truncated, out)
        elif c == "l":
            s = _PY_LOGIN_RE.match(head, pos)
            if s is not None:
                out.append(Login(at, _text(_py_unrepr(s.group(1)))))
                return
            s = _PY_LOGOUT_RE.match(head, pos)
            if s is not None:
                reason = _py_unrepr(s.group(2)) if s.group(2) is not None else None
                out.append(Logout(at, _text(_py_unrepr(s.group(1))), _text(reason)))

    def _self_log(
        self,
        raw: str,
        head: str,
        m: re.Match[str],
        truncated: bool,
        at: float,
        out: list[Event],
    ) -> None:
        if m.group(1) in _ERROR_LEVELS:
            out.append(ErrorLogged(at))
        kind = m.group(2)
        if kind not in ("scan", "login", "logout"):
            return
        body = _body(raw, head, m.end(), truncated)
        if body is None:
            if kind == "scan":
                out.append(RejectedQr(at, "qr too long"))
            return
        fields = _json_object(body)
        if fields is None:
            return
        user = fields.get("user")
        if not isinstance(user, str) or not user:
            user = fields.get("id")
        name = _text(user) if isinstance(user, str) else None
        if kind == "login":
            out.append(Login(at, name))
        elif kind == "logout":
            reason = fields.get("reason")
            out.append(Logout(at, name, _text(reason) if isinstance(reason, str) else None))
        else:
            status = fields.get("status")
            if isinstance(status, bool) or not isinstance(status, int):
                return
            if 0 <= status < len(_STATUSES):
                qr = fields.get("qrcode")
                qr = qr if isinstance(qr, str) else None
                self._scan(at, status, qr, False, out, self_log=True)

    def _pm2_json(
        self, raw: str, head: str, pos: int, truncated: bool, now: float, out: list[Event]
    ) -> None:
        body = _body(raw, head, pos, truncated)
        if body is None or not body.endswith("}"):
            return
        fields = _json_object(body)
        if fields is None:
            return
        message = fields.get("message")
        if not isinstance(message, str) or (
            "app_name" not in fields and "process_id" not in fields
        ):
            return
        stamp = fields.get("timestamp")
        when: _When = None
        if isinstance(stamp, str):
            when = _DATE_RE.match(stamp)
        elif isinstance(stamp, int | float) and not isinstance(stamp, bool):
            when = float(stamp) / 1000.0 if stamp > 1e11 else float(stamp)
        parts = message.split("\n", _JSON_MAX_PARTS)
        if parts[-1] == "":
            parts.pop()
        for part in parts:
            self._line(part, now, when, False, out)

    # -- scans ----------------------------------------------------------------------------------

    def _scan(
        self,
        at: float,
        number: int,
        qr: str | None,
        cut: bool,
        out: list[Event],
        *,
        self_log: bool = False,
    ) -> None:
        if number >= len(_STATUSES):
            return
        if number == ScanStatus.WAITING:
            out.append(self._waiting(at, qr, cut, self_log=self_log))
        else:
            out.append(Scan(at, _STATUSES[number]))

    def _waiting(
        self, at: float, qr: str | None, cut: bool, *, self_log: bool = False
    ) -> Scan | RejectedQr:
        if self._self_log_qr_only and not self_log:
            return RejectedQr(at, "qr not from the self-log")
        if cut:
            return RejectedQr(at, "qr too long")
        if not qr:
            return RejectedQr(at, "missing qr")
        url, reason = _check_qr(qr.strip(" \t"), self._hosts)
        if url is None:
            return RejectedQr(at, reason or "invalid qr")
        return Scan(at, ScanStatus.WAITING, url)


def _body(raw: str, head: str, start: int, truncated: bool) -> str | None:
    """The rest of the line from `start` (an index into `head`), uncut up to the JSON cap."""
    if not truncated:
        return head[start:]
    if len(raw) > _JSON_CAP:
        return None
    return _strip(raw)[start:]


def _json_object(body: str) -> dict[str, object] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
