"""Custom dialects (logs/dialects/rules.py): validation, matching, the engine, the built-ins.

- every problem of a rule set is reported at once, each with its location;
- a rule matches whole lines only, after wrappers, in pm2 JSON; groups, statuses, quotes, times;
- two-line rules; `mode` instead / alongside; QRs through the allowlist;
- rules run on re2, and a hostile 64 KiB line is matched in linear time;
- `feed_block` with a dialect's prefilter equals feeding every line;
- the built-in profiles, printed by `wechaty-exporter dialects --format yaml` and read back
  through the config parser, read the sample logs exactly as the built-in detection does.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wechaty_exporter.cli import main
from wechaty_exporter.config import parse_config
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.patterns import required_literal
from wechaty_exporter.logs.dialects.profiles import PROFILES, render_text
from wechaty_exporter.logs.dialects.rules import Dialect, is_re2, parse_dialect, parse_status
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    RejectedQr,
    Scan,
    ScanStatus,
)
from wechaty_exporter.settings import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "dialects"
NOW = 1_800_000_000.0
CST = timezone(timedelta(hours=8))
QR = "https://login.weixin.qq.com/l/IdRule=="
W = ScanStatus.WAITING

PADLOCAL = {
    "rules": [
        {
            "name": "scan-status",
            "event": "scan",
            "match": r"(?P<time>\d\d:\d\d:\d\d) VERB \[PuppetPadlocal\] scan event, "
            r"status: (?P<status>\w+)(?:, qrcode: (?P<qrcode>\S+))?",
        },
        {
            "name": "login",
            "event": "login",
            "match": r"(?P<time>\d\d:\d\d:\d\d) VERB \[PuppetPadlocal\] login success: "
            r"(?P<user>\S+)",
        },
        {
            "name": "logout",
            "event": "logout",
            "match": r"(?P<time>[-\d: ,]+) WARN \[PuppetPadlocal\] logout: (?P<user>[^,]+)"
            r"(?:, (?P<reason>.*))?",
        },
        {
            "name": "qr-then-prompt",
            "event": "scan",
            "status": "Waiting",
            "match": r"\[\d+\] (?P<qrcode>https?://\S+)",
            "then": {"match": "Scan QR Code above to log in:", "within": 2},
        },
    ]
}


def dialect(body: dict[str, Any] = PADLOCAL, name: str = "custom") -> Dialect:
    errors: list[str] = []
    d = parse_dialect(name, body, f"dialects.{name}", errors, PROFILES)
    assert d is not None, errors
    return d


def feed(d: Dialect | None, *lines: str, **kw: Any) -> list[Event]:
    parser = LineParser(tz=CST, dialect=d, **kw)
    return [e for line in lines for e in parser.feed(line, NOW)]


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    return exc.value.problems


# ---------------------------------------------------------------------------------------------
# validation


def test_every_problem_is_listed_at_once_with_its_location() -> None:
    raw = {
        "dialects": {
            "bad": {
                "mode": "sometimes",
                "include": ["nope"],
                "zzz": 1,
                "rules": [
                    {"event": "scan", "match": "(a", "no_qr": True},
                    {"event": "scan", "match": r"(?P<qr>\S+) (?P<status>\d)"},
                    {"event": "scan", "match": r"scan (?P<status>\d)"},
                    {"event": "login", "match": r"(?P<user>.+) login (?P<qrcode>\S+)"},
                    {"event": "logout", "match": ".*"},
                    {"event": "scan", "match": r"x(?P<status>\d)", "status": 2, "no_qr": True},
                    {"event": "scan", "match": r"(?P<qrcode>\S+)", "status": "Pending"},
                    {
                        "event": "scan",
                        "match": r"s (?P<status>\d) (?P<qrcode>\S+)",
                        "then": {"match": r"u (?P<qrcode>\S+)", "within": 0},
                    },
                    {"event": "kick", "match": "x"},
                    {"event": "login", "match": r"(?=x)(?P<user>.+)"},
                    {"event": "login", "match": r"(?P<user>.+) (?P<user>.+)"},
                    {"event": "login", "match": "x", "status": 2},
                    "not a mapping",
                    {"event": "login"},
                ],
            },
            "brolog": {"rules": [{"event": "login", "match": "x"}]},
            "empty": {},
        },
        "bots": {
            "alice": {"logs": ["/a.log"], "dialect": "nosuch", "log_dialects": {"/b.log": "auto"}}
        },
    }
    got = problems(raw)
    where = "dialects.bad"
    expected = [
        f"{where}.zzz: unknown key",
        f"{where}.mode: expected one of instead, alongside",
        f"{where}.rules[0].match: not a valid RE2 regular expression (missing ): (a)",
        f"{where}.rules[1].match: unknown group 'qr' for a scan rule (known: qrcode, status, time)",
        f"{where}.rules[1]: a scan rule that can say Waiting(2) needs a 'qrcode' group",
        f"{where}.rules[2]: a scan rule that can say Waiting(2) needs a 'qrcode' group",
        f"{where}.rules[3].match: unknown group 'qrcode' for a login rule (known: user, time)",
        f"{where}.rules[4].match: matches an empty line",
        f"{where}.rules[5].status: fixed here and captured by a group",
        f"{where}.rules[6].status: expected a scan status",
        f"{where}.rules[7].then.within: expected a number of lines from 1 to 100",
        f"{where}.rules[7].then.match: group 'qrcode' is also in match",
        f"{where}.rules[8].event: expected one of scan, login, logout, got 'kick'",
        f"{where}.rules[9].match: not a valid RE2 regular expression",
        f"{where}.rules[10].match: group 'user' appears more than once",
        f"{where}.rules[11].status: only scan rules take it",
        f"{where}.rules[12]: expected a mapping",
        f"{where}.rules[13].match: required",
        f"{where}.include[0]: not a built-in rule set (known: brolog,",
        "dialects.brolog: the name of a built-in dialect",
        "dialects.empty.rules: required",
        "bots.alice.dialect: unknown dialect 'nosuch' (known: auto, brolog,",
        "bots.alice.log_dialects./b.log: not one of the bot's logs",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in got), f"missing {text!r} in:\n" + "\n".join(got)
    look_around = next(p for p in got if p.startswith(f"{where}.rules[9]"))
    assert "RE2 has no look-ahead" in look_around


def test_check_config_lists_the_rule_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yml"
    config.write_text(
        "dialects:\n  mine:\n    rules:\n"
        "      - {event: login, match: '(?P<user>.+ login'}\n"
        "      - {event: scan, match: 'scan (?P<status>\\d)'}\n"
        "bots:\n  alice: {logs: /a.log, dialect: mine}\n"
    )
    assert main(["check-config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "dialects.mine.rules[0].match: not a valid RE2 regular expression" in err
    assert "dialects.mine.rules[1]: a scan rule that can say Waiting(2)" in err


def test_a_good_config_names_its_dialects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yml"
    bot = {"logs": ["/a.log", "/b.log"], "dialect": "pad", "log_dialects": {"/b.log": "brolog"}}
    config.write_text(yaml.safe_dump({"dialects": {"pad": PADLOCAL}, "bots": {"a": bot}}))
    assert main(["check-config", str(config)]) == 0
    assert "1 dialect(s)" in capsys.readouterr().out
    exporter = parse_config(yaml.safe_load(config.read_text())).exporter
    assert exporter.dialect_name("a", "/a.log") == "pad"
    assert exporter.dialect_name("a", "/b.log") == "brolog"
    assert exporter.dialect("a", "/b.log") is PROFILES["brolog"]
    assert exporter.dialect_name("other", "/c.log") == "auto"
    assert exporter.dialect("other", "/c.log") is None


# ---------------------------------------------------------------------------------------------
# matching


def test_rules_read_their_lines() -> None:
    d = dialect()
    assert feed(
        d,
        "16:03:43 VERB [PuppetPadlocal] scan event, status: Waiting, qrcode: " + QR,
        "16:03:44 VERB [PuppetPadlocal] scan event, status: Scanned",
        "16:03:47 VERB [PuppetPadlocal] login success: wxid_8kg",
        "2026-11-25 10:00:00,250 WARN [PuppetPadlocal] logout: 'wxid_8kg', kicked",
    ) == [
        Scan(NOW, W, QR),
        Scan(NOW, ScanStatus.SCANNED),
        Login(NOW, "wxid_8kg"),
        Logout(datetime(2026, 11, 25, 10, 0, 0, 250000, CST).timestamp(), "wxid_8kg", "kicked"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "10:00:00 INFO Bot Message#Text[🗣Contact<M>]\t"
        "16:03:47 VERB [PuppetPadlocal] login success: x",
        "x16:03:47 VERB [PuppetPadlocal] login success: wxid",
        "16:03:47 VERB [PuppetPadlocal] login success: wxid trailing words",
        "16:03:47 VERB [PuppetPadlocal] login success: ",
        "10:00:00 INFO StarterBot Contact<Bob> login",  # brolog: not read with mode instead
    ],
)
def test_rules_match_whole_lines_only(line: str) -> None:
    assert feed(dialect(), line) == []


def test_wrappers_json_ansi_and_cr() -> None:
    d = dialect()
    login = "16:03:47 VERB [PuppetPadlocal] login success: wxid"
    at = datetime(2026, 11, 25, 10, 0, 1, tzinfo=CST).timestamp()
    pm2_json = json.dumps({"message": f"chat\n{login}\n", "timestamp": "2026-11-25T02:00:01Z",
                           "app_name": "a"})  # fmt: skip
    assert feed(
        d,
        f"0|alice  | {login}",
        f"2026-11-25 10:00:01 +08:00: {login}",
        f"2026-11-25T02:00:01.000000000Z 0|alice | {login}",
        "\x1b[32m16:03:47\x1b[0m VERB [PuppetPadlocal] login success: wxid\r",
        pm2_json,
    ) == [Login(NOW, "wxid"), Login(at, "wxid"), Login(at, "wxid"), Login(NOW, "wxid"),
          Login(at, "wxid")]  # fmt: skip


def test_values() -> None:
    body = {"rules": [{"event": "logout", "match": r"out (?P<user>\S+) (?P<reason>.*)"}]}
    d = dialect(body)
    assert feed(d, "out Contact<Bob> 'kicked'", 'out "x" None', "out ContactSelf<> null") == [
        Logout(NOW, "Bob", "kicked"),
        Logout(NOW, "x", None),
        Logout(NOW, None, None),
    ]


@pytest.mark.parametrize(
    ("text", "status"),
    [("2", W), ("Waiting", W), ("waiting", W), ("SCAN_STATUS_WAITING", W),
     ("ScanStatus.Scanned", ScanStatus.SCANNED), ("Confirmed(4)", ScanStatus.CONFIRMED),
     ("<ScanStatus.Timeout: 5>", ScanStatus.TIMEOUT), ("Cancel", ScanStatus.CANCEL),
     ("7", None), ("Pending", None), ("", None)],
)  # fmt: skip
def test_status_forms(text: str, status: ScanStatus | None) -> None:
    assert parse_status(text) is status


def test_a_status_that_is_none_gives_no_event_and_a_note() -> None:
    parser = LineParser(dialect=dialect())
    assert parser.feed("16:03:43 VERB [PuppetPadlocal] scan event, status: Pending", NOW) == []
    assert parser.source == "custom/scan-status"
    assert parser.notes == ["rule scan-status: status 'Pending' is not a scan status; no event"]


def test_qrs_go_through_unwrapping_and_the_allowlist() -> None:
    d = dialect()
    line = "16:03:43 VERB [PuppetPadlocal] scan event, status: 2, qrcode: {}"
    wrapped = "https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FIdRule%3D%3D"
    assert feed(d, line.format(wrapped)) == [Scan(NOW, W, QR)]
    assert feed(d, line.format("https://weixin.qq.com.evil.example/l/x")) == [
        RejectedQr(NOW, "host not allowed")
    ]
    assert feed(d, "16:03:43 VERB [PuppetPadlocal] scan event, status: Waiting") == [
        RejectedQr(NOW, "missing qr")
    ]
    assert feed(d, line.format(QR), self_log_qr_only=True) == [
        RejectedQr(NOW, "qr not from the self-log")
    ]
    assert LineParser(["example.org"], dialect=d).feed(line.format(QR), NOW) == [
        RejectedQr(NOW, "host not allowed")
    ]


def test_no_qr_says_logged_out_without_a_qr() -> None:
    body = {"rules": [{"event": "scan", "match": r"scan event, status: (?P<status>\w+)",
                       "no_qr": True}]}  # fmt: skip
    assert feed(dialect(body), "scan event, status: Waiting", "scan event, status: 4") == [
        Scan(NOW, W),
        Scan(NOW, ScanStatus.CONFIRMED),
    ]


def test_two_line_rules() -> None:
    d = dialect()
    parser = LineParser(dialect=d)
    assert parser.feed(f"[4] {QR}", NOW) == []
    assert parser.awaiting_continuation and parser.source == "custom/qr-then-prompt"
    assert parser.feed("some other line", NOW) == []
    assert parser.feed("Scan QR Code above to log in:", NOW) == [Scan(NOW, W, QR)]
    assert parser.entry_lines == 3 and not parser.awaiting_continuation
    # too late: the entry expired, with a note; the prompt alone completes nothing
    assert parser.feed(f"[4] {QR}", NOW) == []
    assert parser.feed("a", NOW) == [] and parser.feed("b", NOW) == []
    assert parser.notes and "within 2 line(s)" in parser.notes[0]
    assert parser.feed("Scan QR Code above to log in:", NOW) == []


def test_a_two_line_scan_in_another_status_is_emitted_at_once() -> None:
    d = PROFILES["qrcode-terminal"]
    status = "10:00:00 INFO WechatyPluginContrib QRCodeTerminal Login QR Code Status: {}"
    url = "QR Code Image URL: " + QR
    assert feed(d, status.format("Timeout(5)"), url) == [Scan(NOW, ScanStatus.TIMEOUT)]
    assert feed(d, status.format("Waiting(2)"), url) == [Scan(NOW, W, QR)]
    assert feed(d, status.format("Waiting(2)"), "x", url) == []


def test_instead_and_alongside() -> None:
    brolog = "10:00:00 INFO StarterBot Contact<Bob> login"
    err = "10:00:01 ERR PuppetService boom"
    pad = "16:03:47 VERB [PuppetPadlocal] login success: wxid"
    instead = dialect()
    alongside = dialect({**PADLOCAL, "mode": "alongside"})
    included = dialect({**PADLOCAL, "include": ["brolog"]})
    assert feed(instead, brolog, err, pad) == [Login(NOW, "wxid")]
    assert feed(alongside, brolog, err, pad) == [
        Login(NOW, "Bob"), ErrorLogged(NOW), Login(NOW, "wxid")
    ]  # fmt: skip
    assert feed(included, brolog, err, pad) == [Login(NOW, "Bob"), Login(NOW, "wxid")]


def test_source_and_spoken() -> None:
    parser = LineParser()
    parser.feed("10:00:00 INFO Bot Message#Text[🗣Contact<A>]\thi", NOW)
    assert parser.source is None and parser.spoken is None
    parser.feed("2026-11-25 09:00:12,300 - Wechaty - INFO - receive <login> event "
                "<EventLoginPayload(contact_id='wxid')>", NOW)  # fmt: skip
    assert parser.source == parser.spoken == "python-wechaty"
    parser.feed("10:00:00 INFO WechatyPluginContrib EventLogger login: Contact<B>", NOW)
    assert parser.source == "eventlogger" and parser.spoken == "python-wechaty"
    custom = LineParser(dialect=dialect(name="pad"))
    custom.feed("16:03:47 VERB [PuppetPadlocal] login success: wxid", NOW)
    assert (custom.source, custom.spoken, custom.dialect_name) == ("pad/login", "pad", "pad")


# ---------------------------------------------------------------------------------------------
# the engine: re2, linear time


HOSTILE_RULE = {
    "rules": [
        {
            "event": "login",
            # nested quantifiers: exponential backtracking in a backtracking engine
            "match": r"(?P<time>\d\d:\d\d:\d\d) INFO (?P<user>(?:\w+\s?)+) logged in",
        },
        {"event": "logout", "match": r"(?:a|a)*(?:a|aa)*b(?P<user>x+)+y"},
        {
            "event": "scan",
            "match": r"(?P<time>\d\d:\d\d:\d\d) .*scan (?P<status>\w+) (?P<qrcode>\S+)",
        },
    ]
}


def test_rules_run_on_re2() -> None:
    d = dialect(HOSTILE_RULE)
    assert all(is_re2(r.regex) for r in d.rules)
    assert d.prefilter is not None and is_re2(d.prefilter)
    assert not is_re2(re.compile("x"))


def test_a_hostile_line_cannot_stall_the_loop() -> None:
    """A 64 KiB line built to make a backtracking engine run for ages: linear in re2. The
    measured figure is printed (~ms); the bound asserted is generous, so it never flakes."""
    d = dialect(HOSTILE_RULE)
    hostile = [
        "00:00:00 INFO " + "ab " * 21845 + "!",
        "a" * 65535 + "!",
        "00:00:00 INFO " + "\x1b[" * 32000,
        "00:00:00 " + "scan " * 13000 + "x",  # the slowest seen: every "scan" may start a match
    ]
    parser = LineParser(dialect=d)
    worst = 0.0
    for line in hostile:
        for _ in range(3):
            began = time.perf_counter()
            assert parser.feed(line, NOW) == []
            worst = max(worst, time.perf_counter() - began)
            began = time.perf_counter()
            assert parser.feed_block(line.encode() + b"\n", NOW, 65536) == []
            worst = max(worst, time.perf_counter() - began)
    print(f"\nworst hostile 64 KiB line: {worst * 1000:.1f} ms")
    assert worst < 1.0


# ---------------------------------------------------------------------------------------------
# feed_block with a dialect equals feeding every line


LINES = [
    "16:03:43 VERB [PuppetPadlocal] scan event, status: Waiting, qrcode: " + QR,
    "16:03:44 VERB [PuppetPadlocal] scan event, status: Scanned",
    "16:03:47 VERB [PuppetPadlocal] login success: wxid_8kg",
    "2026-11-25 10:00:00,250 WARN [PuppetPadlocal] logout: wxid_8kg, kicked",
    f"[4] {QR}",
    "[4] http://weixin.qq.com/x/Id",
    "Scan QR Code above to log in:",
    "10:00:00 INFO StarterBot Contact<Bob> login",
    "10:00:00 INFO StarterBot Message#Text[🗣Contact<A>]\tlogin success: x",
    "10:00:01 ERR PuppetService boom",
    "16:03:47 VERB [PuppetPadlocal] login success: ",
    f"[7] scan {QR}",
    "16:03:48 VERB [PuppetPadlocal] scan event, status: 2",
]
WRAP = ["", "0|alice  | ", "2026-11-25T10:00:00: ", "2026-11-25T02:00:00.1Z ", "\x1b[1m"]


@st.composite
def block(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.integers(0, 6))
        if kind <= 3:
            line = draw(st.sampled_from(WRAP)) + draw(st.sampled_from(LINES))
        elif kind == 4:
            message = "\n".join(draw(st.lists(st.sampled_from(LINES), max_size=3)))
            line = json.dumps(
                {"message": message, "app_name": "a"}, ensure_ascii=draw(st.booleans())
            )
            if draw(st.booleans()):  # JSON may write any character as a \u escape
                at = draw(st.lists(st.integers(0, len(line) - 1), max_size=8))
                line = "".join(
                    f"\\u{ord(c):04x}" if i in at and c.isalnum() else c for i, c in enumerate(line)
                )
        elif kind == 5:
            line = draw(st.sampled_from(LINES))[: draw(st.integers(0, 60))]
        else:
            line = draw(st.text(max_size=20))
        if draw(st.integers(0, 3)) == 0:  # an ANSI escape anywhere (rules read lines without)
            at = draw(st.integers(0, len(line)))
            escape = draw(st.sampled_from(["\x1b[0m", "\x1b]0;t\x07", "\x1b[", "\x1bM"]))
            line = line[:at] + escape + line[at:]
        lines.append(line + draw(st.sampled_from(["", "", "\r"])))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if data and draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff" + data[at:]
    return data + (b"\n" if draw(st.booleans()) else b"")


def _per_line(d: Dialect, data: bytes, max_chars: int | None) -> list[Event]:
    parser = LineParser(dialect=d)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out: list[Event] = []
    for raw in lines:
        text = raw.decode("utf-8", "replace")
        out += parser.feed(text if max_chars is None else text[:max_chars], NOW)
    return out


def _blockwise(d: Dialect, data: bytes, cut: int, max_chars: int | None) -> list[Event]:
    parser = LineParser(dialect=d)
    newlines = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    bound = newlines[cut % len(newlines)] if newlines else len(data)
    return parser.feed_block(data, NOW, max_chars, end=bound) + parser.feed_block(
        data[bound:], NOW, max_chars
    )


# Every pattern of LITERAL holds a literal (`Dialect.literals`): its blocks are searched for
# those, not with the prefilter of whole-line patterns that PADLOCAL needs.
LITERAL = {
    "rules": [
        *PADLOCAL["rules"][:3],
        {
            "name": "qr-then-prompt",
            "event": "scan",
            "status": "Waiting",
            "match": r"\[\d+\] scan (?P<qrcode>\S+)",
            "then": {"match": "Scan QR Code above to log in:", "within": 2},
        },
    ]
}
MODES = [
    dialect(),
    dialect({**PADLOCAL, "mode": "alongside"}),
    dialect(LITERAL),
    dialect({**LITERAL, "mode": "alongside"}),
]


@pytest.mark.parametrize("d", MODES[2:], ids=["instead", "alongside"])
@pytest.mark.parametrize("between", [0, 1, 2, 3])
def test_a_two_line_window_counts_the_lines_no_rule_reads(d: Dialect, between: int) -> None:
    chat = "10:00:00 INFO StarterBot Message#Text[A]\thello\n" * between
    data = f"[7] scan {QR}\n{chat}Scan QR Code above to log in:\n".encode()
    want = [Scan(NOW, W, QR)] if between < 2 else []
    assert _per_line(d, data, None) == want
    assert LineParser(dialect=d).feed_block(data, NOW) == want


def test_the_literal_dialects_take_the_literal_path() -> None:
    assert [d.literals is not None for d in MODES] == [False, False, True, True]
    assert MODES[2].literals == (
        " VERB [PuppetPadlocal] scan event, status: ",
        " VERB [PuppetPadlocal] login success: ",
        " WARN [PuppetPadlocal] logout: ",
        "] scan ",
        "Scan QR Code above to log in:",
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block(), st.integers(0, 20), st.sampled_from([None, 30, 8192]), st.sampled_from(MODES))
def test_feed_block_equals_feeding_every_line(
    data: bytes, cut: int, max_chars: int | None, d: Dialect
) -> None:
    assert _blockwise(d, data, cut, max_chars) == _per_line(d, data, max_chars)


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [(r"(?P<time>\d\d:\d\d:\d\d) +INFO +MyBot logged in as (?P<user>.+)", "MyBot logged in as "),
     (r"\[\d+\] (?P<qrcode>https?://\S+)", None), ("abcd*", "abc"), ("abcd+x", "abcd"),
     ("abcd?x", "abc"), ("ab{2}cdef", "cdef"), ("abc{x}def", "def"), (r"a\x41BCD", "BCD"),
     (r"x\p{Greek}abcd", "abcd"), (r"xy\pLabc", "abc"), (r"zz\d{2,3}yyy", "yyy"),
     ("ab[cd]efg", "efg"), (r"ab[]x]efg", "efg"), (r"ab[[:alpha:]]efg", "efg"),
     (r"\QMy.Bot\E+ yes", "My.Bot"), ("(?i)hello", None), ("ab(?i:c)defg", None),
     ("foo|barbaz", None), ("(foo|bar)bazz", "bazz"), ('say "hello" now', "hello"),
     ("a/b/cde", "cde"), ("héllo wörld", "llo w"), (r"\d+\.\d+ ms", " ms"),
     (r"abc\.def", "abc.def"), (r"ab\bcdef", "cdef"), (r"ab\123cdef", "cdef")],
)  # fmt: skip
def test_required_literal(pattern: str, literal: str | None) -> None:
    assert required_literal(pattern) == literal


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_every_match_holds_the_required_literal(data: st.DataObject) -> None:
    pattern = data.draw(
        st.sampled_from(
            [r"(?P<t>\d\d:\d\d) +INFO +My\.Bot in as (?P<user>.+)", r"ab+cd?ef{1,2}ghi",
             r"x[ab]*yzw(?:q|r)+stuv\d{2}", r"\[\d+\] scan (?P<qrcode>\S+)", r"\QA.B\E+CDE"]
        )
    )  # fmt: skip
    literal = required_literal(pattern)
    assert literal is not None
    python = pattern.replace(r"\QA.B\E", r"A\.B")
    text = data.draw(st.from_regex(re.compile(python, re.ASCII), fullmatch=True))
    assume("\n" not in text)  # a rule reads one line
    assert re2.fullmatch(pattern, text) is not None
    assert literal in text


def test_the_prefilter_skips_what_no_rule_can_take() -> None:
    d = dialect()
    chat = b"10:00:00 INFO StarterBot Message#Text[A]\thello\n" * 100
    data = chat + LINES[2].encode() + b"\n" + chat
    parser = LineParser(dialect=d)
    skip = parser.skipper(data, len(data))
    assert skip(0) == len(chat)
    assert skip(len(chat) + len(LINES[2]) + 1) == len(data)


@pytest.mark.parametrize(
    ("match", "line", "usable"),
    [("^x (?P<user>.+)$", "x Bob", True), (r"\Ax (?P<user>.+)\z", "x Bob", True),
     ("[$^]x (?P<user>.+)", "$x Bob", True), ("(?:x (?P<user>.+)$|y z)", "x Bob", False),
     ("(?:^x|y) (?P<user>.+)", "x Bob", False)],
)  # fmt: skip
def test_anchors_inside_a_pattern_turn_the_prefilter_off(
    match: str, line: str, usable: bool
) -> None:
    d = dialect({"rules": [{"event": "login", "match": match}]})
    assert (d.prefilter is not None) is usable
    assert LineParser(dialect=d).feed(line, NOW) == [Login(NOW, "Bob")]
    assert LineParser(dialect=d).feed_block(f"chat\n{line}\n".encode(), NOW) == [Login(NOW, "Bob")]


# ---------------------------------------------------------------------------------------------
# the built-in profiles in rule form


def _without_errors(events: Iterable[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, ErrorLogged)]


def _profiles_from_the_cli(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["dialects", "--format", "yaml"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    sources: dict[str, Any] = printed["dialects"]
    return sources


SAMPLES = sorted(p for p in DATA.glob("*.log") if p.name != "selflog.log")  # JSON: no rule form


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_printed_profiles_read_the_samples_as_auto_does(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = _profiles_from_the_cli(capsys)
    assert set(sources) == set(PROFILES)
    # the printed rules, renamed and loaded through the real config parser, as a user would
    custom = {f"my-{name}": body for name, body in sources.items() if name != "ding-dong"}
    everything = {"rules": [r for body in custom.values() for r in body["rules"]]}
    for i, rule in enumerate(everything["rules"]):
        rule["name"] = f"r{i}"
    bots = {"b": {"logs": str(path), "dialect": "all"}}
    exporter = parse_config({"dialects": {**custom, "all": everything}, "bots": bots}).exporter
    rules = exporter.dialect("b", str(path))
    assert rules is not None
    auto, mine = LineParser(tz=CST), LineParser(tz=CST, dialect=rules)
    expected: list[Event] = []
    got: list[Event] = []
    for line in path.read_text("utf-8").splitlines():
        expected += _without_errors(auto.feed(line, NOW))
        got += mine.feed(line, NOW)
    assert got == expected
    assert expected, "the sample has events"
    blockwise = LineParser(tz=CST, dialect=rules).feed_block(path.read_bytes(), NOW)
    assert blockwise == got


def test_each_profile_reads_its_own_family(capsys: pytest.CaptureFixture[str]) -> None:
    families = {
        "brolog": "brolog.log",
        "eventlogger": "eventlogger*.log",
        "qrcode-terminal": "qrcodeterminal.log",
        "python-wechaty": "python-wechaty.log",
    }
    for name, pattern in families.items():
        lines = [line for p in DATA.glob(pattern) for line in p.read_text("utf-8").splitlines()]
        assert lines
        auto, mine = LineParser(tz=CST), LineParser(tz=CST, dialect=PROFILES[name])
        for line in lines:
            expected = [e for e in _without_errors(auto.feed(line, NOW)) if auto.source == name]
            got = mine.feed(line, NOW)
            assert got == expected, (name, line)


def test_ding_dong_is_opt_in() -> None:
    lines = [
        f"onScan: Waiting(2) - {QR}",
        "onScan: Confirmed(4)",
        "Contact<Bob> login",
        "Bob logged out",
    ]
    assert feed(None, *lines) == []
    assert feed(PROFILES["ding-dong"], *lines) == [
        Scan(NOW, W, QR), Scan(NOW, ScanStatus.CONFIRMED), Login(NOW, "Bob"), Logout(NOW, "Bob")
    ]  # fmt: skip


def test_dialects_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dialects"]) == 0
    out = capsys.readouterr().out
    assert out == render_text()
    assert out.startswith("auto (the default)")
    for name, d in PROFILES.items():
        assert f"\n{name}  (" in out
        for rule in d.rules:
            assert f"match: {rule.match}" in out


def test_profiles_are_plain_data() -> None:
    """What `dialects --format yaml` prints is what `parse_dialect` compiled."""
    for d in PROFILES.values():
        for rule in d.rules:
            assert dataclasses.is_dataclass(rule) and is_re2(rule.regex)
