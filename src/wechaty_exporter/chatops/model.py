"""The chat commands' values and the protocols of their injected clients, free of any I/O import."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.templates import Messages, default_messages

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
class Bucket:
    """One admin's command budget: a token bucket (`policy.allow_message`)."""

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
    buckets: dict[str, Bucket] = field(default_factory=dict)
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
    """`delivery.exporter_client.ExporterClient`. Failures raise an exception with a `reason`."""

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
    """`alertmanager.AlertmanagerClient`; matchers in Alertmanager's text form."""

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
    """`peerbot.messenger.WechatyMessenger`: a configured contact → its id, or an exception."""

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
    messages: Messages = field(default_factory=default_messages)  # the bot's receiver language
