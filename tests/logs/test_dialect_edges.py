"""Edge rules of the dialects that the sample-log tests in test_dialects.py do not pin down.

Written against mutants the rest of the suite let through (docs/MUTATION.md): the time of an
event is its line's own date (a pm2 --time / docker wrapper), not the time it was read; a scan
status outside 0..5 is no event; a QR cut by the per-line cap is rejected in every dialect;
`feed_block` stops at `end`; pm2 JSON timestamps in seconds and milliseconds; wrapper depth.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.qr import check_qr_normalized, normalize_hosts
from wechaty_exporter.logs.dialects.selflog import format_self_log
from wechaty_exporter.logs.dialects.structure import (
    DATE_WRAPPER_RE,
    HEAD_CAP,
    MAX_WRAPPERS,
    date_seconds,
    strip,
)
from wechaty_exporter.logs.events import Event, Login, Logout, RejectedQr, Scan, ScanStatus

NOW = 1_000_000_000.0  # when the line is read
WRAP = "2026-11-25T10:00:00Z: "  # pm2 --time: the line's own date
STAMP = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC).timestamp()
QR = "https://login.weixin.qq.com/l/abcX"  # ends in X: nothing may strip it
LONG_QR = "https://login.weixin.qq.com/l/" + "a" * HEAD_CAP  # past the per-line cap
PY = "2026-11-25 10:00:00,000 - Wechaty - INFO - receive"
EL = "10:00:00 INFO WechatyPluginContrib EventLogger"
QRT = "10:00:00 INFO WechatyPluginContrib QRCodeTerminal Login QR Code Status"
QRT_URL = "QR Code Image URL: https://api.qrserver.com/v1/create-qr-code/?data="
QR_ENCODED = "https%3A%2F%2Flogin.weixin.qq.com%2Fl%2Fabc"


def feed(*lines: str, parser: LineParser | None = None) -> list[Event]:
    parser = parser or LineParser()
    return [event for line in lines for event in parser.feed(line, NOW)]


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (
            "10:00:00 INFO StarterBot onScan: Waiting(2) - " + QR,
            Scan(STAMP, ScanStatus.WAITING, QR),
        ),
        ("10:00:00 INFO StarterBot onScan: Scanned(3)", Scan(STAMP, ScanStatus.SCANNED)),
        ("10:00:00 INFO StarterBot Contact<Bob> login", Login(STAMP, "Bob")),
        ("10:00:00 INFO StarterBot Contact<Bob> logout", Logout(STAMP, "Bob")),
        (f"{EL} scan: {QR},2,", Scan(STAMP, ScanStatus.WAITING, QR)),
        (f"{EL} scan: ,3,", Scan(STAMP, ScanStatus.SCANNED)),
        (f"{EL} login: Contact<Bob>", Login(STAMP, "Bob")),
        (f"{EL} logout: Contact<Bob>,kicked", Logout(STAMP, "Bob", "kicked")),
        (f"{EL} scan: {LONG_QR},2,", RejectedQr(STAMP, "qr too long")),
    ],
)
def test_an_event_has_its_lines_own_date(line: str, event: Event) -> None:
    assert feed(WRAP + line) == [event]
    assert feed(line) == [type(event)(NOW, *event_fields(event)[1:])]  # no date: read time


def event_fields(event: Event) -> tuple[object, ...]:
    return tuple(getattr(event, name) for name in event.__dataclass_fields__)


def test_a_qrcode_terminal_entry_has_the_date_of_its_first_line() -> None:
    events = feed(WRAP + f"{QRT}: Waiting(2)", QRT_URL + QR_ENCODED)
    assert events == [Scan(STAMP, ScanStatus.WAITING, "https://login.weixin.qq.com/l/abc")]


def test_a_qrcode_terminal_qr_is_not_from_the_self_log() -> None:
    parser = LineParser(self_log_qr_only=True)
    events = feed(f"{QRT}: Waiting(2)", QRT_URL + QR_ENCODED, parser=parser)
    assert events == [RejectedQr(NOW, "qr not from the self-log")]


@pytest.mark.parametrize(
    "line",
    [
        "10:00:00 INFO StarterBot onScan: Unknown(6)",
        f"{EL} scan: ,6,",
        f"{QRT}: Unknown(6)",
        f"{PY} <scan> event <EventScanPayload(status=<ScanStatus.Waiting: 6>, qrcode=None, "
        "data=None)>",
    ],
)
def test_a_status_outside_0_to_5_is_no_event(line: str) -> None:
    assert feed(line) == []


@pytest.mark.parametrize(
    "lines",
    [
        ("10:00:00 INFO StarterBot onScan: Waiting(2) - " + LONG_QR,),
        (f"{PY} <scan> event <EventScanPayload(status=<ScanStatus.Waiting: 2>, "
         f"qrcode='{LONG_QR}', data=None)>",),
        (f"{QRT}: Waiting(2)", "QR Code Image URL: " + LONG_QR),
    ],
)  # fmt: skip
def test_a_qr_cut_by_the_line_cap_is_rejected(lines: tuple[str, ...]) -> None:
    (event,) = feed(*lines)
    assert isinstance(event, RejectedQr)
    assert event.reason == "qr too long"


def test_python_logout_reason_and_escapes() -> None:
    assert feed(f"{PY} <logout> event <EventLogoutPayload(contact_id='wxid_bob')>") == [
        Logout(STAMP, "wxid_bob", None)
    ]
    data = "k\\x41\\u4e2d\\U0001f600\\U00110000"  # the last is past U+10FFFF
    line = f"{PY} <logout> event <EventLogoutPayload(contact_id='wxid_bob', data='{data}')>"
    assert feed(line) == [Logout(STAMP, "wxid_bob", "kA中😀\ufffd")]


@pytest.mark.parametrize(
    ("stamp", "at"), [(1795600800, 1795600800.0), (1795600800123, 1795600800.123)]
)
def test_pm2_json_timestamp_in_seconds_or_milliseconds(stamp: int, at: float) -> None:
    line = (
        '{"message":"10:00:00 INFO StarterBot Contact<Bob> login\\n",'
        f'"timestamp":{stamp},"type":"out","process_id":0,"app_name":"bob"}}'
    )
    assert feed(line) == [Login(at, "Bob")]


def test_wrappers_are_stripped_up_to_max_wrappers() -> None:
    login = "10:00:00 INFO StarterBot Contact<Bob> login"
    assert feed("0|bob      | " * MAX_WRAPPERS + login) == [Login(NOW, "Bob")]
    assert feed("0|bob      | " * (MAX_WRAPPERS + 1) + login) == []


def test_feed_block_stops_at_end_and_takes_an_empty_first_line() -> None:
    data = b"10:00:00 INFO StarterBot Contact<Bob> login\n"
    assert LineParser().feed_block(data, NOW, end=len(data) - 8) == []  # "Contact<Bob> l"
    assert LineParser().feed_block(data, NOW, end=len(data)) == [Login(NOW, "Bob")]
    assert LineParser().feed_block(b"\n" + data, NOW) == [Login(NOW, "Bob")]
    assert LineParser().feed_block(b"\n\n" + data + b"\n", NOW) == [Login(NOW, "Bob")]


# --- structure: dates and stripping -----------------------------------------------------------


def wrapper_date(text: str, zone: timezone | None = None, fallback: float = -1.0) -> float:
    found = DATE_WRAPPER_RE.match(text)
    assert found is not None, text
    return date_seconds(found, zone, fallback)


def test_date_seconds_offsets_fractions_and_zones() -> None:
    base = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC).timestamp()
    assert wrapper_date("2026-11-25T10:00:00Z: x") == base
    assert wrapper_date("2026-11-25T10:00:00+05:30: x") == base - 5.5 * 3600
    assert wrapper_date("2026-11-25T10:00:00-0800 x") == base + 8 * 3600
    assert wrapper_date("2026-11-25T10:00:00+02: x") == base - 2 * 3600
    assert wrapper_date("2026-11-25T10:00:00.25Z: x") == base + 0.25
    assert wrapper_date("2026-11-25T10:00:00.1234567Z: x") == base + 0.123456
    cst = timezone(timedelta(hours=8))
    assert wrapper_date("2026-11-25T10:00:00: x", cst) == base - 8 * 3600  # the parser's zone
    assert wrapper_date("2026-11-25 10:00:00: x", cst) == base - 8 * 3600


def test_date_seconds_falls_back_on_impossible_dates() -> None:
    assert wrapper_date("2026-13-25T10:00:00Z: x", fallback=7.0) == 7.0
    assert wrapper_date("2026-02-30T10:00:00Z: x", fallback=7.0) == 7.0


def test_strip_removes_ansi_and_one_trailing_cr() -> None:
    assert strip("abc\r") == "abc"
    assert strip("abc\r\r") == "abc\r"
    assert strip("a\rb") == "a\rb"
    assert strip("\x1b[32mINFO\x1b[39m x\r") == "INFO x"
    assert strip("plain") == "plain"
    assert strip("\r") == ""


# --- EventLoggerPlugin (JSON arguments), python-wechaty enum names, QR wrappers ---------------

ELP = "10:00:00 INFO WechatyPluginContrib EventLoggerPlugin() "


def elp(event: str, *args: object) -> str:
    return f"{ELP}{event}: {json.dumps(list(args), ensure_ascii=False, separators=(',', ':'))}"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (elp("login", {"id": "wxid_bob", "payload": {"id": "wxid_p"}}), Login(STAMP, "wxid_p")),
        (elp("login", {"id": "wxid_bob", "payload": {"name": ""}}), Login(STAMP, "wxid_bob")),
        (elp("login", {"id": "wxid_bob"}), Login(STAMP, "wxid_bob")),
        (elp("login", {"id": 5, "payload": {"id": ""}}), Login(STAMP, None)),
        (elp("logout", {"id": "wxid_bob"}, "kicked"), Logout(STAMP, "wxid_bob", "kicked")),
        (elp("scan", LONG_QR, 2), RejectedQr(STAMP, "qr too long")),
    ],
)
def test_event_logger_plugin_names_and_dates(line: str, event: Event) -> None:
    assert feed(WRAP + line) == [event]


def test_python_scan_status_by_its_grpc_name() -> None:
    line = f"{PY} <scan> event <EventScanPayload(status=ScanStatus.SCAN_STATUS_CONFIRMED, "
    assert feed(line + "qrcode=None, data=None)>") == [Scan(STAMP, ScanStatus.CONFIRMED)]


def test_python_unknown_escapes_are_kept_and_the_last_code_point_is_valid() -> None:
    line = (
        f"{PY} <logout> event <EventLogoutPayload(contact_id='wxid_bob', data='a\\qb\\U0010ffff')>"
    )
    assert feed(line) == [Logout(STAMP, "wxid_bob", "a\\qb\U0010ffff")]


@pytest.mark.parametrize(
    ("qr", "url", "reason"),
    [
        # The raw form keeps its escapes: only the encoded form is unquoted (so "%" stays, and
        # no login-QR id has one; unquoted, "abA" would pass).
        ("https://wechaty.js.org/qrcode/https://login.weixin.qq.com/l/ab%41", None,
         "not a login qr"),
        ("https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2Fab%41",
         "https://login.weixin.qq.com/l/abA", None),
        ("https://api.qrserver.com/v1/create-qr-code/?data=" + QR_ENCODED + "#frag",
         "https://login.weixin.qq.com/l/abc", None),
        # The first data parameter counts, even empty.
        ("https://api.qrserver.com/v1/create-qr-code/?data=&data=" + QR_ENCODED, None,
         "missing qr"),
    ],
)  # fmt: skip
def test_qr_wrappers(qr: str, url: str | None, reason: str | None) -> None:
    hosts = normalize_hosts(["login.weixin.qq.com"])
    assert check_qr_normalized(qr, hosts) == (url, reason)


@pytest.mark.parametrize(
    ("kind", "fields", "event"),
    [
        ("login", {"user": 5, "id": "wxid_1"}, Login(STAMP, "wxid_1")),  # not a string: the id
        ("login", {"user": "", "id": 7}, Login(STAMP, None)),
        ("logout", {"user": "Bob", "reason": 3}, Logout(STAMP, "Bob", None)),
        ("scan", {"status": 2, "qrcode": 5}, RejectedQr(STAMP, "missing qr")),
    ],
)
def test_self_log_fields_of_the_wrong_type(
    kind: str, fields: dict[str, object], event: Event
) -> None:
    assert feed(format_self_log(kind, fields, STAMP)) == [event]


def test_self_log_keeps_non_ascii_readable() -> None:
    line = format_self_log("login", {"user": "李雷"}, STAMP)
    assert line.endswith(' INFO wechaty-exporter login {"user":"李雷"}')
    assert feed(line) == [Login(STAMP, "李雷")]


def test_event_logger_plugin_contact_id_that_is_no_string() -> None:
    assert feed(elp("login", {"id": 5})) == [Login(NOW, None)]
