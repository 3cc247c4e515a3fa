"""The logout reason: what the last logout said, kept while the bot stays logged out.

WeChat's own words (``为了你的帐号安全，请重新登录。``) reach `BotState.logout_reason` from every
dialect that logs them, survive a `to_dict` / `from_dict` round trip (the state file), and are
cleared by the next login. Bounded: a log line cannot make the state hold more than
`LOGOUT_REASON_MAX` characters.
"""

from __future__ import annotations

import json

import pytest

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.selflog import format_self_log
from wechaty_exporter.logs.events import Event, Login, Logout, Scan, ScanStatus
from wechaty_exporter.logs.state import LOGOUT_REASON_MAX, BotState

NOW = 1_800_000_000.0
REASON = "为了你的帐号安全，请重新登录。"
QR = "https://login.weixin.qq.com/l/IdReason=="
CONTACT = {"_events": {}, "_eventsCount": 0, "id": "wxid_bob", "payload": {"name": "Bob"}}


def state_after(*events: Event) -> BotState:
    state = BotState()
    for event in events:
        state.apply(event)
    return state


def test_a_logout_keeps_its_reason_until_the_next_login() -> None:
    state = state_after(Login(1, "Bob"), Logout(2, "Bob", REASON))
    assert (state.logged_in, state.logout_reason) == (False, REASON)
    state.apply(Scan(3, ScanStatus.WAITING, QR))  # the QR after the logout: still logged out
    state.apply(Scan(4, ScanStatus.SCANNED))
    state.apply(Scan(5, ScanStatus.TIMEOUT))
    assert state.logout_reason == REASON
    state.apply(Scan(6, ScanStatus.CONFIRMED))
    assert (state.logged_in, state.logout_reason) == (True, None)
    state.apply(Logout(7, "Bob", "kicked"))
    state.apply(Login(8, "Bob"))
    assert (state.logged_in, state.logout_reason) == (True, None)


def test_a_second_logger_without_the_reason_does_not_erase_it() -> None:
    """The StarterBot's `Contact<Bob> logout` and the EventLogger's line are one logout."""
    for order in ((Logout(2, "Bob"), Logout(2, "Bob", REASON)),
                  (Logout(2, "Bob", REASON), Logout(2, "Bob"))):  # fmt: skip
        state = state_after(Login(1, "Bob"), *order)
        assert (state.logouts_total, state.logout_reason) == (1, REASON)


def test_a_new_logout_without_a_reason_clears_the_old_one() -> None:
    state = state_after(Login(1), Logout(2, None, "old"), Login(3), Logout(4))
    assert state.logout_reason is None
    # ... and a logout with no state known before it says none either
    assert state_after(Logout(1)).logout_reason is None


def test_the_reason_is_bounded() -> None:
    state = state_after(Login(1), Logout(2, None, "x" * (LOGOUT_REASON_MAX * 3)))
    assert state.logout_reason == "x" * LOGOUT_REASON_MAX


def test_the_state_file_round_trip_keeps_it() -> None:
    state = state_after(Login(1, "Bob"), Logout(2, "Bob", REASON))
    data = json.loads(json.dumps(state.to_dict()))
    assert data["logout_reason"] == REASON
    assert BotState.from_dict(data) == state
    del data["logout_reason"]  # a state file written before the field existed
    assert BotState.from_dict(data).logout_reason is None


@pytest.mark.parametrize(
    "line",
    [
        "10:00:00 INFO WechatyPluginContrib EventLoggerPlugin() logout: "
        + json.dumps([CONTACT, REASON], ensure_ascii=False, separators=(",", ":")),
        f"10:00:00 INFO WechatyPluginContrib EventLogger logout: Contact<Bob>,{REASON}",
        f"10:00:00 INFO StarterBot Contact<Bob> logout {REASON}",
        "2026-11-25 10:00:00,123 - Wechaty - INFO - receive <logout> event "
        f"<EventLogoutPayload(contact_id='Bob', data='{REASON}')>",
        format_self_log("logout", {"user": "Bob", "reason": REASON}, NOW),
    ],
    ids=["eventlogger-1.12", "eventlogger-1.11", "brolog", "python-wechaty", "self-log"],
)
def test_every_dialect_that_logs_a_reason_carries_it(line: str) -> None:
    parser = LineParser()
    state = state_after(Login(1, "Bob"), *parser.feed(line, NOW))
    assert (state.logged_in, state.user, state.logout_reason) == (False, "Bob", REASON)
