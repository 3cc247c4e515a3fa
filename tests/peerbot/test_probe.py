"""The duet probe, end to end: real python-wechaty bots (over the fake puppet service) send and
receive probes, self-log them, a real exporter serves the gauges, and the real Prometheus, on the
shipped rule with a seconds-long window, fires WechatyBotUnresponsive when one bot stops receiving.

The two fake puppet services are separate accounts; the test is the network between them
(`Relay`): it delivers each probe one bot sent to the other bot's puppet as a received message.
Stopping the relay one way is a bot that says it is logged in but receives nothing (what a
phone-side logout without a logout event looks like).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.integration.harness import (
    Processes,
    Prometheus,
    run_prometheus,
    shorten_unresponsive_window,
)
from tests.peerbot.conftest import Duet
from tests.peerbot.kit import (
    ADMIN,
    FakeContact,
    FakePuppet,
    Peer,
    self_log_lines,
    stop_fake,
    until,
)
from tests.peerbot.wechaty.fakepuppet import CONTACTS

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.peerbot.bot import PROBE_RE, PeerBot, probe_text, run_peer_bot
from wechaty_exporter.peerbot.compat import IncomingText
from wechaty_exporter.peerbot.messenger import PuppetService
from wechaty_exporter.peerbot.selflog import SelfLog, SelfLogger
from wechaty_exporter.peerbot.settings import BotSettings, ProbeSettings, PuppetSettings

# The two bots' WeChat accounts: each knows the other (alice names bob by id, bob names alice by
# weixin).
ALICE = FakeContact("wxid_alice_account", "Alice", weixin="alice_wx")
BOB = FakeContact("wxid_bob_account", "Bob", alias="bob-peer")
STRANGER = CONTACTS[1]  # "Ada Admin's mum": a contact, neither admin nor peer
INTERVAL = 0.3  # seconds between probes in these tests


def test_the_probe_text_is_the_protocol() -> None:
    assert probe_text("alice", 1) == "wechaty-exporter probe v1 alice 1"
    pattern = r"^wechaty-exporter probe v1 ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}) ([0-9]{1,12})$"
    for text in ("wechaty-exporter probe v1 a.b_c-d 999999999999", probe_text("x" * 64, 7)):
        assert re.match(pattern, text) and PROBE_RE.fullmatch(text)
    for text in (
        "wechaty-exporter probe v1 alice 1\n",
        "wechaty-exporter probe v1 alice 1 ",
        " wechaty-exporter probe v1 alice 1",
        "wechaty-exporter probe v2 alice 1",
        "wechaty-exporter probe v1 alice 1234567890123",
        "wechaty-exporter probe v1 -alice 1",
        "wechaty-exporter probe v1 alice",
    ):
        assert PROBE_RE.fullmatch(text) is None, text
    with pytest.raises(ValueError, match="not a probe"):
        probe_text("not a name", 1)


async def start_fake(me: FakeContact, other: FakeContact) -> FakePuppet:
    fake = FakePuppet(me=me, contacts=(*CONTACTS, other))
    fake.logged_in = True
    await fake.start()
    return fake


async def start_bot(
    fake: FakePuppet, self_log: Path, name: str, probe: ProbeSettings | None
) -> Peer:
    settings = BotSettings(
        name=name,
        self_log=str(self_log),
        puppet=PuppetSettings(start_timeout=10.0, reconnect_max_delay=0.2),
        receiver=ReceiverSettings(
            listen_host="127.0.0.1",
            listen_port=0,
            exporter_url="http://127.0.0.1:9",
            admins=(("bob" if name == "alice" else "alice", (ADMIN.id,)),),
            qr_wait=5.0,
            language="en",
        ),
        commands=CommandsSettings(),
        send_timeout=3.0,
        probe=probe,
    )
    service = PuppetService(endpoint=fake.endpoint, token="test-token")
    started: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_peer_bot(settings, service, started=started))
    await asyncio.wait([started, task], timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    assert started.done(), "the peer bot did not start within 15 s"
    return Peer(task, f"http://{started.result()[0]}", self_log)


def lines(path: Path, kind: str) -> list[dict[str, Any]]:
    return [json.loads(line.split(f" {kind} ", 1)[1]) for line in self_log_lines(path, kind)]


def probes_to(fake: FakePuppet, contact: FakeContact) -> list[str]:
    return [t for t in fake.texts_to(contact.id) if PROBE_RE.fullmatch(t)]


@dataclass
class Relay:
    """The network between the two accounts: delivers each probe sent to the other puppet."""

    a: FakePuppet
    b: FakePuppet
    open: dict[str, bool] = field(default_factory=lambda: {"a->b": True, "b->a": True})
    delivered: dict[str, int] = field(default_factory=lambda: {"a->b": 0, "b->a": 0})

    async def run(self) -> None:
        done = {"a->b": 0, "b->a": 0}
        while True:
            for way, src, dst in (("a->b", self.a, self.b), ("b->a", self.b, self.a)):
                texts = [s.text for s in src.sent if s.to == dst.me.id and s.text is not None]
                for text in texts[done[way] :]:
                    if self.open[way]:
                        dst.receive_text(src.me.id, text)
                        self.delivered[way] += 1
                done[way] = len(texts)
            await asyncio.sleep(0.02)


async def test_probes_are_sent_recorded_and_never_answered(tmp_path: Path) -> None:
    alice_fake = await start_fake(ALICE, BOB)
    log = tmp_path / "alice.self.log"
    probe = ProbeSettings(peer=BOB.id, peer_bot="bob", interval=INTERVAL, jitter=0.1)
    alice = await start_bot(alice_fake, log, "alice", probe)
    try:
        # alice probes bob's account, counting from 1, and self-logs each probe sent
        await until(lambda: len(lines(log, "probe_sent")) >= 3, within=10, what="3 probes")
        sent = probes_to(alice_fake, BOB)
        assert sent[:3] == [f"wechaty-exporter probe v1 alice {n}" for n in (1, 2, 3)]
        assert lines(log, "probe_sent")[:3] == [{"to": "bob", "seq": n} for n in (1, 2, 3)]

        # a probe from bob's account is recorded and not answered
        before = len(alice_fake.sent)
        alice_fake.receive_text(BOB.id, "wechaty-exporter probe v1 bob 41")
        await until(lambda: lines(log, "probe"), what="the probe line")
        assert lines(log, "probe") == [{"from": "bob", "seq": 41}]

        # the same text from someone else (an admin, who gets an answer to anything, and a
        # plain contact) is dropped: not recorded, not answered, not a command
        alice_fake.receive_text(STRANGER.id, "wechaty-exporter probe v1 bob 42")
        alice_fake.receive_text(ADMIN.id, "wechaty-exporter probe v1 bob 43")
        alice_fake.receive_text(ADMIN.id, "help")  # the admin's next text is answered
        await until(lambda: alice_fake.texts_to(ADMIN.id), within=10, what="the help reply")
        await asyncio.sleep(0.2)
        assert len(alice_fake.texts_to(ADMIN.id)) == 1, alice_fake.texts_to(ADMIN.id)
        assert alice_fake.texts_to(STRANGER.id) == []
        assert lines(log, "probe") == [{"from": "bob", "seq": 41}]
        others = [s for s in alice_fake.sent[before:] if s.to != BOB.id and s.to != ADMIN.id]
        assert others == []
        assert all(PROBE_RE.fullmatch(t) for t in alice_fake.texts_to(BOB.id))

        # a send that fails is a WARN probe_failed line; the numbers go on
        alice_fake.fail_rpcs()
        await until(lambda: lines(log, "probe_failed"), within=10, what="a failed probe")
        [failed_line] = self_log_lines(log, "probe_failed")[:1]
        assert " WARN wechaty-exporter probe_failed " in failed_line
        assert lines(log, "probe_failed")[0]["to"] == "bob"
        assert lines(log, "probe_failed")[0]["error"]
        alice_fake.fail_rpcs(None)
        count = len(lines(log, "probe_sent"))
        await until(lambda: len(lines(log, "probe_sent")) > count, within=10, what="sending again")
        seqs = [entry["seq"] for entry in lines(log, "probe_sent")]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        # logged out: no probe is sent
        alice_fake.logout()
        await until(lambda: self_log_lines(log, "logout"), what="the logout line")
        await asyncio.sleep(INTERVAL * 1.2)  # a probe in flight may finish
        count = len(probes_to(alice_fake, BOB))
        await asyncio.sleep(INTERVAL * 4)
        assert len(probes_to(alice_fake, BOB)) == count
    finally:
        await alice.stop()
        await stop_fake(alice_fake)


async def test_probe_off_sends_nothing_and_a_probe_text_is_still_no_command(
    tmp_path: Path,
) -> None:
    alice_fake = await start_fake(ALICE, BOB)
    log = tmp_path / "alice.self.log"
    alice = await start_bot(alice_fake, log, "alice", None)
    try:
        alice_fake.receive_text(ADMIN.id, "wechaty-exporter probe v1 bob 1")
        alice_fake.receive_text(BOB.id, "wechaty-exporter probe v1 bob 2")
        alice_fake.receive_text(ADMIN.id, "help")
        await until(lambda: alice_fake.texts_to(ADMIN.id), within=10, what="the help reply")
        await asyncio.sleep(INTERVAL * 3)
        assert len(alice_fake.texts_to(ADMIN.id)) == 1
        assert probes_to(alice_fake, BOB) == [] and alice_fake.texts_to(BOB.id) == []
        assert self_log_lines(log, "probe") == [] and self_log_lines(log, "probe_sent") == []
    finally:
        await alice.stop()
        await stop_fake(alice_fake)


async def test_a_probe_in_a_group_is_not_recorded(tmp_path: Path) -> None:
    """The group path, which the fake puppet cannot deliver, straight into PeerBot's handler."""
    log = tmp_path / "self.log"
    out = SelfLogger(SelfLog(log))
    probe = ProbeSettings(peer=BOB.id, peer_bot="bob", interval=60)
    peer = PeerBot(PuppetService(endpoint="127.0.0.1:1", token="t"), out, name="alice", probe=probe)

    def text(room: str | None, from_self: bool = False) -> IncomingText:
        return IncomingText("m", "wechaty-exporter probe v1 bob 5", BOB.id, "Bob", "", "", room,
                            from_self)  # fmt: skip

    # no messenger is needed for these: nothing reaches the contact lookup or a reply
    await peer._on_text(text("room@chatroom"), None)  # type: ignore[arg-type]
    await peer._on_text(text(None, from_self=True), None)  # type: ignore[arg-type]
    await out.flush()
    assert self_log_lines(log, "probe") == []
    await peer._on_text(text(None), None)  # type: ignore[arg-type]
    await out.flush()
    assert lines(log, "probe") == [{"from": "bob", "seq": 5}]
    out.out.close()


# --- the whole path: bots → self-logs → exporter → Prometheus → WechatyBotUnresponsive -----------


def run_prometheus_short_window(processes: Processes, workdir: Path, target: str) -> Prometheus:
    """Prometheus on the fast profile with WechatyBotUnresponsive's window cut to seconds."""
    return run_prometheus(processes, workdir, [target], [], rules=shorten_unresponsive_window)


def _alerts(prometheus: Prometheus) -> dict[str, str]:
    result = prometheus.query('ALERTS{alertname="WechatyBotUnresponsive"}')
    return {r["metric"]["bot"]: r["metric"]["alertstate"] for r in result}


async def test_unresponsive_fires_when_probes_stop_reaching_one_bot(
    duet: Duet, tmp_path: Path
) -> None:
    alice_fake = await start_fake(ALICE, BOB)
    bob_fake = await start_fake(BOB, ALICE)
    alice = bob = None
    relay = Relay(alice_fake, bob_fake)
    relaying = asyncio.create_task(relay.run())
    prometheus = await asyncio.to_thread(
        run_prometheus_short_window, duet.processes, tmp_path / "prometheus", duet.exporter.address
    )
    try:
        # alice names bob's account by id, bob names alice's by weixin
        alice = await start_bot(
            alice_fake, duet.logs.path("alice"), "alice",
            ProbeSettings(peer=BOB.id, peer_bot="bob", interval=INTERVAL, jitter=0.1),
        )  # fmt: skip
        bob = await start_bot(
            bob_fake, duet.logs.path("bob"), "bob",
            ProbeSettings(peer=ALICE.weixin, peer_bot="alice", interval=INTERVAL, jitter=0.1),
        )  # fmt: skip

        # the exporter serves both gauges, read from the self-logs
        async def gauges() -> bool:
            received = await asyncio.to_thread(
                prometheus.values, "wechaty_bot_probe_received_timestamp_seconds", "bot"
            )
            sent = await asyncio.to_thread(
                prometheus.values, "wechaty_bot_probe_sent_timestamp_seconds", "peer"
            )
            now = time.time()
            return (
                set(received) == {"alice", "bob"}
                and set(sent) == {"alice", "bob"}
                and all(now - 5 < v <= now + 1 for v in (*received.values(), *sent.values()))
            )

        await until(gauges, within=20, interval=0.25, what="both probe gauges in Prometheus")
        assert lines(duet.logs.path("bob"), "probe")[0]["from"] == "alice"
        assert lines(duet.logs.path("alice"), "probe")[0]["from"] == "bob"

        # probes flowing both ways for longer than the window: nothing pending, nothing firing
        await asyncio.sleep(5)
        assert await asyncio.to_thread(_alerts, prometheus) == {}

        # alice's probes stop reaching bob; bob still says it is logged in, alice keeps sending
        relay.open["a->b"] = False
        cut = time.monotonic()

        async def bob_fires() -> bool:
            return await asyncio.to_thread(_alerts, prometheus) == {"bob": "firing"}

        await until(bob_fires, within=20, interval=0.25, what="WechatyBotUnresponsive for bob")
        took = time.monotonic() - cut
        assert took >= 3, f"fired {took:.1f}s after the cut, before the window passed"
        logged_in = await asyncio.to_thread(prometheus.values, "wechaty_bot_logged_in", "bot")
        assert logged_in == {"alice": 1.0, "bob": 1.0}

        # probes reach bob again: resolved
        relay.open["a->b"] = True

        async def resolved() -> bool:
            return await asyncio.to_thread(_alerts, prometheus) == {}

        await until(resolved, within=15, interval=0.25, what="WechatyBotUnresponsive to resolve")
    finally:
        relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relaying
        for peer in (alice, bob):
            if peer is not None:
                await peer.stop()
        await stop_fake(alice_fake)
        await stop_fake(bob_fake)
