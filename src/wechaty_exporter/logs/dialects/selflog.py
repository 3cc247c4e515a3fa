"""This project's own self-log: the one line format its bot writes and the exporter reads back.

Self-log format (stable contract)::

    <RFC 3339 local time with ms and offset> <LEVEL> wechaty-exporter <kind> <compact JSON object>

    2026-11-25T10:00:00.123+08:00 INFO wechaty-exporter scan {"status":2,"qrcode":"https://login.weixin.qq.com/l/abc"}
    2026-11-25T10:00:05.000+08:00 INFO wechaty-exporter login {"user":"Bob","id":"wxid_1"}
    2026-11-25T18:30:00.000+08:00 INFO wechaty-exporter logout {"user":"Bob","reason":"kicked"}

Kinds ``scan`` (``status`` int, ``qrcode`` str or null), ``login`` (``user``, ``id``) and ``logout``
(``user``, ``reason``) are events; so are the duet probe's ``probe`` (``from``: the peer bot's
name, ``seq``: its number; a probe reached this bot) and ``probe_sent`` (``to``, ``seq``: this
bot sent one), which only the self-log can say (no plain-text dialect has them) and which never
change the login state. Level ERROR/ERR/CRITICAL is an error; other kinds (``probe_failed``
included) are ignored. JSON escapes newlines, so no value can forge a line. Non-ASCII is
written as is, except line separators U+0085/U+2028/U+2029 and lone surrogates, which are
escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from wechaty_exporter.logs.dialects.context import (
    ERROR_LEVELS,
    STATUSES,
    DialectContext,
    text,
)
from wechaty_exporter.logs.dialects.structure import HMS, YMD, json_object, line_rest
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    RejectedQr,
)

__all__ = ["SELF_LOG_NAME", "SELF_RE", "format_self_log", "self_log_events"]

SELF_LOG_NAME = "wechaty-exporter"

_KIND_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_LEVEL_RE = re.compile(r"[A-Z]+\Z")
_JSON_UNSAFE_RE = re.compile(r"[\u0085\u2028\u2029\ud800-\udfff]")
# A bot name in a probe line (the probe text's, settings.BOT_NAME's), and its sequence number.
_PROBE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z", re.ASCII)
_PROBE_SEQ_MAX = 10**12 - 1

# A self-log line up to its JSON body: level and kind.
SELF_RE = re.compile(
    rf"{YMD}T{HMS}(?:\.\d{{1,9}})?(?:Z|[+-]\d\d:?\d\d)"
    rf" ([A-Z]+) {SELF_LOG_NAME} ([a-z][a-z0-9_]*) ",
    re.ASCII,
)


def format_self_log(kind: str, fields: Mapping[str, object], at: float, level: str = "INFO") -> str:
    """One self-log line (without "\\n") in the format documented above, `at` in the local zone.

    >>> format_self_log("login", {"user": "Bob", "id": "wxid_1"}, 0.0)  # doctest: +SKIP
    '1970-01-01T08:00:00.000+08:00 INFO wechaty-exporter login {"user":"Bob","id":"wxid_1"}'
    """
    if _KIND_RE.match(kind) is None:
        raise ValueError(f"self-log kind must match [a-z][a-z0-9_]*: {kind!r}")
    if _LEVEL_RE.match(level) is None:
        raise ValueError(f"self-log level must match [A-Z]+: {level!r}")
    stamp = datetime.fromtimestamp(at, UTC).astimezone().isoformat(timespec="milliseconds")
    body = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"), default=str)
    body = _JSON_UNSAFE_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", body)
    return f"{stamp} {level} {SELF_LOG_NAME} {kind} {body}"


def self_log_events(
    raw: str,
    head: str,
    m: re.Match[str],
    truncated: bool,
    at: float,
    ctx: DialectContext,
    out: list[Event],
) -> None:
    """Append the events of a self-log line, whose level and kind `m` (`SELF_RE`) matched."""
    if m.group(1) in ERROR_LEVELS:
        out.append(ErrorLogged(at))
    kind = m.group(2)
    if kind in ("probe", "probe_sent"):
        _probe(raw, head, m, truncated, at, kind, out)
        return
    if kind not in ("scan", "login", "logout"):
        return
    body = line_rest(raw, head, m.end(), truncated)
    if body is None:
        if kind == "scan":
            out.append(RejectedQr(at, "qr too long"))
        return
    fields = json_object(body)
    if fields is None:
        return
    user = fields.get("user")
    if not isinstance(user, str) or not user:
        user = fields.get("id")
    name = text(user) if isinstance(user, str) else None
    if kind == "login":
        out.append(Login(at, name))
    elif kind == "logout":
        reason = fields.get("reason")
        out.append(Logout(at, name, text(reason) if isinstance(reason, str) else None))
    else:
        status = fields.get("status")
        if isinstance(status, bool) or not isinstance(status, int):
            return
        if 0 <= status < len(STATUSES):
            qr = fields.get("qrcode")
            qr = qr if isinstance(qr, str) else None
            ctx.scan(at, status, qr, False, out, self_log=True)


def _probe(
    raw: str, head: str, m: re.Match[str], truncated: bool, at: float, kind: str, out: list[Event]
) -> None:
    """A ``probe`` or ``probe_sent`` line → its event; a malformed one is ignored."""
    body = line_rest(raw, head, m.end(), truncated)
    fields = json_object(body) if body is not None else None
    if fields is None:
        return
    name = fields.get("from" if kind == "probe" else "to")
    seq = fields.get("seq")
    if not isinstance(name, str) or _PROBE_NAME_RE.match(name) is None:
        return
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _PROBE_SEQ_MAX:
        return
    out.append(ProbeReceived(at, name, seq) if kind == "probe" else ProbeSent(at, name, seq))
