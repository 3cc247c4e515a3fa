"""Chat commands to the peer bot: a message from an admin in, replies and one audit record out.

One entry point, `handle_message(ctx, sender, text, now)`. Everything that decides (parsing, who
is an admin, the second factor, confirmations, rate limits, reply text and splitting) is a
synchronous function of its arguments and the `CommandState` passed in; the handlers only call
the injected clients (exporter, Alertmanager, runner, log reader, rescue switch), typed here as
protocols so this module imports no I/O library.

Security rules this module keeps:
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
- Codes never reach replies, audit records or logs.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import pyotp

from wechaty_exporter.chatops.settings import CommandsSettings, Policy
from wechaty_exporter.delivery.alerts import clip, format_duration, format_time, parse_rfc3339
from wechaty_exporter.qrimage import qr_png

log = logging.getLogger(__name__)
audit_log = logging.getLogger("wechaty_exporter.audit")

Outcome = Literal[
    "ok",  # done
    "failed",  # tried, and it failed (non-zero exit, timeout, an API error)
    "usage",  # unknown command or bad arguments; nothing done
    "forbidden",  # not one of the sender's bots, or not configured for it
    "pending",  # waiting for YES
    "expired",  # YES came too late
    "cancelled",  # NO
    "no_code",  # a TOTP command without a code
    "bad_code",  # wrong code
    "replayed",  # a code (or an older one) already used
    "rate_limited",  # too many wrong codes, or too many commands
    "ignored",  # from a stranger: no reply
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

WORDS = (
    "help", "status", "qr", "alerts", "silence", "silences", "unsilence", "ack", "restart",
    "log", "rescue",
)  # fmt: skip
CONFIRM_WORDS = frozenset({"yes"})
CANCEL_WORDS = frozenset({"no", "cancel"})
TOTP_STEP = 30  # seconds; what every authenticator app uses
TOTP_WINDOW = 1  # steps either side of now, for clock drift and typing time
ACK_MARK = "[ack]"  # comment prefix of silences made by `ack`, which end when the alerts resolve
MAX_ALERTS_SHOWN = 30
RESOLVE_TTL = 600.0  # seconds a contact lookup (hit or miss) is reused
MAX_TEXT_CHARS = 1000  # a longer message is not a command
MAX_LOG_MESSAGES = 5  # `log` sends at most this many texts (the end of the lines)
MAX_LOG_LINE_CHARS = 400

_CODE = re.compile(r"^\d{6}$")
_CODE_ANYWHERE = re.compile(r"(?<!\d)\d{6}(?!\d)")  # redacted from audit text: a lone code
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote: the contact's id and what the puppet knows of it."""

    id: str
    name: str = ""
    weixin: str = ""
    alias: str = ""  # the bot account's remark for this contact
    is_self: bool = False  # the bot's own account
    room: str | None = None  # the group it was said in; commands are direct messages only


@dataclass(frozen=True, slots=True)
class Reply:
    """One message back to the sender: a text, or a PNG image."""

    kind: Literal["text", "image"]
    text: str = ""
    png: bytes = field(default=b"", repr=False)
    filename: str = ""

    @classmethod
    def of_text(cls, text: str) -> Reply:
        return cls("text", text=text)

    @classmethod
    def of_image(cls, png: bytes, filename: str) -> Reply:
        return cls("image", png=png, filename=filename)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One command: who, what (without any code), for which bot, and how it ended."""

    at: float
    sender: str
    sender_name: str
    command: str  # a policy key (restart, rescue_off, ...), or yes, no, unknown
    text: str  # the command as shown, code removed
    outcome: Outcome
    bot: str | None = None
    detail: str = ""

    def line(self) -> str:
        """`key=value` fields; chat-supplied text is repr-quoted, so it cannot forge a line."""
        parts = [
            f"sender={self.sender!r}",
            f"name={self.sender_name!r}",
            f"command={self.command}",
            f"bot={self.bot!r}",
            f"text={self.text!r}",
            f"outcome={self.outcome}",
        ]
        if self.detail:
            parts.append(f"detail={self.detail!r}")
        return "command audit: " + " ".join(parts)


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command. `key` names its policy and its metric label."""

    key: str
    word: str
    args: tuple[str, ...] = ()  # as typed, code removed
    bot: str | None = None
    duration: float | None = None  # silence
    comment: str = ""  # silence
    silence_id: str = ""  # unsilence
    lines: int | None = None  # log
    code: str | None = field(default=None, repr=False)

    @property
    def shown(self) -> str:
        return " ".join((self.word, *self.args))


@dataclass(frozen=True, slots=True)
class Usage:
    """A message that is not a usable command, and what to tell the admin."""

    key: str  # the command's key, or "unknown"
    message: str
    shown: str


@dataclass(slots=True)
class Pending:
    command: Command
    expires_at: float


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


@dataclass
class CommandState:
    """Everything the commands remember between messages. Keys are admin contact ids only, so
    it grows with the number of admins, never with strangers."""

    pending: dict[str, Pending] = field(default_factory=dict)
    last_totp_step: int = -1  # one secret, shared by every admin: a code counts once for all
    failures: dict[str, deque[float]] = field(default_factory=dict)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    resolved: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    restarting: set[str] = field(default_factory=set)  # bots whose restart command runs now
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (command, outcome)


# --- protocols of the injected clients -----------------------------------------------------------


class QrInfo(Protocol):
    @property
    def qrcode(self) -> str: ...
    @property
    def seen_at(self) -> float | None: ...


class ExporterApi(Protocol):
    """`exporter_client.ExporterClient`. Failures raise an exception with a `reason`."""

    async def bots(self) -> list[dict[str, Any]]: ...
    async def pending_qr(self, bot: str) -> QrInfo | None: ...


class AlertInfo(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> float | None: ...
    @property
    def state(self) -> str: ...


class SilenceInfo(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def ends_at(self) -> float | None: ...
    @property
    def created_by(self) -> str: ...
    @property
    def comment(self) -> str: ...
    @property
    def state(self) -> str: ...
    def equal_value(self, label: str) -> str | None: ...


class AlertmanagerApi(Protocol):
    """`alertmanager_client.AlertmanagerClient`; matchers in Alertmanager's text form."""

    async def alerts(self, matchers: Sequence[Any] = ...) -> Sequence[AlertInfo]: ...
    async def silences(self, matchers: Sequence[Any] = ...) -> Sequence[SilenceInfo]: ...
    async def create_silence(
        self,
        matchers: Sequence[Any],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
    ) -> str: ...
    async def expire_silence(self, silence_id: str) -> None: ...


class RunInfo(Protocol):
    @property
    def returncode(self) -> int | None: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def duration(self) -> float: ...
    @property
    def output(self) -> str: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def error(self) -> str | None: ...


class RestartRunner(Protocol):
    """`runner.LocalRunner`: runs an argv without a shell, killing it on timeout."""

    async def run(self, argv: Sequence[str], *, time_limit: float) -> RunInfo: ...


class LogReader(Protocol):
    """`runner.LocalRunner`: the last n lines of a file, and whether the byte budget clipped."""

    async def tail(self, path: Path, n: int) -> tuple[list[str], bool]: ...


class ContactResolver(Protocol):
    """`messengers.wechaty.WechatyMessenger`: a configured contact → its id, or an exception."""

    async def resolve(self, to: str) -> str: ...


class RescueSwitch(Protocol):
    """Whether the receiver DMs about a bot (`rescue on|off <bot>`)."""

    def rescue_enabled(self, bot: str) -> bool: ...
    def set_rescue(self, bot: str, enabled: bool) -> None: ...


class RescueSwitches:
    """In-memory RescueSwitch: every bot is rescued until paused."""

    def __init__(self) -> None:
        self._paused: set[str] = set()

    def rescue_enabled(self, bot: str) -> bool:
        return bot not in self._paused

    def set_rescue(self, bot: str, enabled: bool) -> None:
        if enabled:
            self._paused.discard(bot)
        else:
            self._paused.add(bot)


_ALARMING = frozenset({"bad_code", "replayed", "rate_limited"})


def _log_audit(record: AuditRecord) -> None:
    level = logging.WARNING if record.outcome in _ALARMING else logging.INFO
    audit_log.log(level, "%s", record.line())


@dataclass
class CommandContext:
    """What `handle_message` works with. Clients left None turn their commands off."""

    settings: CommandsSettings
    admins: Mapping[str, Sequence[str]]  # bot → contacts (receiver settings' `admins`)
    state: CommandState = field(default_factory=CommandState)
    exporter: ExporterApi | None = None
    alertmanager: AlertmanagerApi | None = None
    runner: RestartRunner | None = None
    logs: LogReader | None = None
    rescue: RescueSwitch | None = None
    resolver: ContactResolver | None = None
    tz: tzinfo = UTC
    audit: Callable[[AuditRecord], None] = _log_audit


# --- parsing (pure) ------------------------------------------------------------------------------


def parse_duration(text: str) -> float | None:
    """'90s', '30m', '2h', '1d', '1w', '1h30m' → seconds; None for anything else."""
    m = _DURATION.match(text.lower())
    if m is None or not any(m.groups()):
        return None
    w, d, h, mins, s = (int(g or 0) for g in m.groups())
    return float((((w * 7 + d) * 24 + h) * 60 + mins) * 60 + s)


def parse_command(text: str, settings: CommandsSettings) -> Command | Usage | None:
    """A chat message → a Command, a Usage (what is wrong), or None (empty: not a command).

    Command words are case-insensitive, arguments keep their case. For a command whose policy
    is totp, a last argument of six digits is taken as the code.
    """
    words = text.split()
    if not words:
        return None
    word = words[0].lower().removeprefix("/")
    args = list(words[1:])
    if word not in WORDS:
        return Usage("unknown", f"Unknown command {clip(words[0], 40)!r}. Send help.", text)
    key = word
    if word == "rescue":
        direction = args[0].lower() if args else ""
        if direction not in ("on", "off"):
            return Usage("rescue_on", "Usage: rescue on|off <bot>", text)
        key = f"rescue_{direction}"
    code = None
    if settings.policy(key) == "totp" and args and _CODE.match(args[-1]):
        code = args.pop()
    shown = " ".join((word, *args))

    def usage(message: str) -> Usage:
        return Usage(key, message, shown)

    def bot_at(i: int) -> str:
        return args[i]

    n = len(args)
    if word in ("help", "status", "silences"):
        if n and word != "help":
            return usage(f"Usage: {word} (no arguments)")
        return Command(key, word, tuple(args), code=code)
    if word in ("qr", "alerts"):
        if n > 1:
            return usage(f"Usage: {word} [bot]")
        return Command(key, word, tuple(args), bot=args[0] if args else None, code=code)
    if word in ("ack", "restart"):
        if n != 1:
            suffix = " <code>" if settings.policy(key) == "totp" else ""
            return usage(f"Usage: {word} <bot>{suffix}")
        return Command(key, word, tuple(args), bot=bot_at(0), code=code)
    if word == "unsilence":
        if n != 1:
            return usage("Usage: unsilence <id> (see: silences)")
        return Command(key, word, tuple(args), silence_id=args[0], code=code)
    if word == "log":
        if n not in (1, 2):
            return usage("Usage: log <bot> [lines]")
        lines = settings.log_default_lines
        if n == 2:
            if not args[1].isdigit() or int(args[1]) < 1:
                return usage("Usage: log <bot> [lines]: lines is a positive number")
            lines = min(int(args[1]), settings.log_max_lines)
        return Command(key, word, tuple(args), bot=bot_at(0), lines=lines, code=code)
    if word == "rescue":
        if n != 2:
            return usage(f"Usage: rescue {args[0].lower()} <bot>")
        return Command(key, word, tuple(args), bot=bot_at(1), code=code)
    # silence <bot> <duration> [comment]
    if n < 2:
        return usage("Usage: silence <bot> <duration> [comment], e.g. silence bob 2h moving house")
    seconds = parse_duration(args[1])
    if seconds is None:
        return usage(f"silence: {clip(args[1], 20)!r} is not a duration like 30m, 2h or 1d")
    if seconds < 60 or seconds > settings.silence_max:
        return usage(
            f"silence: the duration must be from 1 min to {format_duration(settings.silence_max)}"
        )
    return Command(
        key,
        word,
        tuple(args),
        bot=bot_at(0),
        duration=seconds,
        comment=" ".join(args[2:]),
        code=code,
    )


# --- who, and the second factor (pure) ----------------------------------------------------------


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


def check_totp(
    settings: CommandsSettings, state: CommandState, sender_id: str, command: Command, now: float
) -> Gate:
    """Right code → proceed (and the code is spent); else why not. Counts failures."""
    secret = settings.totp_secret
    if secret is None:  # settings validation makes this unreachable
        return Gate(False, "TOTP is not configured.", "forbidden")
    failures = state.failures.setdefault(sender_id, deque())
    while failures and failures[0] <= now - settings.totp_failure_window:
        failures.popleft()
    if len(failures) >= settings.totp_max_failures:
        wait = failures[0] + settings.totp_failure_window - now
        return Gate(
            False,
            f"Too many wrong codes. Codes are refused for {format_duration(wait + 59)}.",
            "rate_limited",
        )
    if command.code is None:
        return Gate(
            False,
            f"{command.word} needs a code from your authenticator app: {command.shown} 123456",
            "no_code",
        )
    step = totp_step(command.code, secret, now)
    if step is None:
        failures.append(now)
        left = settings.totp_max_failures - len(failures)
        return Gate(False, f"Wrong code; nothing done ({left} tries left).", "bad_code")
    if step <= state.last_totp_step:
        failures.append(now)
        return Gate(
            False, "That code was already used; nothing done. Wait for the next one.", "replayed"
        )
    state.last_totp_step = step
    failures.clear()
    return Gate(True)


def check_policy(
    settings: CommandsSettings, state: CommandState, sender_id: str, command: Command, now: float
) -> Gate:
    """The command's policy: run now, ask for YES (and remember it), or check the code."""
    policy: Policy = settings.policy(command.key)
    if policy == "none":
        return Gate(True)
    if policy == "totp":
        return check_totp(settings, state, sender_id, command, now)
    state.pending[sender_id] = Pending(command, now + settings.confirm_timeout)
    return Gate(
        False,
        f"Reply YES within {format_duration(settings.confirm_timeout)} to run: {command.shown}",
        "pending",
    )


def take_confirmation(
    state: CommandState, sender_id: str, now: float
) -> Command | tuple[str, Outcome, Command | None]:
    """YES from `sender_id`: their pending command if still fresh, else what to say."""
    pending = state.pending.pop(sender_id, None)
    if pending is None:
        return "Nothing to confirm.", "usage", None
    if now > pending.expires_at:
        return (
            f"Too late: {pending.command.shown} was not run. Send it again.",
            "expired",
            pending.command,
        )
    return pending.command


def allow_message(
    settings: CommandsSettings, state: CommandState, sender_id: str, now: float
) -> tuple[bool, bool]:
    """Per-admin command budget. (allowed, warn): warn once when a burst is cut off."""
    limit = settings.reply_rate_limit
    bucket = state.buckets.get(sender_id)
    if bucket is None:
        bucket = state.buckets[sender_id] = _Bucket(float(limit.burst), now)
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


# --- reply text (pure) ---------------------------------------------------------------------------


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


def clean_line(line: str) -> str:
    """A log line as plain text: ANSI colour codes and control characters removed."""
    return _CONTROL.sub("", _ANSI.sub("", line))


def _when(ts: float | None, now: float, tz: tzinfo) -> str:
    if ts is None:
        return "unknown"
    return f"{format_time(ts, tz)} ({format_duration(now - ts)} ago)"


def _time_field(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def status_text(
    docs: Sequence[Mapping[str, Any]],
    bots: Sequence[str],
    *,
    now: float,
    tz: tzinfo,
    paused: Sequence[str] = (),
) -> str:
    """`status`: each of `bots` as the exporter's `/api/v1/bots` documents describe it."""
    by_name = {str(d.get("bot")): d for d in docs}
    lines = []
    for bot in bots:
        doc = by_name.get(bot)
        if doc is None:
            lines.append(f"{bot}: not watched by the exporter")
            continue
        since = _time_field(doc, "since")
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
            seen = _time_field(doc, "qr_seen_at")
            lines.append(f"  QR waiting since {_when(seen, now, tz)}; send: qr {bot}")
        last_error = _time_field(doc, "last_error")
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


# --- the entry point -------------------------------------------------------------------------


async def handle_message(ctx: CommandContext, sender: Sender, text: str, now: float) -> list[Reply]:
    """One chat message → the replies to send back to `sender` (none for strangers).

    Exactly one audit record goes to `ctx.audit` for every command from an admin, every YES/NO,
    and every command word from a stranger; `ctx.state.outcomes` counts them.
    """
    if sender.is_self or sender.room is not None or len(text) > MAX_TEXT_CHARS:
        return []
    bots = await _sender_bots(ctx, sender, now)
    if not bots:
        parsed = parse_command(text, ctx.settings)
        if parsed is not None and parsed.key != "unknown":
            _audit(ctx, sender, now, parsed.key, parsed.shown, "ignored", None)
        return []

    word = text.strip().lower()
    allowed, warn = allow_message(ctx.settings, ctx.state, sender.id, now)
    if not allowed:
        parsed = parse_command(text, ctx.settings)
        key = parsed.key if parsed is not None else "unknown"
        shown = parsed.shown if parsed is not None else ""
        _audit(ctx, sender, now, key, shown, "rate_limited", None)
        return [Reply.of_text("Too many commands; wait a minute.")] if warn else []

    if word in CONFIRM_WORDS:
        taken = take_confirmation(ctx.state, sender.id, now)
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
            return [Reply.of_text("Nothing to cancel.")]
        c = cancelled.command
        _audit(ctx, sender, now, c.key, c.shown, "cancelled", c.bot)
        return [Reply.of_text(f"Cancelled: {c.shown}")]

    parsed = parse_command(text, ctx.settings)
    if parsed is None:
        return []
    if isinstance(parsed, Usage):
        _audit(ctx, sender, now, parsed.key, parsed.shown, "usage", None)
        return [Reply.of_text(parsed.message)]
    refusal = _precheck(ctx, bots, parsed)
    if refusal is not None:
        _audit(ctx, sender, now, parsed.key, parsed.shown, "forbidden", parsed.bot)
        return [Reply.of_text(refusal)]
    gate = check_policy(ctx.settings, ctx.state, sender.id, parsed, now)
    if not gate.proceed:
        _audit(ctx, sender, now, parsed.key, parsed.shown, gate.outcome, parsed.bot)
        return [Reply.of_text(gate.text)]
    return await _run(ctx, sender, bots, parsed, now)


async def _sender_bots(ctx: CommandContext, sender: Sender, now: float) -> tuple[str, ...]:
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
    s = ctx.settings
    if command.bot is not None and command.bot not in bots:
        return f"Unknown bot {clip(command.bot, 40)!r}. Your bots: {', '.join(bots)}"
    word = command.word
    if word in ("status", "qr") and ctx.exporter is None:
        return f"{word}: no exporter is configured."
    if word in ("alerts", "silence", "silences", "unsilence", "ack") and ctx.alertmanager is None:
        return f"{word}: no Alertmanager is configured (bot.commands.alertmanager_url)."
    if word == "restart" and (ctx.runner is None or s.restart_argv(command.bot or "") is None):
        return f"restart: no restart command is configured for {command.bot}."
    if word == "log" and (ctx.logs is None or not s.log_paths(command.bot or "")):
        return f"log: no log file is configured for {command.bot}."
    if word == "rescue" and ctx.rescue is None:
        return "rescue: not available here."
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
        text=clip(_CODE_ANYWHERE.sub("******", shown), 300),
        outcome=outcome,
        bot=bot,
        detail=clip(detail, 300),
    )
    ctx.state.outcomes[(key, outcome)] += 1
    try:
        ctx.audit(record)
    except Exception:
        log.exception("audit sink failed for %s", record.line())


def _texts(ctx: CommandContext, text: str) -> list[Reply]:
    return [Reply.of_text(t) for t in split_text(text, ctx.settings.max_reply_chars)]


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
        replies, outcome, note = await _HANDLERS[command.word](ctx, sender, bots, command, now)
    except Exception as exc:
        reason = _reason(exc)
        if not hasattr(exc, "reason"):
            log.exception("command %s failed", command.shown)
        _audit(ctx, sender, now, command.key, command.shown, "failed", command.bot, reason)
        return _texts(ctx, f"{command.shown}: failed: {clip(reason, 500)}")
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


# --- handlers: call the clients, build replies ----------------------------------------------------

HandlerResult = tuple[list[Reply], Outcome, str]


async def _help(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    return _texts(ctx, help_text(ctx, bots)), "ok", ""


async def _status(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.exporter is not None
    docs = await ctx.exporter.bots()
    rescue = ctx.rescue
    paused = [b for b in bots if rescue is not None and not rescue.rescue_enabled(b)]
    text = status_text(docs, bots, now=now, tz=ctx.tz, paused=paused)
    return _texts(ctx, text), "ok", ""


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
                return _texts(ctx, "No bot of yours is waiting for a QR scan."), "ok", "none"
            hint = ", ".join(f"qr {b}" for b in waiting)
            return _texts(ctx, f"Several bots wait for a scan; send one of: {hint}"), "ok", ""
        bot = waiting[0]
    qr = await ctx.exporter.pending_qr(bot)
    if qr is None:
        docs = await ctx.exporter.bots()
        doc = next((d for d in docs if d.get("bot") == bot), None)
        if doc is not None and doc.get("logged_in") is True:
            return _texts(ctx, f"{bot} is logged in."), "ok", "logged in"
        return _texts(ctx, f"{bot} has shown no login QR yet."), "ok", "no QR"
    shown = f" (shown {format_time(qr.seen_at, ctx.tz)})" if qr.seen_at is not None else ""
    text = f"{bot}'s login QR{shown}. Scan it with {bot}'s WeChat."
    png = qr_png(qr.qrcode)
    return [Reply.of_text(text), Reply.of_image(png, f"{bot}-login-qr.png")], "ok", "sent"


async def _alerts(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    wanted = [command.bot] if command.bot else list(bots)
    alerts = await ctx.alertmanager.alerts([bot_regex_matcher(wanted)])
    return _texts(ctx, alerts_text(alerts, now=now, tz=ctx.tz)), "ok", f"{len(alerts)} alerts"


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
    text = (
        f"Silenced {command.bot} for {format_duration(command.duration)}, until "
        f"{format_time(ends, ctx.tz)}.\nid {silence_id} (unsilence {silence_id})"
    )
    return _texts(ctx, text), "ok", f"silence {silence_id}"


async def _silences(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    found = await _own_silences(ctx.alertmanager, bots)
    return _texts(ctx, silences_text(found, now=now, tz=ctx.tz)), "ok", f"{len(found)} silences"


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
        why = "matches several silences" if matches else "is no active silence of your bots"
        return (
            _texts(ctx, f"{clip(wanted, 40)!r} {why}. Send: silences"),
            "usage",
            "not found",
        )
    target = matches[0]
    await ctx.alertmanager.expire_silence(target.id)
    bot = target.equal_value("bot")
    return _texts(ctx, f"Silence {target.id} of {bot} expired."), "ok", f"silence {target.id}"


async def _ack(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.alertmanager is not None
    assert command.bot is not None
    firing = await ctx.alertmanager.alerts(silence_matchers(command.bot))
    if not firing:
        return _texts(ctx, f"Nothing is firing for {command.bot}."), "ok", "nothing firing"
    names = sorted({a.labels.get("alertname", "?") for a in firing})
    ends = now + ctx.settings.ack_max
    silence_id = await ctx.alertmanager.create_silence(
        silence_matchers(command.bot),
        starts_at=now,
        ends_at=ends,
        created_by=_creator(sender),
        comment=f"{ACK_MARK} until resolved: {', '.join(names)}",
    )
    text = (
        f"Acknowledged {', '.join(names)} for {command.bot}: silenced until resolved "
        f"(at most until {format_time(ends, ctx.tz)}).\nid {silence_id}"
    )
    return _texts(ctx, text), "ok", f"silence {silence_id}"


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
        return _texts(ctx, f"restart {command.bot} is running already."), "usage", "busy"
    ctx.state.restarting.add(command.bot)
    try:
        result = await ctx.runner.run(argv, time_limit=ctx.settings.restart_timeout)
    finally:
        ctx.state.restarting.discard(command.bot)
    text, outcome, note = restart_text(command.bot, result, ctx.settings.max_reply_chars)
    return [Reply.of_text(text)], outcome, note


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


async def _log(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.logs is not None
    assert command.bot is not None
    assert command.lines is not None
    parts: list[str] = []
    failed = 0
    for path in ctx.settings.log_paths(command.bot):
        try:
            lines, clipped = await ctx.logs.tail(path, command.lines)
        except OSError as exc:
            failed += 1
            parts.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        more = " (clipped: long lines)" if clipped else ""
        head = f"{path.name}, last {len(lines)} lines{more}:"
        parts.append("\n".join([head, *(clip(clean_line(x), MAX_LOG_LINE_CHARS) for x in lines)]))
    outcome: Outcome = "failed" if failed == len(parts) else "ok"
    replies = _texts(ctx, "\n\n".join(parts))
    if len(replies) > MAX_LOG_MESSAGES:  # keep the end, where the news is
        cut = len(replies) - MAX_LOG_MESSAGES + 1
        replies = [Reply.of_text(f"… {cut} earlier messages left out"), *replies[cut:]]
    return replies, outcome, f"{command.lines} lines"


async def _rescue(
    ctx: CommandContext, sender: Sender, bots: tuple[str, ...], command: Command, now: float
) -> HandlerResult:
    assert ctx.rescue is not None
    assert command.bot is not None
    enabled = command.key == "rescue_on"
    ctx.rescue.set_rescue(command.bot, enabled)
    if enabled:
        text = f"Rescue of {command.bot} is on: alerts and QR codes about it are sent again."
    else:
        text = (
            f"Rescue of {command.bot} is paused: no more messages about it until "
            f"rescue on {command.bot}."
        )
    return _texts(ctx, text), "ok", ""


_Handler = Callable[
    [CommandContext, Sender, tuple[str, ...], Command, float], Awaitable[HandlerResult]
]
_HANDLERS: dict[str, _Handler] = {
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
