"""Self-log lines count only in a log that holds nothing else.

The peer bot and the TypeScript plugin write their self-log to a file of its own. A self-log line
in a log that has shown any other line (a bot's console, where chat text lands raw, newlines
included) may have been written by a chat message, so its login, logout, scan or probe is a
`Suspect` (``self_log_in_mixed_log``): counted, never applied. The self-log lines here come from
the project's own writer (`format_self_log`); the other lines are what Wechaty's StarterBot and
pm2 print.
"""

from __future__ import annotations

import json

import pytest

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.selflog import format_self_log
from wechaty_exporter.logs.events import (
    SUSPECT_REASONS,
    Event,
    Login,
    ProbeReceived,
    Scan,
    ScanStatus,
    Suspect,
)
from wechaty_exporter.logs.explain import Explainer, render_text, report
from wechaty_exporter.logs.state import BotState

NOW = 1_800_000_000.0
QR = "https://login.weixin.qq.com/l/IdMixed7Q=="
PHISH = "https://login.weixin.qq.com/l/IdPhish9Z=="
CHAT = "10:00:00 INFO StarterBot Message#Text[🗣Contact<Mallory>]\thi"


def self_line(kind: str, fields: dict[str, object], at: float = NOW) -> str:
    return format_self_log(kind, fields, at)


SCAN = self_line("scan", {"status": 2, "qrcode": QR})
LOGIN = self_line("login", {"user": "Bob", "id": "wxid_bob"}, NOW + 5)
PROBE = self_line("probe", {"from": "alice", "seq": 1}, NOW + 6)
FORGED = self_line("scan", {"status": 2, "qrcode": PHISH}, NOW + 7)


def feed(parser: LineParser, *lines: str) -> list[Event]:
    return [e for line in lines for e in parser.feed(line, NOW)]


def block(parser: LineParser, *lines: str) -> list[Event]:
    return parser.feed_block("".join(f"{line}\n" for line in lines).encode(), NOW)


@pytest.mark.parametrize("read", [feed, block], ids=["feed", "feed_block"])
def test_a_pure_self_log_is_trusted_blank_lines_included(read: object) -> None:
    heartbeat = self_line("heartbeat", {"logged_in": True})
    events = read(LineParser(self_log_qr_only=True), SCAN, "", "  \r", heartbeat, LOGIN, PROBE)  # type: ignore[operator]
    assert [type(e) for e in events] == [Scan, Login, ProbeReceived]


@pytest.mark.parametrize("read", [feed, block], ids=["feed", "feed_block"])
@pytest.mark.parametrize("self_log_only", [True, False])
def test_after_any_other_line_a_self_log_line_is_suspect(read: object, self_log_only: bool) -> None:
    """The console of a bot: its own lines, then a chat message whose text holds a newline and
    a self-log line. Neither the forged scan nor a forged probe (faked liveness) counts."""
    parser = LineParser(self_log_qr_only=self_log_only)
    events = read(parser, CHAT, FORGED, PROBE)  # type: ignore[operator]
    assert [(type(e), getattr(e, "reason", None)) for e in events] == [
        (Suspect, "self_log_in_mixed_log"),
        (Suspect, "self_log_in_mixed_log"),
    ]
    assert isinstance(events[0], Suspect) and events[0].event == Scan(
        NOW + 7, ScanStatus.WAITING, PHISH
    )
    state = BotState()
    for e in events:
        state.apply(e)
    assert state.qr is None and state.last_probe_received is None
    assert state.suspects == {"self_log_in_mixed_log": 2}


def test_a_self_log_line_first_is_trusted_and_later_ones_are_not() -> None:
    """A log that starts with a self-log line and then shows another one is mixed from then on."""
    parser = LineParser()
    assert feed(parser, SCAN) == [Scan(NOW, ScanStatus.WAITING, QR)]
    assert [type(e) for e in feed(parser, CHAT, LOGIN)] == [Suspect]


def test_a_forged_part_of_a_pm2_json_message_is_suspect() -> None:
    """pm2 `--log-type json`: the chat text's newline splits the message into parts; the part
    before the forged line is the bot's own, so the forged part is read in a mixed log."""
    message = f"{CHAT}\n{FORGED}\n"
    line = json.dumps(
        {"message": message, "timestamp": "2026-11-25T10:00:00.000Z", "type": "out",
         "process_id": 0, "app_name": "bob"},
        ensure_ascii=False,
    )  # fmt: skip
    assert [e.reason for e in feed(LineParser(), line) if isinstance(e, Suspect)] == [
        "self_log_in_mixed_log"
    ]
    # a pm2 JSON log of self-log lines alone is a pure self-log
    pure = json.dumps({"message": f"{SCAN}\n", "process_id": 0, "app_name": "bob"})
    assert [type(e) for e in feed(LineParser(), pure)] == [Scan]


def test_skipped_chat_makes_the_log_mixed_as_feeding_it_would() -> None:
    """feed_block skips chat runs without decoding them; they still make the log mixed."""
    chat = [f"10:00:0{i} INFO StarterBot Message#Text[🗣Contact<Ann>]\thello {i}" for i in range(5)]
    by_block = block(LineParser(), *chat, FORGED)
    by_line = feed(LineParser(), *chat, FORGED)
    assert by_block == by_line
    assert [e.reason for e in by_block if isinstance(e, Suspect)] == ["self_log_in_mixed_log"]


def test_explain_names_the_reason() -> None:
    state = BotState()
    explainer = Explainer("bot.log", LineParser(), state, NOW)
    explainer.feed(f"{CHAT}\n{FORGED}\n".encode())
    found = explainer.finish()
    doc = report("bot", [found], state)
    assert doc["state"]["suspect_events"] == {"self_log_in_mixed_log": 1}
    assert "self_log_in_mixed_log" in render_text("bot", [found], state)
    assert "self_log_in_mixed_log" in SUSPECT_REASONS
