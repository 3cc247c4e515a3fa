"""An admin named by display name, and a stranger who takes that name: real python-wechaty client,
the fake puppet service at the outer edge, and (last test) the real receiver over loopback HTTP.

Before: a lookup after a retry found two "Ada Admin"s and refused every delivery from then on,
each answered 500 (permanent, so Alertmanager's retries changed nothing) with nothing in the logs
to say why. Now the admin found by name is pinned to the contact id it resolved to, with a
warning naming that id; a tie goes to the one friend of the bot among the contacts; a tie that
cannot be broken is refused and logged as an error that says how to fix the config.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from grpclib.const import Status
from tests.helpers import free_port
from tests.peerbot.wechaty.fakepuppet import ADMIN, FakeContact, FakePuppet

from wechaty_exporter.delivery.exporter_client import Exporters
from wechaty_exporter.delivery.guard_settings import RateLimitSettings
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.receiver import create_receiver_app
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.peerbot.messenger import RunningBot, WechatyMessenger

PAYLOADS = Path(__file__).parents[2] / "delivery" / "payloads"


def stranger(name: str = ADMIN.name, *, friend: bool, id: str = "wxid_stranger") -> FakeContact:
    return FakeContact(id, name, friend=friend)


def copies(fake: FakePuppet, contact: FakeContact) -> None:
    """`contact` appears in the bot's address book (met in a group, or befriended)."""
    fake.contacts[contact.id] = contact


async def fails_once_transiently(fake: FakePuppet, messenger: WechatyMessenger, to: str) -> None:
    """The puppet service has a bad moment (the send fails, the cache entry is dropped)."""
    fake.fail_rpcs(Status.UNAVAILABLE)
    with pytest.raises(DeliveryError) as err:
        await messenger.send_text(to, "lost", bot="bob")
    assert err.value.transient is True
    fake.fail_rpcs(None)


async def test_a_name_taken_after_the_first_delivery_changes_nothing(
    fake: FakePuppet, messenger: WechatyMessenger
) -> None:
    await messenger.send_text(ADMIN.name, "one", bot="bob")
    copies(fake, stranger(friend=True))
    await fails_once_transiently(fake, messenger, ADMIN.name)
    await messenger.send_text(ADMIN.name, "two", bot="bob")
    await messenger.send_text(ADMIN.name, "three", bot="bob")
    assert fake.texts_to(ADMIN.id) == ["one", "two", "three"]
    assert fake.texts_to("wxid_stranger") == []


async def test_the_pin_survives_a_relogin_of_the_same_account(
    fake: FakePuppet, running: RunningBot, messenger: WechatyMessenger
) -> None:
    await messenger.send_text(ADMIN.name, "one", bot="bob")
    fake.logout()
    async with asyncio.timeout(5):
        while running.logged_in:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    copies(fake, stranger(friend=True))
    fake.login()
    async with asyncio.timeout(5):
        while not running.logged_in:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await fails_once_transiently(fake, messenger, ADMIN.name)
    await messenger.send_text(ADMIN.name, "two", bot="bob")
    assert fake.texts_to(ADMIN.id) == ["one", "two"]


async def test_pins_shared_by_the_messenger_of_a_new_connection_hold(
    fake: FakePuppet, running: RunningBot
) -> None:
    """A host that reconnects (a new messenger per connection) hands the pins on."""
    pins: dict[str, dict[str, str]] = {}
    first = WechatyMessenger(running.bot, timeout=5, pins=pins)
    await first.send_text(ADMIN.name, "one", bot="bob")
    await first.close()
    copies(fake, stranger(friend=True))
    second = WechatyMessenger(running.bot, timeout=5, pins=pins)
    await second.send_text(ADMIN.name, "two", bot="bob")
    assert fake.texts_to(ADMIN.id) == ["one", "two"]


async def test_a_stranger_who_is_no_friend_cannot_make_the_name_ambiguous(
    fake: FakePuppet, messenger: WechatyMessenger, caplog: pytest.LogCaptureFixture
) -> None:
    """The name was taken before the first lookup (say, before a restart): the admin the bot
    can DM is its friend, the stranger met in a group is not."""
    copies(fake, stranger(friend=False))
    with caplog.at_level(logging.WARNING, "wechaty_exporter.peerbot.messenger"):
        await messenger.send_text(ADMIN.name, "hi", bot="bob")
    assert fake.texts_to(ADMIN.id) == ["hi"]
    assert fake.texts_to("wxid_stranger") == []
    assert "wxid_admin01 is the bot's friend, wxid_stranger" in caplog.text


async def test_pinning_by_display_name_is_warned_once_with_the_id_to_configure(
    fake: FakePuppet, messenger: WechatyMessenger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "wechaty_exporter.peerbot.messenger"):
        for text in ("one", "two"):
            await messenger.send_text(ADMIN.name, text, bot="bob")
        await messenger.send_text(ADMIN.weixin, "by weixin: nothing to warn about", bot="bob")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "display name" in warnings[0] and "configure the admin as wxid_admin01" in warnings[0]


async def test_two_friends_with_one_name_are_refused_and_said_so(
    fake: FakePuppet, messenger: WechatyMessenger, caplog: pytest.LogCaptureFixture
) -> None:
    copies(fake, stranger(friend=True))
    with pytest.raises(DeliveryError) as err:
        await messenger.send_text(ADMIN.name, "hi", bot="bob")
    assert err.value.transient is False
    assert "(wxid_admin01, wxid_stranger)" in err.value.reason
    assert fake.sent == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("name the admin by id or weixin" in e for e in errors), caplog.text


# --- through the receiver: 200, not a 500 for ever ----------------------------------------------


@pytest.fixture
async def receiver(running: RunningBot, tmp_path: Path) -> AsyncIterator[str]:
    settings = ReceiverSettings(
        language="en",
        exporter_url=f"http://127.0.0.1:{free_port()}",  # no alert here needs a QR
        fallback_admins=(ADMIN.name,),
        rate_limit=RateLimitSettings(burst=100, per_hour=100000, max_hold=0),
    )
    store = DeliveryStore.in_state_dir(tmp_path / "state")
    exporters = Exporters(settings, timeout=2)
    app = create_receiver_app(settings, WechatyMessenger(running.bot, timeout=3), exporters, store)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/alerts"
    await runner.cleanup()
    await exporters.close()
    store.close()


def no_rescuer(fingerprint: str) -> bytes:
    doc: dict[str, Any] = json.loads((PAYLOADS / "no_rescuer_firing.json").read_bytes())
    doc["alerts"][0]["fingerprint"] = fingerprint
    return json.dumps(doc).encode()


async def test_the_receiver_keeps_delivering_after_a_stranger_takes_the_admins_name(
    fake: FakePuppet, receiver: str
) -> None:
    headers = {"Content-Type": "application/json"}
    async with ClientSession() as http:
        async with http.post(receiver, data=no_rescuer("fp-1"), headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        copies(fake, stranger(friend=True))
        fake.fail_rpcs(Status.UNAVAILABLE)
        async with http.post(receiver, data=no_rescuer("fp-2"), headers=headers) as resp:
            assert resp.status == 503  # Alertmanager retries
        fake.fail_rpcs(None)
        for _ in range(2):
            async with http.post(receiver, data=no_rescuer("fp-2"), headers=headers) as resp:
                assert resp.status == 200, await resp.text()
    texts = fake.texts_to(ADMIN.id)
    assert len(texts) == 2 and all(t.startswith("[FIRING] WechatyNoRescuer") for t in texts)
    assert fake.texts_to("wxid_stranger") == []
