"""The `LineParser.feed_block` prefilter: a whole-block search for the few lines that may hold an
event, and one regex that proves a line eventless.

`CANDIDATES` (google-re2, one DFA pass over a block of bytes) finds every place where a line could
show one of the tokens without which the built-in detection yields nothing (`TOKENS`); the lines
between two finds are skipped without being looked at. A line it finds is checked with
`QUIET_RUN` (Python `re`, anchored at the line) and fed only when that cannot prove it chat.
tests/logs/test_prefilter.py checks that skipping lines changes no event.
"""

from __future__ import annotations

import re

import re2

from wechaty_exporter.logs.dialects.patterns import Regex
from wechaty_exporter.logs.dialects.selflog import SELF_LOG_NAME, SELF_RE
from wechaty_exporter.logs.dialects.structure import (
    DATE_WRAPPER_RE,
    MAX_WRAPPERS,
    PM2_CONSOLE_RE,
)

__all__ = ["CANDIDATES", "QUIET_RUN", "QUIET_RUN_ESC", "TOKENS"]

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


def _candidates() -> Regex:
    """A token, with any ANSI escapes between its characters (they are removed before a line is
    read), in a block of raw bytes (latin-1: any byte, valid UTF-8 or not)."""
    tokens = [
        (_ESCAPE + b"*").join(re.escape(bytes([c])) for c in token.encode("ascii"))
        for token in TOKENS
    ]
    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1
    opts.never_capture = True
    opts.log_errors = False
    opts.max_mem = 64 << 20
    return re2.compile(b"|".join(tokens), opts)


def _quiet_run(esc: bool) -> re.Pattern[bytes]:
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


QUIET_RUN = _quiet_run(esc=False)
QUIET_RUN_ESC = _quiet_run(esc=True)


CANDIDATES = _candidates()
