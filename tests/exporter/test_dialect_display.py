"""Which dialect each file speaks: logged once when a file's first event is parsed (live or at a
cold start), on /api/v1/bots (the bot document's `dialects` map) and on the status page; and a
bot's custom dialect read by `serve` and `replay`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tests.helpers import append, eventually

from wechaty_exporter.cli import main
from wechaty_exporter.config import parse_config
from wechaty_exporter.exporter.app import create_exporter_app
from wechaty_exporter.exporter.collector import BotView, FileView
from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.settings import ExporterSettings
from wechaty_exporter.exporter.statuspage import render_status_page
from wechaty_exporter.logs.state import BotState

PADLOCAL = {
    "rules": [
        {
            "name": "login-success",
            "event": "login",
            "match": r"(?P<time>\d\d:\d\d:\d\d) VERB \[PuppetPadlocal\] login success: "
            r"(?P<user>\S+)",
        },
        {
            "name": "logout",
            "event": "logout",
            "match": r"(?P<time>\d\d:\d\d:\d\d) INFO PuppetPadplus logout\((?:true|false), "
            r"(?P<reason>.*)\)",
        },
    ]
}


def settings(tmp_path: Path, alice: Path, bob: Path, carol: Path) -> ExporterSettings:
    raw = {
        "dialects": {"padlocal": PADLOCAL},
        "bots": {
            "alice": {"logs": str(alice)},
            "bob": {"logs": str(bob), "dialect": "padlocal"},
            "carol": {"logs": str(carol)},
        },
    }
    exporter = parse_config(raw).exporter
    return ExporterSettings(
        bots=exporter.bots,
        dialects=exporter.dialects,
        bot_dialects=exporter.bot_dialects,
        state_dir=tmp_path / "state",
        poll_interval=0.2,
    )


async def documents(client: TestClient) -> dict[str, dict[str, Any]]:
    body = await (await client.get("/api/v1/bots")).json()
    return {b["bot"]: b for b in body["bots"]}


async def test_speaks_is_logged_once_and_shown(
    tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob, carol = tmp_path / "alice.log", tmp_path / "bob.log", tmp_path / "carol.log"
    append(alice, "09:00:00 INFO StarterBot Contact<Alice> login")  # found by the cold start
    append(carol, "09:00:00 INFO StarterBot Message#Text[🗣Contact<Dan>]\tplease login")
    caplog.set_level(logging.INFO, logger="wechaty_exporter.exporter.monitor")
    monitor = Monitor(settings(tmp_path, alice, bob, carol))
    client = await aiohttp_client(create_exporter_app(monitor))

    async def ready() -> bool:
        return (await client.get("/-/ready")).status == 200

    await eventually(ready)
    append(bob, "16:03:47 VERB [PuppetPadlocal] login success: wxid_8kg1wdu3jvk322")
    append(bob, "16:03:48 VERB [PuppetPadlocal] login success: wxid_8kg1wdu3jvk322")
    append(alice, "09:00:05 INFO StarterBot Contact<Alice> logout")

    async def bob_in() -> dict[str, Any] | None:
        docs = await documents(client)
        return docs if docs["bob"]["logged_in"] and docs["alice"]["logged_in"] is False else None

    docs = await eventually(bob_in)
    assert docs["bob"]["user"] == "wxid_8kg1wdu3jvk322"
    assert docs["alice"]["dialects"] == {str(alice): {"dialect": "auto", "speaks": "brolog"}}
    assert docs["bob"]["dialects"] == {str(bob): {"dialect": "padlocal", "speaks": "padlocal"}}
    assert docs["carol"]["dialects"] == {str(carol): {"dialect": "auto", "speaks": None}}
    assert docs["alice"]["log_files"] == [{"path": str(alice), "present": True}]

    spoken = [r.getMessage() for r in caplog.records if " speaks " in r.getMessage()]
    assert sorted(spoken) == sorted(
        [f"bot alice: {alice} speaks brolog", f"bot bob: {bob} speaks padlocal"]
    )

    page = await (await client.get("/")).text()
    assert "speaks padlocal, dialect padlocal" in page
    assert "speaks brolog" in page and "no event parsed yet" in page


def test_status_page_names_the_dialect() -> None:
    files = (
        FileView("/a.log", True, 0, 0, 0, 0, dialect="padlocal", speaks="padlocal"),
        FileView("/b.log", True, 0, 0, 0, 0),
    )
    page = render_status_page([BotView("alice", BotState(), files)], show_qr=False, version="1")
    assert "<code>/a.log</code> <small>speaks padlocal, dialect padlocal</small>" in page
    assert "<code>/b.log</code> <small>no event parsed yet</small>" in page


def test_replay_reads_a_bots_dialect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "bob.log"
    log.write_text(
        "16:03:47 VERB [PuppetPadlocal] login success: wxid_8kg1wdu3jvk322\n"
        "11:31:22 INFO PuppetPadplus logout(true, 你的微信登录环境存在异常。)\n",
        "utf-8",
    )
    config = tmp_path / "c.yml"
    config.write_text(
        json.dumps(
            {
                "dialects": {"padlocal": PADLOCAL},
                "bots": {"bob": {"logs": str(log), "dialect": "padlocal"}},
            }
        )
    )
    assert main(["replay", "--config", str(config), f"bob={log}"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)["bots"]
    assert (doc["logins_total"], doc["logouts_total"], doc["logged_in"]) == (1, 1, False)
    assert doc["dialects"] == {str(log): {"dialect": "padlocal", "speaks": None}}
    assert main(["replay", f"bob={log}"]) == 0  # without it: nothing recognised
    (doc,) = json.loads(capsys.readouterr().out)["bots"]
    assert doc["logged_in"] is None
