"""The commands' reply text (status, alerts, silences, help, restart), split into sendable texts.

Every text is a template (`delivery/templates`, `chat/*.txt.j2`) in the bot's receiver
language: what is built here are the values the templates get (times already in the admin's
zone, durations in the language).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any

from wechaty_exporter.chatops.model import (
    AlertInfo,
    CommandContext,
    Outcome,
    Reply,
    RunInfo,
    SilenceInfo,
)
from wechaty_exporter.chatops.parse import parse_time
from wechaty_exporter.delivery.chattext import clip, format_time, split_text
from wechaty_exporter.delivery.templates import Messages, default_messages

__all__ = [
    "MAX_ALERTS_SHOWN",
    "alerts_text",
    "clean_line",
    "help_text",
    "restart_text",
    "silences_text",
    "split_text",
    "status_text",
    "text_replies",
]

MAX_ALERTS_SHOWN = 30

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# Control characters but tab, and the bidi controls that reorder what an admin reads.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def text_replies(ctx: CommandContext, text: str) -> list[Reply]:
    """`text` as the text replies it takes."""
    return [Reply.of_text(t) for t in split_text(text, ctx.settings.max_reply_chars)]


def clean_line(line: str) -> str:
    """A log line as plain text: ANSI colour codes, control and bidi characters removed."""
    return _CONTROL.sub("", _ANSI.sub("", line))


def _at(ts: float | None, now: float, tz: tzinfo, messages: Messages) -> tuple[str, str]:
    """A time as the templates get it: (the time, how long ago), both "" when unknown."""
    if ts is None:
        return "", ""
    return format_time(ts, tz), messages.duration(now - ts)


def status_text(
    docs: Sequence[Mapping[str, Any]],
    bots: Sequence[str],
    *,
    now: float,
    tz: tzinfo,
    paused: Sequence[str] = (),
    messages: Messages | None = None,
) -> str:
    """`status`: each of `bots` as the exporter's `/api/v1/bots` documents describe it (a
    document with `exporter_error`: the exporter that watches the bot could not be asked)."""
    m = messages or default_messages()
    by_name = {str(d.get("bot")): d for d in docs}
    rows = []
    for bot in bots:
        doc = by_name.get(bot)
        if doc is None:
            rows.append({"name": bot, "watched": False, "paused": bot in paused})
            continue
        state = doc.get("logged_in")
        user = doc.get("user")
        since, since_ago = _at(parse_time(doc.get("since")), now, tz, m)
        qr_since, qr_since_ago = _at(parse_time(doc.get("qr_seen_at")), now, tz, m)
        last_error, last_error_ago = _at(parse_time(doc.get("last_error")), now, tz, m)
        error = doc.get("exporter_error")
        rows.append(
            {
                "name": bot,
                "watched": True,
                "exporter_error": clip(str(error), 200) if error is not None else "",
                "state": "in" if state is True else "out" if state is False else "unknown",
                "user": user if isinstance(user, str) else "",
                "since": since,
                "since_ago": since_ago,
                "qr_pending": bool(doc.get("qr_pending")),
                "qr_since": qr_since,
                "qr_since_ago": qr_since_ago,
                "last_error": last_error,
                "last_error_ago": last_error_ago,
                "missing_logs": [
                    str(f.get("path"))
                    for f in doc.get("log_files") or ()
                    if isinstance(f, Mapping) and f.get("present") is False
                ],
                "paused": bot in paused,
            }
        )
    return m.render("chat/status.txt.j2", bots=rows)


def alerts_text(
    alerts: Sequence[AlertInfo], *, now: float, tz: tzinfo, messages: Messages | None = None
) -> str:
    """`alerts`: one line per alert (name, bot, since when, silenced), newest first."""
    m = messages or default_messages()
    ordered = sorted(alerts, key=lambda a: a.starts_at or 0.0, reverse=True)
    rows = []
    for alert in ordered[:MAX_ALERTS_SHOWN]:
        since, ago = _at(alert.starts_at, now, tz, m)
        rows.append(
            {
                "name": alert.labels.get("alertname", "?"),
                "bot": alert.labels.get("bot") or "",
                "since": since,
                "ago": ago,
                "silenced": alert.state == "suppressed",
                "summary": clip(alert.annotations.get("summary", "").strip(), 200),
            }
        )
    more = max(0, len(ordered) - MAX_ALERTS_SHOWN)
    return m.render("chat/alerts.txt.j2", alerts=rows, more=more)


def silences_text(
    silences: Sequence[SilenceInfo], *, now: float, tz: tzinfo, messages: Messages | None = None
) -> str:
    m = messages or default_messages()
    rows = [
        {
            "id": s.id,
            "bot": s.equal_value("bot") or "?",
            "until": format_time(s.ends_at, tz) if s.ends_at is not None else "?",
            "state": s.state,
            "created_by": s.created_by or "?",
            "comment": clip(s.comment, 200),
        }
        for s in sorted(silences, key=lambda s: s.ends_at or 0.0)
    ]
    return m.render("chat/silences.txt.j2", silences=rows)


def help_text(ctx: CommandContext, bots: Sequence[str]) -> str:
    """The commands this admin can use, with the check each needs."""
    s = ctx.settings
    keys = ["help"]
    if ctx.exporter is not None:
        keys += ["status", "qr"]
    if ctx.alertmanager is not None:
        keys += ["alerts", "silence", "silences", "unsilence", "ack"]
    if ctx.runner is not None and any(s.restart_argv(b) for b in bots):
        keys.append("restart")
    if ctx.logs is not None and any(s.log_paths(b) for b in bots):
        keys.append("log")
    if ctx.rescue is not None:
        keys += ["rescue_off", "rescue_on"]
    commands = [{"key": k, "check": s.policy(k) if k != "help" else "none"} for k in keys]
    return ctx.messages.render(
        "chat/help.txt.j2", bots=list(bots), commands=commands, log_max_lines=s.log_max_lines
    )


def restart_text(
    bot: str, result: RunInfo, limit: int, messages: Messages | None = None
) -> tuple[str, Outcome, str]:
    """One message: how the restart command ended and the tail of its output."""
    m = messages or default_messages()
    values = {
        "bot": bot,
        "error": result.error or "",
        "seconds": f"{result.duration:.1f}",
        "returncode": result.returncode,
        "clipped": False,
    }
    if result.error is not None:
        head = m.render("chat/restart.txt.j2", case="error", **values)
        return clip(head, limit), "failed", result.error
    case = "timed_out" if result.timed_out else "exited"
    note = "timed out, killed" if result.timed_out else f"exit {result.returncode}"
    outcome: Outcome = "ok" if result.returncode == 0 and not result.timed_out else "failed"
    head = m.render("chat/restart.txt.j2", case=case, **values)
    output = "\n".join(clean_line(x) for x in result.output.rstrip("\n").split("\n")).strip()
    if not output:
        return head, outcome, note
    room = limit - len(head) - 1
    if result.truncated or len(output) > room:
        head = m.render("chat/restart.txt.j2", case=case, **{**values, "clipped": True})
        room = limit - len(head) - 1
        if len(output) > room:
            output = output[-room:]
            if "\n" in output:
                output = output.split("\n", 1)[1]  # whole lines only
    return f"{head}\n{output}", outcome, note
