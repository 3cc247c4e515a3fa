"""Issue 4's "Done when" minus Prometheus: webhook → alice's peer bot → admin DM with bob's QR.

Two peer bots, each on its own fake puppet service, self-log to the files one real exporter
process tails (`serve --log alice=... --log bob=...`): the duet with no other code. Alertmanager's
part is played by posting its captured v4 payloads to alice's receiver.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.peerbot.conftest import Duet
from tests.peerbot.kit import (
    ADMIN,
    ALICE,
    BOB,
    AlertFactory,
    decode_qr,
    exporter_qr,
    start_fake,
    start_peer,
    stop_fake,
    until,
    wait_exporter_qr,
)

QR_OLD = "https://login.weixin.qq.com/l/Oa1dQr=="
QR_FRESH = "https://login.weixin.qq.com/l/Fr3shQr=="
QR_LATER = "https://login.weixin.qq.com/l/L8terQr=="


async def test_alert_to_dm_and_retry_after_the_puppet_returns(
    duet: Duet, tmp_path: Path, measured: list[str]
) -> None:
    url = duet.exporter.url
    alice_fake = await start_fake(ALICE, logged_in=True)
    bob_fake = await start_fake(BOB, logged_in=True)
    alice = await start_peer(
        alice_fake, duet.logs.path("alice"), name="alice", exporter_url=url,
        admins=[("bob", (ADMIN.id,))], state_dir=tmp_path / "alice",
    )  # fmt: skip
    bob = await start_peer(
        bob_fake, duet.logs.path("bob"), name="bob", exporter_url=url,
        admins=[("alice", (ADMIN.id,))], state_dir=tmp_path / "bob",
    )  # fmt: skip

    def dms() -> tuple[list[str], list[tuple[str, bytes]]]:
        return alice_fake.texts_to(ADMIN.id), alice_fake.files_to(ADMIN.id)

    async def alice_ready() -> bool:
        return await alice.get("/-/ready") == 200

    try:
        await until(alice_ready)

        # bob is logged out and shows two QRs in turn; its self-log reaches the exporter.
        bob_fake.logout("kicked by another device")
        bob_fake.scan(QR_OLD)
        bob_fake.scan(QR_FRESH)
        await wait_exporter_qr(url, "bob", QR_FRESH)

        episode = AlertFactory("bob")
        posted = time.monotonic()
        status, body = await alice.post(episode.payload("firing"))
        post_to_dm = time.monotonic() - posted
        assert status == 200, body
        [text], [(filename, png)] = dms()
        assert text.startswith("bob is logged out of WeChat"), text
        assert "qr bob" in text
        assert filename == "bob-login-qr.png"
        assert decode_qr(png, tmp_path) == QR_FRESH

        # Alertmanager repeats the notification: nothing more is sent.
        status, body = await alice.post(episode.payload("firing"))
        assert (status, body["alerts"][0]["outcome"]) == (200, "duplicate")
        assert len(alice_fake.sent) == 2

        # bob scans and is back: its login line clears the QR; the resolved alert says so.
        bob_fake.login()
        await until(lambda: _no_qr(url, "bob"))
        status, body = await alice.post(episode.payload("resolved", ends_at=time.time()))
        assert status == 200, body
        texts, _ = dms()
        assert len(texts) == 2
        assert texts[1].startswith("bob is back online"), texts[1]

        # bob is out again while alice's puppet service is down: 503, so Alertmanager retries.
        bob_fake.logout()
        bob_fake.scan(QR_LATER)
        await wait_exporter_qr(url, "bob", QR_LATER)
        await alice_fake.go_down()
        again = AlertFactory("bob", fingerprint=episode.fingerprint)
        status, body = await alice.post(again.payload("firing"))
        assert status == 503, body
        assert len(alice_fake.sent) == 3

        await alice_fake.come_back()
        back = time.monotonic()
        statuses = []
        while time.monotonic() - back < 10:  # Alertmanager's retries, closer together
            status, body = await alice.post(again.payload("firing"))
            statuses.append(status)
            if status == 200:
                break
            await asyncio.sleep(0.1)
        delivered_in = time.monotonic() - back
        assert statuses[-1] == 200, (statuses, body)
        assert set(statuses[:-1]) <= {503}
        texts, files = dms()
        assert len(texts) == 3 and len(files) == 2, "each message exactly once"
        assert texts[2].startswith("bob is logged out of WeChat")
        assert decode_qr(files[1][1], tmp_path) == QR_LATER

        measured.append(f"POST /alerts → text + QR accepted by the puppet: {post_to_dm:.3f} s")
        measured.append(
            f"puppet back → retried POST delivered: {delivered_in:.2f} s "
            f"({len(statuses)} POSTs, bot reconnect included)"
        )
    finally:
        await alice.stop()
        await bob.stop()
        await stop_fake(alice_fake)
        await stop_fake(bob_fake)


async def _no_qr(url: str, bot: str) -> bool:
    return await exporter_qr(url, bot) is None
