"""`status` and `qr` against the real exporter (`wechaty-exporter serve`) tailing real log files;
the QR image is decoded the way a phone would (zbarimg)."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.chatops.kit import ADA, OPS, STRANGER, make_ctx, texts
from tests.helpers import eventually
from tests.integration.harness import BotLogs, Exporter, brolog

from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.delivery.exporter_client import ExporterClient


def zbar(png: bytes, tmp_path: Path) -> str:
    path = tmp_path / f"qr-{secrets.token_hex(3)}.png"
    path.write_bytes(png)
    done = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
async def exporter(
    real_exporter: Exporter, exporter_logs: BotLogs
) -> AsyncIterator[tuple[ExporterClient, str]]:
    """alice logged in; bob logged out with a fresh QR and an error line: the QR payload."""
    qr = f"https://login.weixin.qq.com/l/{secrets.token_hex(6)}"
    exporter_logs.write("alice", brolog("Contact<Alice> login"))
    exporter_logs.write(
        "bob",
        brolog("Contact<Bob> logout"),
        brolog("puppet crashed", level="ERR"),
        brolog(f"onScan: Waiting(2) - {qr}"),
    )
    client = ExporterClient(real_exporter.url)

    async def caught_up() -> bool:
        docs = {d["bot"]: d for d in await client.bots()}
        pending = await client.pending_qr("bob")
        return (
            docs["alice"]["logged_in"] is True
            and docs["bob"]["last_error"] is not None
            and pending is not None
            and pending.qrcode == qr
        )

    await eventually(caught_up, within=15, interval=0.05)
    yield client, qr
    await client.close()


async def test_status(exporter: tuple[ExporterClient, str]) -> None:
    client, _ = exporter
    ctx, audits = make_ctx(exporter=client)
    reply = texts(await handle_message(ctx, ADA, "status", time.time()))
    lines = reply.splitlines()
    assert lines[0].startswith("alice: logged in as Alice since ")
    assert lines[1].startswith("bob: LOGGED OUT since ")
    assert lines[2].startswith("  QR waiting since ")
    assert lines[2].endswith("; send: qr bob")
    assert lines[3].startswith("  last error line ")
    assert len(lines) == 4
    assert texts(await handle_message(ctx, OPS, "STATUS", time.time())).startswith("alice: ")
    assert "bob" not in texts(await handle_message(ctx, OPS, "status", time.time()))
    assert [(r.command, r.outcome) for r in audits.records] == [("status", "ok")] * 3


async def test_qr_image_decodes_to_the_login_qr(
    exporter: tuple[ExporterClient, str], tmp_path: Path
) -> None:
    client, qr = exporter
    ctx, audits = make_ctx(exporter=client)
    for text in ("qr", "QR bob"):  # with one bot down, `qr` alone picks it
        replies = await handle_message(ctx, ADA, text, time.time())
        assert [r.kind for r in replies] == ["text", "image"]
        assert replies[0].text.startswith("Scan the QR code below (shown ")  # the DM's caption
        assert replies[1].filename == "bob-login-qr.png"
        assert zbar(replies[1].png, tmp_path) == qr
    assert texts(await handle_message(ctx, ADA, "qr alice", time.time())) == "alice is logged in."
    reply = texts(await handle_message(ctx, OPS, "qr", time.time()))
    assert reply == "No bot of yours is waiting for a QR scan."
    assert texts(await handle_message(ctx, OPS, "qr bob", time.time())).startswith("Unknown bot")
    assert await handle_message(ctx, STRANGER, "qr bob", time.time()) == []
    assert [(r.command, r.outcome) for r in audits.records] == [
        ("qr", "ok"),
        ("qr", "ok"),
        ("qr", "ok"),
        ("qr", "ok"),
        ("qr", "forbidden"),
        ("qr", "ignored"),
    ]
    assert [r.detail for r in audits.records[:4]] == ["sent", "sent", "logged in", "none"]
