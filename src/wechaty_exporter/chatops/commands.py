"""Chat commands to the peer bot: a message from an admin in, replies and one audit record out.

One entry point, `handle_message(ctx, sender, text, now)`. Everything that decides is a
synchronous function of its arguments and the `CommandState` passed in: `parse` (the command),
`policy` (who is an admin, the second factor, confirmations, rate limits; its docstring has the
security rules) and `texts` (reply text and splitting). Every reply is a template in
`ctx.messages`' language (the bot's `receiver.language`). The `handlers` only call the injected
clients, typed in `model` as protocols, so the wing's core imports no I/O library.

A duet probe (a text starting `wechaty-exporter probe v1 `, which the peer bots send each other
to prove messages flow) is never a command: no reply, no audit, whoever sent it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from wechaty_exporter.chatops.handlers import HANDLERS
from wechaty_exporter.chatops.model import (
    AuditRecord,
    Command,
    CommandContext,
    Outcome,
    Reply,
    Sender,
    Usage,
)
from wechaty_exporter.chatops.parse import parse_command
from wechaty_exporter.chatops.policy import (
    admin_bots,
    allow_message,
    check_policy,
    direct_match,
    policy_text,
    redact_codes,
    take_confirmation,
)
from wechaty_exporter.chatops.texts import text_replies
from wechaty_exporter.delivery.alerts import clip

log = logging.getLogger(__name__)

CONFIRM_WORDS = frozenset({"yes"})
CANCEL_WORDS = frozenset({"no", "cancel"})
RESOLVE_TTL = 600.0  # seconds a contact lookup (hit or miss) is reused
MAX_TEXT_CHARS = 1000  # a longer message is not a command
# The duet probe's text (a protocol shared with the TypeScript plugin: do not change).
PROBE_PREFIX = "wechaty-exporter probe v1 "
PROBE_RE = re.compile(re.escape(PROBE_PREFIX) + r"([A-Za-z0-9][A-Za-z0-9_.-]{0,63}) ([0-9]{1,12})")


def is_probe(text: str) -> bool:
    """`text` is a duet probe (of any shape once it has the prefix): never a command."""
    return text.startswith(PROBE_PREFIX)


def probe_text(name: str, seq: int) -> str:
    """The probe bot `name` sends as its `seq`-th; it matches PROBE_RE."""
    text = f"{PROBE_PREFIX}{name} {seq}"
    if PROBE_RE.fullmatch(text) is None:
        raise ValueError(f"not a probe: {text!r}")
    return text


async def handle_message(ctx: CommandContext, sender: Sender, text: str, now: float) -> list[Reply]:
    """One chat message → the replies to send back to `sender` (none for strangers).

    Exactly one audit record goes to `ctx.audit` for every command from an admin, every YES/NO,
    and every command word from a stranger; `ctx.state.outcomes` counts them.
    """
    if sender.is_self or sender.room is not None or len(text) > MAX_TEXT_CHARS or is_probe(text):
        return []
    bots = await sender_bots(ctx, sender, now)
    if not bots:
        parsed = parse_command(text, ctx.settings, ctx.messages)
        if parsed is not None and parsed.key != "unknown":
            _audit(ctx, sender, now, parsed.key, parsed.shown, "ignored", None)
        return []

    word = text.strip().lower()
    allowed, warn = allow_message(ctx.settings, ctx.state, sender.id, now)
    if not allowed:
        parsed = parse_command(text, ctx.settings, ctx.messages)
        key = parsed.key if parsed is not None else "unknown"
        shown = parsed.shown if parsed is not None else ""
        _audit(ctx, sender, now, key, shown, "rate_limited", None)
        return [Reply.of_text(policy_text(ctx.messages, "too_many_commands"))] if warn else []

    if word in CONFIRM_WORDS:
        taken = take_confirmation(ctx.state, sender.id, now, ctx.messages)
        if isinstance(taken, tuple):
            message, outcome, stale = taken
            key = stale.key if stale is not None else "yes"
            _audit(ctx, sender, now, key, stale.shown if stale else word, outcome, None)
            return [Reply.of_text(message)]
        return await _run(ctx, sender, bots, taken, now, detail="confirmed")
    if word in CANCEL_WORDS:
        cancelled = ctx.state.pending.pop(sender.id, None)
        if cancelled is None:
            _audit(ctx, sender, now, "no", word, "usage", None)
            return [Reply.of_text(policy_text(ctx.messages, "nothing_to_cancel"))]
        c = cancelled.command
        _audit(ctx, sender, now, c.key, c.shown, "cancelled", c.bot)
        return [Reply.of_text(policy_text(ctx.messages, "cancelled", c))]

    parsed = parse_command(text, ctx.settings, ctx.messages)
    if parsed is None:
        return []
    if isinstance(parsed, Usage):
        _audit(ctx, sender, now, parsed.key, parsed.shown, "usage", None)
        return [Reply.of_text(parsed.message)]
    refusal = _precheck(ctx, bots, parsed)
    if refusal is not None:
        _audit(ctx, sender, now, parsed.key, parsed.shown, "forbidden", parsed.bot)
        return [Reply.of_text(refusal)]
    gate = check_policy(ctx.settings, ctx.state, sender.id, parsed, now, ctx.messages)
    if not gate.proceed:
        _audit(ctx, sender, now, parsed.key, parsed.shown, gate.outcome, parsed.bot)
        return [Reply.of_text(gate.text)]
    return await _run(ctx, sender, bots, parsed, now)


async def sender_bots(ctx: CommandContext, sender: Sender, now: float) -> tuple[str, ...]:
    """The bots `sender` is admin of (none: a stranger), as `handle_message` decides it."""
    direct = admin_bots(sender, ctx.admins, {})
    if ctx.resolver is None:  # handle_message already answered self and group messages
        return direct
    resolved: dict[str, str | None] = {}
    for contacts in ctx.admins.values():
        for contact in contacts:
            if contact in resolved or direct_match(sender, contact):
                continue
            cached = ctx.state.resolved.get(contact)
            if cached is not None and now - cached[1] < RESOLVE_TTL:
                resolved[contact] = cached[0]
                continue
            try:
                contact_id: str | None = await ctx.resolver.resolve(contact)
            except Exception as exc:  # no such contact, ambiguous, puppet away: not a match
                log.debug("admin contact %r does not resolve: %s", contact, exc)
                contact_id = None
            ctx.state.resolved[contact] = (contact_id, now)
            resolved[contact] = contact_id
    return admin_bots(sender, ctx.admins, resolved)


def _precheck(ctx: CommandContext, bots: Sequence[str], command: Command) -> str | None:
    """Why `command` cannot run for this admin at all (before any YES or code is asked)."""
    problem = _refusal(ctx, bots, command)
    if problem is None:
        return None
    return ctx.messages.render(
        "chat/refused.txt.j2",
        problem=problem,
        word=command.word,
        bot=clip(command.bot or "", 40),
        bots=list(bots),
    )


def _refusal(ctx: CommandContext, bots: Sequence[str], command: Command) -> str | None:
    s = ctx.settings
    if command.bot is not None and command.bot not in bots:
        return "unknown_bot"
    word = command.word
    if word in ("status", "qr") and ctx.exporter is None:
        return "no_exporter"
    if word in ("alerts", "silence", "silences", "unsilence", "ack") and ctx.alertmanager is None:
        return "no_alertmanager"
    if word == "restart" and (ctx.runner is None or s.restart_argv(command.bot or "") is None):
        return "no_restart"
    if word == "log" and (ctx.logs is None or not s.log_paths(command.bot or "")):
        return "no_log"
    if word == "rescue" and ctx.rescue is None:
        return "no_rescue"
    return None


def _audit(
    ctx: CommandContext,
    sender: Sender,
    now: float,
    key: str,
    shown: str,
    outcome: Outcome,
    bot: str | None,
    detail: str = "",
) -> None:
    record = AuditRecord(
        at=now,
        sender=sender.id,
        sender_name=sender.name,
        command=key,
        text=clip(redact_codes(shown), 300),
        outcome=outcome,
        bot=bot,
        detail=clip(detail, 300),
    )
    ctx.state.outcomes[(key, outcome)] += 1
    try:
        ctx.audit(record)
    except Exception:
        log.exception("audit sink failed for %s", record.line())


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else f"{exc.__class__.__name__}: {exc}"


async def _run(
    ctx: CommandContext,
    sender: Sender,
    bots: tuple[str, ...],
    command: Command,
    now: float,
    detail: str = "",
) -> list[Reply]:
    """Run an authorized command; one audit record whatever happens."""
    try:
        replies, outcome, note = await HANDLERS[command.word](ctx, sender, bots, command, now)
    except Exception as exc:
        reason = _reason(exc)
        if not hasattr(exc, "reason"):
            log.exception("command %s failed", command.shown)
        _audit(ctx, sender, now, command.key, command.shown, "failed", command.bot, reason)
        text = ctx.messages.render("chat/failed.txt.j2", command=command.shown, reason=reason)
        return text_replies(ctx, text)
    _audit(
        ctx,
        sender,
        now,
        command.key,
        command.shown,
        outcome,
        command.bot,
        "; ".join(p for p in (detail, note) if p),
    )
    return replies
