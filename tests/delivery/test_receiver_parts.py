"""The receiver's parts on their own: delivery store, messengers, exporter client, QR image."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from pathlib import Path

import pytest
from tests.delivery.kit import QR_BOB, FakeExporter, PeerBot, decode_qr

from wechaty_exporter.delivery.exporter_client import ExporterClient, ExporterError, PendingQr
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.messengers.outbox import OutboxMessenger, read_outbox
from wechaty_exporter.delivery.messengers.webhook import WebhookMessenger
from wechaty_exporter.delivery.rescuer import TokenBucket
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.qrimage import qr_png

# --- delivery store ----------------------------------------------------------------------------


def test_store_expiry_and_persistence(tmp_path: Path) -> None:
    store = DeliveryStore.in_state_dir(tmp_path / "state")
    store.mark_done("a|firing|t", expires_at=100)
    store.mark_sent("a|firing|t|x|intro", expires_at=100)
    assert store.is_done("a|firing|t", now=99)
    assert not store.is_done("a|firing|t", now=100)
    assert store.is_sent("a|firing|t|x|intro", now=99)
    assert not store.is_sent("a|firing|t|x|qr", now=0)
    store.close()
    reopened = DeliveryStore.in_state_dir(tmp_path / "state")
    assert reopened.is_done("a|firing|t", now=50)
    assert reopened.purge(now=100) == 2
    assert not reopened.is_sent("a|firing|t|x|intro", now=0)
    mode = sqlite3.connect(reopened.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    reopened.close()


def test_store_marking_again_extends(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path / "s.sqlite3")
    store.mark_done("k", expires_at=10)
    store.mark_done("k", expires_at=20)
    assert store.is_done("k", now=15)
    assert store.check()
    store.close()


# --- token bucket ------------------------------------------------------------------------------


def test_token_bucket() -> None:
    bucket = TokenBucket(burst=3, per_second=0.5, now=0)
    assert bucket.reserve(2, now=0) == 0
    assert bucket.delay(2, now=0) == 2.0  # 1 left, one more takes 2 s
    assert bucket.reserve(2, now=1) == 1.0  # 1.5 left → waits for 0.5 more
    assert bucket.delay(1, now=1) == pytest.approx(3.0)  # -0.5 now; 1 token is 1.5 away
    bucket.refund(10)
    assert bucket.tokens == 3  # never above the burst
    assert bucket.delay(3, now=1000) == 0


# --- outbox ------------------------------------------------------------------------------------


async def test_outbox_records_match_the_design(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = OutboxMessenger(path, clock=lambda: 1795568519.715)
    await outbox.send_text("wxid_a", "héllo\nworld", bot="bob")
    await outbox.send_image("wxid_a", b"\x89PNG...", bot="bob", filename="bob.png")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "time": "2026-11-25T01:01:59.715Z",
        "to": "wxid_a",
        "bot": "bob",
        "type": "text",
        "text": "héllo\nworld",
    }
    image = json.loads(lines[1])
    assert set(image) == {"time", "to", "bot", "type", "png_base64"}
    assert base64.b64decode(image["png_base64"]) == b"\x89PNG..."


async def test_outbox_concurrent_appends_stay_whole_lines(tmp_path: Path) -> None:
    outbox = OutboxMessenger(tmp_path / "o.jsonl")
    await asyncio.gather(*(outbox.send_text("c", "x" * 5000, bot=f"b{i}") for i in range(40)))
    records = read_outbox(tmp_path / "o.jsonl")
    assert sorted(r["bot"] for r in records) == sorted(f"b{i}" for i in range(40))


async def test_outbox_write_failure_is_transient(tmp_path: Path) -> None:
    outbox = OutboxMessenger(tmp_path / "missing-dir" / "o.jsonl")
    with pytest.raises(DeliveryError) as caught:
        await outbox.send_text("c", "t", bot="b")
    assert caught.value.transient


# --- webhook messenger -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "transient"),
    [(500, True), (502, True), (503, True), (429, True), (408, True), (400, False),
     (403, False), (404, False), (422, False)],
)  # fmt: skip
async def test_webhook_status_classes(peer: PeerBot, status: int, transient: bool) -> None:
    messenger = WebhookMessenger(peer.url, timeout=2)
    peer.script = [status]
    with pytest.raises(DeliveryError) as caught:
        await messenger.send_text("c", "t", bot="b")
    assert caught.value.transient is transient
    assert f"HTTP {status}" in caught.value.reason
    await messenger.send_text("c", "t", bot="b")  # 2xx: accepted
    await messenger.close()


async def test_webhook_body(peer: PeerBot, tmp_path: Path) -> None:
    messenger = WebhookMessenger(peer.url, timeout=2, clock=lambda: 1795568519.715)
    await messenger.send_text("wxid_a", "hi", bot="bob")
    await messenger.send_image("wxid_a", qr_png(QR_BOB), bot="bob", filename="bob-login-qr.png")
    await messenger.close()
    text, image = peer.accepted
    assert text == {
        "time": "2026-11-25T01:01:59.715Z",
        "to": "wxid_a",
        "bot": "bob",
        "type": "text",
        "text": "hi",
    }
    assert image["filename"] == "bob-login-qr.png"
    assert image["type"] == "image"
    assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == QR_BOB


async def test_webhook_connection_refused_is_transient() -> None:
    messenger = WebhookMessenger("http://127.0.0.1:9/send", timeout=2)
    with pytest.raises(DeliveryError) as caught:
        await messenger.send_text("c", "t", bot="b")
    assert caught.value.transient
    await messenger.close()


# --- exporter client ---------------------------------------------------------------------------


async def test_exporter_client(exporter: FakeExporter) -> None:
    client = ExporterClient(exporter.url, timeout=2)
    assert await client.pending_qr("bob") is None
    exporter.qrs["bob"] = QR_BOB
    assert await client.pending_qr("bob") == PendingQr(
        bot="bob", qrcode=QR_BOB, status="Waiting", seen_at=1795568550.0
    )
    exporter.fail_status = 500
    with pytest.raises(ExporterError, match="HTTP 500"):
        await client.pending_qr("bob")
    await client.close()


async def test_exporter_client_token(exporter: FakeExporter) -> None:
    exporter.token = "t0k"
    exporter.qrs["bob"] = QR_BOB
    with pytest.raises(ExporterError, match="HTTP 401"):
        await ExporterClient(exporter.url).pending_qr("bob")
    client = ExporterClient(exporter.url, token="t0k")
    assert (await client.pending_qr("bob")) is not None
    await client.close()


async def test_exporter_client_unreachable() -> None:
    client = ExporterClient("http://127.0.0.1:9", timeout=1)
    with pytest.raises(ExporterError, match=r"127\.0\.0\.1:9"):
        await client.pending_qr("bob")
    await client.close()


# --- QR image ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [QR_BOB, "http://weixin.qq.com/x/AbC-123_xyz", "https://login.weixin.qq.com/l/" + "A" * 120],
)
def test_qr_png_scans_back(payload: str, tmp_path: Path) -> None:
    png = qr_png(payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_qr(png, tmp_path) == payload


def test_qr_png_size_and_quiet_zone() -> None:
    import png as pypng

    width, height, rows, _ = pypng.Reader(bytes=qr_png(QR_BOB)).read()
    rows = [list(r) for r in rows]
    assert width == height
    assert width >= 290
    quiet = 4 * 10
    assert all(v == rows[0][0] for row in rows[:quiet] for v in row)  # a white border


def test_qr_png_refuses_nothing() -> None:
    with pytest.raises(ValueError, match="empty"):
        qr_png("")
