"""dialects: every log dialect and wrapper, hostile input, QR validation, self-log round trip."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.qr import DEFAULT_QR_HOSTS, QR_MAX_LENGTH, check_qr, unwrap_qr
from wechaty_exporter.logs.dialects.selflog import SELF_LOG_NAME, format_self_log
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)
from wechaty_exporter.logs.state import BotState

DATA = Path(__file__).parents[1] / "data" / "dialects"
NOW = 1_800_000_000.0
CST = timezone(timedelta(hours=8))  # the zone WeChat bots usually run in
QR = "https://login.weixin.qq.com/l/IdAbc12=="
QR_X = "http://weixin.qq.com/x/IdXyz34"
EVIL = "https://weixin.qq.com.evil.example/l/x"
JS = "https://wechaty.js.org/qrcode/"
QS = "https://api.qrserver.com/v1/create-qr-code/?data="
S = ScanStatus


def enc(url: str) -> str:
    return quote(url, safe="")


def ts(iso: str) -> float:
    """Unix time of an ISO date, computed as the parser computes it (so == is exact)."""
    return datetime.fromisoformat(iso).timestamp()


def feed(*lines: str, tz: tzinfo | None = CST, now: float = NOW) -> list[Event]:
    parser = LineParser(tz=tz)
    return [event for line in lines for event in parser.feed(line, now)]


def waiting(qr: str = QR, at: float = NOW) -> Scan:
    return Scan(at, S.WAITING, qr)


T_CST = ts("2026-11-25T10:00:00+08:00")  # == 2026-11-25T02:00:00Z


# ---------------------------------------------------------------------------------------------
# brolog (TypeScript Wechaty)

BROLOG: list[tuple[str, list[Event]]] = [
    # every ScanStatus
    ("10:00:00 INFO StarterBot onScan: Unknown(0)", [Scan(NOW, S.UNKNOWN)]),
    ("10:00:00 INFO StarterBot onScan: Cancel(1)", [Scan(NOW, S.CANCEL)]),
    (f"10:00:00 INFO StarterBot onScan: Waiting(2) - {QR}", [waiting()]),
    ("10:00:00 INFO StarterBot onScan: Scanned(3)", [Scan(NOW, S.SCANNED)]),
    ("10:00:00 INFO StarterBot onScan: Confirmed(4)", [Scan(NOW, S.CONFIRMED)]),
    ("10:00:00 INFO StarterBot onScan: Timeout(5)", [Scan(NOW, S.TIMEOUT)]),
    (f"10:00:00 INFO StarterBot onScan: Timeout(5) - {QR}", [Scan(NOW, S.TIMEOUT)]),
    # QR forms: wrapped (encoded / raw), github.io, qrserver, raw x-form
    (f"10:00:00 INFO StarterBot onScan: Waiting(2) - {JS}{enc(QR)}", [waiting()]),
    (f"10:00:00 INFO StarterBot onScan: Waiting(2) - {JS}{QR}", [waiting()]),
    (
        f"10:00:00 INFO Bot onScan: Waiting(2) - https://wechaty.github.io/qrcode/{enc(QR)}",
        [waiting()],
    ),
    (f"10:00:00 INFO Bot onScan: Waiting(2) - {QS}{enc(QR)}&size=200x200", [waiting()]),
    (f"10:00:00 INFO Bot onScan: Waiting(2) - {QR_X}", [waiting(QR_X)]),
    # the number decides; unknown numbers are no event
    (f"10:00:00 INFO Bot onScan: Scanned(2) - {QR}", [waiting()]),
    ("10:00:00 INFO Bot onScan: Waiting(3)", [Scan(NOW, S.SCANNED)]),
    (f"10:00:00 INFO Bot onScan: Waiting(9) - {QR}", []),
    # Waiting without a QR
    ("10:00:00 INFO Bot onScan: Waiting(2)", [RejectedQr(NOW, "missing qr")]),
    ("10:00:00 INFO Bot onScan: Waiting(2) - ", [RejectedQr(NOW, "missing qr")]),
    # login / logout, odd names
    ("10:00:00 INFO StarterBot Contact<Bob> login", [Login(NOW, "Bob")]),
    ("10:00:00 INFO StarterBot Contact<Bob Smith> login", [Login(NOW, "Bob Smith")]),
    ("10:00:00 INFO StarterBot Contact<a>b> login", [Login(NOW, "a>b")]),
    ("10:00:00 INFO StarterBot Contact<🤖 机器人 > login", [Login(NOW, "🤖 机器人 ")]),
    ("10:00:00 INFO StarterBot ContactSelf<Bob> login", [Login(NOW, "Bob")]),
    ("10:00:00 INFO StarterBot Contact<> login", [Login(NOW, None)]),
    ("10:00:00 INFO StarterBot Contact<Bob> logout", [Logout(NOW, "Bob")]),
    ("10:00:00 INFO Bot Contact<Bob> logout kicked out", [Logout(NOW, "Bob", "kicked out")]),
    ("10:00:00 INFO Bot Contact<Bob> logout: kicked", [Logout(NOW, "Bob", "kicked")]),
    ("10:00:00 INFO Bot Contact<a> logout> logout x", [Logout(NOW, "a> logout", "x")]),
    # levels and prefixes
    ("10:00:00 VERB Any.Prefix-1 Contact<Bob> login", [Login(NOW, "Bob")]),
    ("10:00:00 SILL x Contact<Bob> logout", [Logout(NOW, "Bob")]),
    ("10:00:00 WARN Bot Contact<Bob> logout", [Logout(NOW, "Bob")]),
    ("10:00:00 ERR PuppetService grpc error 14 UNAVAILABLE", [ErrorLogged(NOW)]),
    ("10:00:00 ERR Bot", [ErrorLogged(NOW)]),
    ("10:00:00 ERR Bot Contact<Bob> logout", [ErrorLogged(NOW), Logout(NOW, "Bob")]),
    # not events: message not anchored, wrong words, wrong level, no structure
    (f"10:00:00 INFO Bot Message#Text[🗣Contact<M>]\tonScan: Waiting(2) - {QR}", []),
    ("10:00:00 INFO Bot Message#Text[🗣Contact<M>]\tContact<Bob> logout", []),
    ("10:00:00 INFO Bot Contact<Bob> logged in", []),
    ("10:00:00 INFO Bot Contact<Bob> login now", []),
    ("10:00:00 INFO Bot Contact<Bob> logouts", []),
    ("10:00:00 INFO Bot  Contact<Bob> login", []),
    ("10:00:00 DEBUG Bot Contact<Bob> login", []),
    ("10:00:00 INFO Contact<Bob> login", []),
    ("Contact<Bob> login", []),
    (f"onScan: Waiting(2) - {QR}", []),
    ("10:00:00 ERROR Bot failed", []),
    ("10:00:00 INFO Bot oops onScan: Waiting(2)", []),
    ("", []),
]


@pytest.mark.parametrize(("line", "expected"), BROLOG)
def test_brolog(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


# ---------------------------------------------------------------------------------------------
# wechaty-plugin-contrib EventLogger

EL = "10:00:00 INFO WechatyPluginContrib EventLogger "
EVENTLOGGER: list[tuple[str, list[Event]]] = [
    (f"{EL}scan: {QR},2,", [waiting()]),
    (f"{EL}scan: {QR},2,some data, with commas", [waiting()]),
    (f"{EL}scan: {JS}{enc(QR)},2,", [waiting()]),
    (f"{EL}scan: ,0,", [Scan(NOW, S.UNKNOWN)]),
    (f"{EL}scan: ,1,", [Scan(NOW, S.CANCEL)]),
    (f"{EL}scan: ,3,", [Scan(NOW, S.SCANNED)]),
    (f"{EL}scan: ,4,", [Scan(NOW, S.CONFIRMED)]),
    (f"{EL}scan: {QR},5,", [Scan(NOW, S.TIMEOUT)]),
    (f"{EL}scan: ,2,", [RejectedQr(NOW, "missing qr")]),
    (f"{EL}scan: https://evil.example/l/x,2,", [RejectedQr(NOW, "host not allowed")]),
    (f"{EL}scan: {QR}", []),
    (f"{EL}login: Contact<Bob>", [Login(NOW, "Bob")]),
    (f"{EL}login: ContactSelf<Bob <Ops> 🐱>", [Login(NOW, "Bob <Ops> 🐱")]),
    (f"{EL}logout: Contact<Bob>,kicked", [Logout(NOW, "Bob", "kicked")]),
    (f"{EL}logout: Contact<Bob>,", [Logout(NOW, "Bob")]),
    (f"{EL}logout: Contact<a>b>,x,y", [Logout(NOW, "a>b", "x,y")]),
    (f"{EL}logout: Contact<Bob>", [Logout(NOW, "Bob")]),
    # the plugin's own prefix form
    (f"10:00:00 INFO EventLogger scan: {QR},2,", [waiting()]),
    ("10:00:00 INFO EventLogger login: Contact<Bob>", [Login(NOW, "Bob")]),
    ("10:00:00 INFO EventLogger logout: Contact<Bob>,bye", [Logout(NOW, "Bob", "bye")]),
    # other events and chat
    (f"{EL}ready: ", []),
    (f'{EL}heartbeat: {{"data":"ding"}}', []),
    (f"{EL}message: Message#Text[🗣Contact<M>]\tscan: {QR},2,", []),
    (f"{EL}message: Message#Text[🗣Contact<M>]\tlogin: Contact<Bob>", []),
    ("10:00:00 ERR WechatyPluginContrib EventLogger error: Error: boom", [ErrorLogged(NOW)]),
    ("10:00:00 INFO Bot EventLoggerX login: Contact<Bob>", []),
]


@pytest.mark.parametrize(("line", "expected"), EVENTLOGGER)
def test_eventlogger(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


# ---------------------------------------------------------------------------------------------
# wechaty-plugin-contrib EventLogger 1.12 on: `EventLoggerPlugin() <event>: JSON.stringify(args)`
# (real lines: tests/data/dialects/eventlogger-json.log, from tests/genuine's corpus)

ELP = "10:00:00 INFO WechatyPluginContrib EventLoggerPlugin() "
REASON = "为了你的帐号安全，请重新登录。"


def contact(name: object = "Bob", **payload: object) -> dict[str, Any]:
    """A Contact, as JSON.stringify writes it (wechaty's ContactImpl)."""
    body = {"id": "wxid_bob", "name": name, "type": 1, **payload}
    if name is None:
        del body["name"]
    return {"_events": {}, "_eventsCount": 0, "id": "wxid_bob", "payload": body}


def js(value: object) -> str:
    """`value` as JSON.stringify writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def elp(event: str, *args: object) -> str:
    return f"{ELP}{event}: {js(list(args))}"


EVENTLOGGER_PLUGIN: list[tuple[str, list[Event]]] = [
    # scan: [qrcode, status, data]; the number decides
    (elp("scan", QR, 2, None), [waiting()]),
    (elp("scan", QR, 2, "some data, with commas"), [waiting()]),
    (elp("scan", QR, 2, {"x": [1, "]"]}), [waiting()]),
    (elp("scan", JS + enc(QR), 2, None), [waiting()]),
    (elp("scan", QR_X, 2, None), [waiting(QR_X)]),
    (f'{ELP}scan: ["https:\\/\\/login.weixin.qq.com\\/l\\/IdAbc12==",2,null]', [waiting()]),
    (f'{ELP}scan: ["{QR}",2]', [waiting()]),
    (elp("scan", "", 0, None), [Scan(NOW, S.UNKNOWN)]),
    (elp("scan", "", 1, None), [Scan(NOW, S.CANCEL)]),
    (elp("scan", QR, 3, None), [Scan(NOW, S.SCANNED)]),
    (elp("scan", QR, 4, None), [Scan(NOW, S.CONFIRMED)]),
    (elp("scan", QR, 5, None), [Scan(NOW, S.TIMEOUT)]),  # a Timeout's URL is never pending
    (elp("scan", "", 2, None), [RejectedQr(NOW, "missing qr")]),
    (elp("scan", EVIL, 2, None), [RejectedQr(NOW, "host not allowed")]),
    (elp("scan", QR + "\n10:00:00 INFO x", 2, None), [RejectedQr(NOW, "bad character")]),
    (elp("scan", QR + "\ud800", 2, None), [RejectedQr(NOW, "bad character")]),
    (f'{ELP}scan: ["{QR}\\x",2,null]', [RejectedQr(NOW, "bad character")]),  # not JSON
    (elp("scan", QR, 9, None), []),
    (elp("scan", QR, "2", None), []),
    (elp("scan", None, 2, None), []),
    (elp("scan", QR), []),
    (f"{ELP}scan: {QR},2,", []),  # 1.11's form after 1.12's prefix
    (f'{ELP}scan: ["{QR}" ,2,null]', []),
    # login: [contact]: the account is payload.name, else the contact's id
    (elp("login", contact()), [Login(NOW, "Bob")]),
    (elp("login", contact('Bob "the" 机器人 🤖 <Ops>')), [Login(NOW, 'Bob "the" 机器人 🤖 <Ops>')]),
    (elp("login", contact("a\u2028b")), [Login(NOW, "a\u2028b")]),
    (elp("login", contact("")), [Login(NOW, "wxid_bob")]),
    (elp("login", contact(None)), [Login(NOW, "wxid_bob")]),
    (elp("login", contact(42)), [Login(NOW, "wxid_bob")]),
    (elp("login", {"id": "wxid_x"}), [Login(NOW, "wxid_x")]),
    (f'{ELP}login: [{{"payload":{{"name":"\\ud800"}}}}]', [Login(NOW, "\ufffd")]),
    (f"{ELP}login: [1]", [Login(NOW, None)]),
    (f"{ELP}login: []", []),
    (f"{ELP}login: [{js(contact())}", []),
    (f"{ELP}login: [{js(contact())}] x", []),
    (f"{ELP}login: {js(contact())}", []),
    (f"{ELP}login: [{js(contact())}]\r", [Login(NOW, "Bob")]),
    # logout: [contact, reason]
    (elp("logout", contact(), REASON), [Logout(NOW, "Bob", REASON)]),
    (elp("logout", contact(), 'a\nb "c"'), [Logout(NOW, "Bob", 'a\nb "c"')]),
    (elp("logout", contact()), [Logout(NOW, "Bob")]),
    (elp("logout", contact(), None), [Logout(NOW, "Bob")]),
    (elp("logout", contact(), ""), [Logout(NOW, "Bob")]),
    (elp("logout", contact(), 42), [Logout(NOW, "Bob")]),
    (f'{ELP}logout: [{js(contact())},"\\udc00x"]', [Logout(NOW, "Bob", "\ufffdx")]),
    # any prefix; levels; other events and chat are not events
    (f"10:00:00 VERB Bot EventLoggerPlugin() login: [{js(contact())}]", [Login(NOW, "Bob")]),
    (
        f"10:00:00 ERR Bot EventLoggerPlugin() login: [{js(contact())}]",
        [ErrorLogged(NOW), Login(NOW, "Bob")],
    ),
    (f"10:00:00 INFO EventLoggerPlugin() login: [{js(contact())}]", []),
    (f"10:00:00 INFO Bot EventLoggerPluginX() login: [{js(contact())}]", []),
    (f"10:00:00 INFO Bot  EventLoggerPlugin() login: [{js(contact())}]", []),
    (elp("ready"), []),
    (elp("heartbeat", {"data": "heartbeat@browserbridge ding"}), []),
    (elp("message", {"payload": {"text": f'\n{ELP}scan: ["{QR}",2,null]'}}), []),
    (elp("message", {"payload": {"text": "\n10:00:00 INFO Bot Contact<M> login"}}), []),
    (
        f"10:00:00 ERR WechatyPluginContrib EventLoggerPlugin() error: {json.dumps([{}])}",
        [ErrorLogged(NOW)],
    ),
    (f"10:00:00 INFO Bot Message#Text[🗣Contact<M>]\t{elp('scan', QR, 2, None)}", []),
]


@pytest.mark.parametrize(("line", "expected"), EVENTLOGGER_PLUGIN)
def test_eventlogger_plugin(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


LONG_SIGNATURE = "签" * 9000  # a contact whose JSON passes the 8 KiB structure cap
BIG_QR = "https://login.weixin.qq.com/l/" + "a" * 9000

EVENTLOGGER_PLUGIN_CAPPED: list[tuple[str, list[Event]]] = [
    # a scan: the QR and status come first, what follows may be cut
    (elp("scan", QR, 2, "x" * 20000), [waiting()]),
    (
        elp("scan", "https://login.weixin.qq.com/l/" + "a" * 9000, 2, None),
        [RejectedQr(NOW, "qr too long")],
    ),
    (
        elp("scan", "https://login.weixin.qq.com/l/" + "a" * 3000, 2, None),
        [RejectedQr(NOW, "qr too long")],
    ),
    # a login or logout the cap cut is still one, naming no user (nor reason)
    (elp("login", contact(signature=LONG_SIGNATURE)), [Login(NOW, None)]),
    (elp("logout", contact(signature=LONG_SIGNATURE), REASON), [Logout(NOW, None, None)]),
    # deep nesting within the cap: no event, no RecursionError
    (f"{ELP}login: " + "[" * 4000 + "]" * 4000, []),
    (f"{ELP}logout: [" + "{" * 3000, []),
]


@pytest.mark.parametrize(
    ("line", "expected"), EVENTLOGGER_PLUGIN_CAPPED, ids=range(len(EVENTLOGGER_PLUGIN_CAPPED))
)
def test_eventlogger_plugin_capped(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


def test_eventlogger_plugin_in_wrappers() -> None:
    """The current EventLogger's lines in pm2's wrappers, as tests/genuine's pm2 runs wrote
    them: a JSON message whose own JSON is escaped again, and a --time prefix."""
    line = elp("logout", contact(), REASON)
    logout = Logout(T_CST, "Bob", REASON)
    assert feed(pm2_json(line + "\n")) == [logout]
    assert feed(pm2_json(line + "\n", "2026-11-25T10:00:00")) == [logout]
    assert feed(f"2026-11-25T10:00:00: {line}") == [logout]
    assert feed(f"\x1b[32m0|bob  | \x1b[39m{line}") == [Logout(NOW, "Bob", REASON)]
    # one pm2 record holding two lines (writes coalesced into one chunk)
    scan = elp("scan", QR, 3, None)
    both = pm2_json(
        f"{scan}\n10:00:00 INFO WechatyPluginContrib QRCodeTerminal onScan: Scanned(3)\n"
    )
    assert feed(both) == [Scan(T_CST, S.SCANNED), Scan(T_CST, S.SCANNED)]


def test_eventlogger_plugin_real_lines() -> None:
    """Lines the real wechaty-plugin-contrib 1.12.2 wrote (tests/genuine), whole."""
    lines = (DATA / "eventlogger-json.log").read_text("utf-8").splitlines()
    login = next(x for x in lines if "EventLoggerPlugin() login: [" in x)
    logout = next(x for x in lines if "EventLoggerPlugin() logout: [" in x)
    assert feed(login) == [Login(NOW, "HelperBob")]
    assert feed(logout) == [Logout(NOW, "HelperBob", REASON)]
    messages = [x for x in lines if "EventLoggerPlugin() message: [" in x]
    assert len(messages) >= 10
    assert any("PHISH" in x for x in messages)
    assert feed(*messages) == []


# ---------------------------------------------------------------------------------------------
# wechaty-plugin-contrib QRCodeTerminal (two-line entry)

QT = "10:00:00 INFO WechatyPluginContrib QRCodeTerminal "
STATUS = f"{QT}Login QR Code Status: Waiting(2)"
URL = f"QR Code Image URL: {QS}{enc(QR)}"

# lines -> (events per line, entry_lines per line)
QRCODETERMINAL: list[tuple[list[str], list[list[Event]], list[int]]] = [
    ([STATUS, URL], [[], [waiting()]], [1, 2]),
    (
        ["10:00:00 INFO QRCodeTerminal Login QR Code Status: Waiting(2)", URL],
        [[], [waiting()]],
        [1, 2],
    ),
    ([STATUS, f"QR Code Image URL: {QR}"], [[], [waiting()]], [1, 2]),
    (
        [STATUS, f"QR Code Image URL: {QS}{enc(EVIL)}"],
        [[], [RejectedQr(NOW, "host not allowed")]],
        [1, 2],
    ),
    ([STATUS, "QR Code Image URL: "], [[], [RejectedQr(NOW, "missing qr")]], [1, 2]),
    # anything in between cancels the entry, silently
    ([STATUS, "", URL], [[], [], []], [1, 1, 1]),
    ([STATUS, "█▀▀▀▀▀█ ▄▀▄", URL], [[], [], []], [1, 1, 1]),
    ([STATUS, "10:00:01 ERR Bot x", URL], [[], [ErrorLogged(NOW)], []], [1, 1, 1]),
    # a URL line that completes nothing; a second status line restarts the entry
    ([URL], [[]], [1]),
    ([STATUS, STATUS, URL], [[], [], [waiting()]], [1, 1, 2]),
    ([STATUS, URL, URL], [[], [waiting()], []], [1, 2, 1]),
    # other statuses are emitted at once; Timeout's URL line is not needed
    ([f"{QT}Login QR Code Status: Timeout(5)", URL], [[Scan(NOW, S.TIMEOUT)], []], [1, 1]),
    ([f"{QT}onScan: Scanned(3)"], [[Scan(NOW, S.SCANNED)]], [1]),
    ([f"{QT}onScan: Confirmed(4)"], [[Scan(NOW, S.CONFIRMED)]], [1]),
    ([f"{QT}Login QR Code Status: Waiting(7)", URL], [[], []], [1, 1]),
    # chat that quotes the status line starts nothing
    ([f"10:00:00 INFO Bot Message#Text[🗣Contact<M>]\t{STATUS[9:]}", URL], [[], []], [1, 1]),
    # wrappers on both lines; the entry's time is the status line's
    (
        [f"0|bob      | 2026-11-25T10:00:00: {STATUS}", f"0|bob      | {URL}"],
        [[], [waiting(at=T_CST)]],
        [1, 2],
    ),
    (
        [f"2026-11-25T02:00:00.000Z {STATUS}\r", f"2026-11-25T02:00:09Z \x1b[1m{URL}\x1b[0m\r"],
        [[], [waiting(at=T_CST)]],
        [1, 2],
    ),
]


@pytest.mark.parametrize(("lines", "events", "entry_lines"), QRCODETERMINAL)
def test_qrcode_terminal(
    lines: list[str], events: list[list[Event]], entry_lines: list[int]
) -> None:
    parser = LineParser(tz=CST)
    got, spans = [], []
    for line in lines:
        got.append(parser.feed(line, NOW))
        spans.append(parser.entry_lines)
    assert (got, spans) == (events, entry_lines)


def test_qrcode_terminal_in_pm2_json() -> None:
    def record(message: str) -> str:
        return json.dumps(
            {
                "message": message,
                "timestamp": "2026-11-25T02:00:00.000Z",
                "type": "out",
                "process_id": 0,
                "app_name": "bob",
            }
        )

    parser = LineParser(tz=CST)
    # both lines in one record: one physical line
    assert parser.feed(record(f"{STATUS}\n{URL}\n"), NOW) == [waiting(at=T_CST)]
    assert parser.entry_lines == 1
    # split over two records: two physical lines
    assert parser.feed(record(f"{STATUS}\n"), NOW) == []
    assert parser.feed(record(f"{URL}\n"), NOW) == [waiting(at=T_CST)]
    assert parser.entry_lines == 2


# ---------------------------------------------------------------------------------------------
# python-wechaty


def py(message: str, level: str = "INFO", logger: str = "Wechaty") -> str:
    return f"2026-11-25 10:00:00,123 - {logger} - {level} - {message}"


T_PY = ts("2026-11-25T10:00:00.123+08:00")
SCAN_PAYLOAD = "receive <scan> event <EventScanPayload(status={}, qrcode={}, data={})>"


def py_scan(status: str, qrcode: str, data: str = "None") -> str:
    return py(SCAN_PAYLOAD.format(status, qrcode, data))


PYTHON: list[tuple[str, list[Event]]] = [
    (py_scan("<ScanStatus.Waiting: 2>", repr(QR)), [waiting(at=T_PY)]),
    (py_scan("<ScanStatus.Waiting: 2>", f'"{QR}"'), [waiting(at=T_PY)]),
    (py_scan("2", repr(QR)), [waiting(at=T_PY)]),
    (py_scan("ScanStatus.Waiting", repr(QR)), [waiting(at=T_PY)]),
    (py_scan("<ScanStatus.SCAN_STATUS_WAITING: 2>", repr(QR)), [waiting(at=T_PY)]),
    (py_scan("<ScanStatus.Waiting: 2>", repr(QR), "'{\"x\": 1})>'"), [waiting(at=T_PY)]),
    (py_scan("<ScanStatus.Waiting: 2>", repr(f"{JS}{QR}")), [waiting(at=T_PY)]),
    # repr() quotes with " when the text has a ': read whole, so the "'" fails the QR's shape
    # (cut at the quote, it would pass).
    (py_scan("<ScanStatus.Waiting: 2>", repr(QR + "'q")), [RejectedQr(T_PY, "not a login qr")]),
    (py_scan("<ScanStatus.Waiting: 2>", "None"), [RejectedQr(T_PY, "missing qr")]),
    (py_scan("<ScanStatus.Waiting: 2>", "''"), [RejectedQr(T_PY, "missing qr")]),
    (py_scan("<ScanStatus.Waiting: 2>", repr(QR + "\n")), [RejectedQr(T_PY, "bad character")]),
    (py_scan("<ScanStatus.Waiting: 2>", repr(EVIL)), [RejectedQr(T_PY, "host not allowed")]),
    (py_scan("<ScanStatus.Unknown: 0>", "None"), [Scan(T_PY, S.UNKNOWN)]),
    (py_scan("<ScanStatus.Cancel: 1>", "None"), [Scan(T_PY, S.CANCEL)]),
    (py_scan("<ScanStatus.Scanned: 3>", "None"), [Scan(T_PY, S.SCANNED)]),
    (py_scan("<ScanStatus.Confirmed: 4>", "''"), [Scan(T_PY, S.CONFIRMED)]),
    (py_scan("<ScanStatus.Timeout: 5>", repr(QR)), [Scan(T_PY, S.TIMEOUT)]),
    (py_scan("<ScanStatus.Nope: 8>", repr(QR)), []),
    (py_scan("ScanStatus.Nope", repr(QR)), []),
    (
        py("receive <login> event <EventLoginPayload(contact_id='wxid_abc')>"),
        [Login(T_PY, "wxid_abc")],
    ),
    (
        py('receive <login> event <EventLoginPayload(contact_id="it\'s")>'),
        [Login(T_PY, "it's")],
    ),
    (
        py("receive <logout> event <EventLogoutPayload(contact_id='wxid_abc', data='kicked')>"),
        [Logout(T_PY, "wxid_abc", "kicked")],
    ),
    (
        py("receive <logout> event <EventLogoutPayload(contact_id='wxid_abc', data=None)>"),
        [Logout(T_PY, "wxid_abc")],
    ),
    (
        py(
            "receive <logout> event "
            "<EventLogoutPayload(contact_id='wxid_abc', data='a\\nb\\u4e2d')>"
        ),
        [Logout(T_PY, "wxid_abc", "a\nb中")],
    ),
    (py("internal error <stream closed>", "ERROR"), [ErrorLogged(T_PY)]),
    (py("puppet stopped", "CRITICAL", "WechatyPuppetService"), [ErrorLogged(T_PY)]),
    (py("message handler failed", "ERROR", "bot"), [ErrorLogged(T_PY)]),
    (py("heartbeat late", "WARNING"), []),
    # events only from the Wechaty logger, anchored on the whole message
    (py("receive <login> event <EventLoginPayload(contact_id='wxid_abc')>", logger="bot"), []),
    (
        py(
            "receive message <Message#Text[🗣Contact<M>]\t"
            + SCAN_PAYLOAD.format(2, repr(QR), None)
            + ">"
        ),
        [],
    ),
    (py("or you can scan qrcode from: " + JS + QR), []),
    (py("receive <login> event <EventLoginPayload(contact_id='wxid_abc')> extra"), []),
    (py("receive <dong> event <EventDongPayload(data='x')>"), []),
    ("2026-11-25 10:00:00 - Wechaty - ERROR - no milliseconds", []),
]


@pytest.mark.parametrize(("line", "expected"), PYTHON)
def test_python_wechaty(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


def test_python_wechaty_dates_default_to_the_local_zone() -> None:
    local = datetime(2026, 11, 25, 10, 0, 0, 123000).timestamp()
    assert feed(py("x", "ERROR"), tz=None) == [ErrorLogged(local)]


# ---------------------------------------------------------------------------------------------
# wrappers

LOGIN = "10:00:00 INFO Bot Contact<Bob> login"
PY_LOGIN = py("receive <login> event <EventLoginPayload(contact_id='wxid_abc')>")


def pm2_json(message: str, timestamp: object = "2026-11-25T02:00:00.000Z", **extra: object) -> str:
    record = {
        "message": message,
        "timestamp": timestamp,
        "type": "out",
        "process_id": 0,
        "app_name": "bob",
    }
    return json.dumps({**record, **extra}, ensure_ascii=False)


WRAPPERS: list[tuple[str, list[Event]]] = [
    # pm2 --time / log_date_format: the date is the event's time
    (f"2026-11-25T10:00:00: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25 10:00:00: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25 10:00:00 +08:00: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25 03:00:00 +0100: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25T02:00:00Z: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25T02:00:00.250Z: {LOGIN}", [Login(T_CST + 0.25, "Bob")]),
    (f"2026-11-25 10:00:00.250: {LOGIN}", [Login(ts("2026-11-25T10:00:00.250+08:00"), "Bob")]),
    (f"2026-13-25T10:00:00: {LOGIN}", [Login(NOW, "Bob")]),  # impossible date: read time
    # pm2 logs console prefixes
    (f"0|bob      | {LOGIN}", [Login(NOW, "Bob")]),
    (f"bob     | {LOGIN}", [Login(NOW, "Bob")]),
    (f"12|my-app.1 | {LOGIN}", [Login(NOW, "Bob")]),
    ("PM2      | App [bob:0] exited with code [1] via signal [SIGINT]", []),
    ("PM2      | 10:00:00 ERR PM2 Error: spawn failed", [ErrorLogged(NOW)]),
    # docker logs -t
    (
        f"2026-11-25T02:00:00.123456789Z {LOGIN}",
        [Login(ts("2026-11-25T02:00:00.123456+00:00"), "Bob")],
    ),
    (f"2026-11-25T02:00:00Z {LOGIN}", [Login(T_CST, "Bob")]),
    # ANSI and CRLF
    (f"\x1b[32m{LOGIN}\x1b[0m", [Login(NOW, "Bob")]),
    ("10:00:00 \x1b[31mERR\x1b[39m \x1b[1mBot\x1b[22m boom", [ErrorLogged(NOW)]),
    ("10:00:00 INFO Bot Contact<B\x1b[1mo\x1b[0mb> login", [Login(NOW, "Bob")]),
    (f"{LOGIN}\r", [Login(NOW, "Bob")]),
    (f"10:00:00 INFO Bot onScan: Waiting(2) - {QR}\r", [waiting()]),
    (f"\x1b]0;title\x07{LOGIN}", [Login(NOW, "Bob")]),
    # combinations; the innermost full date wins
    (f"2026-11-25T02:00:00Z \x1b[32m{LOGIN}\x1b[0m\r", [Login(T_CST, "Bob")]),
    (f"0|bob      | 2026-11-25T10:00:00: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25T02:00:05Z 0|bob | 2026-11-25T10:00:00: {LOGIN}", [Login(T_CST, "Bob")]),
    (f"2026-11-25T09:00:00Z 2026-11-25T10:00:00: {PY_LOGIN}", [Login(T_PY, "wxid_abc")]),
    (f"\x1b[2m2026-11-25T09:00:00Z\x1b[0m 0|bob | {PY_LOGIN}\r", [Login(T_PY, "wxid_abc")]),
    # pm2 log_type json
    (pm2_json(LOGIN + "\n"), [Login(T_CST, "Bob")]),
    (pm2_json(f"{LOGIN}\n10:00:01 ERR Bot x\n\n"), [Login(T_CST, "Bob"), ErrorLogged(T_CST)]),
    (pm2_json(f"chat\r\n{LOGIN}\r\n"), [Login(T_CST, "Bob")]),
    (pm2_json(LOGIN, "2026-11-25 10:00:00 +08:00"), [Login(T_CST, "Bob")]),
    (pm2_json(LOGIN, T_CST * 1000), [Login(T_CST, "Bob")]),
    (pm2_json(LOGIN, "yesterday"), [Login(NOW, "Bob")]),
    (pm2_json(LOGIN, None), [Login(NOW, "Bob")]),
    (pm2_json(PY_LOGIN), [Login(T_PY, "wxid_abc")]),
    (f"2026-11-25T02:00:00Z {pm2_json(LOGIN)}", [Login(T_CST, "Bob")]),
    (f"{pm2_json(LOGIN)}\r", [Login(T_CST, "Bob")]),
    (pm2_json(pm2_json(LOGIN)), []),
    (json.dumps({"message": LOGIN, "level": "info"}), []),
    (json.dumps([LOGIN]), []),
    ('{"message": "10:00:00 INFO Bot Contact<Bob> login", "app_name": ', []),
    (json.dumps({"message": 42, "app_name": "bob"}), []),
]


@pytest.mark.parametrize(("line", "expected"), WRAPPERS)
def test_wrappers(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


# ---------------------------------------------------------------------------------------------
# hostile input

BAD_QRS: list[tuple[str, str]] = [
    ("https://evil.example/l/abc", "host not allowed"),
    ("https://evilweixin.qq.com/l/abc", "host not allowed"),
    ("https://weixin.qq.com.evil.example/l/abc", "host not allowed"),
    ("https://weixin.qq.com@evil.example/l/abc", "userinfo not allowed"),
    ("https://user:pw@login.weixin.qq.com/l/abc", "userinfo not allowed"),
    ("https://evil.example\\.weixin.qq.com/l/abc", "bad character"),
    ("https://evil.example\\@weixin.qq.com/", "bad character"),
    ("https://weixin.qq.cоm/l/abc", "bad character"),  # Cyrillic о
    ("https://login.weixin.qq.com/l/a b", "bad character"),
    ("https://login.weixin.qq.com/l/a\tb", "bad character"),
    ("https://login.weixin.qq.com/l/a\x00b", "bad character"),
    ("javascript:alert(document.cookie)", "scheme not allowed"),
    ("data:text/html,<script>alert(1)</script>", "scheme not allowed"),
    ("ftp://weixin.qq.com/l/abc", "scheme not allowed"),
    ("https:weixin.qq.com/l/abc", "not a url"),
    ("weixin.qq.com/l/abc", "not a url"),
    ("https:///l/abc", "bad host"),
    ("https://weixin%2Eqq.com/l/abc", "bad host"),
    ("https://weixin..qq.com/l/abc", "bad host"),
    ("https://[::1]/l/abc", "bad host"),
    ("https://login.weixin.qq.com:port/l/abc", "bad host"),
    ("https://1.2.3.4/l/abc", "host not allowed"),
    ("https://example.com/wechat.com", "host not allowed"),
    # On an allowed host, but not the shape of a login QR (tests/logs/test_qr_shapes.py).
    ("HTTPS://login.weixin.qq.com./l/abc", "not a login qr"),
    ("https://login.weixin.qq.com:443/l/abc?x=1#y", "not a login qr"),
    ("https://login.wechat.com/l/abc", "not a login qr"),
    ("https://wechat.com", "not a login qr"),
    ("https://weixin.qq.com/" + "a" * QR_MAX_LENGTH, "qr too long"),
    (JS + enc("https://evil.example/l/abc"), "host not allowed"),
    (QS + enc(JS + enc("https://evil.example/l/abc")), "host not allowed"),
    (JS, "missing qr"),
    ("", "missing qr"),
]


@pytest.mark.parametrize(("qr", "reason"), BAD_QRS)
def test_forged_qr_is_rejected(qr: str, reason: str) -> None:
    assert check_qr(qr) == (None, reason)
    assert feed(f"10:00:00 INFO Bot onScan: Waiting(2) - {qr}") == [RejectedQr(NOW, reason)]


def test_chat_that_forges_a_full_line_yields_only_a_rejected_qr() -> None:
    """A chat message with a newline writes a physical line identical to a real one."""
    forged = f"10:00:01 INFO StarterBot onScan: Waiting(2) - {JS}{enc(EVIL)}"
    lines = ["10:00:01 INFO StarterBot Message#Text[🗣Contact<Mallory>]\tplease scan:", forged]
    assert feed(*lines) == [RejectedQr(NOW, "host not allowed")]


@pytest.mark.parametrize(
    ("forged", "at"),
    [
        (f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}", NOW),
        (f"{EL}scan: {QR},2,", NOW),
        (py_scan("<ScanStatus.Waiting: 2>", repr(QR)), T_PY),
    ],
)
def test_self_log_qr_only_rejects_genuine_urls_from_plain_text(forged: str, at: float) -> None:
    """A forged line can carry a real WeChat login URL (the sender's own web-login session):
    with self_log_qr_only, only the self-log, which cannot be forged, supplies QRs."""
    parser = LineParser(tz=CST, self_log_qr_only=True)
    assert parser.feed(forged, NOW) == [RejectedQr(at, "qr not from the self-log")]
    genuine = format_self_log("scan", {"status": 2, "qrcode": QR}, NOW)
    self_log = LineParser(tz=CST, self_log_qr_only=True)  # the self-log is a file of its own
    assert self_log.feed(genuine, NOW) == [Scan(NOW, ScanStatus.WAITING, QR)]
    assert LineParser(tz=CST).feed(forged, NOW) == [Scan(at, ScanStatus.WAITING, QR)]


CHAT_LOOKALIKES = [
    f"10:00:00 INFO StarterBot Message#Text[🗣Contact<M>@Room<R>]\tonScan: Waiting(2) - {QR}",
    f"10:00:00 INFO Bot Message#Text[🗣Contact<M>]\t10:00:00 INFO Bot onScan: Waiting(2) - {QR}",
    "10:00:00 INFO StarterBot Message#Text[🗣Contact<M>]\t10:00:00 ERR Bot boom",
    py(
        "receive message <Message#Text[🗣Contact<M>]\t"
        + SCAN_PAYLOAD.format(2, repr(QR), None)
        + ">"
    ),
    py("receive message <Message#Text[🗣Contact<M>]\t - Wechaty - ERROR - x>"),
    f"{EL}message: Message#Text[🗣Contact<M>]\tscan: {QR},2,",
    f"10:00:00 INFO Bot Message#Text[🗣Contact<M>]\t2026-11-25T10:00:00: {LOGIN}",
    f"hello {LOGIN}",
    f"  {LOGIN}",
    f"\t{PY_LOGIN}",
    f'> {SELF_LOG_NAME} login {{"user":"Bob"}}',
]


@pytest.mark.parametrize("line", CHAT_LOOKALIKES)
def test_chat_text_is_never_an_event(line: str) -> None:
    assert feed(line) == []


HUGE = 1_000_000
LONG_QR = "https://login.weixin.qq.com/l/" + "a" * HUGE

HUGE_LINES: list[tuple[str, list[Event]]] = [
    ("x" * HUGE, []),
    ("{" * HUGE, []),
    ("[" * HUGE, []),
    ("10:00:00 " * (HUGE // 9), []),
    ("\x1b[" * (HUGE // 2), []),
    ("10:00:00 ERR Bot " + "x" * HUGE, [ErrorLogged(NOW)]),
    (f"10:00:00 INFO Bot onScan: Waiting(2) - {LONG_QR}", [RejectedQr(NOW, "qr too long")]),
    (f"10:00:00 INFO Bot onScan: Scanned(3) - {LONG_QR}", [Scan(NOW, S.SCANNED)]),
    (f"10:00:00 INFO Bot Contact<{'b' * HUGE}> login", []),
    (f"{EL}scan: {LONG_QR},2,", [RejectedQr(NOW, "qr too long")]),
    (py_scan("<ScanStatus.Waiting: 2>", repr(LONG_QR)), [RejectedQr(T_PY, "qr too long")]),
    (py_scan("<ScanStatus.Scanned: 3>", repr(LONG_QR)), [Scan(T_PY, S.SCANNED)]),
    (pm2_json(f"{LOGIN}\n" + "x" * HUGE), [Login(T_CST, "Bob")]),
    (pm2_json(f"{LOGIN}\n" + "x" * 2 * HUGE), []),  # past the JSON cap
    (pm2_json("\n" * 5000 + LOGIN), []),  # past the parts cap
    (format_self_log("login", {"user": "Bob", "pad": "x" * HUGE}, NOW), [Login(NOW, "Bob")]),
    (
        format_self_log("scan", {"status": 2, "qrcode": LONG_QR}, NOW),
        [RejectedQr(NOW, "qr too long")],
    ),
    (
        format_self_log("scan", {"status": 2, "qrcode": LONG_QR * 2}, NOW),
        [RejectedQr(NOW, "qr too long")],
    ),
]


@pytest.mark.parametrize(("line", "expected"), HUGE_LINES, ids=range(len(HUGE_LINES)))
def test_huge_lines(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


def test_qr_length_cap() -> None:
    base = "https://login.weixin.qq.com/l/"
    at_cap = base + "a" * (QR_MAX_LENGTH - len(base))
    assert check_qr(at_cap) == (at_cap, None)
    assert check_qr(at_cap + "a") == (None, "qr too long")


SURROGATES: list[tuple[str, list[Event]]] = [
    ("\ud800" * 100, []),
    ("10:00:00 INFO Bot Contact<\ud83d> login", [Login(NOW, "\ufffd")]),
    (f"10:00:00 INFO Bot onScan: Waiting(2) - {QR}\udcff", [RejectedQr(NOW, "bad character")]),
    (
        py("receive <login> event <EventLoginPayload(contact_id='\\ud800x')>"),
        [Login(T_PY, "\ufffdx")],
    ),
    ("10:00:00 INFO Bot Contact<a\x00b> login", [Login(NOW, "a\x00b")]),
    ("\x00" * 1000, []),
]


@pytest.mark.parametrize(("line", "expected"), SURROGATES)
def test_lone_surrogates_and_nuls(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


def test_garbage_bytes() -> None:
    rng = random.Random(1)
    parser = LineParser()
    for _ in range(2000):
        raw = rng.randbytes(rng.randrange(0, 300))
        _check_events(parser, raw.decode("utf-8", "replace").split("\n"))


# ---------------------------------------------------------------------------------------------
# unwrap_qr / check_qr

UNWRAP: list[tuple[str, str]] = [
    (QR, QR),
    (QR_X, QR_X),
    (JS + enc(QR), QR),
    (JS + QR, QR),
    ("https://wechaty.js.org/qrcode/" + QR_X, QR_X),
    ("HTTPS://Wechaty.JS.org/qrcode/" + enc(QR), QR),
    ("http://wechaty.github.io/qrcode/" + enc(QR), QR),
    (QS + enc(QR), QR),
    ("https://api.qrserver.com/v1/create-qr-code?data=" + enc(QR), QR),
    ("https://api.qrserver.com/v1/create-qr-code/?size=150x150&data=" + enc(QR) + "&margin=1", QR),
    (
        "https://api.qrserver.com/v1/create-qr-code/?size=150x150",
        "https://api.qrserver.com/v1/create-qr-code/?size=150x150",
    ),
    (QS + enc(JS + enc(QR)), QR),
    (JS + enc(QS + enc(QR)), QR),
    (JS + enc(JS + enc(JS + enc(QR))), QR),
    (
        "https://wechaty.js.org.evil.example/qrcode/" + enc(QR),
        "https://wechaty.js.org.evil.example/qrcode/" + enc(QR),
    ),
    ("https://wechaty.js.org/other/" + enc(QR), "https://wechaty.js.org/other/" + enc(QR)),
    ("not a url", "not a url"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "expected"), UNWRAP)
def test_unwrap_qr(raw: str, expected: str) -> None:
    assert unwrap_qr(raw) == expected


GOOD_QRS: list[tuple[str, str]] = [
    (QR, QR),
    (QR_X, QR_X),
    ("https://weixin.qq.com/x/abc", "https://weixin.qq.com/x/abc"),
    ("https://LOGIN.WEIXIN.QQ.COM/l/abc", "https://LOGIN.WEIXIN.QQ.COM/l/abc"),
    ("HTTPS://login.weixin.qq.com/l/abc", "HTTPS://login.weixin.qq.com/l/abc"),
    (JS + enc(QR), QR),
    (QS + enc(QR), QR),
]


@pytest.mark.parametrize(("raw", "expected"), GOOD_QRS)
def test_check_qr_accepts(raw: str, expected: str) -> None:
    assert check_qr(raw) == (expected, None)


def test_check_qr_allowed_hosts() -> None:
    shape = "https://qr.example.org/l/{id}"
    assert check_qr("https://qr.example.org/l/1", ["Example.org."], [shape]) == (
        "https://qr.example.org/l/1",
        None,
    )
    assert check_qr("https://qr.example.org/l/1", "example.org", shape) == (
        "https://qr.example.org/l/1",
        None,
    )
    assert check_qr("https://qr.example.org/l/1", "example.org") == (None, "not a login qr")
    assert check_qr("https://qr.example.org/l/1", "weixin.qq.com", [shape]) == (
        None,
        "host not allowed",
    )
    assert check_qr(QR, ["example.org"]) == (None, "host not allowed")
    assert check_qr(QR, []) == (None, "host not allowed")
    assert check_qr("https://a.q/", "weixin.qq.com") == (
        None,
        "host not allowed",
    )  # not one-letter hosts
    assert DEFAULT_QR_HOSTS == ("weixin.qq.com", "wechat.com")
    parser = LineParser(["example.org"])
    assert parser.feed(f"10:00:00 INFO Bot onScan: Waiting(2) - {QR}", NOW) == [
        RejectedQr(NOW, "host not allowed")
    ]


# ---------------------------------------------------------------------------------------------
# self-log

SELF_LINE_RE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d [A-Z]+ wechaty-exporter [a-z_]+ \{.*\}"
)
AT = 1795572000.123

ROUND_TRIP: list[tuple[str, dict[str, object], str, Event]] = [
    ("scan", {"status": 2, "qrcode": QR}, "INFO", waiting(at=AT)),
    ("scan", {"status": 2, "qrcode": JS + enc(QR)}, "INFO", waiting(at=AT)),
    ("scan", {"status": 3, "qrcode": None}, "INFO", Scan(AT, S.SCANNED)),
    ("scan", {"status": 0}, "INFO", Scan(AT, S.UNKNOWN)),
    ("scan", {"status": 2, "qrcode": None}, "INFO", RejectedQr(AT, "missing qr")),
    (
        "scan",
        {"status": 2, "qrcode": f"{QR}\n10:00:00 INFO x"},
        "INFO",
        RejectedQr(AT, "bad character"),
    ),
    ("login", {"user": "Bob", "id": "wxid_1"}, "INFO", Login(AT, "Bob")),
    ("login", {"id": "wxid_1"}, "INFO", Login(AT, "wxid_1")),
    ("login", {"user": 'Bob "the" Bot\\', "id": "wxid_1"}, "INFO", Login(AT, 'Bob "the" Bot\\')),
    ("login", {"user": "伙伴 🤖\u2028\u0085é"}, "INFO", Login(AT, "伙伴 🤖\u2028\u0085é")),
    (
        "logout",
        {
            "user": "Bob\n2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter login {}",
            "reason": "kicked",
        },
        "INFO",
        Logout(AT, "Bob\n2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter login {}", "kicked"),
    ),
    (
        "logout",
        {"user": "Bob", "reason": "a\r\nb\x00'\""},
        "WARN",
        Logout(AT, "Bob", "a\r\nb\x00'\""),
    ),
    ("logout", {}, "INFO", Logout(AT)),
]


@pytest.mark.parametrize(("kind", "fields", "level", "event"), ROUND_TRIP)
def test_self_log_round_trip(
    kind: str, fields: dict[str, object], level: str, event: Event
) -> None:
    line = format_self_log(kind, fields, AT, level)
    assert SELF_LINE_RE.fullmatch(line)
    assert len(line.splitlines()) == 1
    assert line.encode("utf-8")  # no lone surrogates
    assert feed(line) == [event]


def test_self_log_format() -> None:
    line = format_self_log("scan", {"status": 2, "qrcode": QR}, AT)
    stamp, level, name, kind, body = line.split(" ", 4)
    assert datetime.fromisoformat(stamp).timestamp() == AT
    assert (level, name, kind) == ("INFO", SELF_LOG_NAME, "scan")
    assert body == '{"status":2,"qrcode":"https://login.weixin.qq.com/l/IdAbc12=="}'
    assert "\\ud800" in format_self_log("login", {"user": "\ud800"}, AT)
    assert format_self_log("x", {"t": datetime(2026, 1, 1)}, AT).endswith(
        '{"t":"2026-01-01 00:00:00"}'
    )
    with pytest.raises(ValueError, match="kind"):
        format_self_log("log in", {}, AT)
    with pytest.raises(ValueError, match="level"):
        format_self_log("login", {}, AT, "info")


SELF_LINES: list[tuple[str, list[Event]]] = [
    (
        '2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter login {"user":"Bob"}',
        [Login(T_CST, "Bob")],
    ),
    ('2026-11-25T02:00:00.000Z INFO wechaty-exporter login {"user":"Bob"}', [Login(T_CST, "Bob")]),
    (
        '2026-11-25T10:00:00+08:00 ERROR wechaty-exporter delivery {"error":"x"}',
        [ErrorLogged(T_CST)],
    ),
    (
        '2026-11-25T10:00:00+08:00 ERROR wechaty-exporter login {"user":"Bob"}',
        [ErrorLogged(T_CST), Login(T_CST, "Bob")],
    ),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter alert {"bot":"bob"}', []),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter scan {"status":true,"qrcode":null}', []),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter scan {"status":"2"}', []),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter scan {"status":6}', []),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter login ["Bob"]', []),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter login {"user":"Bob"', []),
    ('2026-11-25T10:00:00+08:00 INFO wechaty-exporter login {"user":"Bob"} x', []),
    ('2026-11-25T10:00:00+08:00 INFO other-bot login {"user":"Bob"}', []),
    (
        "2026-11-25T02:00:09Z 0|peer | "
        f'2026-11-25T10:00:00+08:00 INFO {SELF_LOG_NAME} login {{"user":"Bob"}}',
        [Login(T_CST, "Bob")],
    ),
]


@pytest.mark.parametrize(("line", "expected"), SELF_LINES)
def test_self_log_lines(line: str, expected: list[Event]) -> None:
    assert feed(line) == expected


# ---------------------------------------------------------------------------------------------
# property tests


def _fragments() -> list[str]:
    lines = [
        line for table in (BROLOG, EVENTLOGGER, PYTHON, WRAPPERS, SELF_LINES) for line, _ in table
    ]
    lines += [
        line for path in sorted(DATA.glob("*.log")) for line in path.read_text("utf-8").splitlines()
    ]
    pieces = {p for line in lines for p in re.split(r"(?<=[ :<>(),|\t=\-])", line) if p}
    return sorted(pieces | {"\r", "\x1b[31m", "\x1b[0m", "\n", "\\n", '"', "'", "\ud800", "\x00"})


FRAGMENTS = _fragments()
ALLOWED = (Login, Logout, Scan, RejectedQr, ErrorLogged)


def _check_events(parser: LineParser, lines: Iterable[str]) -> None:
    for line in lines:
        events = parser.feed(line, NOW)
        assert isinstance(events, list)
        assert all(isinstance(e, ALLOWED) for e in events)
        assert parser.entry_lines in (1, 2)
        for e in events:
            if isinstance(e, Scan) and e.qrcode is not None:
                assert e.status is S.WAITING
                assert check_qr(e.qrcode) == (e.qrcode, None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=5))
def test_any_text_never_raises(lines: list[str]) -> None:
    _check_events(LineParser(), lines)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join), max_size=6))
def test_fragments_of_real_lines_never_raise(lines: list[str]) -> None:
    _check_events(LineParser(tz=CST), lines)


# ---------------------------------------------------------------------------------------------
# sample logs


def fold(events: Iterable[Event]) -> dict[str, object]:
    """What events alone imply (the documented semantics; the real state machine is state.py).

    `user` is the account the last login or logout named.
    """
    facts: dict[str, Any] = {
        "logged_in": None,
        "qr": None,
        "user": None,
        "logins": 0,
        "logouts": 0,
        "qr_codes": 0,
        "rejected_qr": 0,
        "errors": 0,
    }
    for e in events:
        if isinstance(e, Login | Logout):
            facts.update(logged_in=isinstance(e, Login), qr=None, user=e.user or facts["user"])
            facts["logins" if isinstance(e, Login) else "logouts"] += 1
        elif isinstance(e, Scan):
            if e.status is S.WAITING:
                facts.update(logged_in=False, qr=e.qrcode)
                facts["qr_codes"] += 1
            elif e.status is S.CONFIRMED:
                facts.update(logged_in=True, qr=None)
            elif e.status is not S.UNKNOWN:
                facts["qr"] = None
        elif isinstance(e, RejectedQr):
            facts["rejected_qr"] += 1
        else:
            facts["errors"] += 1
    return facts


EXPECTED = json.loads((DATA / "expected.json").read_text("utf-8"))


def test_every_sample_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in DATA.glob("*.log"))
    assert len(EXPECTED) == 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_log(name: str) -> None:
    lines = (DATA / name).read_text("utf-8").split("\n")
    assert lines.pop() == ""
    assert 20 <= len(lines) <= 60
    events = feed(*lines)
    assert fold(events) == EXPECTED[name]
    if EXPECTED[name]["qr"] is not None:
        last_waiting = [e for e in events if isinstance(e, Scan) and e.status is S.WAITING][-1]
        assert last_waiting.qrcode == EXPECTED[name]["qr"]


# ---------------------------------------------------------------------------------------------
# Timeout(5) with a URL, in every dialect: the QR never stays pending.
TIMEOUTS: list[tuple[list[str], Event]] = [
    (
        [f"10:00:00 INFO StarterBot onScan: Waiting(2) - {JS}{enc(QR)}",
         f"10:00:01 INFO StarterBot onScan: Timeout(5) - {JS}{enc(QR)}"],
        Scan(NOW, S.TIMEOUT),
    ),
    ([f"{EL}scan: {QR},2,", f"{EL}scan: {QR},5,"], Scan(NOW, S.TIMEOUT)),
    ([elp("scan", QR, 2, None), elp("scan", QR, 5, None)], Scan(NOW, S.TIMEOUT)),
    (
        [f"{QT}Login QR Code Status: Waiting(2)", f"QR Code Image URL: {JS}{enc(QR)}",
         f"{QT}Login QR Code Status: Timeout(5)", f"QR Code Image URL: {JS}{enc(QR)}"],
        Scan(NOW, S.TIMEOUT),
    ),
    (
        [py_scan("<ScanStatus.Waiting: 2>", repr(QR)),
         py_scan("<ScanStatus.Timeout: 5>", repr(QR))],
        Scan(T_PY, S.TIMEOUT),
    ),
    (
        [format_self_log("scan", {"status": 2, "qrcode": QR}, NOW),
         format_self_log("scan", {"status": 5, "qrcode": QR}, NOW)],
        Scan(NOW, S.TIMEOUT),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("lines", "timeout"), TIMEOUTS, ids=range(len(TIMEOUTS)))
def test_a_timeout_with_a_url_leaves_no_qr_pending(lines: list[str], timeout: Event) -> None:
    events = feed(*lines)
    assert timeout in events
    assert [e for e in events if isinstance(e, Scan) and e.qrcode is not None] == [events[0]]
    state = BotState()
    for e in events:
        state.apply(e)
    assert state.qr is None and state.qr_codes_total == 1
