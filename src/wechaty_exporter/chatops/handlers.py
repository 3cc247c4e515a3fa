"""One function per chat command: call the injected client, build the replies, say how it went.

Each reply is a `chat/<command>.txt.j2` template in `ctx.messages`' language."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Sequence

from wechaty_exporter.chatops.model import (
    AlertmanagerApi,
    Command,
    CommandContext,
    Outcome,
    Reply,
    Sender,
    SilenceInfo,
)
from wechaty_exporter.chatops.redact import env_secrets, known_secrets, redact_lines
from wechaty_exporter.chatops.texts import (
    alerts_text,
    clean_line,
    help_text,
    restart_text,
    silences_text,
    status_text,
    text_replies,
)
from wechaty_exporter.delivery.alerts import qr_caption
from wechaty_exporter.delivery.chattext import clip, format_time
from wechaty_exporter.qrimage import qr_png

ACK_MARK = "[ack]"  # comment prefix of silences made by `ack`, which end when the alerts resolve
MAX_LOG_MESSAGES = 5  # `log` sends at most this many texts (the end of the lines)
MAX_LOG_LINE_CHARS = 400

HandlerResult = tuple[list[Reply], Outcome, str]


async def _help(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    return text_replies(ctx, help_text(ctx, bots)), "ok", ""


async def _status(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.exporter is not None
    docs = await ctx.exporter.bots()
    rescue = ctx.rescue
    paused = [b for b in bots if rescue is not None and not rescue.rescue_enabled(b)]
    text = status_text(docs, bots, now=now, tz=ctx.tz, paused=paused, messages=ctx.messages)
    return text_replies(ctx, text), "ok", ""


def _qr_reply(ctx: CommandContext, case: str, bot: str = "", bots: Sequence[str] = ()) -> str:
    return ctx.messages.render("chat/qr.txt.j2", case=case, bot=bot, bots=list(bots))


async def _qr(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.exporter is not None
    bot = command.bot
    if bot is None:
        docs = await ctx.exporter.bots()
        waiting = [b for b in bots if any(d.get("bot") == b and d.get("qr_pending") for d in docs)]
        if len(waiting) != 1:
            if not waiting:
                return text_replies(ctx, _qr_reply(ctx, "none_waiting")), "ok", "none"
            return text_replies(ctx, _qr_reply(ctx, "several", bots=waiting)), "ok", ""
        bot = waiting[0]
    qr = await ctx.exporter.pending_qr(bot)
    if qr is None:
        docs = await ctx.exporter.bots()
        doc = next((d for d in docs if d.get("bot") == bot), None)
        if doc is not None and doc.get("logged_in") is True:
            return text_replies(ctx, _qr_reply(ctx, "logged_in", bot)), "ok", "logged in"
        return text_replies(ctx, _qr_reply(ctx, "no_qr", bot)), "ok", "no QR"
    text = qr_caption(ctx.messages, bot, tz=ctx.tz, seen_at=qr.seen_at)
    png = qr_png(qr.qrcode)
    return [Reply.of_text(text), Reply.of_image(png, f"{bot}-login-qr.png")], "ok", "sent"


async def _alerts(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    wanted = [command.bot] if command.bot else list(bots)
    alerts = await ctx.alertmanager.alerts([bot_regex_matcher(wanted)])
    text = alerts_text(alerts, now=now, tz=ctx.tz, messages=ctx.messages)
    return text_replies(ctx, text), "ok", f"{len(alerts)} alerts"


def silence_matchers(bot: str) -> list[str]:
    """What `silence <bot>` matches: every alert about the bot, which is exactly what the
    Alertmanager config routes to the bot's rescuer (deploy/alertmanager: `bot="<bot>"`)."""
    return [f'bot="{bot}"']


def bot_regex_matcher(bots: Sequence[str]) -> str:
    # Bot names match config.BOT_NAME: only '.' needs escaping in a regex.
    return 'bot=~"' + "|".join(re.escape(b).replace("\\", "\\\\") for b in bots) + '"'


def _creator(sender: Sender) -> str:
    return sender.name or sender.alias or sender.weixin or sender.id


async def _silence(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    assert command.bot is not None
    assert command.duration is not None
    ends = now + command.duration
    comment = command.comment or f"silenced from chat by {_creator(sender)}"
    silence_id = await ctx.alertmanager.create_silence(
        silence_matchers(command.bot),
        starts_at=now,
        ends_at=ends,
        created_by=_creator(sender),
        comment=comment,
    )
    text = ctx.messages.render(
        "chat/silence.txt.j2",
        bot=command.bot,
        duration=ctx.messages.duration(command.duration),
        until=format_time(ends, ctx.tz),
        id=silence_id,
    )
    return text_replies(ctx, text), "ok", f"silence {silence_id}"


async def _silences(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    found = await _own_silences(ctx.alertmanager, bots)
    text = silences_text(found, now=now, tz=ctx.tz, messages=ctx.messages)
    return text_replies(ctx, text), "ok", f"{len(found)} silences"


async def _own_silences(am: AlertmanagerApi, bots: Sequence[str]) -> list[SilenceInfo]:
    return [
        s
        for s in await am.silences()
        if s.state in ("active", "pending") and s.equal_value("bot") in bots
    ]


async def _unsilence(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    wanted = command.silence_id
    own = await _own_silences(ctx.alertmanager, bots)
    exact = [s for s in own if s.id == wanted]
    matches = exact or ([s for s in own if s.id.startswith(wanted)] if len(wanted) >= 8 else [])
    if len(matches) != 1:
        case = "ambiguous" if matches else "not_found"
        text = ctx.messages.render("chat/unsilence.txt.j2", case=case, id=clip(wanted, 40), bot="")
        return text_replies(ctx, text), "usage", "not found"
    target = matches[0]
    await ctx.alertmanager.expire_silence(target.id)
    bot = target.equal_value("bot") or "?"
    text = ctx.messages.render("chat/unsilence.txt.j2", case="expired", id=target.id, bot=bot)
    return text_replies(ctx, text), "ok", f"silence {target.id}"


async def _ack(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    assert command.bot is not None
    firing = await ctx.alertmanager.alerts(silence_matchers(command.bot))
    values = {"bot": command.bot, "alertnames": [], "until": "", "id": ""}
    if not firing:
        text = ctx.messages.render("chat/ack.txt.j2", case="nothing", **values)
        return text_replies(ctx, text), "ok", "nothing firing"
    names = sorted({a.labels.get("alertname", "?") for a in firing})
    ends = now + ctx.settings.ack_max
    silence_id = await ctx.alertmanager.create_silence(
        silence_matchers(command.bot),
        starts_at=now,
        ends_at=ends,
        created_by=_creator(sender),
        comment=f"{ACK_MARK} until resolved: {', '.join(names)}",
    )
    values.update(alertnames=names, until=format_time(ends, ctx.tz), id=silence_id)
    text = ctx.messages.render("chat/ack.txt.j2", case="acked", **values)
    return text_replies(ctx, text), "ok", f"silence {silence_id}"


async def expire_resolved_acks(am: AlertmanagerApi) -> list[str]:
    """End every `ack` silence whose bot has no unresolved alert left; their ids.

    An ack means "until resolved", which an Alertmanager silence cannot say by itself: the
    bot calls this every minute or so, so a later logout of the same bot is not silenced.
    """
    expired = []
    for s in await am.silences():
        bot = s.equal_value("bot")
        if s.state == "expired" or not s.comment.startswith(ACK_MARK) or bot is None:
            continue
        if not await am.alerts(silence_matchers(bot)):
            await am.expire_silence(s.id)
            expired.append(s.id)
    return expired


async def _restart(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.runner is not None
    assert command.bot is not None
    argv = ctx.settings.restart_argv(command.bot)
    assert argv is not None
    if command.bot in ctx.state.restarting:
        text = ctx.messages.render(
            "chat/restart.txt.j2", case="busy", bot=command.bot, error="", seconds="",
            returncode=None, clipped=False,
        )  # fmt: skip
        return text_replies(ctx, text), "usage", "busy"
    ctx.state.restarting.add(command.bot)
    try:
        result = await ctx.runner.run(argv, time_limit=ctx.settings.restart_timeout)
    finally:
        ctx.state.restarting.discard(command.bot)
    limit = ctx.settings.max_reply_chars
    text, outcome, note = restart_text(command.bot, result, limit, ctx.messages)
    return [Reply.of_text(text)], outcome, note


def log_secrets(ctx: CommandContext) -> tuple[str, ...]:
    """What `log` replies never show verbatim: the secrets the bot was given, its TOTP secret,
    and the puppet token python-wechaty would read from the environment (a plugin bot's)."""
    settings = ctx.settings
    return known_secrets(*settings.known_secrets, settings.totp_secret, *env_secrets(os.environ))


async def _log(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.logs is not None
    assert command.bot is not None
    assert command.lines is not None
    parts: list[str] = []
    failed = 0

    def say(case: str, **values: object) -> str:
        base = {"file": "", "path": "", "lines": 0, "clipped": False, "error": "", "count": 0}
        return ctx.messages.render("chat/log.txt.j2", case=case, **{**base, **values})

    # Whole lines are redacted before they are clipped: a cut token would match nothing.
    secrets = log_secrets(ctx)
    for path in ctx.settings.log_paths(command.bot):
        try:
            lines, clipped = await ctx.logs.tail(path, command.lines)
        except OSError as exc:
            failed += 1
            parts.append(say("cannot_read", path=str(path), error=exc.strerror or str(exc)))
            continue
        head = say("head", file=path.name, path=str(path), lines=len(lines), clipped=clipped)
        shown = redact_lines((clean_line(x) for x in lines), secrets)
        parts.append("\n".join([head, *(clip(x, MAX_LOG_LINE_CHARS) for x in shown)]))
    outcome: Outcome = "failed" if failed == len(parts) else "ok"
    replies = text_replies(ctx, "\n\n".join(parts))
    if len(replies) > MAX_LOG_MESSAGES:  # keep the end, where the news is
        cut = len(replies) - MAX_LOG_MESSAGES + 1
        replies = [Reply.of_text(say("left_out", count=cut)), *replies[cut:]]
    return replies, outcome, f"{command.lines} lines"


async def _rescue(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.rescue is not None
    assert command.bot is not None
    enabled = command.key == "rescue_on"
    ctx.rescue.set_rescue(command.bot, enabled)
    text = ctx.messages.render("chat/rescue.txt.j2", bot=command.bot, enabled=enabled)
    return text_replies(ctx, text), "ok", ""


_Handler = Callable[
    [CommandContext, Sender, tuple[str, ...], Command, float], Awaitable[HandlerResult]
]
HANDLERS: dict[str, _Handler] = {
    "help": _help,
    "status": _status,
    "qr": _qr,
    "alerts": _alerts,
    "silence": _silence,
    "silences": _silences,
    "unsilence": _unsilence,
    "ack": _ack,
    "restart": _restart,
    "log": _log,
    "rescue": _rescue,
}
