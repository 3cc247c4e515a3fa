"""Edge rules of the state machine that the sequence tests in test_state.py do not pin down.

Each test names the rule it holds; each was written against a mutant of logs/state.py that the
rest of the suite let through (docs/MUTATION.md).
"""

from __future__ import annotations

from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)
from wechaty_exporter.logs.state import BotState, PendingQr

QR1 = "https://login.weixin.qq.com/l/aaa"
QR2 = "https://login.weixin.qq.com/l/bbb"


def run(*events: Event) -> BotState:
    state = BotState()
    for e in events:
        state.apply(e)
    return state


# --- Confirmed(4) and last_login ---------------------------------------------------------------


def test_confirmed_while_logged_in_keeps_the_login_time() -> None:
    """TypeScript writes Confirmed and then its login line; python-wechaty may repeat Confirmed.
    A Confirmed scan while already logged in is no new login: last_login stays the login's."""
    state = run(Login(10, "Bob"), Scan(20, ScanStatus.CONFIRMED))
    assert state.last_login == 10
    assert (state.logins_total, state.since) == (1, 10)


def test_login_line_after_its_confirmed_scan_moves_the_login_time() -> None:
    # The login line is the login's own record: it always sets last_login.
    state = run(Logout(1), Scan(5, ScanStatus.CONFIRMED), Login(6, "Bob"))
    assert (state.last_login, state.logins_total, state.since) == (6, 1, 5)


def test_confirmed_when_unknown_or_logged_out_sets_the_login_time() -> None:
    assert run(Scan(7, ScanStatus.CONFIRMED)).last_login == 7
    assert run(Logout(1), Scan(8, ScanStatus.CONFIRMED)).last_login == 8


def test_other_scans_never_set_the_login_time() -> None:
    for status in (ScanStatus.SCANNED, ScanStatus.TIMEOUT, ScanStatus.CANCEL, ScanStatus.UNKNOWN):
        state = run(Logout(1), Scan(5, status))
        assert state.last_login is None, status
    assert run(Scan(5, ScanStatus.WAITING, QR1)).last_login is None


# --- counters and times that only one event kind moves ----------------------------------------


def test_a_confirmed_scan_after_a_logout_counts_a_login_not_a_logout() -> None:
    state = run(
        Login(1), Logout(2), Scan(3, ScanStatus.WAITING, QR1), Scan(4, ScanStatus.CONFIRMED)
    )
    assert (state.logins_total, state.logouts_total) == (2, 1)
    assert (state.last_logout, state.since) == (2, 4)


def test_a_waiting_scan_logs_out_without_counting_a_logout() -> None:
    # Only a logout line counts a logout: a QR on its own means "not logged in", not "kicked".
    state = run(Login(1), Scan(2, ScanStatus.WAITING, QR1))
    assert (state.logged_in, state.logouts_total, state.last_logout, state.since) == (
        False,
        0,
        None,
        2,
    )


def test_a_repeated_logout_changes_nothing() -> None:
    state = run(Login(1), Logout(2, "Bob", "kicked"), Logout(3))
    assert (state.logouts_total, state.since) == (1, 2)
    assert state.last_logout == 3  # the time of the latest logout line


def test_the_same_qr_again_is_one_qr_code_and_keeps_its_first_time() -> None:
    state = run(Scan(1, ScanStatus.WAITING, QR1), Scan(2, ScanStatus.WAITING, QR1))
    assert state.qr_codes_total == 1
    assert state.qr == PendingQr(QR1, ScanStatus.WAITING, 1)


def test_a_new_qr_after_one_was_cleared_counts_again() -> None:
    state = run(
        Scan(1, ScanStatus.WAITING, QR1),
        Scan(2, ScanStatus.TIMEOUT),
        Scan(3, ScanStatus.WAITING, QR1),  # the same URL shown again after a timeout
        Scan(4, ScanStatus.WAITING, QR2),
    )
    assert state.qr_codes_total == 3
    assert state.qr == PendingQr(QR2, ScanStatus.WAITING, 4)


def test_a_waiting_scan_without_a_qr_logs_out_and_sets_none() -> None:
    state = run(Login(1), Scan(2, ScanStatus.WAITING, None))
    assert (state.logged_in, state.qr, state.qr_codes_total) == (False, None, 0)


def test_errors_and_rejected_qrs_keep_their_own_counts_and_times() -> None:
    state = run(ErrorLogged(5), RejectedQr(6, "host"), ErrorLogged(7))
    assert (state.errors_total, state.rejected_qr_total, state.last_error) == (2, 1, 7)
    assert (state.last_login, state.last_logout, state.known) == (None, None, False)


def test_login_without_a_user_keeps_the_known_user() -> None:
    state = run(Login(1, "Bob"), Logout(2), Login(3))
    assert state.user == "Bob"
    assert run(Login(1, "")).user is None


def test_saw_lines_counts_and_stamps_only_when_there_are_lines() -> None:
    state = BotState()
    state.saw_lines(0, 5.0)
    assert (state.lines_total, state.last_line_at) == (0, None)
    state.saw_lines(3, 6.0)
    state.saw_lines(2, 7.0)
    assert (state.lines_total, state.last_line_at) == (5, 7.0)


def test_every_logout_after_a_login_counts() -> None:
    state = run(Login(1), Logout(2), Login(3), Logout(4), Login(5), Logout(6))
    assert (state.logins_total, state.logouts_total) == (3, 3)


def test_the_state_file_form_of_a_pending_qr() -> None:
    state = run(Scan(3, ScanStatus.WAITING, QR1))
    doc = state.to_dict()
    assert set(doc) == set(BotState.__dataclass_fields__)
    assert doc["qr"] == {"qrcode": QR1, "status": 2, "seen_at": 3}
    assert type(doc["qr"]["status"]) is int  # plain JSON, not the enum
    empty = BotState().to_dict()
    assert set(empty) == set(BotState.__dataclass_fields__)
    assert empty["qr"] is None
    assert BotState.from_dict({"qr": "not a dict", "lines_total": 4}) == BotState(lines_total=4)
