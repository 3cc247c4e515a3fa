"""Cold start: the backward scan finds the last decisive entry and reads only what it must."""

from __future__ import annotations

import os
from pathlib import Path

from wechaty_exporter.exporter.coldstart import scan_backwards
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import Login, Logout, Scan, ScanStatus
from wechaty_exporter.logs.state import BotState

QR = "https://login.weixin.qq.com/l/abc"
CHAT = "10:00:00 INFO StarterBot Message#Text[🗣Contact<Carol>@Room<ops>]\tjust chatting\n"


def write(path: Path, *parts: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        for part in parts:
            f.write(part)


def state_of(path: Path) -> tuple[BotState, int, int]:
    found = scan_backwards(str(path), LineParser)
    state = BotState()
    for e in found.events:
        state.apply(e)
    return state, found.scanned, found.end


def test_finds_last_decisive_event_in_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    chat_mb = CHAT * (50 * 1024 * 1024 // len(CHAT))
    write(
        log,
        "09:00:00 INFO StarterBot Contact<Bob> login\n",
        chat_mb,
        "11:00:00 INFO StarterBot Contact<Bob> logout\n",
        f"11:00:01 INFO StarterBot onScan: Waiting(2) - {QR}\n",
        CHAT * 100,
    )
    state, scanned, end = state_of(log)
    assert state.logged_in is False and state.qr is not None and state.qr.qrcode == QR
    assert state.logouts_total == 0  # replay starts at the last decisive entry: the QR
    assert scanned <= 64 * 1024  # one block, not 50 MB
    assert end == log.stat().st_size


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
    events = scan_backwards(str(log), LineParser).events
    # Replay starts at the last decisive entry (Confirmed); the old login line is not replayed.
    assert [e.status for e in events if isinstance(e, Scan)] == [ScanStatus.CONFIRMED]
    assert not any(isinstance(e, Login) for e in events)
