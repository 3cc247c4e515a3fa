"""The state machine as plain event sequences and asserted states."""

from __future__ import annotations

import pytest

from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)
from wechaty_exporter.logs.state import TRANSITIONS, BotState, PendingQr

QR1 = "https://login.weixin.qq.com/l/aaa"
QR2 = "https://login.weixin.qq.com/l/bbb"


def run(*events: Event) -> BotState:
    state = BotState()
    for e in events:
        state.apply(e)
    return state


def waiting(at: float, qr: str = QR1) -> Scan:
    return Scan(at, ScanStatus.WAITING, qr)


@pytest.mark.parametrize(
    ("events", "logged_in", "qr", "known"),
    [
        ((), None, None, False),
        ((Login(1, "Bob"),), True, None, True),
        ((Logout(1, "Bob"),), False, None, True),
        ((waiting(1),), False, QR1, True),
        ((waiting(1), waiting(2, QR2)), False, QR2, True),
        ((waiting(1), Scan(2, ScanStatus.SCANNED)), False, None, True),
        (
            (waiting(1), Scan(2, ScanStatus.SCANNED), Scan(3, ScanStatus.CONFIRMED)),
            True,
            None,
            True,
        ),
        ((waiting(1), Scan(2, ScanStatus.TIMEOUT)), False, None, True),
        ((waiting(1), Scan(2, ScanStatus.CANCEL)), False, None, True),
        ((Login(1), waiting(2)), False, QR1, True),
        ((Logout(1), waiting(2), Login(3)), True, None, True),
        ((Login(1), Logout(2)), False, None, True),
        # Scanned/Timeout/Cancel with no earlier evidence: known, but the login state stays unknown.
        ((Scan(1, ScanStatus.SCANNED),), None, None, True),
        ((Scan(1, ScanStatus.UNKNOWN),), None, None, False),
        # Errors and rejected QRs are never evidence, and never clear a pending QR.
        ((ErrorLogged(1), RejectedQr(2, "host")), None, None, False),
        ((waiting(1), RejectedQr(2, "evil host")), False, QR1, True),
        ((Login(1), ErrorLogged(2)), True, None, True),
    ],
)
def test_sequences(
    events: tuple[Event, ...], logged_in: bool | None, qr: str | None, known: bool
) -> None:
    state = run(*events)
    assert state.logged_in is logged_in
    assert (state.qr.qrcode if state.qr else None) == qr
    assert state.known is known


def test_counters_count_changes_not_lines() -> None:
    # TypeScript: Confirmed then its login line; a second library logging the same login.
    state = run(
        waiting(1), waiting(1.5), Scan(2, ScanStatus.CONFIRMED),
        Login(2.1, "Bob"), Login(2.2, "Bob"),
        Logout(3, "Bob"), Logout(3.1, "Bob"), waiting(4, QR2), waiting(4.1, QR2),
    )  # fmt: skip
    assert (state.logins_total, state.logouts_total, state.qr_codes_total) == (1, 1, 2)


def test_timestamps_and_user() -> None:
    state = run(Login(10, "Bob"), ErrorLogged(11), Logout(20, "Bob"), waiting(21))
    assert state.user == "Bob"
    assert (state.last_login, state.last_logout, state.last_error) == (10, 20, 11)
    assert state.since == 20  # logged out since the logout, not since the QR
    assert state.qr == PendingQr(QR1, ScanStatus.WAITING, 21)


def test_python_wechaty_relogin_without_login_line() -> None:
    state = run(Login(1, "wxid_bob"), Logout(2), waiting(3), Scan(4, ScanStatus.CONFIRMED))
    assert state.logged_in is True
    assert state.last_login == 4
    assert state.logins_total == 2


def test_rejected_and_errors_counted() -> None:
    state = run(RejectedQr(1, "x"), RejectedQr(2, "y"), ErrorLogged(3))
    assert (state.rejected_qr_total, state.errors_total) == (2, 1)


def test_every_scan_status_has_a_rule() -> None:
    for status in ScanStatus:
        assert status in TRANSITIONS


def test_round_trip_through_dict() -> None:
    state = run(Login(1, "Bob"), Logout(2), waiting(3))
    state.saw_lines(7, 3.5)
    again = BotState.from_dict(state.to_dict())
    assert again == state
    assert BotState.from_dict({**state.to_dict(), "from_the_future": 1}) == state
