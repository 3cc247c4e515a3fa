"""RE2 pattern text: what a rule's regex names and anchors, and the block prefilter of a rule set.

Rules (`rules`) are compiled with google-re2, never Python's `re`: matching is linear in the
length of the text whatever the pattern. `scan_pattern` reads a pattern's named groups and
anchors without compiling it (re2 accepts a group name twice; the rules must not), and
`block_prefilter` joins a rule set's patterns into one re2 search that finds, in a block of
bytes, every line a rule could take, so `LineParser.feed_block` need not decode the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import re2

from wechaty_exporter.logs.dialects.structure import DATE_WRAPPER_RE, MAX_WRAPPERS, PM2_CONSOLE_RE

__all__ = ["HINTS", "Regex", "block_prefilter", "is_re2", "options", "scan_pattern"]

Regex = Any  # a compiled re2 pattern (google-re2 ships no type hints)
_GROUP_OPEN_RE = re.compile(r"\(\?P?<([^>=!][^>]*)>")


def options(*, block: bool = False) -> Any:
    """re2 options: errors not logged; for a block search, no match across lines."""
    opts = re2.Options()
    opts.log_errors = False
    if block:
        opts.never_nl = True
        opts.never_capture = True
        opts.max_mem = 64 << 20
    return opts


def is_re2(regex: object) -> bool:
    """True when `regex` is a google-re2 pattern (linear-time matching)."""
    return type(regex).__module__.split(".")[0] == "re2"


def scan_pattern(pattern: str) -> tuple[list[str], list[tuple[int, int]]]:
    """(named groups, spans of ^ $ \\A \\z outside classes) of an RE2 pattern, in order."""
    names: list[str] = []
    anchors: list[tuple[int, int]] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if not in_class and nxt in ("A", "z"):
                anchors.append((i, i + 2))
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            elif pattern.startswith("[:", i):
                close = pattern.find(":]", i + 2)
                if close >= 0:
                    i = close + 2
                    continue
            i += 1
            continue
        if c == "[":
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1
            in_class = True
            continue
        if c == "(":
            group = _GROUP_OPEN_RE.match(pattern, i)
            if group is not None:
                names.append(group.group(1))
        elif c in "^$":
            anchors.append((i, i + 1))
        i += 1
    return names, anchors


def _block_form(pattern: str) -> str | None:
    """`pattern` for the block prefilter: a leading ^ or \\A and a trailing $ or \\z (no-ops in a
    whole-line match) removed; None when other anchors make the block search unsafe."""
    _, anchors = scan_pattern(pattern)
    start, end = 0, len(pattern)
    for a, b in anchors:
        if a == 0 and start == 0:
            start = b
        elif b == len(pattern) and end == len(pattern):
            end = a
        else:
            return None
    return pattern[start:end]


HINTS = (
    ("(?=", "RE2 has no look-ahead"),
    ("(?!", "RE2 has no look-ahead"),
    ("(?<=", "RE2 has no look-behind"),
    ("(?<!", "RE2 has no look-behind"),
    ("\\Z", "write \\z for the end of the text (rules are anchored anyway)"),
)


def block_prefilter(patterns: Iterable[str]) -> Regex | None:
    """One re2 search over a block of bytes that finds every line one of `patterns` (whole-line
    rules) could match: the patterns after any run of wrappers, lines with an ANSI escape, and
    JSON lines. None when a pattern holds an anchor that only a whole-line match makes a no-op
    (every line must then be read)."""
    parts = []
    for pattern in patterns:
        body = _block_form(pattern)
        if body is None:
            return None
        parts.append(f"(?:{body})")
    wrapper = f"(?:{DATE_WRAPPER_RE.pattern}|{PM2_CONSOLE_RE.pattern})"
    lines = f"(?m)^{wrapper}{{0,{MAX_WRAPPERS}}}(?:(?:{'|'.join(parts)})\\r?$|\\{{)|\\x1b"
    try:
        return re2.compile(lines, options(block=True))
    except re2.error:
        return None
