"""docs/dialects.md works: every YAML block loads through the real config parser, and each
cookbook recipe's log, replayed with its config, gives the events and the state it promises.

A recipe is a `### ` section of the page's Cookbook: a ```text block (the log as a bot printed
it) and a ```yaml block (a config with one bot). Every line quoted in the issue that asked for
custom dialects is in some recipe.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from wechaty_exporter.config import parse_config
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import Event, Login, Logout, Scan, ScanStatus
from wechaty_exporter.logs.replay import replay_file
from wechaty_exporter.logs.state import BotState

DOC = Path(__file__).resolve().parents[2] / "docs" / "dialects.md"
TEXT = DOC.read_text("utf-8")
BLOCK_RE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
W = ScanStatus.WAITING

# The lines of the issue "Real bots' logs", as pasted there.
ISSUE = [
    "16:03:43 VERB [PuppetPadlocal] scan event, status: Waiting",
    "16:03:47 VERB [PuppetPadlocal] login success: wxid_8kg1wdu3jvk322",
    "Scan QR Code to login: 2",
    "https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FYYUlKbk0qg%3D%3D",
    "[4] http://weixin.qq.com/x/oYldCbNPP4YzHv1t74F8",
    "Scan QR Code above to log in:",
    "11:31:22 INFO PuppetPadplus logout(true, "
    "你的微信登录环境存在异常。为了帐号安全，本次登录已失效。)",
    "15:29:20 INFO IoClient 辛辛六号 logged in",
    "2021-05-26 11:29:42,349 - Wechaty - INFO - receive <scan> event <EventScanPayload("
    "status=<ScanStatus.Waiting: 2>, qrcode='https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?"
    "key=2DCB7EEFBF63F1183BB67697AB61D85A&wx=1', data=None)>",
]

# recipe heading → (events, with `at` zeroed; the end state's logged_in, user, pending QR)
EXPECTED: dict[str, tuple[list[Event], bool | None, str | None, str | None]] = {
    "wechaty-puppet-padlocal's own lines": (
        [Scan(0, W), Login(0, "wxid_8kg1wdu3jvk322")],
        True,
        "wxid_8kg1wdu3jvk322",
        None,
    ),
    "`console.log` of Wechaty's getting-started bot": (
        [Scan(0, W, "https://login.weixin.qq.com/l/YYUlKbk0qg==")],
        False,
        None,
        "https://login.weixin.qq.com/l/YYUlKbk0qg==",
    ),
    'A QR URL, then "Scan QR Code above to log in:"': (
        [Scan(0, W, "http://weixin.qq.com/x/oYldCbNPP4YzHv1t74F8")],
        False,
        None,
        "http://weixin.qq.com/x/oYldCbNPP4YzHv1t74F8",
    ),
    "wechaty-puppet-padplus's logout with a reason": (
        [Logout(0, None, "你的微信登录环境存在异常。为了帐号安全，本次登录已失效。")],
        False,
        None,
        None,
    ),
    'Wechaty\'s IoClient "logged in"': ([Login(0, "辛辛六号")], True, "辛辛六号", None),
    "python-wechaty, logging in to WeChat Work": (
        [
            Scan(
                0,
                W,
                "https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?"
                "key=2DCB7EEFBF63F1183BB67697AB61D85A&wx=1",
            )
        ],
        False,
        None,
        "https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key=2DCB7EEFBF63F1183BB67697AB61D85A&wx=1",
    ),
    "Wechaty's ding-dong example": (
        [
            Scan(0, W, "https://login.weixin.qq.com/l/IdDd1=="),
            Scan(0, ScanStatus.SCANNED),
            Scan(0, ScanStatus.CONFIRMED),
            Login(0, "Bob"),
            Logout(0, "Bob"),
        ],
        False,
        "Bob",
        None,
    ),
}


def recipes() -> dict[str, tuple[list[str], dict[str, Any]]]:
    """Cookbook heading → (log lines, parsed YAML)."""
    cookbook = TEXT.split("\n## Cookbook\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for section in cookbook.split("\n### ")[1:]:
        title, _, body = section.partition("\n")
        blocks = dict((kind, code) for kind, code in BLOCK_RE.findall(body))
        assert set(blocks) == {"text", "yaml"}, f"{title}: a text and a yaml block"
        out[title.strip()] = (blocks["text"].splitlines(), yaml.safe_load(blocks["yaml"]))
    return out


RECIPES = recipes()


def test_every_yaml_block_loads_through_the_config_parser() -> None:
    blocks = [code for kind, code in BLOCK_RE.findall(TEXT) if kind == "yaml"]
    assert len(blocks) >= len(EXPECTED) + 1
    for code in blocks:
        parse_config(yaml.safe_load(code), "docs/dialects.md")  # raises ConfigError


def test_every_recipe_is_tested_and_every_issue_line_has_one() -> None:
    assert set(RECIPES) == set(EXPECTED)
    quoted = {line for lines, _ in RECIPES.values() for line in lines}
    assert [line for line in ISSUE if line not in quoted] == []


def _zeroed(events: list[Event]) -> list[Event]:
    return [dataclasses.replace(e, at=0) for e in events]


@pytest.mark.parametrize("title", sorted(EXPECTED))
def test_recipe(title: str, tmp_path: Path) -> None:
    lines, raw = RECIPES[title]
    exporter = parse_config(raw).exporter
    ((bot, (path,)),) = exporter.bots
    dialect = exporter.dialect(bot, path)
    events, logged_in, user, qr = EXPECTED[title]
    parser = LineParser(exporter.qr_hosts, dialect=dialect)
    got = [e for line in lines for e in parser.feed(line, 1_700_000_000.0)]
    assert _zeroed(got) == events
    log = tmp_path / "bot.log"
    log.write_text("\n".join(lines) + "\n", "utf-8")
    state = BotState()
    replay_file(state, str(log), qr_hosts=exporter.qr_hosts, dialect=dialect)
    assert (state.logged_in, state.user, state.qr.qrcode if state.qr else None) == (
        logged_in,
        user,
        qr,
    )


def test_without_the_recipes_the_issue_lines_say_nothing_decisive() -> None:
    """What the issue reported: `auto` alone leaves these bots unknown (python-wechaty aside)."""
    parser = LineParser()
    got = [e for line in ISSUE[:-1] for e in parser.feed(line, 0.0)]
    assert got == []
