"""The peer bot on the real puppet service (TLS, puppet-mock): what the hand-written fake did not
do, and the self-log and delivery paths moved here from tests/peerbot (test_self_log.py,
test_end_to_end.py), which keep the fake for what the real server cannot do."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from tests.peerbot.conftest import Duet
from tests.peerbot.kit import (
    AlertFactory,
    decode_qr,
    exporter_qr,
    parse,
    self_log_lines,
    start_peer,
    until,
    wait_exporter_qr,
    without_time,
)
from tests.puppetservice.kit import RealPuppet

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.logs.events import ScanStatus
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.compat import IncomingText
from wechaty_exporter.peerbot.messenger import (
    PuppetService,
    WechatyMessenger,
    new_bot,
    start_bot,
)

StartPuppet = Callable[..., Awaitable[RealPuppet]]
QR1 = "https://login.weixin.qq.com/l/IdS1ss=="
QR2 = "https://login.weixin.qq.com/l/IdS2tt=="
FORGED = "2026-11-25T09:00:00.000+08:00 INFO wechaty-exporter scan "
FORGED += '{"status":2,"qrcode":"https://login.weixin.qq.com/l/evil"}'
NAME = f"Peer\n{FORGED}\r\u2028伙伴"  # a display name that tries to start a line of its own
REASON = f"kicked\n{FORGED}"


def tls_service(real: RealPuppet) -> PuppetService:
    service = PuppetService.from_env({}, endpoint=real.endpoint, token=real.token)
    assert service.transport.tls
    return service


async def test_self_log_parses_back(tmp_path: Path, puppets: StartPuppet) -> None:
    """test_self_log.py's peer-bot case on the real service: scans, login, logout with a
    reason, a re-login without a restart; a name and a reason that try to forge lines."""
    real = await puppets(name=NAME)
    path = tmp_path / "alice.self.log"
    peer = await start_peer(tls_service(real), path)
    try:
        await real.scan(QR1)
        await real.scan("", status=3)
        await real.scan("", status=4)
        await real.login()
        await until(lambda: self_log_lines(path, "login"), what="the login line")
        await real.logout(REASON)
        await real.scan(QR2)
        await real.login()  # python-wechaty emits no second `login`: only the puppet sees it
        await until(lambda: len(self_log_lines(path, "login")) == 2, what="the re-login line")
    finally:
        await peer.stop()
    assert without_time(parse(path)) == [
        ("Scan", ScanStatus.WAITING, QR1),
        ("Scan", ScanStatus.SCANNED, None),
        ("Scan", ScanStatus.CONFIRMED, None),
        ("Login", NAME),
        ("Logout", NAME, REASON),
        ("Scan", ScanStatus.WAITING, QR2),
        ("Login", NAME),
    ]
    lines = self_log_lines(path)
    kinds = [line.split(" ", 4)[3] for line in lines]
    assert kinds == ["puppet", *["scan"] * 3, "login", "logout", "scan", "login", "puppet"]
    assert json.loads(lines[-1].split(" ", 4)[4])["state"] == "stopped"


async def test_first_stop_logs_out_and_the_login_comes_again(
    real: RealPuppet, tmp_path: Path
) -> None:
    """The bot's Stop before Start stops the mock puppet: the account is logged out (its
    logout goes to no stream), and the login comes again once Start runs. The bot ends up
    logged in, with one login line and no logout in its self-log."""
    await real.login()
    path = tmp_path / "alice.self.log"
    peer = await start_peer(tls_service(real), path)
    try:
        await until(lambda: self_log_lines(path, "login"), what="the login after Start")
        await until(lambda: peer.get("/-/ready"), what="ready")
        assert await peer.get("/-/ready") == 200
        await asyncio.sleep(0.5)  # a logout would come now, if any
    finally:
        await peer.stop()
    assert [type(e).__name__ for e in parse(path)] == ["Login"]
    login = json.loads(self_log_lines(path, "login")[0].split(" ", 4)[4])
    assert login == {"user": "Peer Bot", "id": real.me}


async def test_opaque_ids_unknown_ids_and_sends_without_an_id(real: RealPuppet) -> None:
    await real.login()
    service = tls_service(real)
    running = await start_bot(new_bot(service), service, require_login=True, within=10)
    try:
        bot = running.bot
        admin = real.contacts["admin"]
        assert not admin.startswith("wxid_")  # the Mocker's cuids: configs name admins otherwise

        # An unknown id: UNKNOWN, not NOT_FOUND (nor the fake's INTERNAL); not "unavailable".
        with pytest.raises(GRPCError) as unknown:
            await compat.contact_record(bot, "wxid_nobody")
        assert unknown.value.status == Status.UNKNOWN
        messenger = WechatyMessenger(bot, timeout=5)
        with pytest.raises(DeliveryError) as missing:
            await messenger.resolve("wxid_nobody")
        assert not missing.value.transient
        assert "no contact of the bot matches 'wxid_nobody'" in str(missing.value)

        # The admin by id, weixin, alias and name; the twins by name are refused.
        for spec in (admin, "ada_weixin", "oncall-boss", "Ada Admin"):
            assert await messenger.resolve(spec) == admin
        with pytest.raises(DeliveryError, match="matches 2 contacts by name"):
            await messenger.resolve("Twin")

        # Sends return no message id; the send still counts as done.
        assert await compat.send_text(bot, admin, "hello") is None
        await messenger.send_text("ada_weixin", "second", bot="bob")
        # The server reports sends on stdout, which may trail the gRPC answer.
        await until(lambda: real.texts_to(admin) == ["hello", "second"], what="both texts")
    finally:
        await running.stop(grace=2)


async def test_sent_messages_come_back_as_the_bots_own(real: RealPuppet) -> None:
    await real.login()
    service = tls_service(real)
    bot = new_bot(service)
    seen: list[IncomingText] = []

    async def record(text: IncomingText) -> None:
        seen.append(text)

    compat.on_text_message(bot, record)
    running = await start_bot(bot, service, require_login=True, within=10)
    try:
        await compat.send_text(bot, real.contacts["admin"], "status bob")
        await real.say("admin", "hi")
        await until(lambda: len(seen) == 2, what="the echo and the admin's text")
    finally:
        await running.stop(grace=2)
    echo, incoming = sorted(seen, key=lambda t: t.text != "status bob")
    assert (echo.text, echo.talker_id, echo.from_self) == ("status bob", real.me, True)
    assert (incoming.text, incoming.talker_id, incoming.from_self) == (
        "hi",
        real.contacts["admin"],
        False,
    )


async def test_the_bot_does_not_answer_its_own_echoed_reply(
    real: RealPuppet, tmp_path: Path
) -> None:
    """An admin's command gets one reply. The reply comes back as a message from the bot's own
    account, here an admin too: answering it would answer the answer, forever."""
    await real.login()
    admin, me = real.contacts["admin"], real.me
    peer = await start_peer(
        tls_service(real), tmp_path / "alice.self.log",
        admins=[("bob", (admin, me))], commands=CommandsSettings(),
    )  # fmt: skip
    try:
        await until(lambda: peer.get("/-/ready"), what="ready")
        await real.say("admin", "help")
        await until(lambda: real.texts_to(admin), what="the reply to help")
        await asyncio.sleep(1.5)  # the echo has come back by now; an answer to it would follow
    finally:
        await peer.stop()
    assert len(real.texts_to(admin)) == 1, real.sent
    assert real.texts_to(me) == []
    assert len(real.sent) == 1


async def test_alert_to_dm_on_the_real_service(
    duet: Duet, tmp_path: Path, measured: list[str], puppets: StartPuppet
) -> None:
    """test_end_to_end.py's delivery on the real service: bob's QR reaches the exporter through
    bob's self-log; Alertmanager's payload to alice's receiver → a DM text and the QR image to
    the admin, named by weixin (ids are opaque); repeats are not resent, the echoes answered by
    nothing; the resolved alert says bob is back."""
    url = duet.exporter.url
    alice_real, bob_real = await puppets(), await puppets()
    await alice_real.login()
    await bob_real.login()
    alice = await start_peer(
        tls_service(alice_real), duet.logs.path("alice"), name="alice", exporter_url=url,
        admins=[("bob", ("ada_weixin",))], state_dir=tmp_path / "alice",
    )  # fmt: skip
    admin = alice_real.contacts["admin"]
    fresh = "https://login.weixin.qq.com/l/Fr3shQr=="
    bob = None
    try:
        bob = await start_peer(
            tls_service(bob_real), duet.logs.path("bob"), name="bob", exporter_url=url,
            admins=[("alice", ("ada_weixin",))], state_dir=tmp_path / "bob",
        )  # fmt: skip
        await until(lambda: alice.get("/-/ready"), what="alice ready")
        await bob_real.logout("kicked by another device")
        await bob_real.scan("https://login.weixin.qq.com/l/Oa1dQr==")
        await bob_real.scan(fresh)
        await wait_exporter_qr(url, "bob", fresh)

        episode = AlertFactory("bob")
        posted = time.monotonic()
        status, body = await alice.post(episode.payload("firing"))
        post_to_dm = time.monotonic() - posted
        assert status == 200, body
        await until(lambda: alice_real.files_to(admin), what="the QR at the puppet service")
        [text] = alice_real.texts_to(admin)
        [(filename, png)] = alice_real.files_to(admin)
        assert text.startswith("bob is logged out of WeChat"), text
        assert filename == "bob-login-qr.png"
        assert decode_qr(png, tmp_path) == fresh

        status, body = await alice.post(episode.payload("firing"))
        assert (status, body["alerts"][0]["outcome"]) == (200, "duplicate")

        await bob_real.login()
        await until(lambda: _no_qr(url, "bob"), what="bob's QR cleared")
        status, body = await alice.post(episode.payload("resolved", ends_at=time.time()))
        assert status == 200, body
        await until(lambda: len(alice_real.texts_to(admin)) == 2, what="the resolved text")
        texts = alice_real.texts_to(admin)
        assert texts[1].startswith("bob is back online"), texts
        await asyncio.sleep(0.5)
        assert len(alice_real.sent) == 3, "each message once; the echoes answered by nothing"
        measured.append(f"real puppet service (TLS): POST /alerts → DM + QR {post_to_dm:.3f} s")
    finally:
        await alice.stop()
        if bob is not None:
            await bob.stop()


async def _no_qr(url: str, bot: str) -> bool:
    return await exporter_qr(url, bot) is None


async def test_the_bot_reconnects_over_tls_when_the_service_comes_back(
    tmp_path: Path, puppets: StartPuppet
) -> None:
    """The service goes away (its process ends) and another starts on the same port with the
    same token: the bot notices, reconnects over TLS with backoff, and is ready once logged in."""
    first = await puppets()
    await first.login()
    path = tmp_path / "alice.self.log"
    peer = await start_peer(tls_service(first), path)

    async def ready() -> bool:
        return await peer.get("/-/ready") == 200

    async def not_ready() -> bool:
        return await peer.get("/-/ready") != 200

    try:
        await until(ready, what="ready on the first service")
        await first.stop()
        await until(not_ready, what="not ready once the service is gone")
        second = await puppets(token=first.token, port=first.port)
        await second.login()
        await until(ready, within=15, what="ready on the service that came back")
    finally:
        await peer.stop()
    states = [json.loads(line.split(" ", 4)[4])["state"] for line in self_log_lines(path, "puppet")]
    assert states[:3] == ["connected", "lost", "connected"], states
    logins = [json.loads(line.split(" ", 4)[4])["id"] for line in self_log_lines(path, "login")]
    assert logins[0] == first.me and logins[-1] == second.me
