"""Cold start: the backward scan finds the last decisive entry and reads only what it must;
it looks further back, within its budget, only for the account name; and the monitor says from
when its counters count."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import pytest

from wechaty_exporter.exporter import monitor as monitor_module
from wechaty_exporter.exporter import statefile
from wechaty_exporter.exporter.coldstart import ColdStart, History, scan_backwards
from wechaty_exporter.exporter.files import Cursor
from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.settings import ExporterSettings
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import Event, Login, Logout, Scan, ScanStatus
from wechaty_exporter.logs.state import BotState

QR = "https://login.weixin.qq.com/l/abc"
CHAT = "10:00:00 INFO StarterBot Message#Text[🗣Contact<Carol>@Room<ops>]\tjust chatting\n"


def write(path: Path, *parts: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        for part in parts:
            f.write(part)


def state_of(path: Path, **kwargs: int) -> tuple[BotState, int, int]:
    found = scan_backwards(str(path), LineParser, **kwargs)
    state = BotState()
    found.apply(state)
    return state, found.scanned, found.end


# python-wechaty lines carry their own date, so the times below are the lines' own.
def py(second: int, message: str) -> str:
    return f"2026-11-25 10:00:{second:02d},000 - Wechaty - INFO - {message}\n"


def at(second: int) -> float:
    return 1_795_600_800.0 + second  # 2026-11-25 10:00:SS UTC


PY_CHAT = "2026-11-25 10:00:30,000 - Wechaty - INFO - receive message <Message#Text[🗣Contact<Carol>]\tping>\n"  # noqa: E501
LOGIN = "receive <login> event <EventLoginPayload(contact_id='wxid_bob')>"
LOGOUT = "receive <logout> event <EventLogoutPayload(contact_id='wxid_bob', data='kicked')>"
WAITING = f"receive <scan> event <EventScanPayload(status=<ScanStatus.Waiting: 2>, qrcode='{QR}', data=None)>"  # noqa: E501


def test_finds_last_decisive_event_in_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    chat_mb = CHAT * (50 * 1024 * 1024 // len(CHAT))
    write(
        log,
        "09:00:00 INFO StarterBot Contact<Alice> login\n",
        chat_mb,
        "11:00:00 INFO StarterBot Contact<Bob> logout\n",
        f"11:00:01 INFO StarterBot onScan: Waiting(2) - {QR}\n",
        "11:00:30 INFO StarterBot onScan: Confirmed(4)\n",
        "11:00:31 INFO StarterBot Contact<Bob> login\n",
        CHAT * 100,
    )
    state, scanned, end = state_of(log)
    assert state.logged_in is True and state.qr is None and state.user == "Bob"
    assert (state.logins_total, state.logouts_total) == (1, 0)  # from the last decisive entry
    assert scanned <= 64 * 1024  # one block, not 50 MB: the login names the account
    assert end == log.stat().st_size


# --- the account name: in the block, only further back, not within the budget ----------------


def test_account_named_in_the_same_block(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, py(0, LOGIN), PY_CHAT * 10, py(20, LOGOUT), py(21, WAITING), PY_CHAT * 10)
    found = scan_backwards(str(log), LineParser)
    assert [type(e) for e in found.events] == [Scan]  # the replay still starts at the QR
    state = BotState()
    found.apply(state)
    assert state.user == "wxid_bob" and found.scanned == log.stat().st_size
    assert state.logged_in is False and state.qr is not None
    # The times are replay's: logged out since the logout, not since the QR.
    assert (state.since, state.last_login, state.last_logout) == (at(20), at(0), at(20))
    # The login before the replayed entry gives its name, never a count.
    assert (state.logins_total, state.logouts_total, state.qr_codes_total) == (0, 0, 1)


def test_a_qr_printed_twice_was_seen_first_where_replay_says(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, py(0, LOGIN), py(20, LOGOUT), py(21, WAITING), py(25, WAITING))
    state, _, _ = state_of(log)
    assert state.qr is not None and state.qr.seen_at == at(21) and state.qr_codes_total == 1


def test_the_logout_reason_before_the_replayed_qr_is_kept(tmp_path: Path) -> None:
    """The last decisive entry is the QR after the logout: the reason comes from the history."""
    log = tmp_path / "bot.log"
    write(log, py(0, LOGIN), py(20, LOGOUT), PY_CHAT * 5, py(21, WAITING), PY_CHAT)
    state, _, _ = state_of(log)
    assert (state.logged_in, state.qr is not None, state.logout_reason) == (False, True, "kicked")
    assert state.logouts_total == 0  # the logout itself was not replayed: only its reason


def test_a_login_after_the_reason_clears_it(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, py(0, LOGIN), py(20, LOGOUT), py(21, WAITING), py(30, LOGIN), PY_CHAT)
    state, _, _ = state_of(log)
    assert (state.logged_in, state.logout_reason) == (True, None)


def test_a_reason_is_applied_only_while_the_bot_is_logged_out() -> None:
    """Another log of the same bot, replayed after, logged it in: the history's reason is old."""
    cursor = Cursor(offset=0, inode=1, device=1, fingerprint="", fingerprint_len=0)
    history = History(logout_reason="kicked")
    cases: list[tuple[Event, tuple[bool, str | None]]] = [
        (Login(at(30), "wxid_bob"), (True, None)),
        (Scan(at(31), ScanStatus.WAITING, QR), (False, "kicked")),
    ]
    for event, expected in cases:
        state = BotState()
        ColdStart(end=0, cursor=cursor, events=[event], found=True, history=history).apply(state)
        assert (state.logged_in, state.logout_reason) == expected


def test_account_named_only_further_back(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    chat = PY_CHAT * (4 * 1024 * 1024 // len(PY_CHAT))
    write(log, py(0, LOGIN), chat, py(20, LOGOUT), py(21, WAITING), PY_CHAT * 10)
    found = scan_backwards(str(log), LineParser)
    assert [type(e) for e in found.events] == [Scan] and found.lines == 11
    assert found.scanned > 4 * 1024 * 1024  # the blocks kept growing, to the login
    state = BotState()
    found.apply(state)
    assert state.user == "wxid_bob" and state.logged_in is False
    assert (state.since, state.last_login, state.last_logout) == (at(20), at(0), at(20))
    assert (state.logins_total, state.logouts_total, state.qr_codes_total) == (0, 0, 1)


def test_account_not_named_within_the_budget(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    chat = PY_CHAT * (1024 * 1024 // len(PY_CHAT))
    write(log, py(0, LOGIN), chat, py(20, LOGOUT), py(21, WAITING))
    found = scan_backwards(str(log), LineParser, max_scan=256 * 1024)
    assert found.found and not found.gave_up  # the state is known; only the name is not
    assert found.scanned == 256 * 1024  # the lookback stops at the same cap
    state = BotState()
    found.apply(state)
    assert state.user is None and state.logged_in is False and state.qr is not None
    assert (state.since, state.last_login, state.last_logout) == (at(20), None, at(20))


def test_logged_in_bot_reads_no_further_than_its_login(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    chat = PY_CHAT * (1024 * 1024 // len(PY_CHAT))
    recent = PY_CHAT * (100 * 1024 // len(PY_CHAT))
    write(log, py(0, LOGIN), chat, py(10, LOGOUT), py(11, WAITING), py(12, LOGIN), recent)
    found = scan_backwards(str(log), LineParser)
    state = BotState()
    found.apply(state)
    assert state.user == "wxid_bob" and state.logged_in is True
    assert found.scanned == 256 * 1024  # the block that holds the last login, and no more
    assert (state.since, state.last_login, state.last_logout) == (at(12), at(12), at(10))


def test_partial_last_line_is_left_for_the_tailer(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, "09:00:00 INFO StarterBot Contact<Bob> login\n", "09:00:01 INFO StarterBot Conta")
    state, _, end = state_of(log)
    assert state.logged_in is True
    assert end == len(b"09:00:00 INFO StarterBot Contact<Bob> login\n")


def test_decisive_event_far_back_grows_the_window(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, "09:00:00 INFO StarterBot Contact<Bob> login\n", CHAT * 20000)
    state, scanned, _ = state_of(log)
    assert state.logged_in is True and state.user == "Bob"
    assert scanned >= 20000 * len(CHAT.encode()) // 2


def test_no_decisive_event_leaves_state_unknown(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, CHAT * 1000)
    state, _, end = state_of(log)
    assert state.logged_in is None and not state.known
    assert end == log.stat().st_size


def test_gives_up_at_the_cap(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, "09:00:00 INFO StarterBot Contact<Bob> login\n", CHAT * 30000)
    found = scan_backwards(str(log), LineParser, max_scan=256 * 1024)
    assert found.gave_up and not found.found and found.events == []


def test_empty_file(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.touch()
    found = scan_backwards(str(log), LineParser)
    assert (found.end, found.events, found.found) == (0, [], False)


def test_two_line_qrcodeterminal_entry_is_replayed_whole(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(
        log,
        "09:00:00 INFO StarterBot Contact<Bob> logout\n",
        "09:00:01 INFO QRCodeTerminal Login QR Code Status: Waiting(2)\n",
        f"QR Code Image URL: https://wechaty.js.org/qrcode/{QR}\n",
        CHAT,
    )
    found = scan_backwards(str(log), LineParser)
    assert [type(e) for e in found.events] == [Scan]
    assert found.lines == 3  # the status line, its URL line, the chat line


def test_lines_without_dates_get_the_file_mtime(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    write(log, "09:00:00 INFO StarterBot Contact<Bob> logout\n")
    os.utime(log, (1_700_000_000, 1_700_000_000))
    found = scan_backwards(str(log), LineParser)
    assert len(found.events) == 1
    assert isinstance(found.events[0], Logout) and found.events[0].at == 1_700_000_000.0


def test_python_wechaty_confirmed_relogin(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    scan = "2026-11-25 10:00:0{} - Wechaty - INFO - receive <scan> event <EventScanPayload(status=<ScanStatus.{}: {}>, qrcode={}, data=None)>\n"  # noqa: E501
    write(
        log,
        "2026-11-25 09:00:00,000 - Wechaty - INFO - receive <login> event <EventLoginPayload(contact_id='wxid_bob')>\n",  # noqa: E501
        scan.format("1,000", "Waiting", 2, repr(QR)),
        scan.format("2,000", "Scanned", 3, "None"),
        scan.format("3,000", "Confirmed", 4, "None"),
    )
    state, _, _ = state_of(log)
    assert state.logged_in is True and state.qr is None
    assert state.user == "wxid_bob"  # from the login line before the replayed entry
    assert state.last_login == state.since == at(3)  # as replay says: the Confirmed scan
    events = scan_backwards(str(log), LineParser).events
    # Replay starts at the last decisive entry (Confirmed); the old login line is not replayed.
    assert [e.status for e in events if isinstance(e, Scan)] == [ScanStatus.CONFIRMED]
    assert not any(isinstance(e, Login) for e in events)


# --- counting_since: from when the monitor's counters count -------------------------------------


def recover(
    tmp_path: Path, *logs: Path, clock: float = 2e9, state_dir: Path | None = None
) -> Monitor:
    settings = ExporterSettings(bots=(("bob", tuple(map(str, logs))),), state_dir=state_dir)
    monitor = Monitor(settings, clock=lambda: clock)
    monitor.recover()
    return monitor


def test_cold_start_counts_from_the_replayed_entry(tmp_path: Path) -> None:
    log = tmp_path / "bob.log"
    write(log, py(0, LOGIN), py(20, LOGOUT), py(21, WAITING))
    monitor = recover(tmp_path, log)
    assert monitor.counting_since["bob"] == at(21)
    assert monitor.bots["bob"].qr_codes_total == 1  # the replayed QR: counted since then


def test_a_log_without_decisive_entries_or_missing_is_counted_whole(tmp_path: Path) -> None:
    chat = tmp_path / "bob.log"
    write(chat, PY_CHAT * 10)
    assert recover(tmp_path, chat, tmp_path / "not-yet.log").counting_since["bob"] is None


def test_giving_up_counts_from_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "bob.log"
    write(log, py(0, LOGIN), PY_CHAT * 10000)
    small = functools.partial(scan_backwards, max_scan=64 * 1024)
    monkeypatch.setattr(monitor_module, "scan_backwards", small)
    assert recover(tmp_path, log, clock=2e9).counting_since["bob"] == 2e9


def test_resumed_bot_keeps_its_counting_since(tmp_path: Path) -> None:
    log, state_dir = tmp_path / "bob.log", tmp_path / "state"
    write(log, py(0, LOGIN), py(20, LOGOUT), py(21, WAITING))
    first = recover(tmp_path, log, state_dir=state_dir)
    first.save()
    again = recover(tmp_path, log, clock=3e9, state_dir=state_dir)
    assert again.start_report is not None and again.start_report.resumed == (str(log),)
    assert again.counting_since["bob"] == at(21)
    # A state file from before counting_since was kept: counted from this start, at least.
    path = state_dir / statefile.FILENAME
    document = json.loads(path.read_bytes())
    del document["counting_since"]
    path.write_text(json.dumps(document))
    assert recover(tmp_path, log, clock=4e9, state_dir=state_dir).counting_since["bob"] == 4e9
