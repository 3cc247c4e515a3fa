"""The whole duet on the real Prometheus and Alertmanager (fast profile): bob's logout and QR, as
bob's own peer bot self-logs them, end as a DM from alice carrying a PNG of that QR; bob's
re-login ends as a "back online" DM; with alice's puppet service down, alice's receiver answers
503 and Alertmanager's retries deliver once it is back, exactly once. Nothing but the WeChat
puppet services is faked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.peerbot.conftest import FullPath
from tests.peerbot.kit import (
    ADMIN,
    ALICE,
    BOB,
    decode_qr,
    start_fake,
    start_peer,
    stop_fake,
    until,
)

QR = "https://login.weixin.qq.com/l/Fu11PathQr=="
QR_LATER = "https://login.weixin.qq.com/l/Fu11PathL8r=="


async def test_logout_ends_as_a_dm_with_the_qr_and_relogin_as_back_online(
    full_path: FullPath, tmp_path: Path, measured: list[str]
) -> None:
    duet, prometheus = full_path.duet, full_path.prometheus
    alice_fake = await start_fake(ALICE, logged_in=True)
    bob_fake = await start_fake(BOB, logged_in=True)
    peers = []
    for fake, name, other in ((alice_fake, "alice", "bob"), (bob_fake, "bob", "alice")):
        peer = await start_peer(
            fake, duet.logs.path(name), name=name, exporter_url=duet.exporter.url,
            admins=[(other, (ADMIN.id,))], port=full_path.ports[name], token=full_path.token,
            state_dir=tmp_path / name,
        )  # fmt: skip
        peers.append(peer)

    async def both_logged_in() -> bool:
        values = await asyncio.to_thread(prometheus.values, "wechaty_bot_logged_in", "bot")
        return values == {"alice": 1.0, "bob": 1.0}

    try:
        await until(both_logged_in, within=20, interval=0.2)

        logged_out = time.monotonic()
        bob_fake.logout("kicked by another device")
        bob_fake.scan(QR)
        await until(lambda: alice_fake.files_to(ADMIN.id), within=20, what="the QR DM")
        logout_to_dm = time.monotonic() - logged_out
        [text] = alice_fake.texts_to(ADMIN.id)
        assert text.startswith("bob is logged out of WeChat"), text
        [(filename, png)] = alice_fake.files_to(ADMIN.id)
        assert filename == "bob-login-qr.png"
        assert decode_qr(png, tmp_path) == QR

        logged_in = time.monotonic()
        bob_fake.login()
        await until(lambda: len(alice_fake.texts_to(ADMIN.id)) == 2, within=20, what="back online")
        login_to_dm = time.monotonic() - logged_in
        assert alice_fake.texts_to(ADMIN.id)[1].startswith("bob is back online")
        assert len(alice_fake.files_to(ADMIN.id)) == 1, "Alertmanager's repeats are deduped"
        assert bob_fake.sent == [], "alerts about bob go to alice's receiver only"

        # alice's puppet service is away when bob is logged out again.
        alice = peers[0]
        await alice_fake.go_down()
        bob_fake.logout()
        bob_fake.scan(QR_LATER)

        async def refused() -> bool:
            return await alice.metric("wechaty_receiver_requests_total", code="503") > 0

        await until(refused, within=20, interval=0.2)
        assert len(alice_fake.sent) == 3
        back = time.monotonic()
        await alice_fake.come_back()
        await until(lambda: len(alice_fake.files_to(ADMIN.id)) == 2, within=20, what="retry")
        back_to_dm = time.monotonic() - back
        # The marker: bob back in. Alertmanager notifies bob's group in order, so a repeat of
        # the retried notification would come before this "back online" DM.
        bob_fake.login()
        await until(lambda: len(alice_fake.texts_to(ADMIN.id)) >= 4, within=20, what="marker")
        texts, files = alice_fake.texts_to(ADMIN.id), alice_fake.files_to(ADMIN.id)
        assert len(texts) == 4 and len(files) == 2, "each message exactly once"
        assert texts[2].startswith("bob is logged out of WeChat")
        assert texts[3].startswith("bob is back online")
        assert decode_qr(files[1][1], tmp_path) == QR_LATER

        measured.append(f"full path: bob's logout → alice's QR DM: {logout_to_dm:.2f} s")
        measured.append(f"full path: bob's re-login → 'back online' DM: {login_to_dm:.2f} s")
        measured.append(
            f"full path: alice's puppet back → Alertmanager's retry delivered: {back_to_dm:.2f} s"
        )
    finally:
        for peer in peers:
            await peer.stop()
        await stop_fake(alice_fake)
        await stop_fake(bob_fake)
