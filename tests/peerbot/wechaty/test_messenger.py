"""The wechaty messenger and bot start-up, with the real python-wechaty client and a fake puppet:
what the real puppet service cannot be made to do (count RPCs, fail them, vanish and come back
on the same port). The rest runs on the real service: tests/puppetservice/test_messenger_real.py."""

from __future__ import annotations

import asyncio
import io
import socket

import pytest
import segno
from tests.peerbot.wechaty.fakepuppet import ADMIN, ME, FakePuppet

from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.peerbot.compat import ContactRecord
from wechaty_exporter.peerbot.messenger import (
    BotStartError,
    PuppetService,
    PuppetServiceConfigError,
    RunningBot,
    WechatyMessenger,
    match_contacts,
    new_bot,
    plaintext_endpoint,
    start_bot,
)

QR = "https://login.weixin.qq.com/l/abc"


def qr_png(payload: str = QR) -> bytes:
    buf = io.BytesIO()
    segno.make(payload).save(buf, kind="png", scale=8)
    return buf.getvalue()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- delivery ---------------------------------------------------------------------------------


async def test_resolution_is_cached_per_account(
    fake: FakePuppet, messenger: WechatyMessenger
) -> None:
    await messenger.send_text(ADMIN.name, "one", bot="bot-a")
    lookups = fake.calls.count("ContactList")
    await messenger.send_text(ADMIN.name, "two", bot="bot-a")
    assert fake.calls.count("ContactList") == lookups == 1
    assert fake.texts_to(ADMIN.id) == ["one", "two"]


async def test_puppet_down_is_transient_and_back_up_delivers_once(
    fake: FakePuppet, running: RunningBot, messenger: WechatyMessenger
) -> None:
    await messenger.send_text(ADMIN.weixin, "before", bot="bot-a")
    await fake.go_down()
    async with asyncio.timeout(5):
        await asyncio.wait({running.task})  # the event stream drops with the service

    with pytest.raises(DeliveryError) as err:
        await messenger.send_text(ADMIN.weixin, "during", bot="bot-a")
    assert err.value.transient is True
    with pytest.raises(DeliveryError) as err:
        await messenger.send_image(ADMIN.weixin, qr_png(), bot="bot-a", filename="qr.png")
    assert err.value.transient is True

    await fake.come_back()
    await messenger.send_text(ADMIN.weixin, "after", bot="bot-a")
    await messenger.send_image(ADMIN.weixin, qr_png(), bot="bot-a", filename="qr.png")
    assert fake.texts_to(ADMIN.id) == ["before", "after"]
    assert len(fake.files_to(ADMIN.id)) == 1


async def test_rpcs_failing_unavailable_is_transient(
    fake: FakePuppet, messenger: WechatyMessenger
) -> None:
    fake.fail_rpcs()
    for to in (ADMIN.id, ADMIN.name):  # the send, and the contact lookup
        with pytest.raises(DeliveryError) as err:
            await messenger.send_text(to, "during", bot="bot-a")
        assert err.value.transient is True
        assert "UNAVAILABLE" in err.value.reason
    fake.fail_rpcs(None)
    await messenger.send_text(ADMIN.name, "after", bot="bot-a")
    assert fake.texts_to(ADMIN.id) == ["after"]


# -- start and stop ---------------------------------------------------------------------------


async def test_stop_sends_stop_and_closes(fake: FakePuppet, service: PuppetService) -> None:
    fake.login()
    running = await start_bot(new_bot(service), service, require_login=True, within=10)
    assert running.alive
    assert running.logged_in
    await running.stop()
    assert fake.calls[:3] == ["Stop", "Start", "Event"]
    assert fake.calls[-1] == "Stop"
    assert not running.alive
    assert not running.logged_in


async def test_stop_with_the_puppet_gone_does_not_raise(
    fake: FakePuppet, running: RunningBot
) -> None:
    await fake.go_down()
    await running.stop(grace=1)
    assert not running.alive


async def test_start_against_a_closed_port_fails_fast() -> None:
    service = PuppetService(endpoint=f"127.0.0.1:{closed_port()}", token="t")
    async with asyncio.timeout(10):
        with pytest.raises(BotStartError, match=service.endpoint):
            await start_bot(new_bot(service), service, within=10)


async def test_start_refused_by_the_service_fails_with_its_status(
    fake: FakePuppet, service: PuppetService
) -> None:
    fake.fail_rpcs()
    with pytest.raises(BotStartError, match="UNAVAILABLE"):
        await start_bot(new_bot(service), service, within=10)


async def test_busy_plugin_port_is_reported_not_swallowed(
    fake: FakePuppet, service: PuppetService
) -> None:
    # python-wechaty's plugin manager refuses the login when its port answers on 127.0.0.1.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fake.login()
        bot = new_bot(service, plugin_port=busy.getsockname()[1])
        with pytest.raises(BotStartError, match=r"handling the login failed.*in use"):
            await start_bot(bot, service, require_login=True, within=10)


# -- configuration and matching (no I/O) ------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:8788", "127.0.0.1:8788"),
        ("http://puppet:8788/", "puppet:8788"),
        ("grpc://puppet:8788", "puppet:8788"),
        ("[::1]:8788", "[::1]:8788"),
    ],
)
def test_plaintext_endpoint(given: str, expected: str) -> None:
    assert plaintext_endpoint(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("https://puppet:443", "plaintext"),
        ("grpcs://puppet:443", "plaintext"),
        ("puppet", "host:port"),
        ("puppet:notaport", "puppet:notaport"),
        ("ftp://puppet:21", "scheme"),
    ],
)
def test_plaintext_endpoint_refuses(given: str, problem: str) -> None:
    with pytest.raises(PuppetServiceConfigError, match=problem):
        plaintext_endpoint(given)


def test_puppet_service_from_env() -> None:
    env = {
        "WECHATY_PUPPET_SERVICE_ENDPOINT": "http://127.0.0.1:8788",
        "WECHATY_PUPPET_SERVICE_TOKEN": "insecure_secret",
    }
    service = PuppetService.from_env(env)
    assert (service.endpoint, service.token) == ("127.0.0.1:8788", "insecure_secret")
    assert service.transport.tls, "TLS unless asked otherwise, as the TypeScript client"
    assert "secret" not in repr(service)
    assert PuppetService.from_env(env, endpoint="10.0.0.2:1").endpoint == "10.0.0.2:1"
    plain = PuppetService.from_env({**env, "WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_CLIENT": "true"})
    assert plain == PuppetService(endpoint="127.0.0.1:8788", token="insecure_secret")


def test_puppet_service_needs_endpoint_and_token() -> None:
    with pytest.raises(PuppetServiceConfigError) as err:
        PuppetService.from_env({})
    assert "WECHATY_PUPPET_SERVICE_ENDPOINT" in str(err.value)
    assert "WECHATY_PUPPET_SERVICE_TOKEN" in str(err.value)
    with pytest.raises(PuppetServiceConfigError, match="TOKEN"):
        PuppetService.from_env({"WECHATY_PUPPET_SERVICE_ENDPOINT": "127.0.0.1:8788"})


def contact(id: str, name: str, alias: str = "", weixin: str = "") -> ContactRecord:
    return ContactRecord(id=id, name=name, alias=alias, weixin=weixin, friend=True)


DIRECTORY = [
    contact("wxid_a", "Ann", alias="boss", weixin="ann_wx"),
    contact("wxid_b", "boss"),  # a name equal to another contact's alias
    contact("ann_wx", "Impostor"),  # an id equal to another contact's weixin
    contact("wxid_c", "Ann Lee"),
]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("wxid_a", ["wxid_a"]),
        ("ann_wx", ["ann_wx"]),  # id before weixin
        ("boss", ["wxid_a"]),  # alias before name
        ("Ann", ["wxid_a"]),  # exact, not substring
        ("Ann Lee", ["wxid_c"]),
        ("ann", []),  # case matters
        ("", []),
    ],
)
def test_match_contacts(query: str, ids: list[str]) -> None:
    assert [c.id for c in match_contacts(DIRECTORY, query)] == ids


def test_me_is_a_contact_too() -> None:
    # The rescued bot's own account can be an admin target (the login test message).
    assert match_contacts([contact(ME.id, ME.name)], ME.name)[0].id == ME.id
