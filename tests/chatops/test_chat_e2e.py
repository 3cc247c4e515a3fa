"""Issue 5's "Done when": every chat command end to end, through the real python-wechaty client.

The peer bot runs in this event loop (`run_peer_bot`, as tests/peerbot does) on the fake puppet
service (tests/peerbot/wechaty/fakepuppet.py, the one fake); the exporter is the real
`wechaty-exporter serve` process tailing bob's log and Alertmanager the real binary (both from
tests/chatops/conftest.py).
The admin, Ada, is configured by her alias for bob and by her id for alice; a stranger and the
bot's own account write to it too. What the bot sends back is what the fake recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.chatops.test_alertmanager import logged_out, post_alerts
from tests.integration.harness import Alertmanager, BotLogs, Exporter, brolog
from tests.peerbot.kit import (
    ADMIN,
    ALICE,
    AlertFactory,
    FakePuppet,
    Peer,
    decode_qr,
    start_fake,
    start_peer,
    stop_fake,
    until,
)
from tests.peerbot.wechaty.fakepuppet import Sent

from wechaty_exporter.chatops.alertmanager import AlertmanagerClient, Matcher, rfc3339
from wechaty_exporter.chatops.settings import CommandsSettings, ReplyRateLimit
from wechaty_exporter.delivery.exporter_client import ExporterClient
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.messenger import PuppetService, new_bot
from wechaty_exporter.peerbot.plugin import ExporterPlugin

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # the totp_secret_file fixture's
STRANGER = "wxid_mum"  # in the bot's contacts, not an admin; her alias extends Ada's
ADMINS = (("bob", ("oncall-boss",)), ("alice", (ADMIN.id,)))
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EVERY_COMMAND = (
    "help", "status", "qr", "qr bob", "alerts", "silence bob 1h test", "silences",
    "unsilence 0123456789", "ack bob", "restart bob", "log bob 5", "rescue off bob",
    "rescue on bob",
)  # fmt: skip


@dataclass
class Chat:
    """One contact writing to the bot; `say` waits for the expected number of replies."""

    fake: FakePuppet
    contact: str

    def received(self) -> list[Sent]:
        return [s for s in self.fake.sent if s.to == self.contact]

    async def say(self, text: str, replies: int = 1) -> list[Sent]:
        before = len(self.received())
        self.fake.receive_text(self.contact, text)
        await until(
            lambda: len(self.received()) >= before + replies,
            within=10,
            what=f"{replies} replies to {text!r}",
        )
        return self.received()[before:]

    async def text(self, text: str) -> str:
        [reply] = await self.say(text)
        assert reply.text is not None, reply
        return reply.text


def code(at: float) -> str:
    return pyotp.TOTP(SECRET).at(int(at))


def wrong_code(now: float) -> str:
    valid = {code(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222") if c not in valid)


async def metrics(peer: Peer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(peer.url + "/metrics") as resp:
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def command_count(peer: Peer, **labels: str) -> float:
    return sum(
        value
        for (name, got), value in (await metrics(peer)).items()
        if name == "wechaty_bot_commands_total" and set(labels.items()) <= set(got)
    )


@pytest.fixture
async def bob_down(real_exporter: Exporter, exporter_logs: BotLogs) -> AsyncIterator[str]:
    """alice logged in; bob logged out with a fresh QR: that QR."""
    qr = f"https://login.weixin.qq.com/l/{secrets.token_hex(6)}"
    exporter_logs.write("alice", brolog("Contact<Alice> login"))
    exporter_logs.write(
        "bob",
        brolog("starting bob"),
        brolog("Contact<Bob> message from Carol: hi"),
        brolog("Contact<Bob> logout"),
        brolog("puppet crashed", level="ERR"),
        brolog(f"onScan: Waiting(2) - {qr}"),
    )
    client = ExporterClient(real_exporter.url)

    async def caught_up() -> bool:
        pending = await client.pending_qr("bob")
        return pending is not None and pending.qrcode == qr

    try:
        await until(caught_up, within=15, what="the exporter to show bob's QR")
        yield qr
    finally:
        await client.close()


@pytest.fixture
async def am(real_alertmanager: Alertmanager) -> AsyncIterator[AlertmanagerClient]:
    client = AlertmanagerClient(real_alertmanager.url)
    yield client
    await client.close()


@contextlib.asynccontextmanager
async def peer_bot(
    exporter: Exporter, commands: CommandsSettings, state_dir: Path
) -> AsyncIterator[tuple[FakePuppet, Peer]]:
    fake = await start_fake(ALICE, logged_in=True)
    peer = await start_peer(
        fake,
        state_dir / "self.log",
        name="alice",
        admins=ADMINS,
        exporter_url=exporter.url,
        state_dir=state_dir,
        commands=commands,
        ack_check_interval=0.2,
    )
    try:
        await until(lambda: peer.get("/-/ready"), what="the peer bot to be ready")
        yield fake, peer
    finally:
        await peer.stop()
        await stop_fake(fake)


async def resolve_all(am: AlertmanagerClient, url: str, bot: str) -> None:
    """End every alert about `bot` (other tests share this Alertmanager): a clean slate."""
    firing = await am.alerts([Matcher("bot", bot)])
    ended = time.time() - 1
    if firing:
        await post_alerts(
            url,
            *(
                {
                    "labels": dict(a.labels),
                    "startsAt": rfc3339(min(a.starts_at or ended, ended)),
                    "endsAt": rfc3339(ended),
                }
                for a in firing
            ),
        )
    assert await am.alerts([Matcher("bot", bot)]) == []


def settings(**changes: Any) -> CommandsSettings:
    return replace(CommandsSettings(reply_rate_limit=ReplyRateLimit(100, 100.0)), **changes)


async def test_an_admin_runs_every_command(
    bob_down: str,
    real_exporter: Exporter,
    real_alertmanager: Alertmanager,
    am: AlertmanagerClient,
    exporter_logs: BotLogs,
    totp_secret_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wechaty_exporter.audit")
    compat.one_line_logs()  # as `wechaty-exporter bot` does: no chat text (no code) in the log
    marker = tmp_path / "restarted"
    commands = settings(
        totp_secret=SECRET,
        # silence and restart need a code; the other dangerous ones a YES, so this test needs
        # only two codes (a code counts once: one per 30 s step)
        security=tuple((key, "confirm") for key in ("unsilence", "ack", "rescue_off", "log")),
        restart=(("bob", ("sh", "-c", f"echo restarted bob; touch {marker}")),),
        log_files=(("bob", (exporter_logs.path("bob"),)),),
        alertmanager_url=real_alertmanager.url,
    )
    async with peer_bot(real_exporter, commands, tmp_path / "alice") as (fake, peer):
        ada = Chat(fake, ADMIN.id)

        text = await ada.text("help")
        assert text.startswith("Your bots: bob, alice\n"), text
        assert "restart <bot> <code> — " in text
        assert "rescue off <bot> (confirm with YES) — " in text

        lines = (await ada.text("Status")).splitlines()
        assert lines[0].startswith("bob: LOGGED OUT since "), lines
        assert lines[1].endswith("; send: qr bob")
        assert lines[-1].startswith("alice: logged in as Alice since ")

        intro, image = await ada.say("qr bob", replies=2)
        assert intro.text is not None and intro.text.startswith("Scan the QR code below (shown ")
        assert image.filename == "bob-login-qr.png" and image.data is not None
        assert decode_qr(image.data, tmp_path) == bob_down

        await resolve_all(am, real_alertmanager.url, "bob")
        started = time.time() - 60
        await post_alerts(real_alertmanager.url, logged_out("bob", started))
        text = await ada.text("alerts bob")
        assert text.startswith("WechatyBotLoggedOut bob: since "), text

        # silence with TOTP: the silence is in Alertmanager, made by Ada
        text = await ada.text(f"silence bob 1h test {code(time.time())}")
        assert text.startswith("Silenced bob for 1 h, until "), text
        found = UUID.search(text)
        assert found is not None
        silence_id = found.group()
        silence = await am.silence(silence_id)
        assert silence is not None
        assert (silence.matchers, silence.created_by, silence.comment, silence.state) == (
            (Matcher("bot", "bob"),),
            "Ada Admin",
            "test",
            "active",
        )
        assert f"{silence_id} bob until " in await ada.text("silences")
        assert await ada.text(f"unsilence {silence_id}") == (
            f"Reply YES within 1 min to run: unsilence {silence_id}"
        )
        assert await ada.text("YES") == f"Silence {silence_id} of bob expired."
        silence = await am.silence(silence_id)
        assert silence is not None and silence.state == "expired"

        # restart: nothing runs without the code or with a wrong one
        text = await ada.text("restart bob")
        assert text == "restart needs a code from your authenticator app: restart bob 123456"
        bad = wrong_code(time.time())
        assert (await ada.text(f"restart bob {bad}")).startswith("Wrong code; nothing done")
        assert not marker.exists()
        right = code(time.time() + 30)  # the next step's: the silence spent this one
        text = await ada.text(f"restart bob {right}")
        assert text.startswith("restart bob: exit status 0 after "), text
        assert text.endswith("\nrestarted bob")
        assert marker.exists()

        # log: dangerous too (a code, by default, with a TOTP secret; a YES here); the QR, a
        # credential, does not reach the chat: `qr` sends it as an image, with its caption
        assert await ada.text("log bob 5") == "Reply YES within 1 min to run: log bob 5"
        text = await ada.text("YES")
        assert text.startswith("bob.log, last 5 lines:\n"), text
        assert text.endswith("onScan: Waiting(2) - [QR redacted: use the qr command]"), text
        assert bob_down.rpartition("/")[2].rstrip("=") not in text

        # ack: a silence that the bot ends once the alert resolved
        assert await ada.text("ack bob") == "Reply YES within 1 min to run: ack bob"
        text = await ada.text("yes")
        assert text.startswith("Acknowledged WechatyBotLoggedOut for bob: silenced until "), text
        found = UUID.search(text)
        assert found is not None
        ack_id = found.group()
        await post_alerts(real_alertmanager.url, logged_out("bob", started, time.time() - 1))

        async def ack_ended() -> bool:
            ack = await am.silence(ack_id)
            return ack is not None and ack.state == "expired"

        await until(ack_ended, what="the bot to end the ack silence")

        # rescue off: a firing alert is answered 200 and no DM goes out; rescue on: DMs again
        assert await ada.text("rescue off bob") == "Reply YES within 1 min to run: rescue off bob"
        assert (await ada.text("YES")).startswith("Rescue of bob is paused")
        sent = len(ada.received())
        episode = AlertFactory("bob")
        status, body = await peer.post(episode.payload("firing"))
        assert (status, body["alerts"][0]["outcome"]) == (200, "paused"), body
        assert (await ada.text("rescue on bob")).startswith("Rescue of bob is on")
        assert len(ada.received()) == sent + 1, "the paused alert sent something"  # the reply
        status, body = await peer.post(episode.payload("firing"))
        assert (status, body["alerts"][0]["outcome"]) == (200, "delivered"), body
        dm, qr_image = ada.received()[-2:]
        assert dm.text is not None and dm.text.startswith("bob is logged out of WeChat")
        assert qr_image.data is not None and decode_qr(qr_image.data, tmp_path) == bob_down

        counts = await metrics(peer)

    def count(command: str, outcome: str) -> float:
        key = (("command", command), ("outcome", outcome))
        return counts.get(("wechaty_bot_commands_total", key), 0.0)

    assert [count("restart", o) for o in ("no_code", "bad_code", "ok")] == [1, 1, 1]
    assert [count("rescue_off", o) for o in ("pending", "ok")] == [1, 1]
    assert [count("log", o) for o in ("pending", "ok")] == [1, 1]
    assert count("help", "ok") == count("silence", "ok") == count("qr", "ok") == 1
    paused = ("wechaty_receiver_notifications_total", (("outcome", "paused"),))
    assert counts[paused] == 1

    audits = [r.getMessage() for r in caplog.records if r.name == "wechaty_exporter.audit"]
    assert len(audits) == 18  # one per command, each YES included
    assert "command=restart bot='bob' text='restart bob' outcome=ok detail='exit 0'" in audits[10]
    assert [r.levelname for r in caplog.records if "outcome=bad_code" in r.getMessage()] == [
        "WARNING"
    ]
    assert any(r.name == "Wechaty" and "receive message" in r.getMessage() for r in caplog.records)
    leaks = [
        r.getMessage() for r in caplog.records if right in r.getMessage() or bad in r.getMessage()
    ]
    assert leaks == []


async def test_strangers_and_the_bot_itself_get_nothing_and_yes_confirms(
    bob_down: str, real_exporter: Exporter, tmp_path: Path
) -> None:
    marker = tmp_path / "restarted"
    commands = settings(restart=(("bob", ("sh", "-c", f"echo restarted bob; touch {marker}")),))
    async with peer_bot(real_exporter, commands, tmp_path / "alice") as (fake, peer):
        stranger, ada = Chat(fake, STRANGER), Chat(fake, ADMIN.id)
        for text in (*EVERY_COMMAND, "YES", f"restart bob {secrets.randbelow(10**6):06d}"):
            fake.receive_text(STRANGER, text)
        ignored = len(EVERY_COMMAND) + 1  # "YES" is no command word: not even audited

        async def all_ignored() -> bool:
            return await command_count(peer, outcome="ignored") == ignored

        await until(all_ignored, what="the stranger's commands to be audited")
        for text in ("help", "restart bob", "YES"):
            fake.receive_text(ALICE.id, text)  # the bot's own account
        assert (await ada.text("help")).startswith("Your bots: bob, alice\n")  # the marker
        assert stranger.received() == []
        assert [s for s in fake.sent if s.to == ALICE.id] == []
        assert await command_count(peer) == ignored + 1
        assert not marker.exists()

        # no TOTP secret: restart asks for a YES
        assert await ada.text("restart bob") == "Reply YES within 1 min to run: restart bob"
        assert not marker.exists()
        text = await ada.text("YES")
        assert text.startswith("restart bob: exit status 0 after "), text
        assert text.endswith("\nrestarted bob")
        assert marker.exists()
        assert await ada.text("yes") == "Nothing to confirm."


async def test_the_plugin_answers_commands_too(real_exporter: Exporter, tmp_path: Path) -> None:
    fake = await start_fake(ALICE, logged_in=False)
    bot = new_bot(PuppetService(endpoint=fake.endpoint, token="t"))
    receiver = ReceiverSettings(
        listen_host="127.0.0.1",
        listen_port=0,
        exporter_url=real_exporter.url,
        admins=ADMINS,
        language="en",
    )
    plugin = ExporterPlugin(tmp_path / "self.log", bot=bot, receiver=receiver, commands=settings())
    bot.use(plugin)
    started = asyncio.create_task(bot.start())
    try:
        await fake.wait_event_stream()
        fake.login()
        ada = Chat(fake, ADMIN.id)
        await until(lambda: compat.login_user_id(bot))
        assert (await ada.text("help")).startswith("Your bots: bob, alice\n")
        fake.receive_text(STRANGER, "help")
        assert (await ada.text("help")).startswith("Your bots: bob, alice\n")  # the marker
        assert Chat(fake, STRANGER).received() == []
    finally:
        await compat.request_stop(bot)
        await started
        compat.close_bot(bot)
        await plugin.close()
        await stop_fake(fake)
