"""`wechaty-exporter explain` (logs/explain.py + the CLI): events by line and rule, rejected QRs,
near misses, limits with counts, line numbers through the prefilter, the exit status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from wechaty_exporter.cli import main
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.profiles import PROFILES
from wechaty_exporter.logs.dialects.rules import parse_dialect
from wechaty_exporter.logs.explain import Explainer, FileReport, redact, render_text, report
from wechaty_exporter.logs.state import BotState

DATA = Path(__file__).resolve().parents[1] / "data" / "dialects"
QR = "https://login.weixin.qq.com/l/IdSecret=="
CHAT = "10:00:00 INFO StarterBot Message#Text[🗣Contact<Alice>]\thello, please login"
PADLOCAL_LOG = [
    "16:03:40 INFO Wechaty v1.20.2 starting...",
    "16:03:43 VERB [PuppetPadlocal] scan event, status: Waiting",
    "16:03:44 INFO StarterBot onScan: Waiting(2) - https://wechaty.js.org/qrcode/"
    "https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FIdSecret%3D%3D",
    "16:03:45 INFO StarterBot onScan: Waiting(2) - https://evil.example/l/x",
    "16:03:46 VERB [PuppetPadlocal] scan event, status: Pending",
    "16:03:47 VERB [PuppetPadlocal] login success: wxid_8kg1wdu3jvk322",
    "16:03:48 VERB [PuppetPadlocal] logout event, kicked",
    CHAT,
]
CONFIG = {
    "dialects": {
        "padlocal": {
            "include": ["brolog"],
            "rules": [
                {
                    "name": "scan-status",
                    "event": "scan",
                    "match": r"(?P<time>\d\d:\d\d:\d\d) VERB \[PuppetPadlocal\] scan event, "
                    r"status: (?P<status>\w+)",
                    "no_qr": True,
                },
                {
                    "name": "login-success",
                    "event": "login",
                    "match": r"(?P<time>\d\d:\d\d:\d\d) VERB \[PuppetPadlocal\] login success: "
                    r"(?P<user>\S+)",
                },
            ],
        }
    },
    "bots": {"alice": {"logs": "/var/log/alice.log", "dialect": "padlocal"}},
}


def explain(lines: list[str], chunk: int = 1 << 20, limit: int = 20, **kw: Any) -> FileReport:
    data = ("\n".join(lines) + "\n").encode()
    state = BotState()
    explainer = Explainer("bot.log", LineParser(**kw), state, 0.0, limit=limit)
    for i in range(0, len(data), chunk):
        explainer.feed(data[i : i + chunk])
    return explainer.finish()


def padlocal() -> Any:
    errors: list[str] = []
    d = parse_dialect("padlocal", CONFIG["dialects"]["padlocal"], "x", errors, PROFILES)
    assert d is not None, errors
    return d


def test_events_rejections_notes_and_near_misses() -> None:
    r = explain(PADLOCAL_LOG, dialect=padlocal())
    events = [(s.line, s.source, s.what) for s in r.events.first]
    assert events == [
        (2, "padlocal/scan-status", "scan Waiting(2), no QR in the log"),
        (3, "padlocal/onScan", "scan Waiting(2) qr=login.weixin.qq.com/…"),
        (6, "padlocal/login-success", "login user='wxid_8kg1wdu3jvk322'"),
    ]
    assert [(s.line, s.source) for s in r.rejected.first] == [(4, "padlocal/onScan")]
    assert r.rejected.first[0].what.startswith("host not allowed: 16:03:45 INFO")
    assert [(s.line, s.what) for s in r.notes.first] == [
        (5, "rule scan-status: status 'Pending' is not a scan status; no event")
    ]
    assert [(s.line, s.what) for s in r.near_misses.first] == [
        (7, "16:03:48 VERB [PuppetPadlocal] logout event, kicked")
    ]  # the chat line says "login" but is a chat message
    assert (r.lines, r.decisive, r.speaks, r.dialect) == (8, 3, "padlocal", "padlocal")


def test_near_misses_under_auto_and_redaction() -> None:
    lines = [
        "Scan QR Code to login: 2",
        "https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FYYUlKbk0qg%3D%3D",
        "15:29:20 INFO IoClient 辛辛六号 logged in",
        "15:29:21 INFO IoClient nothing to see",
    ]
    r = explain(lines)
    assert [s.line for s in r.near_misses.first] == [1, 2, 3]
    assert "YYUlKbk0qg" not in r.near_misses.first[1].what
    assert r.near_misses.first[1].what.endswith("login.weixin.qq.com%2F…")
    assert r.decisive == 0 and r.speaks is None
    assert redact(f"x {QR} y http://weixin.qq.com/x/abc") == (
        "x https://login.weixin.qq.com/… y http://weixin.qq.com/…"
    )


def test_line_numbers_survive_the_prefilter_and_any_split() -> None:
    chat = [CHAT.replace("please login", f"message {i}") for i in range(500)]
    lines = [
        *chat,
        "16:03:47 VERB [PuppetPadlocal] login success: wxid",
        *chat,
        "12:00:00 INFO X scanning the room",
        *chat,
        "10:00:00 INFO Bot Contact<B> login",
    ]
    for dialect in (None, padlocal()):
        for chunk in (7, 4096, 1 << 20):
            r = explain(lines, chunk=chunk, dialect=dialect)
            assert r.lines == len(lines)
            near = [s.line for s in r.near_misses.first]
            if dialect is None:
                assert near == [501, 1002] and [s.line for s in r.events.first] == [1503]
            else:
                assert near == [1002]
                assert [s.line for s in r.events.first] == [501, 1503]


def test_limits_keep_counts() -> None:
    # one account: another's login while logged in would be a suspect event (logs/state.py)
    lines = [f"10:00:{i % 60:02d} INFO Bot Contact<B> login" for i in range(100)]
    lines += [f"scan attempt {i}" for i in range(50)]
    r = explain(lines, limit=5)
    assert r.events.count == 100 and len(r.events.first) == 5 and len(r.events.last) == 5
    assert [s.line for s in r.events.last] == [96, 97, 98, 99, 100]
    assert r.near_misses.count == 50 and len(r.near_misses.first) == 5
    text = render_text("bob", [r], BotState())
    assert "… 90 more" in text and "… 45 more" in text
    doc = report("bob", [r], BotState())
    assert doc["files"][0]["events"]["omitted"] == 90
    assert len(doc["files"][0]["events"]["shown"]) == 10


def test_a_two_line_entry_that_never_completes_is_noted() -> None:
    d = PROFILES["qrcode-terminal"]
    r = explain(
        [
            "20:00:01 INFO WechatyPluginContrib QRCodeTerminal Login QR Code Status: Waiting(2)",
            "20:00:01 WARN PuppetService something in between",
            f"QR Code Image URL: {QR}",
        ],
        dialect=d,
    )
    assert r.events.count == 0
    assert [s.line for s in r.notes.first] == [2]
    assert "within 1 line(s)" in r.notes.first[0].what


def test_text_output() -> None:
    state = BotState()
    explainer = Explainer("alice.log", LineParser(dialect=padlocal()), state, 0.0)
    explainer.feed(("\n".join(PADLOCAL_LOG) + "\n").encode())
    r = explainer.finish()
    text = render_text("alice", [r], state)
    assert "\x1b[" not in text
    assert text.splitlines()[0] == "alice.log: 8 lines, dialect padlocal, speaks padlocal"
    assert "    line 6  padlocal/login-success  login user='wxid_8kg1wdu3jvk322'" in text
    assert text.splitlines()[-1] == (
        "bot alice: logged in, account 'wxid_8kg1wdu3jvk322'; 1 login(s), 0 logout(s), "
        "1 QR(s), 1 rejected QR(s)"
    )
    assert "IdSecret" not in text
    assert "\x1b[32m" in render_text("alice", [r], state, colour=True)


# ---------------------------------------------------------------------------------------------
# the command


def write(tmp_path: Path, lines: list[str]) -> Path:
    log = tmp_path / "alice.log"
    log.write_text("\n".join(lines) + "\n", "utf-8")
    return log


def test_cli_json_with_config_and_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write(tmp_path, PADLOCAL_LOG)
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({**CONFIG, "bots": {"alice": {"logs": str(log),
                      "dialect": "padlocal"}}}))  # fmt: skip
    assert main(["explain", "--config", str(config), "--format", "json", str(log)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bot"] == "alice" and doc["decisive"] is True
    (f,) = doc["files"]
    assert (f["dialect"], f["speaks"], f["lines"]) == ("padlocal", "padlocal", 8)
    assert f["events"]["shown"][2] == {
        "line": 6, "source": "padlocal/login-success", "what": "login user='wxid_8kg1wdu3jvk322'"
    }  # fmt: skip
    assert doc["state"]["logged_in"] is True and doc["state"]["user"] == "wxid_8kg1wdu3jvk322"
    assert "IdSecret" not in json.dumps(doc)
    # the same log without the config: padlocal's lines are near misses; brolog's QR counts
    assert main(["explain", "--format", "json", str(log)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"][0]["dialect"] == "auto"
    assert doc["files"][0]["near_misses"]["count"] == 4


def test_cli_exits_1_without_a_decisive_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write(tmp_path, ["16:03:47 VERB [PuppetPadlocal] login success: wxid", CHAT])
    assert main(["explain", str(log)]) == 1
    out = capsys.readouterr().out
    assert "near misses (look like events, match nothing): 1" in out
    assert "state unknown" in out and "docs/dialects.md" in out


def test_cli_bot_not_in_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path, PADLOCAL_LOG)
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(CONFIG))
    assert main(["explain", "--config", str(config), "--bot", "zed", str(log)]) == 2
    assert "--bot zed: not a bot of this config (bots: alice)" in capsys.readouterr().err
    assert main(["explain", "--config", str(config), "--bot", "alice", str(log)]) == 0
    assert "dialect padlocal" in capsys.readouterr().out


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(tmp_path / "nope.log")]) == 1
    assert "nope.log" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(DATA.glob("*.log")), ids=lambda p: p.name)
def test_explain_agrees_with_replay(path: Path) -> None:
    """The state `explain` ends with is `replay`'s (same parser, same lines)."""
    from wechaty_exporter.logs.replay import replay_file

    expected = BotState()
    replay_file(expected, str(path))
    state = BotState()
    explainer = Explainer(str(path), LineParser(), state, path.stat().st_mtime)
    explainer.feed(path.read_bytes())
    explainer.finish()
    assert state == expected
