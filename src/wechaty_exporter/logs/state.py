"""Per-bot login state: one state machine, transitions as data, time injected.

Everything that changes a bot's state lives in this file. The parser turns lines into events
(`events.py`); `BotState.apply` is the only way an event changes a bot. No I/O, no clock.

Rules (the public event semantics, docs/exporter.md):

- login → logged in, no QR pending. logout → logged out, no QR pending.
- scan Waiting(2) with a valid QR → logged out, QR pending (the freshest one).
- scan Confirmed(4) → logged in, no QR pending (python-wechaty writes no login line after a
  re-login).
- scan Scanned(3), Timeout(5), Cancel(1) → no QR pending; logged-in state unchanged.
- No evidence yet → unknown (`logged_in is None`); unknown never counts as logged out.
- `logout_reason`: what the last logout said (WeChat's own words, as the puppet passed them),
  kept while the bot stays logged out, cut to `LOGOUT_REASON_MAX` characters. A logout that
  says none leaves an earlier one's reason when the bot was already logged out (a second logger
  printing the same logout), else clears it; logging in clears it.

Duet probes (self-log only): a probe received sets `last_probe_received` (and who sent it), a
probe sent sets `probes_sent[peer]`; neither changes the login state, the QR or any counter.

Suspect events (a forged line, docs/security.md): an event the state machine can tell a chat
message may have written is counted by reason (`suspects`) and never applied. Lines are forged
only while the bot is logged in (a logged-out bot receives no chat), so while it is:

- a Waiting scan with a QR on a line short enough to be chat text (the parser marks it
  `chat_sized`, logs/dialects/context.py), with no logout before it →
  ``waiting_while_logged_in``;
- a login naming another account than the one logged in, where both logins were read from
  plain-text dialects a chat message can forge whole, which all name an account by its
  Contact's name (a custom dialect may name it by its id) → ``login_of_another_account``.

Under ``qr_source: self-log`` the parser makes every login, logout and scan of another dialect a
`Suspect` (``not_from_self_log``).

Counters count state changes, not lines: a login line repeated, or a Confirmed scan followed by
its login line, is one login; the same QR printed by two loggers is one QR code. That keeps the
counters exact when one log carries the same event twice (a bot's own line and its library's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    RejectedQr,
    Scan,
    ScanStatus,
    Suspect,
)

LOGOUT_REASON_MAX = 500  # characters of a logout reason kept (the API and the state file)


class _Keep(Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP


class QrEffect(Enum):
    SET = "set"
    CLEAR = "clear"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class Transition:
    """What one kind of event does to a bot: the new login state and what happens to the QR."""

    logged_in: bool | _Keep
    qr: QrEffect
    known: bool  # whether the event is evidence of the login state


# The table. Keys are event kinds: "login", "logout", a ScanStatus, "rejected_qr", "suspect",
# "probe", "error".
TRANSITIONS: dict[str | ScanStatus, Transition] = {
    "login": Transition(True, QrEffect.CLEAR, known=True),
    "logout": Transition(False, QrEffect.CLEAR, known=True),
    ScanStatus.WAITING: Transition(False, QrEffect.SET, known=True),
    ScanStatus.CONFIRMED: Transition(True, QrEffect.CLEAR, known=True),
    ScanStatus.SCANNED: Transition(KEEP, QrEffect.CLEAR, known=True),
    ScanStatus.TIMEOUT: Transition(KEEP, QrEffect.CLEAR, known=True),
    ScanStatus.CANCEL: Transition(KEEP, QrEffect.CLEAR, known=True),
    ScanStatus.UNKNOWN: Transition(KEEP, QrEffect.KEEP, known=False),
    "rejected_qr": Transition(KEEP, QrEffect.KEEP, known=False),
    "suspect": Transition(KEEP, QrEffect.KEEP, known=False),
    "probe": Transition(KEEP, QrEffect.KEEP, known=False),
    "error": Transition(KEEP, QrEffect.KEEP, known=False),
}


def kind_of(event: Event) -> str | ScanStatus:
    """The TRANSITIONS key for an event."""
    if isinstance(event, Scan):
        return event.status
    if isinstance(event, Login):
        return "login"
    if isinstance(event, Logout):
        return "logout"
    if isinstance(event, RejectedQr):
        return "rejected_qr"
    if isinstance(event, Suspect):
        return "suspect"
    if isinstance(event, ProbeReceived | ProbeSent):
        return "probe"
    return "error"


@dataclass(frozen=True, slots=True)
class PendingQr:
    """A login QR waiting to be scanned. `qrcode` is the raw WeChat login URL: a credential."""

    qrcode: str
    status: ScanStatus
    seen_at: float


@dataclass(slots=True)
class BotState:
    """One bot's state, built only from events. Times are Unix seconds."""

    logged_in: bool | None = None
    known: bool = False
    since: float | None = None  # when logged_in last changed
    qr: PendingQr | None = None
    user: str | None = None
    user_source: str | None = None  # the forgeable dialect of the login that named `user`
    last_login: float | None = None
    last_logout: float | None = None
    logout_reason: str | None = None  # what the last logout said, while logged out
    last_error: float | None = None
    logins_total: int = 0
    logouts_total: int = 0
    qr_codes_total: int = 0
    rejected_qr_total: int = 0
    suspects: dict[str, int] = field(default_factory=dict)  # suspect events by reason
    errors_total: int = 0
    lines_total: int = 0
    last_line_at: float | None = None
    last_probe_received: float | None = None  # when the last duet probe reached the bot
    probe_from: str | None = None  # the peer bot that sent it
    probes_sent: dict[str, float] = field(default_factory=dict)  # peer bot → last probe sent

    def vetted(self, event: Scan | Login) -> Event:
        """`event` as this state takes it: a `Suspect` when it may be forged, else itself."""
        if self.logged_in is not True:  # a bot not logged in receives no chat to forge with
            return event
        if isinstance(event, Scan):
            if event.chat_sized and event.status is ScanStatus.WAITING and event.qrcode:
                return Suspect(event.at, "waiting_while_logged_in", event)
        elif (
            event.source is not None
            and self.user_source is not None
            and event.user
            and event.user != self.user
        ):
            return Suspect(event.at, "login_of_another_account", event)
        return event

    def apply(self, event: Event) -> Event:
        """Apply one event. The only place where events change state. Returns the event as
        applied: a `Suspect` when it may be forged (counted, not applied)."""
        if isinstance(event, Scan | Login):
            event = self.vetted(event)
        rule = TRANSITIONS[kind_of(event)]
        was = self.logged_in
        if rule.known:
            self.known = True
        if rule.logged_in is not KEEP and rule.logged_in != was:
            self.logged_in = rule.logged_in
            self.since = event.at
            if rule.logged_in:
                self.logins_total += 1
                self.logout_reason = None
            elif isinstance(event, Logout):
                self.logouts_total += 1
        if rule.qr is QrEffect.CLEAR:
            self.qr = None
        elif (
            rule.qr is QrEffect.SET
            and isinstance(event, Scan)
            and event.qrcode is not None
            and (self.qr is None or self.qr.qrcode != event.qrcode)
        ):
            self.qr_codes_total += 1
            self.qr = PendingQr(event.qrcode, event.status, event.at)
        if isinstance(event, Login):
            self.last_login = event.at
            if event.user:
                self.user = event.user
                self.user_source = event.source
        elif isinstance(event, Logout):
            self.last_logout = event.at
            if event.reason:
                self.logout_reason = event.reason[:LOGOUT_REASON_MAX]
            elif was is not False:
                self.logout_reason = None
        elif isinstance(event, Scan) and event.status is ScanStatus.CONFIRMED and was is not True:
            self.last_login = event.at
        elif isinstance(event, RejectedQr):
            self.rejected_qr_total += 1
        elif isinstance(event, Suspect):
            self.suspects[event.reason] = self.suspects.get(event.reason, 0) + 1
        elif isinstance(event, ErrorLogged):
            self.errors_total += 1
            self.last_error = event.at
        elif isinstance(event, ProbeReceived):
            if self.last_probe_received is None or event.at >= self.last_probe_received:
                self.last_probe_received, self.probe_from = event.at, event.sender
        elif isinstance(event, ProbeSent) and event.at >= self.probes_sent.get(event.to, event.at):
            self.probes_sent[event.to] = event.at
        return event

    @property
    def suspect_total(self) -> int:
        """Suspect events of every reason."""
        return sum(self.suspects.values())

    def saw_lines(self, count: int, at: float) -> None:
        """Count lines read from this bot's logs (events or not)."""
        if count:
            self.lines_total += count
            self.last_line_at = at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe copy, for the state file."""
        data = asdict(self)
        if self.qr is not None:
            data["qr"] = {
                "qrcode": self.qr.qrcode,
                "status": int(self.qr.status),
                "seen_at": self.qr.seen_at,
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BotState:
        """Inverse of to_dict; unknown keys are ignored so old state files keep loading."""
        names = set(cls.__dataclass_fields__)
        skip = ("qr", "suspects", "probes_sent")
        values = {k: v for k, v in data.items() if k in names and k not in skip}
        state = cls(**values)
        suspects = data.get("suspects")
        if isinstance(suspects, dict):
            state.suspects = {str(k): int(v) for k, v in suspects.items()}
        probes_sent = data.get("probes_sent")
        if isinstance(probes_sent, dict):
            state.probes_sent = {str(k): float(v) for k, v in probes_sent.items()}
        qr = data.get("qr")
        if isinstance(qr, dict):
            state.qr = PendingQr(
                str(qr["qrcode"]), ScanStatus(int(qr["status"])), float(qr["seen_at"])
            )
        return state
