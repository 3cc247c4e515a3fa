"""A cold start holds a forged QR against the state before it, as replay does.

The last decisive entry of a log must not be a Waiting scan on a line short enough to be chat
text: only the state before it says whether a chat message forged it, so the backward scan reads
on to that state (here the login), and `serve` after a cold start, `replay` and `explain` agree.
"""

from __future__ import annotations

from pathlib import Path

from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.settings import ExporterSettings
from wechaty_exporter.logs.replay import replay_file
from wechaty_exporter.logs.state import BotState

LOGIN = "10:00:00 INFO StarterBot Contact<HelperBob> login"
CHAT = "10:00:01 INFO StarterBot Message#Text[🗣Contact<Mallory>]\t"
FORGED = "10:00:01 INFO X onScan: Waiting(2) - http://weixin.qq.com/x/PHISHabc"
LOGOUT = "10:00:00 INFO StarterBot Contact<HelperBob> logout"


def _recovered(path: Path) -> BotState:
    monitor = Monitor(ExporterSettings(bots=(("bob", (str(path),)),)))
    monitor.recover()
    assert monitor.start_report is not None and monitor.start_report.cold == (str(path),)
    return monitor.bots["bob"]


def _replayed(path: Path) -> BotState:
    state = BotState()
    replay_file(state, str(path))
    return state


def test_cold_start_reads_past_a_forged_waiting_scan(tmp_path: Path) -> None:
    log = tmp_path / "bob.log"
    chat = [
        f"10:00:0{i % 10} INFO StarterBot Message#Text[🗣Contact<Alice>]\thi {i}"
        for i in range(2000)
    ]
    log.write_text("\n".join([LOGIN, *chat, CHAT, FORGED, *chat]) + "\n", "utf-8")
    for state in (_recovered(log), _replayed(log)):
        assert state.logged_in is True and state.qr is None and state.user == "HelperBob"
        assert state.suspects == {"waiting_while_logged_in": 1}


def test_the_same_line_after_a_logout_is_taken_by_both(tmp_path: Path) -> None:
    """The control: a bot logged out receives no chat; the scan is taken, in both."""
    log = tmp_path / "bob.log"
    log.write_text("\n".join([LOGIN, LOGOUT, FORGED]) + "\n", "utf-8")
    for state in (_recovered(log), _replayed(log)):
        assert state.logged_in is False and state.qr is not None
        assert state.qr.qrcode == "http://weixin.qq.com/x/PHISHabc" and state.suspects == {}
