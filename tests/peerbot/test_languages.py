"""The peer bot in Chinese, the default language: its rescue DM and its chat replies, through a
python-wechaty bot on a fake puppet service and a real exporter."""

from __future__ import annotations

from pathlib import Path

from tests.peerbot.conftest import Duet
from tests.peerbot.kit import (
    ADMIN,
    ALICE,
    BOB,
    AlertFactory,
    decode_qr,
    start_fake,
    start_peer,
    stop_fake,
    until,
    wait_exporter_qr,
)

QR = "https://login.weixin.qq.com/l/Zh1nGwEn=="


async def test_the_dm_and_the_replies_are_chinese(duet: Duet, tmp_path: Path) -> None:
    url = duet.exporter.url
    alice_fake = await start_fake(ALICE, logged_in=True)
    bob_fake = await start_fake(BOB, logged_in=True)
    alice = await start_peer(
        alice_fake, duet.logs.path("alice"), name="alice", exporter_url=url,
        admins=[("bob", (ADMIN.id,))], state_dir=tmp_path / "alice", language="zh",
    )  # fmt: skip
    bob = await start_peer(
        bob_fake, duet.logs.path("bob"), name="bob", exporter_url=url,
        admins=[("alice", (ADMIN.id,))], state_dir=tmp_path / "bob", language="zh",
    )  # fmt: skip
    try:
        await until(lambda: alice.get("/-/ready"), what="alice ready")
        bob_fake.logout("kicked by another device")
        bob_fake.scan(QR)
        await wait_exporter_qr(url, "bob", QR)
        status, body = await alice.post(AlertFactory("bob").payload("firing"))
        assert status == 200, body
        [text] = alice_fake.texts_to(ADMIN.id)
        [(filename, png)] = alice_fake.files_to(ADMIN.id)
        assert text.startswith("bob 已退出微信登录，自 "), text
        assert "请用 bob 的微信扫描下方二维码重新登录" in text
        assert text.endswith("二维码过期了？发送：qr bob")
        assert filename == "bob-login-qr.png" and decode_qr(png, tmp_path) == QR

        alice_fake.receive_text(ADMIN.id, "help")
        await until(lambda: len(alice_fake.texts_to(ADMIN.id)) == 2, what="the help reply")
        assert alice_fake.texts_to(ADMIN.id)[1].startswith("你的机器人：bob\n")
    finally:
        await alice.stop()
        await bob.stop()
        await stop_fake(alice_fake)
        await stop_fake(bob_fake)
