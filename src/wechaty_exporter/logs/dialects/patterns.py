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

__all__ = [
    "HINTS",
    "MIN_LITERAL",
    "Regex",
    "block_prefilter",
    "is_re2",
    "options",
    "required_literal",
    "scan_pattern",
]

Regex = Any  # a compiled re2 pattern (google-re2 ships no type hints)
_GROUP_OPEN_RE = re.compile(r"\(\?P?<([^>=!][^>]*)>")
_CASELESS_RE = re.compile(r"\(\?[imsU-]*i[imsU-]*[:)]")  # (?i) or (?i:...), anywhere
_REPEAT_RE = re.compile(r"\{\d+(?:,\d*)?\}")
# Characters a literal may hold: printable ASCII that a pm2 JSON string writes as itself (JSON
# may escape " \ and /, and may write any character as a \u escape, which the prefilter finds).
_LITERAL_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset('"\\/')
MIN_LITERAL = 3  # a shorter literal would find nearly every line


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


def _class_end(pattern: str, i: int) -> int:
    """The index after the character class opening at `pattern[i]` ("[")."""
    i += 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
        elif c == "]":
            return i + 1
        elif pattern.startswith("[:", i) and (close := pattern.find(":]", i + 2)) >= 0:
            i = close + 2
        else:
            i += 1
    return n


def _group_end(pattern: str, i: int) -> int | None:
    """The index after the group opening at `pattern[i]` ("("), None if it never closes."""
    depth, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("Q", i + 1):
                close = pattern.find("\\E", i + 2)
                i = n if close < 0 else close + 2
            else:
                i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _escape_end(pattern: str, i: int) -> int:
    """The index after the escape `pattern[i:i+2]` of a letter or digit (a class, an assertion
    or a character code: \\d, \\b, \\pL, \\p{Greek}, \\x41, \\x{263a}, \\123, ...)."""
    letter = pattern[i + 1]
    i += 2
    if letter in "pPx" and pattern.startswith("{", i):
        close = pattern.find("}", i)
        return len(pattern) if close < 0 else close + 1
    if letter in "pP":
        return i + 1
    if letter == "x":
        return i + 2
    while letter.isdigit() and i < len(pattern) and pattern[i].isdigit():
        i += 1
    return i


def required_literal(pattern: str) -> str | None:
    """The longest run of characters that every match of an RE2 `pattern` holds, read from its
    top level (a concatenation: groups, classes, escapes and quantified characters end a run);
    None when there is none of `MIN_LITERAL` characters, or the pattern ignores case or has an
    alternation at its top level. Only characters of `_LITERAL_CHARS` count.

    Conservative by construction: whatever it cannot read ends a run. For the block search
    (`prefilter.literal_search`) that finds every line a rule could take."""
    if _CASELESS_RE.search(pattern):
        return None
    runs: list[str] = []
    run: list[str] = []

    def end() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        chars: str
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt == "Q":  # \Q...\E: all literal
                close = pattern.find("\\E", i + 2)
                chars = pattern[i + 2 :] if close < 0 else pattern[i + 2 : close]
                i = n if close < 0 else close + 2
            elif nxt and not nxt.isalnum() and nxt.isascii():
                chars, i = nxt, i + 2
            else:
                end()
                i = n if not nxt else _escape_end(pattern, i)
                continue
        elif c == "[":
            end()
            i = _class_end(pattern, i)
            continue
        elif c == "(":
            end()
            after = _group_end(pattern, i)
            if after is None:
                return None
            i = after
            continue
        elif c == "|":
            return None
        elif c in ".^$)*+?{}":
            end()
            repeat = _REPEAT_RE.match(pattern, i)
            i = repeat.end() if repeat is not None else i + 1
            continue
        else:
            chars, i = c, i + 1
        # What follows may quantify the last character: optional or repeated, it ends the run.
        quantified = pattern[i : i + 1] in ("*", "?", "+", "{")
        keep = chars[:-1] if quantified and pattern[i] != "+" else chars
        for ch in keep:
            if ch in _LITERAL_CHARS:
                run.append(ch)
            else:
                end()
        if quantified or len(keep) < len(chars):
            end()
    end()
    best = max(runs, key=len, default="")
    return best if len(best) >= MIN_LITERAL else None


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
