"""The `LineParser.feed_block` prefilter: a whole-block search for the few lines that may hold an
event, and one regex that proves a line eventless.

`CANDIDATES` (google-re2, one DFA pass over a block of bytes) finds every place where a line could
show one of the tokens without which the built-in detection yields nothing (`TOKENS`); the lines
between two finds are skipped without being looked at. A line it finds is checked with
`quiet_run` (Python `re`, anchored at the line; compiled on first use, which a log without a
found line never reaches) and fed only when that cannot prove it chat.
tests/logs/test_prefilter.py checks that skipping lines changes no event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

import re2

from wechaty_exporter.logs.dialects.selflog import SELF_LOG_NAME, SELF_RE
from wechaty_exporter.logs.dialects.structure import (
    DATE_WRAPPER_RE,
    MAX_WRAPPERS,
    PM2_CONSOLE_RE,
)

if TYPE_CHECKING:  # patterns (the rules' pattern reading) is imported only with rules
    from wechaty_exporter.logs.dialects.patterns import Regex

__all__ = ["CANDIDATES", "TOKENS", "literal_search", "quiet_run", "search_for"]

# Without one of these in a line (after its ANSI escapes are removed), the built-in detection
# yields no event and leaves the parser as it was: `DIALECT_RE`'s brolog and python groups need
# ERR (ERROR), EventLogger, QRCodeTerminal, "onScan: ", " Contact" (after "\S+ "), CRITICAL,
# FATAL or "receive <"; a self-log line names the self-log; a pm2 JSON line can hide any of them
# only in a \u escape (its other escapes write none of their characters).
TOKENS = (
    "ERR", "EventLogger", "QRCodeTerminal", "onScan: ", " Contact", "CRITICAL", "FATAL",
    "receive <", SELF_LOG_NAME, "\\u",
)  # fmt: skip
# One ANSI escape as `structure.ANSI_RE` removes it, in bytes, within a line.
_ESCAPE = rb"(?:\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\x5c)?|[@-Z\x5c-_]))"


def search_for(tokens: Iterable[str]) -> Regex:
    """A search for any of `tokens` (ASCII), with any ANSI escapes between their characters
    (they are removed before a line is read), in a block of raw bytes (latin-1: any byte, valid
    UTF-8 or not)."""
    parts = [
        (_ESCAPE + b"*").join(re.escape(bytes([c])) for c in token.encode("ascii"))
        for token in tokens
    ]
    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1
    opts.never_capture = True
    opts.log_errors = False
    opts.max_mem = 64 << 20
    return re2.compile(b"|".join(parts), opts)


@cache
def literal_search(literals: tuple[str, ...], builtin: bool) -> Regex:
    """Custom rules (`rules.Dialect.literals`): a search for the lines that may hold one of
    `literals`, which every line some rule can take holds once its ANSI escapes are removed or
    its pm2 JSON is decoded (a \\u escape can write any character: such a line is found too;
    the literals hold no character JSON writes otherwise). With `builtin`, the built-in
    `TOKENS` too: one pass over a block finds the lines either may read (mode ``alongside``).
    Compiled when a parser first searches a block with them."""
    return search_for((*literals, "\\u", *(TOKENS if builtin else ())))


@cache
def quiet_run(esc: bool) -> re.Pattern[bytes]:
    """A run of complete lines (bytes) that provably yield no event (`LineParser.feed_block`).

    Invariant: a line is consumed only when the wrapper loop of `LineParser._line` would stop at
    the "chat" group of `DIALECT_RE`, directly or after pm2 --time / docker / pm2 console
    wrappers, or when it is a pm2 JSON object whose one message part is such a line. Such a line
    yields nothing and leaves a parser that awaits no continuation line unchanged. With `esc`, a
    line holding an ANSI escape is consumed only as a brolog line with a coloured level (a shape
    whose stripped form is known); every other line is left to `feed`.
    """
    kw = (
        r"(?:onScan: |Contact|EventLogger |EventLoggerPlugin\(\) (?:scan|log(?:in|out)): \["
        r"|QRCodeTerminal )"
    )
    brolog_tail = (
        rf"(?! *+(?:ERR|(?:WARN|INFO|VERB|SILL) ++(?:EventLogger |QRCodeTerminal |\S++ {kw})))"
    )
    python_tail = r"(?!\S++ - (?:ERROR|CRITICAL|FATAL|[A-Z]++ - receive <))"
    python_head = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - "
    # DIALECT_RE gives "chat" here: the brolog and python groups fail, the chat group matches.
    chat = rf"(?:\d\d:\d\d:\d\d {brolog_tail}|{python_head}{python_tail})"
    date = rf"(?>{DATE_WRAPPER_RE.pattern})"
    console = rf"(?>{PM2_CONSOLE_RE.pattern})"
    # One turn of the wrapper loop that does not stop: no dialect, not JSON, then a wrapper.
    step = (
        rf"(?!\d\d:\d\d:\d\d |{python_head})"
        rf"(?:(?=\d...-)(?!{SELF_RE.pattern}){date}|(?![{{])(?!\d...-){console})"
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
        rf"|(?:{step}){{1,{MAX_WRAPPERS}}}{chat}{rest}"
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


CANDIDATES = search_for(TOKENS)
