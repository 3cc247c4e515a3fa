"""Chat text as an admin reads it: times, durations, and texts cut to fit one WeChat message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

MAX_TEXT_CHARS = 1500  # one WeChat text; the client refuses texts over about 2,000 characters


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cut an overlong text to `limit` characters, marking the cut with '…'."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- times and durations, as the admin reads them -------------------------------------------------

_UNITS = {
    "en": ("s", "min", "h", "d"),
    "zh": ("秒", "分钟", "小时", "天"),
}


def format_time(ts: float, tz: tzinfo) -> str:
    """'2026-11-25 09:01 CST': what an admin reads on the phone (the same in every language)."""
    stamp = datetime.fromtimestamp(ts, tz)
    return stamp.strftime("%Y-%m-%d %H:%M ") + (stamp.tzname() or "UTC")


def format_duration(seconds: float, language: str = "en") -> str:
    """A coarse duration in `language`: '40 s', '12 min', '2 h 5 min', '3 d 4 h' (en);
    '40 秒', '12 分钟', '2 小时 5 分钟', '3 天 4 小时' (zh)."""
    sec, mins, hrs, days = _UNITS.get(language, _UNITS["en"])
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} {sec}"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} {mins}"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} {hrs} {minutes} {mins}" if minutes else f"{hours} {hrs}"
    d, hours = divmod(hours, 24)
    return f"{d} {days} {hours} {hrs}" if hours else f"{d} {days}"


# --- splitting, shared by the alert DMs and the chat replies --------------------------------------


def pack(units: Sequence[str], limit: int, sep: str = "\n") -> list[list[int]]:
    """Consecutive `units` (by index) grouped so each group joined by `sep` is at most `limit`
    characters; a unit longer than `limit` is a group of its own."""
    groups: list[list[int]] = []
    size = 0
    for i, unit in enumerate(units):
        if groups and size + len(sep) + len(unit) <= limit:
            groups[-1].append(i)
            size += len(sep) + len(unit)
        else:
            groups.append([i])
            size = len(unit)
    return groups


def split_text(text: str, limit: int) -> list[str]:
    """`text` as messages of at most `limit` characters, cut at line ends where possible."""
    if limit < 1:
        raise ValueError("limit must be positive")
    lines: list[str] = []
    for line in text.split("\n"):
        lines += [line[i : i + limit] for i in range(0, len(line), limit)] or [""]
    chunks = ["\n".join(lines[i] for i in group) for group in pack(lines, limit)]
    return [c for c in chunks if c.strip()] or [""]
