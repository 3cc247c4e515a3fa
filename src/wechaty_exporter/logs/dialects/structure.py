"""Line structure every dialect shares: the wrappers around a line, its dates and the read caps.

Wrappers, in any combination: ANSI escapes anywhere, a trailing CR, ``pm2 --time`` /
``log_date_format`` prefixes (``2026-11-25T10:00:00: ``, ``2026-11-25 10:00:00 +08:00: ``),
``pm2 logs`` console prefixes (``0|bob  | ``, ``PM2      | ``), ``docker logs -t`` stamps
(``2026-11-25T02:00:00.123456789Z ``) and pm2 ``log_type json`` lines (each "\\n"-separated part
of ``message`` is parsed as a line, at the JSON ``timestamp``; a JSON object without pm2's
``message`` + ``app_name``/``process_id`` keys is not an event).

Timestamps: the innermost full date wins (the dialect's own date, else the nearest wrapper's);
a line with only a time of day (brolog) or none gets `now`. A date without an offset is in `tz`
(None: the local zone). An impossible date falls back to `now`.

Only the first 8 KiB of a line is read for structure (JSON bodies of pm2 and self-log lines up
to 1 MiB), so any string is parsed in bounded time.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

__all__ = [
    "ANSI_RE",
    "DATE_RE",
    "DATE_WRAPPER_RE",
    "DIALECT_RE",
    "HEAD_CAP",
    "HMS",
    "JSON_CAP",
    "MAX_WRAPPERS",
    "PM2_CONSOLE_RE",
    "PY_STAMP",
    "YMD",
    "When",
    "date_seconds",
    "json_object",
    "line_rest",
    "strip",
]

HEAD_CAP = 8192  # characters of a line read for structure
JSON_CAP = 1 << 20  # characters of a line a JSON body may span
MAX_WRAPPERS = 4

ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# Date and time fragments shared by the line-structure patterns below and the dialects'.
YMD = r"\d{4}-\d\d-\d\d"
HMS = r"\d\d:\d\d:\d\d"
PY_STAMP = rf"{YMD} {HMS},\d{{3}} - "  # python logging's asctime and separator
# y mo d sep h mi s fsep frac offset
DATE_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)([T ])(\d\d):(\d\d):(\d\d)"
    r"(?:([.,])(\d{1,9}))?( ?(?:Z|[+-]\d\d(?::?\d\d)?))?",
    re.ASCII,
)
PM2_CONSOLE_RE = re.compile(r"(?:\d{1,6}\|)?[^\s|]{1,64} *\| ", re.ASCII)
# A pm2 --time / log_date_format prefix ("<date>: ") or a docker logs -t stamp ("<date>Z ").
DATE_WRAPPER_RE = re.compile(
    rf"{YMD}[T ]{HMS}(?:[.,]\d{{1,9}})?"
    r"(?:(?: ?(?:Z|[+-]\d\d(?::?\d\d)?))?: |(?:Z|[+-]\d\d:?\d\d) )",
    re.ASCII,
)
# Classifies an unwrapped brolog or python-wechaty line: "brolog" / "python" when it may hold
# an event (an error level, or a message that starts like one), "chat" when it cannot.
DIALECT_RE = re.compile(
    rf"(?P<brolog>{HMS} +(?:ERR|(?:WARN|INFO|VERB|SILL) +(?:EventLogger |QRCodeTerminal "
    r"|\S+ (?=onScan: |Contact|EventLogger |EventLoggerPlugin\(\) (?:scan|log(?:in|out)): \["
    r"|QRCodeTerminal ))))"
    rf"|(?P<python>{PY_STAMP}\S+ - "
    r"(?:ERROR|CRITICAL|FATAL|[A-Z]+ - receive <))"
    rf"|(?P<chat>{HMS} |{PY_STAMP})",
    re.ASCII,
)

# A wrapper or dialect date: a match starting at the date (converted only when an event needs
# it), a Unix time already known (pm2 JSON numbers), or None.
When = re.Match[str] | float | None


def date_seconds(found: re.Match[str], zone: tzinfo | None, fallback: float) -> float:
    """Unix time of the date at the start of `found` (a line's or a wrapper's), else `fallback`."""
    m = DATE_RE.match(found.string, found.start())
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


def strip(raw: str) -> str:
    """`raw` without ANSI escapes and a trailing CR."""
    if "\x1b" in raw:
        raw = ANSI_RE.sub("", raw)
    return raw[:-1] if raw.endswith("\r") else raw


def line_rest(raw: str, head: str, start: int, truncated: bool) -> str | None:
    """The rest of the line from `start` (an index into `head`), uncut up to the JSON cap."""
    if not truncated:
        return head[start:]
    if len(raw) > JSON_CAP:
        return None
    return strip(raw)[start:]


def json_object(body: str) -> dict[str, object] | None:
    """`body` parsed as a JSON object, else None."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
