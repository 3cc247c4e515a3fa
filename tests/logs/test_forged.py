"""Suspect events: what a chat message may have forged is counted and not applied, and nothing
genuine is.

The rules (logs/state.py, logs/dialects/context.py): while the bot is logged in, a Waiting scan
on a line short enough to be chat text (Wechaty's Message#toString() keeps 70 characters), and a
login of another account; under `qr_source: self-log`, any line of another dialect. False
rejections are measured here over the sample logs, the dialect fixtures and the bench
generator's logs (tests/genuine measures the genuine and forged-line corpora).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bench.logs import generate

from wechaty_exporter.exporter.collector import BotView, WechatyCollector
from wechaty_exporter.logs.dialects.context import chat_sized
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.rules import Dialect, parse_dialect
from wechaty_exporter.logs.dialects.selflog import format_self_log
from wechaty_exporter.logs.events import (
    SUSPECT_REASONS,
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
    Suspect,
)
from wechaty_exporter.logs.explain import Explainer, render_text, report
from wechaty_exporter.logs.state import BotState

ROOT = Path(__file__).resolve().parents[2]
LOGS = sorted(
    [*(ROOT / "src" / "wechaty_exporter" / "samples").glob("*.log"),
     *(ROOT / "tests" / "data" / "dialects").glob("*.log")]
)  # fmt: skip
NOW = 1_800_000_000.0
QR = "https://login.weixin.qq.com/l/IdForge5aB=="
LOGIN = "10:00:00 INFO StarterBot Contact<HelperBob> login"
# 63 characters: a chat message "\n" + this line writes it whole
SHORT_WAITING = "10:00:01 INFO X onScan: Waiting(2) - http://weixin.qq.com/x/PHISHabc"
LONG_WAITING = (
    "10:00:01 INFO StarterBot onScan: Waiting(2) - https://wechaty.js.org/qrcode/"
    "https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FIdForge5aB%3D%3D"
)


def run(lines: list[str], parser: LineParser | None = None) -> tuple[BotState, list[Event]]:
    parser = parser or LineParser()
    state, applied = BotState(), []
    for line in lines:
        applied += [state.apply(e) for e in parser.feed(line, NOW)]
    return state, applied


def custom(name: str, body: dict[str, object]) -> Dialect:
    errors: list[str] = []
    dialect = parse_dialect(name, body, f"dialects.{name}", errors)
    assert dialect is not None, errors
    return dialect


def suspects(applied: list[Event]) -> list[str]:
    return [e.reason for e in applied if isinstance(e, Suspect)]


# -- no false rejections --------------------------------------------------------------------


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.name)
def test_no_sample_or_fixture_event_is_suspect(path: Path) -> None:
    lines = path.read_text("utf-8").split("\n")
    state, applied = run(lines)
    assert suspects(applied) == []
    assert state.suspects == {}


def test_pm2_console_fixture_restart_without_logout_is_not_suspect() -> None:
    """The bot crashed while logged in and printed a QR after its restart, no logout between:
    a Waiting scan while logged in, yet its line is far too long to be chat text."""
    lines = (ROOT / "tests/data/dialects/pm2-console.log").read_text("utf-8").splitlines()
    state, _ = run(lines)
    assert state.logged_in is False and state.qr is not None
    assert state.qr.qrcode == "https://login.weixin.qq.com/l/IdK3oo=="


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_no_bench_generator_event_is_suspect(seed: int) -> None:
    """The bench generator's logs (every wrapper, loggers mixed, its own forged chat lines):
    no suspect event, and replay still finds exactly its truth."""
    lines, truth = generate(120_000, seed, cycle_every=2000, tail=50)
    state, applied = run(lines)
    assert suspects(applied) == []
    assert (state.logins_total, state.logouts_total, state.qr_codes_total) == (
        truth.logins,
        truth.logouts,
        truth.qr_codes,
    )
    assert state.logged_in == truth.logged_in
    assert (state.qr.qrcode if state.qr else None) == truth.qr


# -- the rules --------------------------------------------------------------------------------


def test_a_chat_sized_waiting_scan_while_logged_in_is_suspect() -> None:
    state, applied = run([LOGIN, SHORT_WAITING])
    assert suspects(applied) == ["waiting_while_logged_in"]
    assert state.logged_in is True and state.qr is None and state.qr_codes_total == 0
    assert state.suspects == {"waiting_while_logged_in": 1}
    suspect = applied[-1]
    assert isinstance(suspect, Suspect) and isinstance(suspect.event, Scan)
    assert suspect.event.qrcode == "http://weixin.qq.com/x/PHISHabc"


def test_the_same_line_is_taken_when_the_bot_is_not_logged_in() -> None:
    """A bot not logged in receives no chat: nothing forged the line."""
    logout = "10:00:00 INFO StarterBot Contact<HelperBob> logout"
    for before in ([], [logout], [LOGIN, logout]):
        state, applied = run([*before, SHORT_WAITING])
        assert suspects(applied) == []
        assert state.qr is not None and state.qr.qrcode == "http://weixin.qq.com/x/PHISHabc"


def test_a_long_waiting_line_while_logged_in_is_taken() -> None:
    """A line chat text cannot hold whole: a restarted bot's new QR, with no logout logged."""
    state, applied = run([LOGIN, LONG_WAITING])
    assert suspects(applied) == []
    assert state.logged_in is False and state.qr is not None and state.qr.qrcode == QR


def test_the_parser_output_is_unchanged() -> None:
    """The mark is not part of the event's value: a marked scan equals the scan."""
    [event] = LineParser().feed(SHORT_WAITING, NOW)
    assert event == Scan(NOW, ScanStatus.WAITING, "http://weixin.qq.com/x/PHISHabc")
    assert isinstance(event, Scan) and event.chat_sized
    [event] = LineParser().feed(LONG_WAITING, NOW)
    assert isinstance(event, Scan) and not event.chat_sized


@pytest.mark.parametrize(
    ("line", "short"),
    [
        (SHORT_WAITING, True),
        (LONG_WAITING, False),
        ("0|bob    | " + SHORT_WAITING, True),  # pm2 logs adds its prefix outside the chat
        ("2026-12-02T10:00:01: " + SHORT_WAITING + "\r", True),
        ("\x1b[32m" + SHORT_WAITING + "\x1b[0m", True),
        ("QR Code Image URL: http://weixin.qq.com/x/PHISHabc", True),
        (
            "QR Code Image URL: https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl"
            "%2FIdForge5aB%3D%3D",
            False,
        ),
        (
            json.dumps(
                {
                    "message": f"x Message#Text[🗣Contact<M>]\t\n{SHORT_WAITING}\n",
                    "timestamp": "2026-12-02T10:00:01Z",
                    "app_name": "bob",
                }
            ),
            True,
        ),
        (json.dumps({"message": LONG_WAITING + "\n", "app_name": "bob"}), False),
        ("10:00:01 INFO X onScan: Waiting(2) - http://weixin.qq.com/x/PHISHabcdef", False),
    ],
)
def test_chat_sized(line: str, short: bool) -> None:
    assert chat_sized(line) is short


def test_a_custom_dialect_is_never_marked() -> None:
    dialect = custom(
        "short",
        {"rules": [{"event": "scan", "match": r"QR (?P<qrcode>\S+)", "status": "Waiting"}]},
    )
    [event] = LineParser(dialect=dialect).feed(f"QR {QR}", NOW)
    assert isinstance(event, Scan) and not event.chat_sized


def test_a_login_of_another_account_while_logged_in_is_suspect() -> None:
    mallory = "10:00:02 INFO StarterBot Contact<Mallory> login"
    state, applied = run([LOGIN, mallory, "10:00:03 INFO EventLogger login: Contact<Mallory>"])
    assert suspects(applied) == ["login_of_another_account"] * 2
    assert state.user == "HelperBob" and state.logins_total == 1
    # the same account again is no suspect; after a logout, another account logs in
    logout = "10:00:04 INFO StarterBot Contact<HelperBob> logout"
    state, applied = run([LOGIN, LOGIN, logout, mallory])
    assert suspects(applied) == [] and state.user == "Mallory" and state.logins_total == 2


def test_a_login_after_a_custom_dialect_named_the_account_otherwise_is_taken() -> None:
    """A puppet's rule may name the account by its id, the bot's own line by its name."""
    dialect = custom(
        "padlocal",
        {
            "mode": "alongside",
            "rules": [
                {"event": "login", "match": r"VERB \[PuppetPadlocal\] login success: (?P<user>\S+)"}
            ],
        },
    )
    state, applied = run(
        ["16:03:47 VERB [PuppetPadlocal] login success: wxid_bob", LOGIN],
        LineParser(dialect=dialect),
    )
    assert suspects(applied) == [] and state.user == "HelperBob"


def test_self_log_only_no_other_dialect_changes_the_bot() -> None:
    parser = LineParser(self_log_qr_only=True)
    self_scan = format_self_log("scan", {"status": 2, "qrcode": QR}, NOW)
    state, applied = run(
        [
            self_scan,
            "10:00:01 INFO StarterBot onScan: Confirmed(4)",
            "10:00:02 INFO StarterBot onScan: Timeout(5)",
            "10:00:03 INFO StarterBot Contact<Mallory> login",
            "10:00:04 INFO StarterBot Contact<Mallory> logout",
            LONG_WAITING,
            "10:00:05 ERR StarterBot boom",
        ],
        parser,
    )
    assert suspects(applied) == ["not_from_self_log"] * 4
    assert [type(e) for e in applied[-2:]] == [RejectedQr, ErrorLogged]
    assert state.qr is not None and state.qr.qrcode == QR
    assert (state.logged_in, state.user, state.logins_total, state.logouts_total) == (
        False,
        None,
        0,
        0,
    )
    assert state.errors_total == 1
    # a self-log line in that (plain) log is suspect too: a chat message may have written it
    login = format_self_log("login", {"user": "Bob", "id": "wxid_1"}, NOW + 9)
    assert suspects(parser.feed(login, NOW)) == ["self_log_in_mixed_log"]
    # the self-log itself, a file of its own, still says everything
    self_log = LineParser(self_log_qr_only=True)
    assert [type(e) for e in self_log.feed(login, NOW)] == [Login]
    logout = format_self_log("logout", {"user": "Bob", "reason": "kicked"}, NOW + 10)
    assert [type(e) for e in self_log.feed(logout, NOW)] == [Logout]


def test_suspects_survive_the_state_file() -> None:
    state, _ = run([LOGIN, SHORT_WAITING, "10:00:02 INFO StarterBot Contact<Mallory> login"])
    again = BotState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert (
        again.suspects
        == state.suspects
        == {
            "waiting_while_logged_in": 1,
            "login_of_another_account": 1,
        }
    )
    assert again.suspect_total == 2 and again.user_source == "brolog"
    assert BotState.from_dict({"suspects": "nonsense"}).suspects == {}


def test_the_counter_has_every_reason_from_zero() -> None:
    state, _ = run([LOGIN, SHORT_WAITING])
    families = {
        m.name: m for m in WechatyCollector(lambda: [BotView("bob", state, ())], "t").collect()
    }
    samples = {
        s.labels["reason"]: s.value for s in families["wechaty_exporter_suspect_events"].samples
    }
    assert samples == {reason: 0 for reason in SUSPECT_REASONS} | {"waiting_while_logged_in": 1}


def test_explain_shows_suspect_events_with_their_reason() -> None:
    state = BotState()
    explainer = Explainer("bot.log", LineParser(), state, NOW)
    lines = [LOGIN, "hello", SHORT_WAITING, "10:00:02 INFO StarterBot Contact<Mallory> login"]
    explainer.feed(("\n".join(lines) + "\n").encode())
    found = explainer.finish()
    assert [(s.line, s.source) for s in found.suspects.first] == [(3, "brolog"), (4, "brolog")]
    assert found.events.count == 1 and found.rejected.count == 0
    doc = report("bot", [found], state)
    assert doc["files"][0]["suspect_events"]["count"] == 2
    assert doc["state"]["suspect_events"] == {
        "waiting_while_logged_in": 1,
        "login_of_another_account": 1,
    }
    text = render_text("bot", [found], state)
    assert "suspect events (a chat message may have forged them): 2" in text
    assert re.search(
        r"line 3  brolog  scan Waiting\(2\) qr=weixin\.qq\.com/….*waiting_while_logged_in", text
    )
    assert "PHISHabc" not in text  # the QR is shown by its host only
    assert "2 suspect event(s)" in text
