"""The duet probe in the pure core: self-log lines → probe events → state, never the login state."""

from __future__ import annotations

import pytest

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.selflog import format_self_log
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    Scan,
    ScanStatus,
    is_decisive,
)
from wechaty_exporter.logs.explain import describe
from wechaty_exporter.logs.state import BotState

STAMP = "2026-11-25T10:00:00.000+08:00"
AT = 1795572000.0  # STAMP as a Unix time
QR = "https://login.weixin.qq.com/l/abc"


def feed(*lines: str) -> list[object]:
    parser = LineParser()
    return [event for line in lines for event in parser.feed(line, 0.0)]


def test_probe_lines_are_events() -> None:
    received = f'{STAMP} INFO wechaty-exporter probe {{"from":"bob","seq":3}}'
    sent = f'{STAMP} INFO wechaty-exporter probe_sent {{"to":"alice","seq":12}}'
    assert feed(received, sent) == [ProbeReceived(AT, "bob", 3), ProbeSent(AT, "alice", 12)]


def test_the_writer_and_the_parser_agree() -> None:
    lines = [
        format_self_log("probe", {"from": "bob.2_x-y", "seq": 999999999999}, AT),
        format_self_log("probe_sent", {"to": "alice", "seq": 1}, AT + 1),
    ]
    assert feed(*lines) == [
        ProbeReceived(AT, "bob.2_x-y", 999999999999),
        ProbeSent(AT + 1, "alice", 1),
    ]


def test_a_failed_probe_is_not_an_event() -> None:
    line = f'{STAMP} WARN wechaty-exporter probe_failed {{"to":"alice","error":"not logged in"}}'
    assert feed(line) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"from":"bob"}',  # no seq
        '{"seq":1}',  # no sender
        '{"from":"bob","seq":"1"}',  # seq not a number
        '{"from":"bob","seq":true}',
        '{"from":"bob","seq":-1}',
        '{"from":"bob","seq":1000000000000}',  # 13 digits: no probe text has that
        '{"from":"bob","seq":1.5}',
        '{"from":"b b","seq":1}',  # not a bot name
        '{"from":"-bob","seq":1}',
        '{"from":"","seq":1}',
        '{"from":"bob\\nx","seq":1}',
        '["bob",1]',
        "not json",
    ],
)
def test_malformed_probe_lines_are_ignored(body: str) -> None:
    assert feed(f"{STAMP} INFO wechaty-exporter probe {body}") == []


@pytest.mark.parametrize(
    "line",
    [
        # the probe text itself, as other dialects would print a received message
        "10:00:00 INFO Message Message#Text[🗣Contact<Bob>] wechaty-exporter probe v1 bob 3",
        "2026-11-25 10:00:00,000 - Wechaty - INFO - wechaty-exporter probe v1 bob 3",
        "wechaty-exporter probe v1 bob 3",
        # a self-log probe line's body without the self-log's head
        'INFO wechaty-exporter probe {"from":"bob","seq":3}',
    ],
)
def test_no_other_dialect_makes_a_probe(line: str) -> None:
    assert [e for e in feed(line) if isinstance(e, ProbeReceived | ProbeSent)] == []


def test_probes_change_neither_login_state_nor_counters() -> None:
    state = BotState()
    state.apply(Login(100, "Alice"))
    state.apply(Scan(150, ScanStatus.WAITING, QR))  # logged out, QR pending
    before = BotState.from_dict(state.to_dict())
    state.apply(ProbeReceived(200, "bob", 1))
    state.apply(ProbeSent(210, "bob", 1))
    assert state.logged_in is False and state.qr is not None and state.since == 150
    assert state.errors_total == 0 and state.suspect_total == 0
    assert state.last_probe_received == 200 and state.probe_from == "bob"
    assert state.probes_sent == {"bob": 210}
    probe_keys = ("last_probe_received", "probe_from", "probes_sent")
    after = {k: v for k, v in state.to_dict().items() if k not in probe_keys}
    assert after == {k: v for k, v in before.to_dict().items() if k not in probe_keys}


def test_a_probe_is_no_evidence_of_the_state() -> None:
    state = BotState()
    state.apply(ProbeReceived(10, "bob", 1))
    state.apply(ProbeSent(11, "bob", 1))
    assert state.known is False and state.logged_in is None
    assert not is_decisive(ProbeReceived(10, "bob", 1))
    assert not is_decisive(ProbeSent(10, "bob", 1))


def test_latest_probe_wins_and_each_peer_keeps_its_own() -> None:
    state = BotState()
    for event in (
        ProbeReceived(300, "bob", 3),
        ProbeReceived(200, "carol", 2),  # an older line (a second log) does not go back in time
        ProbeSent(100, "bob", 1),
        ProbeSent(400, "carol", 1),
        ProbeSent(90, "bob", 9),
        ErrorLogged(500),
    ):
        state.apply(event)
    assert (state.last_probe_received, state.probe_from) == (300, "bob")
    assert state.probes_sent == {"bob": 100, "carol": 400}
    assert state.errors_total == 1


def test_probe_state_survives_to_dict_and_from_dict() -> None:
    state = BotState()
    state.apply(Login(1, "Alice"))
    state.apply(ProbeReceived(5, "bob", 2))
    state.apply(ProbeSent(6, "bob", 4))
    state.apply(Logout(7))
    again = BotState.from_dict(state.to_dict())
    assert again == state
    assert again.probes_sent == {"bob": 6} and again.last_probe_received == 5
    # a state file written before probes existed still loads
    old = state.to_dict()
    for key in ("last_probe_received", "probe_from", "probes_sent"):
        del old[key]
    loaded = BotState.from_dict(old)
    assert loaded.last_probe_received is None and loaded.probes_sent == {}


def test_explain_describes_probes() -> None:
    assert describe(ProbeReceived(1, "bob", 3)) == "duet probe 3 received from bob"
    assert describe(ProbeSent(1, "alice", 4)) == "duet probe 4 sent to alice"
