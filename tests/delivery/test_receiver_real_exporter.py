"""The receiver against the real exporter: `wechaty-exporter serve` tailing a real log file, and
`wechaty-exporter receiver` as a process of its own (restarted, to prove it repeats nothing)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.delivery.kit import MakeRig, Process, base_settings, decode_qr, payload
from tests.helpers import append, eventually, free_port

from wechaty_exporter.delivery.messengers.outbox import read_outbox

QR_LINE = "12:00:00 INFO StarterBot onScan: Waiting(2) - https://login.weixin.qq.com/l/abc"
QR = "https://login.weixin.qq.com/l/abc"
REASON = "为了你的帐号安全，请重新登录。"
PY_WECHATY = "2026-11-25 09:{} - Wechaty - INFO - receive <{}> event <{}>"  # python-wechaty


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def real_exporter(
    tmp_path: Path, session: aiohttp.ClientSession
) -> AsyncIterator[tuple[Process, Path]]:
    log = tmp_path / "bob.log"
    log.write_text("")
    proc = Process(tmp_path, "exporter", "serve", "--log", f"bob={log}")
    await proc.start(session)
    yield proc, log
    await proc.stop()


async def _qr_pending(session: aiohttp.ClientSession, exporter: Process) -> bool:
    async with session.get(f"{exporter.url}/api/v1/bots/bob/qr") as resp:
        return resp.status == 200


async def test_rescue_with_the_qr_from_a_real_log(
    make_rig: MakeRig,
    real_exporter: tuple[Process, Path],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    exporter, log = real_exporter
    append(log, QR_LINE)
    await eventually(lambda: _qr_pending(session, exporter))
    rig = await make_rig(base_settings(exporter.url))
    status, doc = await rig.post(payload("firing"))
    assert status == 200, doc
    text, image = rig.sent()
    assert "Scan the QR code below (shown " in text["text"]
    assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == QR


async def test_a_qr_printed_during_the_wait_is_sent(
    make_rig: MakeRig,
    real_exporter: tuple[Process, Path],
    tmp_path: Path,
) -> None:
    exporter, log = real_exporter
    settings = base_settings(exporter.url, qr_wait=15.0, qr_poll_interval=0.1)
    rig = await make_rig(settings, real_time=True)
    posting = asyncio.create_task(rig.post(payload("firing")))

    async def intro_sent() -> bool:
        return len(rig.sent()) == 1

    await eventually(intro_sent)
    assert "No login QR yet" in rig.sent()[0]["text"]
    append(log, QR_LINE)  # the puppet shows a QR only now
    status, _ = await asyncio.wait_for(posting, 20)
    assert status == 200
    image = rig.sent()[1]
    assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == QR


async def test_receiver_process_end_to_end_and_restart_without_repeats(
    real_exporter: tuple[Process, Path],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    exporter, log = real_exporter
    append(log, QR_LINE)
    await eventually(lambda: _qr_pending(session, exporter))
    outbox = tmp_path / "out.jsonl"
    args = [
        "receiver", "--exporter-url", exporter.url, "--admin", "bob=wxid_admin",
        "--outbox", str(outbox), "--state-dir", str(tmp_path / "receiver-state"),
    ]  # fmt: skip
    receiver = Process(tmp_path, "receiver", *args)

    async def post(name: str) -> tuple[int, Any]:
        async with session.post(
            receiver.url + "/alerts",
            data=payload(name),
            headers={"Content-Type": "application/json"},
        ) as resp:
            return resp.status, await resp.json()

    await receiver.start(session)
    assert (await post("firing"))[0] == 200
    assert await receiver.stop() == 0
    records = read_outbox(outbox)
    assert [r["type"] for r in records] == ["text", "image"]
    assert decode_qr(base64.b64decode(records[1]["png_base64"]), tmp_path) == QR

    receiver.port = free_port()
    receiver.url = f"http://127.0.0.1:{receiver.port}"
    receiver.args[-1] = f"127.0.0.1:{receiver.port}"
    await receiver.start(session)  # a new process on the same state dir
    status, doc = await post("ha_duplicate")
    assert status == 200
    assert doc["alerts"][0]["outcome"] == "duplicate"
    assert (await post("resolved"))[0] == 200
    assert await receiver.stop() == 0
    records = read_outbox(outbox)
    assert [r["type"] for r in records] == ["text", "image", "text"]
    # No config file: the default language, Chinese.
    assert records[0]["text"].startswith("bob 已退出微信登录，自 2026-11-25 01:01 UTC 起")
    assert records[2]["text"].startswith("bob 已重新上线（告警持续 24 秒")


async def test_the_dm_says_why_wechat_logged_the_bot_out(
    make_rig: MakeRig,
    real_exporter: tuple[Process, Path],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """python-wechaty logs the logout with WeChat's words; the exporter serves them with the QR,
    and the outbox DM carries them, in either language."""
    exporter, log = real_exporter
    append(
        log,
        PY_WECHATY.format("00:03,422", "login", "EventLoginPayload(contact_id='wxid_bob')"),
        PY_WECHATY.format("47:56,002", "logout",
                          f"EventLogoutPayload(contact_id='wxid_bob', data='{REASON}')"),
        PY_WECHATY.format("48:10,318", "scan",
                          f"EventScanPayload(status=<ScanStatus.Waiting: 2>, qrcode='{QR}', "
                          "data=None)"),
    )  # fmt: skip
    await eventually(lambda: _qr_pending(session, exporter))
    async with session.get(f"{exporter.url}/api/v1/bots/bob/qr") as resp:
        assert (await resp.json())["logout_reason"] == REASON  # additive: next to qrcode
    for language, said in (("zh", f"微信提示：{REASON}"), ("en", f"WeChat said: {REASON}")):
        rig = await make_rig(base_settings(exporter.url, language=language),
                             state_dir=tmp_path / language)  # fmt: skip
        status, doc = await rig.post(payload("firing"))
        assert status == 200, doc
        text, image = rig.sent()[-2:]
        assert said in text["text"].splitlines()
        assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == QR
