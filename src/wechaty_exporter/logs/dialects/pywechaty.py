"""python-wechaty's logging lines, and the Python reprs of the event payloads they hold.

After the wrappers of `structure` are stripped:

python-wechaty   ``YYYY-MM-DD HH:MM:SS,mmm - <logger> - <LEVEL> - <message>``: ERROR/CRITICAL of
    any logger -> ErrorLogged; events only from logger ``Wechaty``: ``receive <scan> event
    <EventScanPayload(status=<ScanStatus.Waiting: 2>, qrcode='...', data=None)>`` (status also a
    bare int or ``ScanStatus.Name``; qrcode a Python repr or None), ``receive <login> event
    <EventLoginPayload(contact_id='wxid')>`` (user = the contact id), ``receive <logout> event
    <EventLogoutPayload(contact_id='wxid', data='reason')>``. Dates are in the parser's `tz`.
"""

from __future__ import annotations

import re

from wechaty_exporter.logs.dialects.context import (
    ERROR_LEVELS,
    STATUS_BY_NAME,
    STATUSES,
    DialectContext,
    text,
)
from wechaty_exporter.logs.dialects.structure import PY_STAMP, When
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)

__all__ = ["PYTHON_RE", "python_events"]

PYTHON_RE = re.compile(PY_STAMP + r"(\S+) - ([A-Z]+) - ", re.ASCII)

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


def python_events(
    head: str,
    m: re.Match[str],
    truncated: bool,
    when: When,
    now: float,
    ctx: DialectContext,
    out: list[Event],
) -> None:
    """Append the events of a python-wechaty line, whose logger and level `m` (`PYTHON_RE`) read."""
    pos = m.end()
    if m.group(2) in ERROR_LEVELS:
        out.append(ErrorLogged(ctx.at(when, now)))
    if not head.startswith("receive <", pos) or m.group(1) != "Wechaty":
        return
    at = ctx.at(when, now)
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
            status = STATUS_BY_NAME.get(name)
            if status is None:
                return
            number = int(status)
        if number >= len(STATUSES):
            return
        if number != ScanStatus.WAITING:
            out.append(Scan(at, STATUSES[number]))
            return
        t = _PY_SCAN_TAIL_RE.match(head, s.end())
        if t is None:
            if truncated:
                out.append(RejectedQr(at, "qr too long"))
            return
        ctx.scan(at, number, _py_unrepr(t.group(1)), truncated, out)
    elif c == "l":
        s = _PY_LOGIN_RE.match(head, pos)
        if s is not None:
            out.append(Login(at, text(_py_unrepr(s.group(1)))))
            return
        s = _PY_LOGOUT_RE.match(head, pos)
        if s is not None:
            reason = _py_unrepr(s.group(2)) if s.group(2) is not None else None
            out.append(Logout(at, text(_py_unrepr(s.group(1))), text(reason)))


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
