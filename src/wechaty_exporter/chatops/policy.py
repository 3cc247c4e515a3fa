"""Who may command which bot, and the second factor: YES confirmations, TOTP codes, rate limits.

Security rules kept here (and by `commands.handle_message`, which asks these functions):
- A message from the bot itself, from a group, or from anyone who is not an admin gets no reply.
  A stranger's command is audited (outcome `ignored`); a stranger's chat is not.
- An admin commands only the bots they are admin of; other names read as unknown bots.
- A configured contact names the sender when it equals the sender's id, weixin or alias (the
  alias is the bot owner's remark), or when the resolver (the messenger's directory lookup, which
  refuses ambiguous names) resolves it to the sender's id. A display name alone is never trusted:
  anyone can take one.
- Dangerous commands need a YES within the confirm timeout or a TOTP code as the last argument.
  A code counts once (RFC 6238 §5.2: its time step, and every earlier one, is spent); wrong and
  replayed codes are rate-limited per admin, and a limited admin's right code is refused too.
- Codes never reach replies, audit records or logs (`parse_command` takes the code out of the
  command as shown; `redact_codes` blanks a code sent on its own).

What a refusal says is the `chat/policy.txt.j2` template, in `messages`' language.
"""

from __future__ import annotations

import hmac
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyotp

from wechaty_exporter.chatops.model import Bucket, Command, CommandState, Outcome, Pending, Sender
from wechaty_exporter.chatops.settings import CommandsSettings, Policy
from wechaty_exporter.delivery.templates import Messages, default_messages

TOTP_STEP = 30  # seconds; what every authenticator app uses
TOTP_WINDOW = 1  # steps either side of now, for clock drift and typing time

_CODE_ANYWHERE = re.compile(r"(?<!\d)\d{6}(?!\d)")  # redacted from audit text: a lone code


def redact_codes(text: str) -> str:
    """`text` with every lone six-digit number (a TOTP code, maybe) replaced by asterisks."""
    return _CODE_ANYWHERE.sub("******", text)


def direct_match(sender: Sender, contact: str) -> bool:
    """`contact` (as configured) names `sender` by id, weixin or alias: the fields a stranger
    cannot choose."""
    return bool(contact) and contact in (sender.id, sender.weixin or None, sender.alias or None)


def admin_bots(
    sender: Sender, admins: Mapping[str, Sequence[str]], resolved: Mapping[str, str | None]
) -> tuple[str, ...]:
    """The bots `sender` is admin of. `resolved` maps configured contacts to the id the
    messenger resolved them to (None: no single contact)."""
    if sender.is_self or sender.room is not None or not sender.id:
        return ()
    return tuple(
        bot
        for bot, contacts in admins.items()
        if any(direct_match(sender, c) or resolved.get(c) == sender.id for c in contacts)
    )


@dataclass(frozen=True, slots=True)
class Gate:
    """Whether a command may run now; if not, what to say and how to count it."""

    proceed: bool
    text: str = ""
    outcome: Outcome = "ok"


def totp_step(code: str, secret: str, now: float) -> int | None:
    """The time step within ±TOTP_WINDOW of `now` whose code is `code`, else None."""
    totp = pyotp.TOTP(secret, interval=TOTP_STEP)
    current = int(now // TOTP_STEP)
    found = None
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step  # no early exit: the same work for every code
    return found


def _say(messages: Messages | None, problem: str, command: Command | None, **values: object) -> str:
    base = {"command": "", "word": "", "wait": "", "tries_left": 0, "timeout": ""}
    if command is not None:
        base.update(command=command.shown, word=command.word)
    m = messages or default_messages()
    return m.render("chat/policy.txt.j2", problem=problem, **{**base, **values})


def policy_text(messages: Messages | None, problem: str, command: Command | None = None) -> str:
    """A reply of the policy that needs nothing but the command (nothing to confirm, cancelled,
    too many commands, ...)."""
    return _say(messages, problem, command)


def check_totp(
    settings: CommandsSettings,
    state: CommandState,
    sender_id: str,
    command: Command,
    now: float,
    messages: Messages | None = None,
) -> Gate:
    """Right code → proceed (and the code is spent); else why not. Counts failures."""
    m = messages or default_messages()
    secret = settings.totp_secret
    if secret is None:  # settings validation makes this unreachable
        return Gate(False, _say(m, "no_totp", command), "forbidden")
    failures = state.failures.setdefault(sender_id, deque())
    while failures and failures[0] <= now - settings.totp_failure_window:
        failures.popleft()
    if len(failures) >= settings.totp_max_failures:
        wait = failures[0] + settings.totp_failure_window - now
        text = _say(m, "too_many_codes", command, wait=m.duration(wait + 59))
        return Gate(False, text, "rate_limited")
    if command.code is None:
        return Gate(False, _say(m, "needs_code", command), "no_code")
    step = totp_step(command.code, secret, now)
    if step is None:
        failures.append(now)
        left = settings.totp_max_failures - len(failures)
        return Gate(False, _say(m, "wrong_code", command, tries_left=left), "bad_code")
    if step <= state.last_totp_step:
        failures.append(now)
        return Gate(False, _say(m, "replayed", command), "replayed")
    state.last_totp_step = step
    failures.clear()
    return Gate(True)


def check_policy(
    settings: CommandsSettings,
    state: CommandState,
    sender_id: str,
    command: Command,
    now: float,
    messages: Messages | None = None,
) -> Gate:
    """The command's policy: run now, ask for YES (and remember it), or check the code."""
    policy: Policy = settings.policy(command.key)
    if policy == "none":
        return Gate(True)
    if policy == "totp":
        return check_totp(settings, state, sender_id, command, now, messages)
    state.pending[sender_id] = Pending(command, now + settings.confirm_timeout)
    m = messages or default_messages()
    text = _say(m, "confirm", command, timeout=m.duration(settings.confirm_timeout))
    return Gate(False, text, "pending")


def take_confirmation(
    state: CommandState, sender_id: str, now: float, messages: Messages | None = None
) -> Command | tuple[str, Outcome, Command | None]:
    """YES from `sender_id`: their pending command if still fresh, else what to say."""
    pending = state.pending.pop(sender_id, None)
    if pending is None:
        return _say(messages, "nothing_to_confirm", None), "usage", None
    if now > pending.expires_at:
        return _say(messages, "too_late", pending.command), "expired", pending.command
    return pending.command


def allow_message(
    settings: CommandsSettings, state: CommandState, sender_id: str, now: float
) -> tuple[bool, bool]:
    """Per-admin command budget. (allowed, warn): warn once when a burst is cut off."""
    limit = settings.reply_rate_limit
    bucket = state.buckets.get(sender_id)
    if bucket is None:
        bucket = state.buckets[sender_id] = Bucket(float(limit.burst), now)
    rate = limit.per_minute / 60.0
    bucket.tokens = min(float(limit.burst), bucket.tokens + max(0.0, now - bucket.updated) * rate)
    bucket.updated = now
    if bucket.tokens >= 1.0:
        bucket.tokens -= 1.0
        bucket.warned = False
        return True, False
    warn = not bucket.warned
    bucket.warned = True
    return False, warn
