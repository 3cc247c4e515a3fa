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

Counters count state changes, not lines: a login line repeated, or a Confirmed scan followed by
its login line, is one login; the same QR printed by two loggers is one QR code. That keeps the
counters exact when one log carries the same event twice (a bot's own line and its library's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
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


# The table. Keys are event kinds: "login", "logout", a ScanStatus, "rejected_qr", "error".
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
    last_login: float | None = None
    last_logout: float | None = None
    logout_reason: str | None = None  # what the last logout said, while logged out
    last_error: float | None = None
    logins_total: int = 0
    logouts_total: int = 0
    qr_codes_total: int = 0
    rejected_qr_total: int = 0
    errors_total: int = 0
    lines_total: int = 0
    last_line_at: float | None = None

    def apply(self, event: Event) -> None:
        """Apply one event. The only place where events change state."""
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
        elif isinstance(event, ErrorLogged):
            self.errors_total += 1
            self.last_error = event.at

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
        values = {k: v for k, v in data.items() if k in names and k != "qr"}
        state = cls(**values)
        qr = data.get("qr")
        if isinstance(qr, dict):
            state.qr = PendingQr(
                str(qr["qrcode"]), ScanStatus(int(qr["status"])), float(qr["seen_at"])
            )
        return state
