"""Receiver faults with the real Alertmanager 0.25 (fast profile) doing the retrying.

1. The peer bot's puppet service is down: the receiver (in this process, sending through the real
   python-wechaty client to the fake puppet) answers 503, Alertmanager retries, and once the
   puppet is back the admin gets the alert text and the QR exactly once.
2. `wechaty-exporter receiver` (webhook messenger, loopback peer bot refusing images) is SIGKILLed
   while Alertmanager retries; restarted on the same state dir, it sends only what was missing.
3. Two Alertmanagers in a real cluster, both fed by Prometheus scraping the real exporter, both
   notify `wechaty-exporter receiver` (outbox): exactly one DM per alert and status.

The exporter is always the real `wechaty-exporter serve` process, so the QR comes from a log.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.helpers import free_port
from tests.integration.harness import RECEIVERS, Processes, token_file, wait_until
from tests.reliability.conftest import Figures
from tests.reliability.kit import ExporterProcess
from tests.reliability.stack import (
    Alertmanager,
    PeerBotEndpoint,
    ReceiverProcess,
    cluster_size,
    start_alertmanager,
    start_prometheus,
)

from wechaty_exporter.delivery.messengers.outbox import read_outbox

# Importing wechaty creates $CACHE_DIR; keep it out of the repository (as tests/peerbot/wechaty).
os.environ.setdefault("CACHE_DIR", str(Path(tempfile.gettempdir()) / "wechaty-exporter-tests"))

from tests.peerbot.wechaty.fakepuppet import ADMIN, FakePuppet

from wechaty_exporter.delivery.exporter_client import ExporterClient
from wechaty_exporter.delivery.guard_settings import AuthSettings, RateLimitSettings
from wechaty_exporter.delivery.receiver import REGISTRY, create_receiver_app
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.peerbot.messenger import (
    PuppetService,
    WechatyMessenger,
    new_bot,
    start_bot,
)

QR = "https://login.weixin.qq.com/l/faults0001"
LOGGED_OUT = {"alertname": "WechatyBotLoggedOut", "bot": "bob", "severity": "critical"}


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    logs = tmp_path / "process-logs"
    logs.mkdir()
    registry = Processes(logs)
    try:
        yield registry
    finally:
        registry.stop_all()


@pytest.fixture
def bob_logged_out(tmp_path: Path) -> Iterator[ExporterProcess]:
    """The real exporter, following a log in which bob logged out and shows QR."""
    log = tmp_path / "bob.log"
    log.write_text(
        "09:00:00 INFO StarterBot Contact<Bob> login\n"
        "10:00:00 INFO StarterBot Contact<Bob> logout\n"
        f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}\n"
    )
    exporter = ExporterProcess(tmp_path, [("bob", log)]).start()
    yield exporter
    exporter.stop()


def decode_qr(png: bytes, tmp_path: Path) -> str:
    """What a phone reads from the image (zbarimg, Debian zbar-tools)."""
    path = tmp_path / "received.png"
    path.write_bytes(png)
    done = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# --- 1. the puppet is down --------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakePuppet]:
    puppet = FakePuppet()
    await puppet.start()
    yield puppet
    await puppet.go_down()


async def until(check: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within}s")
        await asyncio.sleep(0.05)


async def test_puppet_down_then_alertmanager_retries_and_delivers_once(
    tmp_path: Path,
    processes: Processes,
    bob_logged_out: ExporterProcess,
    fake: FakePuppet,
    figures: Figures,
) -> None:
    fake.login()
    service = PuppetService(endpoint=fake.endpoint, token="test-token")
    running = await start_bot(new_bot(service), service, require_login=True, within=10)
    token_path, token = token_file(tmp_path)
    settings = ReceiverSettings(
        language="en",
        exporter_url=bob_logged_out.url,
        admins=(("bob", (ADMIN.weixin,)),),
        auth=AuthSettings("bearer", token),
        rate_limit=RateLimitSettings(burst=100, per_hour=100000, max_hold=0),
    )
    store = DeliveryStore.in_state_dir(tmp_path / "receiver-state")
    client = ExporterClient(settings.exporter_url, timeout=2)
    app = create_receiver_app(settings, WechatyMessenger(running.bot, timeout=3), client, store)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    def answered(code: int) -> float:
        value = app[REGISTRY].get_sample_value(
            "wechaty_receiver_requests_total", {"code": str(code)}
        )
        return value or 0.0

    try:
        await fake.go_down()
        urls = dict.fromkeys(RECEIVERS, f"http://127.0.0.1:{port}/alerts")
        am = await asyncio.to_thread(
            start_alertmanager, processes, tmp_path, "alertmanager", urls, token_path
        )
        began = time.monotonic()
        await asyncio.to_thread(am.post_alert, LOGGED_OUT)
        await until(lambda: answered(503) >= 3, "three 503s (Alertmanager retrying)")
        down_for = time.monotonic() - began
        await fake.come_back()
        back = time.monotonic()
        await until(lambda: fake.files_to(ADMIN.id), "the QR delivered")
        delivered_after = time.monotonic() - back
        # Had Alertmanager missed the 200, the next flush of the group would send it again:
        # await the flush after that one, so that its notification, if any, has arrived.
        seen = len(am.flushes("bob"))  # the delivering flush is among these
        await until(lambda: next_flushes(am, seen, 2), "two more flushes of the group")
        texts, files = fake.texts_to(ADMIN.id), fake.files_to(ADMIN.id)
        assert len(texts) == 1 and "bob is logged out" in texts[0], texts
        assert len(files) == 1
        assert decode_qr(files[0][1], tmp_path) == QR
        assert answered(200) == 1
        figures(
            f"puppet down {down_for:.1f} s: {answered(503):.0f} x 503 to Alertmanager, then "
            f"delivered {delivered_after:.1f} s after the puppet came back: 1 text + 1 QR, "
            "no repeat in the flushes that followed",
            down_seconds=down_for,
            answered_503=answered(503),
            delivered_seconds=delivered_after,
            texts=len(texts),
            images=len(files),
        )
    finally:
        await runner.cleanup()
        await client.close()
        store.close()
        await running.stop(grace=1)


# --- 2. the receiver is killed mid-retry ------------------------------------------------------


def test_receiver_killed_mid_retry_loses_and_repeats_nothing(
    tmp_path: Path, processes: Processes, bob_logged_out: ExporterProcess, figures: Figures
) -> None:
    token_path, _ = token_file(tmp_path)
    with PeerBotEndpoint() as peer:
        receiver = ReceiverProcess(
            tmp_path,
            {
                "language": "en",
                "exporter_url": bob_logged_out.url,
                "admins": {"bob": ["wxid_admin"]},
                "auth": {"bearer_token_file": str(token_path)},
                "rate_limit": {"burst": 100, "per_hour": 100000, "max_hold": "0s"},
                "messenger": {"type": "webhook", "url": peer.url, "timeout": "2s"},
            },
            tmp_path / "receiver-state",
        )
        receiver.start(processes)
        urls = dict.fromkeys(RECEIVERS, f"{receiver.url}/alerts")
        am = start_alertmanager(processes, tmp_path, "alertmanager", urls, token_path)
        am.post_alert(LOGGED_OUT)
        # The text is taken, the image refused: Alertmanager retries, and the retries send
        # only the image.
        wait_until(
            lambda: peer.count("image") >= 2, timeout=30, what="two image attempts",
            processes=processes,
        )  # fmt: skip
        failed = am.metric("alertmanager_notification_requests_failed_total", integration="webhook")
        receiver.kill9()
        refused_before = peer.count("image")
        wait_until(  # Alertmanager's retries meet a closed port now
            lambda: am.metric(
                "alertmanager_notification_requests_failed_total", integration="webhook"
            ) > failed, timeout=30, what="a retry refused at the closed port",
            processes=processes,
        )  # fmt: skip
        peer.failing = False
        receiver.start(processes)  # same port, same state dir
        wait_until(
            lambda: peer.count("image", accepted=True) >= 1, timeout=30,
            what="the image delivered after the restart", processes=processes,
        )  # fmt: skip
        seen = len(am.flushes("bob"))  # the delivering flush is among these
        wait_until(  # a repeat, if any, would come from the next flush: await the one after
            lambda: next_flushes(am, seen, 2), timeout=30,
            what="two more flushes of the group", processes=processes,
        )  # fmt: skip
        assert peer.count("text") == 1, "the text was sent again"
        assert peer.count("text", accepted=True) == 1
        assert peer.count("image", accepted=True) == 1
        image = next(r for r in peer.accepted if r["type"] == "image")
        assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == QR
        figures(
            f"intro taken, QR image refused {refused_before}x (503 to Alertmanager), receiver "
            "SIGKILLed, restarted on its state dir: the QR delivered once, the intro not resent",
            refused=refused_before,
            texts=peer.count("text"),
            images=peer.count("image", accepted=True),
        )


# --- 3. two Alertmanagers, one DM -------------------------------------------------------------


def test_two_clustered_alertmanagers_one_dm_per_alert(
    tmp_path: Path, processes: Processes, figures: Figures
) -> None:
    logs = {bot: tmp_path / f"{bot}.log" for bot in ("alice", "bob")}
    for bot, path in logs.items():
        path.write_text(f"09:00:00 INFO StarterBot Contact<{bot.title()}> login\n")
    exporter = ExporterProcess(tmp_path, list(logs.items())).start()
    token_path, _ = token_file(tmp_path)
    outbox = tmp_path / "outbox.jsonl"
    try:
        receiver = ReceiverProcess(
            tmp_path,
            {
                "language": "en",
                "exporter_url": exporter.url,
                "admins": {"alice": ["wxid_admin"], "bob": ["wxid_admin"]},
                "auth": {"bearer_token_file": str(token_path)},
                "rate_limit": {"burst": 100, "per_hour": 100000, "max_hold": "0s"},
                "messenger": {"type": "outbox", "path": str(outbox)},
            },
            tmp_path / "receiver-state",
        )
        receiver.start(processes)
        urls = {name: f"{receiver.url}/alerts" for name in RECEIVERS if name != "watchdog"}
        urls["watchdog"] = f"{receiver.url}/healthz"  # not under test: a 405 ends it
        # A 0 s peer timeout makes both members send at once, before gossip can tell the
        # second that the first did: the receiver, not Alertmanager, has to drop the copy.
        first = start_alertmanager(
            processes, tmp_path, "am1", urls, token_path, peers=(), peer_timeout="0s"
        )
        second = start_alertmanager(
            processes, tmp_path, "am2", urls, token_path, peers=(first.cluster,),
            peer_timeout="0s",
        )  # fmt: skip
        wait_until(
            lambda: cluster_size(first) == 2 and cluster_size(second) == 2,
            timeout=20, what="a 2-member cluster", processes=processes,
        )  # fmt: skip
        prometheus = start_prometheus(
            processes, tmp_path, exporter.url.removeprefix("http://"), [first, second]
        )
        wait_until(
            lambda: _alertmanagers_found(prometheus) == 2, timeout=30,
            what="Prometheus sending to both", processes=processes,
        )  # fmt: skip
        with logs["bob"].open("a") as f:
            f.write("10:00:00 INFO StarterBot Contact<Bob> logout\n")
            f.write(f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}\n")
        wait_until(
            lambda: len(read_outbox(outbox)) >= 2, timeout=30, what="the rescue DM",
            processes=processes,
        )  # fmt: skip
        with logs["bob"].open("a") as f:
            f.write("10:05:00 INFO StarterBot Contact<Bob> login\n")
        wait_until(
            lambda: len(read_outbox(outbox)) >= 3, timeout=30, what="the back-online DM",
            processes=processes,
        )  # fmt: skip
        # Any further copy comes from a member's flush of bob's group showing it resolved; once
        # each member logged a later flush too, those have all arrived (Alertmanager.flushes).
        wait_until(
            lambda: all(resolved_flushes(am) >= 2 for am in (first, second)), timeout=30,
            what="two flushes of the resolved alert in each member", processes=processes,
        )  # fmt: skip
        sent = read_outbox(outbox)
        kinds = [(r["to"], r["type"]) for r in sent]
        assert kinds == [("wxid_admin", "text"), ("wxid_admin", "image"), ("wxid_admin", "text")]
        assert "bob is logged out" in sent[0]["text"]
        assert decode_qr(base64.b64decode(sent[1]["png_base64"]), tmp_path) == QR
        assert "bob is back online" in sent[2]["text"]
        posts = receiver.metric("wechaty_receiver_requests_total", code="200")
        delivered = receiver.metric("wechaty_receiver_notifications_total", outcome="delivered")
        duplicates = receiver.metric("wechaty_receiver_notifications_total", outcome="duplicate")
        dropped = receiver.metric("wechaty_receiver_dedupe_hits_total")
        # The copies reached the receiver and the receiver, not Alertmanager, dropped them: one
        # notification delivered per status, every other one counted as a dropped duplicate.
        assert delivered == 2, (delivered, duplicates, posts)
        assert duplicates == dropped >= 1, "no duplicate reached the receiver: nothing was tested"
        assert posts >= delivered + duplicates
        figures(
            f"2 clustered Alertmanagers (peer timeout 0 s), 1 alert firing then resolved: "
            f"{posts:.0f} webhook POSTs answered 200, {delivered:.0f} alerts delivered, "
            f"{dropped:.0f} dropped as duplicates, {len(sent)} DMs (text + QR, back-online text)"
        )
    finally:
        exporter.stop()


def next_flushes(am: Alertmanager, seen: int, n: int) -> bool:
    """True once `n` flushes of bob's group followed the first `seen`."""
    return len(am.flushes("bob")) >= seen + n


def resolved_flushes(am: Alertmanager) -> int:
    return sum("[resolved]" in alerts for alerts in am.flushes("bob"))


def _alertmanagers_found(prometheus: str) -> int:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{prometheus}/api/v1/alertmanagers", timeout=5) as response:
        doc = json.load(response)
    return len(doc["data"]["activeAlertmanagers"])
