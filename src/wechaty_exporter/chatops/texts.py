"""The commands' reply text (status, alerts, silences, help, restart), split into sendable texts."""

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
from wechaty_exporter.delivery.alerts import clip, format_duration, format_time

MAX_ALERTS_SHOWN = 30

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def split_text(text: str, limit: int) -> list[str]:
    """`text` as messages of at most `limit` characters, cut at line ends where possible."""
    if limit < 1:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if not current:
            current = line
        elif len(current) + 1 + len(line) <= limit:
            current += "\n" + line
        else:
            chunks.append(current)
            current = line
    if current or not chunks:
        chunks.append(current)
    return [c for c in chunks if c.strip()] or [""]


def text_replies(ctx: CommandContext, text: str) -> list[Reply]:
    """`text` as the text replies it takes."""
    return [Reply.of_text(t) for t in split_text(text, ctx.settings.max_reply_chars)]


def clean_line(line: str) -> str:
    """A log line as plain text: ANSI colour codes and control characters removed."""
    return _CONTROL.sub("", _ANSI.sub("", line))


def _when(ts: float | None, now: float, tz: tzinfo) -> str:
    if ts is None:
        return "unknown"
    return f"{format_time(ts, tz)} ({format_duration(now - ts)} ago)"


def status_text(
    docs: Sequence[Mapping[str, Any]],
    bots: Sequence[str],
    *,
    now: float,
    tz: tzinfo,
    paused: Sequence[str] = (),
) -> str:
    """`status`: each of `bots` as the exporter's `/api/v1/bots` documents describe it (a
    document with `exporter_error`: the exporter that watches the bot could not be asked)."""
    by_name = {str(d.get("bot")): d for d in docs}
    lines = []
    for bot in bots:
        doc = by_name.get(bot)
        if doc is None:
            lines.append(f"{bot}: not watched by the exporter")
            continue
        error = doc.get("exporter_error")
        if error is not None:
            lines.append(f"{bot}: its exporter could not be asked ({clip(str(error), 200)})")
            if bot in paused:
                lines.append(f"  rescue paused (rescue on {bot} to resume)")
            continue
        since = parse_time(doc.get("since"))
        state = doc.get("logged_in")
        if state is True:
            user = doc.get("user")
            who = f" as {user}" if isinstance(user, str) and user else ""
            head = f"{bot}: logged in{who} since {_when(since, now, tz)}"
        elif state is False:
            head = f"{bot}: LOGGED OUT since {_when(since, now, tz)}"
        else:
            head = f"{bot}: state unknown (no login, logout or scan seen yet)"
        lines.append(head)
        if doc.get("qr_pending"):
            seen = parse_time(doc.get("qr_seen_at"))
            lines.append(f"  QR waiting since {_when(seen, now, tz)}; send: qr {bot}")
        last_error = parse_time(doc.get("last_error"))
        if last_error is not None:
            lines.append(f"  last error line {_when(last_error, now, tz)}")
        missing = [
            str(f.get("path"))
            for f in doc.get("log_files") or ()
            if isinstance(f, Mapping) and f.get("present") is False
        ]
        if missing:
            lines.append(f"  log file missing: {', '.join(missing)}")
        if bot in paused:
            lines.append(f"  rescue paused (rescue on {bot} to resume)")
    return "\n".join(lines) or "No bots."


def alerts_text(alerts: Sequence[AlertInfo], *, now: float, tz: tzinfo) -> str:
    """`alerts`: one line per alert (name, bot, since when, silenced), newest first."""
    if not alerts:
        return "No alerts firing."
    ordered = sorted(alerts, key=lambda a: a.starts_at or 0.0, reverse=True)
    lines = []
    for alert in ordered[:MAX_ALERTS_SHOWN]:
        name = alert.labels.get("alertname", "?")
        bot = alert.labels.get("bot")
        about = f" {bot}" if bot else ""
        mark = {"suppressed": " (silenced or inhibited)"}.get(alert.state, "")
        lines.append(f"{name}{about}: since {_when(alert.starts_at, now, tz)}{mark}")
        summary = alert.annotations.get("summary", "").strip()
        if summary:
            lines.append(f"  {clip(summary, 200)}")
    if len(ordered) > MAX_ALERTS_SHOWN:
        lines.append(f"… and {len(ordered) - MAX_ALERTS_SHOWN} more")
    return "\n".join(lines)


def silences_text(silences: Sequence[SilenceInfo], *, now: float, tz: tzinfo) -> str:
    if not silences:
        return "No silences."
    lines = []
    for s in sorted(silences, key=lambda s: s.ends_at or 0.0):
        bot = s.equal_value("bot") or "?"
        state = "" if s.state == "active" else f" ({s.state})"
        until = format_time(s.ends_at, tz) if s.ends_at is not None else "?"
        lines.append(f"{s.id} {bot} until {until}{state} by {s.created_by or '?'}")
        if s.comment:
            lines.append(f"  {clip(s.comment, 200)}")
    return "\n".join(lines)


def help_text(ctx: CommandContext, bots: Sequence[str]) -> str:
    """The commands this admin can use, with the check each needs."""
    s = ctx.settings
    marks = {"none": "", "confirm": " (confirm with YES)", "totp": " <code>"}
    entries: list[tuple[str, str, str]] = [("help", "help", "this list")]
    if ctx.exporter is not None:
        entries += [
            ("status", "status", "every bot: logged in, QR pending, last error"),
            ("qr", "qr [bot]", "the login QR of a logged-out bot"),
        ]
    if ctx.alertmanager is not None:
        entries += [
            ("alerts", "alerts [bot]", "firing alerts"),
            ("silence", "silence <bot> <duration> [comment]", "e.g. silence bob 2h"),
            ("silences", "silences", "active silences"),
            ("unsilence", "unsilence <id>", "end a silence"),
            ("ack", "ack <bot>", "silence the bot's alerts until they resolve"),
        ]
    if ctx.runner is not None and any(s.restart_argv(b) for b in bots):
        entries.append(("restart", "restart <bot>", "run the bot's restart command"))
    if ctx.logs is not None and any(s.log_paths(b) for b in bots):
        entries.append(("log", "log <bot> [lines]", f"the end of its log (≤ {s.log_max_lines})"))
    if ctx.rescue is not None:
        entries += [
            ("rescue_off", "rescue off <bot>", "stop DMs about the bot"),
            ("rescue_on", "rescue on <bot>", "resume them"),
        ]
    lines = [f"Your bots: {', '.join(bots)}"]
    for key, syntax, what in entries:
        policy = s.policy(key)
        lines.append(f"{syntax}{marks[policy] if key != 'help' else ''} — {what}")
    return "\n".join(lines)


def restart_text(bot: str, result: RunInfo, limit: int) -> tuple[str, Outcome, str]:
    """One message: how the restart command ended and the tail of its output."""
    if result.error is not None:
        head = f"restart {bot}: could not run the command: {result.error}"
        return clip(head, limit), "failed", result.error
    if result.timed_out:
        head = f"restart {bot}: no exit within {result.duration:.1f} s; killed."
        note = "timed out, killed"
    else:
        head = f"restart {bot}: exit status {result.returncode} after {result.duration:.1f} s."
        note = f"exit {result.returncode}"
    outcome: Outcome = "ok" if result.returncode == 0 and not result.timed_out else "failed"
    output = "\n".join(clean_line(x) for x in result.output.rstrip("\n").split("\n")).strip()
    if not output:
        return head, outcome, note
    marker = "… (end of the output)\n"
    room = limit - len(head) - 1 - len(marker)
    clipped = result.truncated or len(output) > room
    if len(output) > room:
        output = output[-room:]
        if "\n" in output:
            output = output.split("\n", 1)[1]  # whole lines only
    return f"{head}\n{marker if clipped else ''}{output}", outcome, note
