"""What every dialect handler needs from its LineParser: the date zone, the QR policy, statuses.

Scan statuses: the number decides (``Waiting(2)``); a number outside 0..5 is not an event. A
Waiting scan whose QR fails `check_qr`, is missing, or was cut by the per-line cap becomes a
RejectedQr; other statuses carry no QR.

Users and reasons are returned as logged, except that lone surrogates become U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import tzinfo

from wechaty_exporter.logs.dialects.qr import check_qr_normalized, normalize_hosts
from wechaty_exporter.logs.dialects.structure import When, date_seconds
from wechaty_exporter.logs.events import Event, RejectedQr, Scan, ScanStatus

__all__ = ["ERROR_LEVELS", "STATUSES", "STATUS_BY_NAME", "DialectContext", "text"]

STATUSES = tuple(ScanStatus)
STATUS_BY_NAME = {s.name: s for s in ScanStatus} | {"UNSPECIFIED": ScanStatus.UNKNOWN}
ERROR_LEVELS = frozenset({"ERR", "ERROR", "CRITICAL", "FATAL"})

_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def text(value: str | None) -> str | None:
    """A user or reason as logged (None when empty), lone surrogates replaced by U+FFFD."""
    if not value:
        return None
    return _SURROGATE_RE.sub("\ufffd", value)


class DialectContext:
    """The settings of one LineParser, and the events they decide, for its dialect handlers."""

    __slots__ = ("_hosts", "_self_log_qr_only", "_tz")

    def __init__(
        self, allowed_qr_hosts: Sequence[str], tz: tzinfo | None, self_log_qr_only: bool
    ) -> None:
        self._hosts = normalize_hosts(allowed_qr_hosts)
        self._self_log_qr_only = self_log_qr_only
        self._tz = tz

    def at(self, when: When, now: float) -> float:
        """Unix time of `when` (a date in the parser's zone, a known time or None: `now`)."""
        if when is None:
            return now
        if isinstance(when, float):
            return when
        return date_seconds(when, self._tz, now)

    def scan(
        self,
        at: float,
        number: int,
        qr: str | None,
        cut: bool,
        out: list[Event],
        *,
        self_log: bool = False,
    ) -> None:
        """Append the event of a scan with status `number` (none if it is not a status)."""
        if number >= len(STATUSES):
            return
        if number == ScanStatus.WAITING:
            out.append(self.waiting(at, qr, cut, self_log=self_log))
        else:
            out.append(Scan(at, STATUSES[number]))

    def waiting(
        self, at: float, qr: str | None, cut: bool, *, self_log: bool = False
    ) -> Scan | RejectedQr:
        """A Waiting scan with a valid QR, else the RejectedQr that says why not."""
        if self._self_log_qr_only and not self_log:
            return RejectedQr(at, "qr not from the self-log")
        if cut:
            return RejectedQr(at, "qr too long")
        if not qr:
            return RejectedQr(at, "missing qr")
        url, reason = check_qr_normalized(qr.strip(" \t"), self._hosts)
        if url is None:
            return RejectedQr(at, reason or "invalid qr")
        return Scan(at, ScanStatus.WAITING, url)
