"""The `LineParser.feed_block` prefilter: one regex that skips whole runs of eventless lines.

tests/logs/test_prefilter.py checks that skipping them changes no event.
"""

from __future__ import annotations

import re

from wechaty_exporter.logs.dialects.selflog import SELF_RE
from wechaty_exporter.logs.dialects.structure import (
    DATE_WRAPPER_RE,
    MAX_WRAPPERS,
    PM2_CONSOLE_RE,
)

__all__ = ["QUIET_RUN", "QUIET_RUN_ESC"]


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
