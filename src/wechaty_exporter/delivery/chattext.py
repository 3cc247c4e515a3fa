"""Chat text as an admin reads it: times, durations, texts cut to fit one WeChat message, and
text from outside (alert annotations) made inert: `quoted_text`."""

from __future__ import annotations

import re
import unicodedata
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


# --- text from outside: shown as a quote, never as our own words or a link ----------------------

MAX_QUOTED_CHARS = 398  # a quoted line: the quote marker "> " and this much text (400 in all)

# Unicode format characters (Cf: bidi controls, zero-width joiners and spaces, the BOM, soft
# hyphens, tags) change how text reads or hide what it is; controls (Cc) do not belong in a chat.
_DROP = frozenset(("Cc", "Cf", "Cs", "Co"))
_SPACES = re.compile(r"\s+")  # line breaks and every Unicode space: one plain space
# What a chat client may turn into a link: a scheme ("https://", "weixin://"), and a dot between
# a letter or digit and a letter, as in a host name ("evil.example", "www.x.cn").
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):/+")
_HOST_DOT = re.compile(r"(?<=[^\W_])[.\uff0e](?=[^\W\d_])")


def defang(text: str) -> str:
    """Links in `text` made inert and still readable: 'https://evil.example/x' becomes
    'hxxps[:]//evil[.]example/x' (the convention for quoting a suspect link)."""

    def scheme(m: re.Match[str]) -> str:
        name = m.group(1)
        if name[:4].lower() == "http":
            name = name[0] + "xx" + name[3:]
        return f"{name}[:]//"

    return _HOST_DOT.sub("[.]", _SCHEME.sub(scheme, text))


def quoted_text(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """Text someone else wrote (an alert's annotations, a label) fit to be quoted in a DM: one
    line, no control, format or bidi character, runs of spaces collapsed (it cannot push words
    onto a line of their own), links made inert (`defang`), at most `limit` characters."""
    spaced = _SPACES.sub(" ", text)  # first: a line break between two words stays a space
    kept = "".join(c for c in spaced if unicodedata.category(c) not in _DROP)
    return clip(defang(_SPACES.sub(" ", kept).strip()), limit)
