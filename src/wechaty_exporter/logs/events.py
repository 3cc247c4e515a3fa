"""What a log line can tell us: the events the parser emits and the state machine applies.

Data only. Every `at` is a Unix timestamp in seconds: the line's own time when it carries a
full date, else the time the line was read.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class RejectedQr:
    """A scan line whose QR is not a WeChat login URL (forged, or a host not allowed)."""

    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorLogged:
    """A line logged at level ERR / ERROR (counted, never decisive)."""

    at: float


Event = Login | Logout | Scan | RejectedQr | ErrorLogged


def is_decisive(event: Event) -> bool:
    """True for events that settle the login state on their own (what a cold start looks for)."""
    if isinstance(event, Login | Logout):
        return True
    if isinstance(event, Scan):
        return event.status in (ScanStatus.WAITING, ScanStatus.CONFIRMED)
    return False
