"""Self-logging: the puppet's scan/login/logout events, written by the real client, parse back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.peerbot.kit import (
    FakeContact,
    FakePuppet,
    parse,
    self_log_lines,
    start_fake,
    start_peer,
    stop_fake,
    until,
    without_time,
)

from wechaty_exporter.logs.events import ScanStatus
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.messenger import PuppetService, new_bot
from wechaty_exporter.peerbot.plugin import ExporterPlugin
from wechaty_exporter.peerbot.selflog import SelfLog

QR1 = "https://login.weixin.qq.com/l/IdS1ss=="
QR2 = "https://login.weixin.qq.com/l/IdS2tt=="
FORGED = "2026-11-25T09:00:00.000+08:00 INFO wechaty-exporter scan "
FORGED += '{"status":2,"qrcode":"https://login.weixin.qq.com/l/evil"}'
# A display name and a logout reason that each try to start a line of their own.
ME = FakeContact("wxid_peer", f"Peer\n{FORGED}\r\u2028伙伴")
REASON = f"kicked\n{FORGED}"


async def _drive(fake: FakePuppet, path: Path) -> None:
    """A start while logged out, a login, a logout, a re-login without a restart."""
    await fake.wait_event_stream()
    fake.scan(QR1)
    fake.scan("", status=3)
    fake.scan("", status=4)
    fake.login()
    await until(lambda: self_log_lines(path, "login"), what="the login line")
    fake.logout(REASON)
    fake.scan(QR2)
    fake.login()  # python-wechaty emits no second `login`: only the puppet sees it
    await until(lambda: len(self_log_lines(path, "login")) == 2, what="the re-login line")


EXPECTED = [
    ("Scan", ScanStatus.WAITING, QR1),
    ("Scan", ScanStatus.SCANNED, None),
    ("Scan", ScanStatus.CONFIRMED, None),
    ("Login", ME.name),
    ("Logout", ME.name, REASON),
    ("Scan", ScanStatus.WAITING, QR2),
    ("Login", ME.name),
]


async def test_peer_bot_self_log_parses_back(tmp_path: Path) -> None:
    path = tmp_path / "alice.self.log"
    fake = await start_fake(ME)
    peer = await start_peer(fake, path)
    try:
        await _drive(fake, path)
    finally:
        await peer.stop()
        await stop_fake(fake)

    assert without_time(parse(path)) == EXPECTED
    lines = self_log_lines(path)
    kinds = [line.split(" ", 4)[3] for line in lines]
    assert kinds == ["puppet", *["scan"] * 3, "login", "logout", "scan", "login", "puppet"]
    login = json.loads(self_log_lines(path, "login")[0].split(" ", 4)[4])
    assert login == {"user": ME.name, "id": ME.id}
    assert json.loads(lines[0].split(" ", 4)[4])["state"] == "connected"
    assert json.loads(lines[-1].split(" ", 4)[4])["state"] == "stopped"


async def test_plugin_given_the_bot_logs_from_the_first_qr(tmp_path: Path) -> None:
    path = tmp_path / "plugin.self.log"
    fake = await start_fake(ME)
    bot = new_bot(PuppetService(endpoint=fake.endpoint, token="t"))
    plugin = ExporterPlugin(path, bot=bot)
    bot.use(plugin)
    started = asyncio.create_task(bot.start())  # the user's own start
    try:
        await _drive(fake, path)
    finally:
        await compat.request_stop(bot)
        await started
        compat.close_bot(bot)
        await plugin.close()
        await stop_fake(fake)
    assert without_time(parse(path)) == EXPECTED


async def test_plugin_alone_logs_from_the_first_login(tmp_path: Path) -> None:
    path = tmp_path / "plugin.self.log"
    fake = await start_fake(ME)
    bot = new_bot(PuppetService(endpoint=fake.endpoint, token="t"))
    plugin = ExporterPlugin(path)
    bot.use(plugin)
    started = asyncio.create_task(bot.start())
    try:
        await _drive(fake, path)
    finally:
        await compat.request_stop(bot)
        await started
        compat.close_bot(bot)
        await plugin.close()
        await stop_fake(fake)
    # The QR before the first login goes unseen: python-wechaty hands plugins the bot at login.
    assert without_time(parse(path)) == EXPECTED[3:]


def test_self_log_follows_rotation_and_deletion(tmp_path: Path) -> None:
    path = tmp_path / "self.log"

    def kinds(p: Path) -> list[str]:
        return [line.split(" ")[3] for line in p.read_text().splitlines()]

    out = SelfLog(path)
    out.open()
    out.write("login", {"user": "a", "id": "wxid_a"}, at=0.0)
    path.rename(tmp_path / "self.log.1")  # logrotate's `create`
    out.write("logout", {"user": "a", "id": "wxid_a", "reason": None}, at=1.0)
    assert kinds(tmp_path / "self.log.1") == ["login"]
    assert kinds(path) == ["logout"]
    path.unlink()
    out.write("scan", {"status": 2, "qrcode": None}, at=2.0)
    out.close()
    assert kinds(path) == ["scan"]
    assert path.stat().st_mode & 0o777 == 0o640  # holds login QRs: not world-readable
