"""The wechaty messenger and bot start-up on the real puppet service (TLS, puppet-mock): moved
here from tests/peerbot/wechaty/test_messenger.py, which keeps the fake for what needs it (RPC
counts, a service that fails or vanishes on cue)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.peerbot.kit import decode_qr
from tests.peerbot.wechaty.test_messenger import QR, qr_png
from tests.puppetservice.kit import RealPuppet

from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.peerbot.compat import on_event
from wechaty_exporter.peerbot.messenger import (
    BotStartError,
    PuppetService,
    RunningBot,
    WechatyMessenger,
    new_bot,
    start_bot,
)


@pytest.fixture
def service(real: RealPuppet) -> PuppetService:
    return PuppetService.from_env({}, endpoint=real.endpoint, token=real.token)


@pytest.fixture
async def running(real: RealPuppet, service: PuppetService) -> AsyncIterator[RunningBot]:
    await real.login()
    bot = await start_bot(new_bot(service), service, require_login=True, within=10)
    yield bot
    await bot.stop(grace=2)


@pytest.fixture
def messenger(running: RunningBot) -> WechatyMessenger:
    return WechatyMessenger(running.bot, timeout=5)


async def until(condition: Callable[[], object], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("to", ["admin", "ada_weixin", "oncall-boss", "Ada Admin"])
async def test_text_and_qr_reach_the_admin(
    to: str, real: RealPuppet, messenger: WechatyMessenger, tmp_path: Path
) -> None:
    admin = real.contacts["admin"]
    to = admin if to == "admin" else to  # the id is the Mocker's: known only once it runs
    png = qr_png()
    await messenger.send_text(to, "bot-a logged out; scan the QR below", bot="bot-a")
    await messenger.send_image(to, png, bot="bot-a", filename="bot-a-qr")

    await until(lambda: real.files_to(admin))
    assert real.texts_to(admin) == ["bot-a logged out; scan the QR below"]
    [(filename, data)] = real.files_to(admin)
    assert filename == "bot-a-qr.png"
    assert data == png
    assert decode_qr(data, tmp_path) == QR
    assert {s.to for s in real.sent} == {admin}


async def test_unknown_contact_is_permanent(real: RealPuppet, messenger: WechatyMessenger) -> None:
    with pytest.raises(DeliveryError) as err:
        await messenger.send_text("nobody-at-all", "hi", bot="bot-a")
    assert err.value.transient is False
    assert "nobody-at-all" in err.value.reason
    assert real.sent == []


async def test_ambiguous_name_is_permanent(real: RealPuppet, messenger: WechatyMessenger) -> None:
    with pytest.raises(DeliveryError) as err:
        await messenger.send_image("Twin", qr_png(), bot="bot-a", filename="qr.png")
    assert err.value.transient is False
    twins = sorted((real.contacts["twin1"], real.contacts["twin2"]))
    assert f"({twins[0]}, {twins[1]})" in err.value.reason
    assert real.sent == []


async def test_logged_out_bot_is_transient_until_it_logs_in_again(
    real: RealPuppet, running: RunningBot, messenger: WechatyMessenger
) -> None:
    admin = real.contacts["admin"]
    await real.logout()
    await until(lambda: not running.logged_in)
    with pytest.raises(DeliveryError) as err:
        await messenger.send_text(admin, "hi", bot="bot-a")
    assert err.value.transient is True
    assert "not logged in" in err.value.reason

    # python-wechaty does not emit a second login; the puppet still records it.
    await real.login()
    await until(lambda: running.logged_in)
    await messenger.send_text(admin, "back", bot="bot-a")
    await until(lambda: real.texts_to(admin))
    assert real.texts_to(admin) == ["back"]


async def test_received_messages_reach_the_bot(real: RealPuppet, running: RunningBot) -> None:
    texts: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def on_message(message: object) -> None:
        talker = message.talker().contact_id  # type: ignore[attr-defined]
        await texts.put((talker, message.text()))  # type: ignore[attr-defined]

    on_event(running.bot, "message", on_message)
    await real.say("admin", "qr")
    async with asyncio.timeout(5):
        assert await texts.get() == (real.contacts["admin"], "qr")


async def test_start_without_login_returns_and_sees_the_qr(
    real: RealPuppet, service: PuppetService
) -> None:
    bot = new_bot(service)
    scans: asyncio.Queue[str] = asyncio.Queue()
    on_event(bot, "scan", lambda qrcode, status, data=None: scans.put_nowait(qrcode))
    running = await start_bot(bot, service, within=10)
    try:
        assert not running.logged_in
        await real.scan(QR)
        async with asyncio.timeout(5):
            assert await scans.get() == QR
    finally:
        await running.stop()


async def test_start_requiring_login_times_out_while_the_qr_waits(
    real: RealPuppet, service: PuppetService
) -> None:
    await real.scan(QR)
    with pytest.raises(BotStartError, match=r"no login within 1s"):
        await start_bot(new_bot(service), service, require_login=True, within=1)
