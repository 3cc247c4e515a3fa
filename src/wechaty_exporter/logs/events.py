"""What a log line can tell us: the events the parser emits and the state machine applies.

Data only. Every `at` is a Unix timestamp in seconds: the line's own time when it carries a
full date, else the time the line was read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ScanStatus(IntEnum):
    """Wechaty's ScanStatus, numbered as in TypeScript and python-wechaty."""

    UNKNOWN = 0
    CANCEL = 1
    WAITING = 2
    SCANNED = 3
    CONFIRMED = 4
    TIMEOUT = 5


@dataclass(frozen=True, slots=True)
class Login:
    """The bot's account logged in. `user` is its display name when the line names it."""

    at: float
    user: str | None = None
    # The plain-text dialect whose line said it, when a chat message can forge a whole line of
    # it (logs/dialects/context.py), else None: such a login naming another account than such a
    # login did, while logged in, is suspect (logs/state.py). Not part of the event's value.
    source: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Logout:
    """The bot's account logged out."""

    at: float
    user: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Scan:
    """A scan event. `qrcode` is the unwrapped, allowlisted WeChat login URL, or None.

    A Waiting scan whose QR failed validation is never a Scan: it is a RejectedQr.
    """

    at: float
    status: ScanStatus
    qrcode: str | None = None
    # The line is short enough to be chat text (logs/dialects/context.py `chat_sized`): while
    # the bot is logged in, a Waiting scan so marked is suspect (logs/state.py). Not part of the
    # event's value: equal scans stay equal.
    chat_sized: bool = field(default=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RejectedQr:
    """A scan line whose QR is not a WeChat login URL (forged, or a host not allowed)."""

    at: float
    reason: str


# Why an event is suspect (the `reason` label of wechaty_exporter_suspect_events_total).
SUSPECT_REASONS: dict[str, str] = {
    "waiting_while_logged_in": (
        "a Waiting scan on a line short enough to be chat text, while logged in with no logout "
        "before it"
    ),
    "login_of_another_account": "a login of another account while logged in",
    "not_from_self_log": "not from the self-log (qr_source: self-log)",
    "self_log_in_mixed_log": (
        "a self-log line in a log that also holds other lines (a chat message may have written it)"
    ),
}


@dataclass(frozen=True, slots=True)
class Suspect:
    """An event a forged line may have written (a chat message holding a newline): counted by
    `reason` (a key of SUSPECT_REASONS), never applied. `event` is what the line said."""

    at: float
    reason: str
    event: Login | Logout | Scan | ProbeReceived | ProbeSent


@dataclass(frozen=True, slots=True)
class ErrorLogged:
    """A line logged at level ERR / ERROR (counted, never decisive)."""

    at: float


@dataclass(frozen=True, slots=True)
class ProbeReceived:
    """A duet probe from the peer bot `sender` (its bot name) reached this bot: self-log only.

    Evidence that the account really receives messages, whatever the login state says; it never
    changes the login state."""

    at: float
    sender: str
    seq: int


@dataclass(frozen=True, slots=True)
class ProbeSent:
    """This bot sent duet probe `seq` to its peer bot `to` (its bot name): self-log only."""

    at: float
    to: str
    seq: int


Event = Login | Logout | Scan | RejectedQr | Suspect | ErrorLogged | ProbeReceived | ProbeSent


def is_decisive(event: Event) -> bool:
    """True for events that settle the login state on their own (what a cold start looks for).

    A `chat_sized` Waiting scan does not: the state before it says whether it is a suspect, so a
    cold start reads on, back to the event that says it."""
    if isinstance(event, Login | Logout):
        return True
    if isinstance(event, Scan):
        if event.status is ScanStatus.WAITING:
            return not event.chat_sized
        return event.status is ScanStatus.CONFIRMED
    return False
