"""TypeScript Wechaty's brolog lines, with wechaty-plugin-contrib's EventLogger and QRCodeTerminal.

After the wrappers of `structure` are stripped:

brolog (TypeScript Wechaty)   ``HH:MM:SS LEVEL Prefix message``, LEVEL in ERR WARN INFO VERB SILL:
    ``onScan: Waiting(2) - <qr or wrapped qr>``, ``onScan: Scanned(3)``, ``Contact<Name> login``,
    ``Contact<Name> logout[ reason]`` (``ContactSelf<..>`` too). ERR -> ErrorLogged.
wechaty-plugin-contrib EventLogger, 1.11 and before  ``EventLogger scan: <qr>,<status>,<data>``,
    ``login: Contact<Name>``, ``logout: Contact<Name>,<reason>`` (as the message of any prefix,
    as the plugin writes it, or after a prefix ``EventLogger``).
wechaty-plugin-contrib EventLogger, 1.12 on  ``EventLoggerPlugin() <event>: <JSON array>``, the
    event's arguments as ``JSON.stringify`` writes them (as the message of any prefix; the plugin
    writes ``WechatyPluginContrib``): ``scan: ["<qr>",<status>,<data>]``, ``login: [<contact>]``
    and ``logout: [<contact>,"<reason>"]``, where a contact is ``{"id":..,"payload":{"name":..}}``:
    the user is its ``payload.name`` (else its ``id``). Only the first `HEAD_CAP` characters are
    read: a scan whose QR they cut is a RejectedQr; a login or logout whose array they cut names
    no user (nor reason). Any other event (``message: [...]``: chat, JSON-escaped) is none.
wechaty-plugin-contrib QRCodeTerminal  ``QRCodeTerminal Login QR Code Status: Waiting(2)`` and, on
    the very next line only, ``QR Code Image URL: <url>``: the Scan is emitted when the URL line
    arrives (`entry_lines` = 2); any other line in between cancels the entry without an event.
    Other statuses (``Timeout(5)`` also prints a URL line, ``onScan: Scanned(3)``) are emitted at
    once with no QR; a URL line that completes nothing is not an event.

A Timeout(5) scan is never a Waiting one, whatever URL its line carries: no QR stays pending.
"""

from __future__ import annotations

import json
import re

from wechaty_exporter.logs.dialects.context import STATUSES, DialectContext, text
from wechaty_exporter.logs.dialects.structure import HMS, When
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)

__all__ = ["BROLOG_RE", "EL_PLUGIN", "QRT_URL", "brolog_events"]

BROLOG_RE = re.compile(HMS + r" +(ERR|WARN|INFO|VERB|SILL) +(\S+)(?: |\Z)", re.ASCII)
QRT_URL = "QR Code Image URL: "  # the line that completes a QRCodeTerminal Waiting entry

_ONSCAN_RE = re.compile(r"onScan: ([A-Za-z]+)\((\d{1,3})\)(?: - (.*))?\Z", re.ASCII | re.DOTALL)
_CONTACT_RE = re.compile(r"Contact(?:Self)?<(.*)> (login|logout)(?:[ :,] ?(.*))?\Z", re.DOTALL)
_EL_SCAN_RE = re.compile(r"scan: (.*?),(\d{1,3}),(.*)\Z", re.ASCII | re.DOTALL)
_EL_LOGIN_RE = re.compile(r"login: Contact(?:Self)?<(.*)>\Z", re.DOTALL)
_EL_LOGOUT_RE = re.compile(r"logout: Contact(?:Self)?<(.*?)>(?:,(.*))?\Z", re.DOTALL)
EL_PLUGIN = "EventLoggerPlugin() "  # the current EventLogger's message, before `<event>: [...]`
_ELP_EVENT_RE = re.compile(r"(scan|login|logout): \[")
# The first two elements of the scan array: a JSON string (the QR) and a number (the status).
_ELP_SCAN_RE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)",(\d{1,3})[,\]]', re.DOTALL)
_QRT_STATUS_RE = re.compile(
    r"(?:Login QR Code Status|onScan): ([A-Za-z]+)\((\d{1,3})\)\Z", re.ASCII
)


def brolog_events(
    head: str,
    m: re.Match[str],
    truncated: bool,
    when: When,
    now: float,
    ctx: DialectContext,
    out: list[Event],
) -> float | None:
    """Append the events of a brolog line, whose level and prefix `m` (`BROLOG_RE`) matched.

    Returns the time of a QRCodeTerminal Waiting entry, which only the next line can complete
    (with `QRT_URL`); else None.
    """
    pos = m.end()
    if m.group(1) == "ERR":
        out.append(ErrorLogged(ctx.at(when, now)))
    prefix = m.group(2)
    if prefix == "EventLogger":
        _event_logger(head, pos, truncated, when, now, ctx, out)
        return None
    if prefix == "QRCodeTerminal":
        return _qrcode_terminal(head, pos, when, now, ctx, out)
    c = head[pos : pos + 1]
    if c == "o":
        s = _ONSCAN_RE.match(head, pos)
        if s is not None:
            ctx.scan(ctx.at(when, now), int(s.group(2)), s.group(3), truncated, out)
    elif c == "C":
        s = _CONTACT_RE.match(head, pos)
        if s is None:
            return None
        if s.group(2) == "login":
            if s.group(3) is None:
                out.append(Login(ctx.at(when, now), text(s.group(1))))
        else:
            reason = s.group(3)
            out.append(Logout(ctx.at(when, now), text(s.group(1)), text(reason and reason.strip())))
    elif c == "E":
        if head.startswith("EventLogger ", pos):
            _event_logger(head, pos + 12, truncated, when, now, ctx, out)
        elif head.startswith(EL_PLUGIN, pos):
            _event_logger_plugin(head, pos + len(EL_PLUGIN), truncated, when, now, ctx, out)
    elif c == "Q" and head.startswith("QRCodeTerminal ", pos):
        return _qrcode_terminal(head, pos + 15, when, now, ctx, out)
    return None


def _event_logger(
    head: str,
    pos: int,
    truncated: bool,
    when: When,
    now: float,
    ctx: DialectContext,
    out: list[Event],
) -> None:
    c = head[pos : pos + 1]
    if c == "s" and head.startswith("scan: ", pos):
        s = _EL_SCAN_RE.match(head, pos)
        if s is not None:
            ctx.scan(ctx.at(when, now), int(s.group(2)), s.group(1), False, out)
        elif truncated:  # the status comes after the QR, which the cap cut
            out.append(RejectedQr(ctx.at(when, now), "qr too long"))
    elif c == "l":
        s = _EL_LOGIN_RE.match(head, pos)
        if s is not None:
            out.append(Login(ctx.at(when, now), text(s.group(1))))
            return
        s = _EL_LOGOUT_RE.match(head, pos)
        if s is not None:
            out.append(Logout(ctx.at(when, now), text(s.group(1)), text(s.group(2))))


def _event_logger_plugin(
    head: str,
    pos: int,
    truncated: bool,
    when: When,
    now: float,
    ctx: DialectContext,
    out: list[Event],
) -> None:
    """The current EventLogger: ``<event>: <JSON.stringify(args)>`` from `pos`."""
    e = _ELP_EVENT_RE.match(head, pos)
    if e is None:
        return
    kind = e.group(1)
    start = e.end()  # just after "["
    if kind == "scan":
        s = _ELP_SCAN_RE.match(head, start)
        if s is not None:
            ctx.scan(ctx.at(when, now), int(s.group(2)), _json_string(s.group(1)), False, out)
        elif truncated:  # the status comes after the QR, which the cap cut
            out.append(RejectedQr(ctx.at(when, now), "qr too long"))
        return
    user = reason = None
    if not truncated:
        try:
            args = json.loads(head[start - 1 :])
        except (ValueError, RecursionError):
            return
        if not isinstance(args, list) or not args:
            return
        user = _contact_name(args[0])
        if len(args) > 1 and isinstance(args[1], str):
            reason = text(args[1])
    if kind == "login":
        out.append(Login(ctx.at(when, now), user))
    else:
        out.append(Logout(ctx.at(when, now), user, reason))


def _json_string(body: str) -> str:
    """The value of a JSON string literal's body; undecodable, the body as written (a QR with a
    backslash fails the QR check anyway)."""
    try:
        value = json.loads(f'"{body}"')
    except ValueError:
        return body
    return value if isinstance(value, str) else body


def _contact_name(contact: object) -> str | None:
    """A JSON-stringified Contact's name (``payload.name``), else its id, else None."""
    if not isinstance(contact, dict):
        return None
    payload = contact.get("payload")
    if isinstance(payload, dict):
        name = payload.get("name")
        if isinstance(name, str) and name:
            return text(name)
    for found in (payload.get("id") if isinstance(payload, dict) else None, contact.get("id")):
        if isinstance(found, str) and found:
            return text(found)
    return None


def _qrcode_terminal(
    head: str, pos: int, when: When, now: float, ctx: DialectContext, out: list[Event]
) -> float | None:
    """Append a non-Waiting status; return the time of a Waiting one (it awaits its URL line)."""
    s = _QRT_STATUS_RE.match(head, pos)
    if s is None:
        return None
    number = int(s.group(2))
    if number >= len(STATUSES):
        return None
    at = ctx.at(when, now)
    if number == ScanStatus.WAITING:
        return at
    out.append(Scan(at, STATUSES[number]))
    return None
