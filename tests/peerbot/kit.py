"""Peer-bot test kit: fake puppet accounts, peer bots run in this event loop, payloads, polling.

The puppet service here is the fake (tests/peerbot/wechaty/fakepuppet.py), or, passed as a
PuppetService, the real one (tests/puppetservice/kit.py); all else is real: the python-wechaty
client, the receiver, the exporter process, Prometheus and Alertmanager.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

# Importing wechaty creates $CACHE_DIR (default ./.wechaty): keep it out of the repository.
os.environ.setdefault("CACHE_DIR", str(Path(tempfile.gettempdir()) / "wechaty-exporter-tests"))

from tests.delivery.kit import decode_qr, payload_doc
from tests.peerbot.wechaty.fakepuppet import ADMIN, CONTACTS, FakeContact, FakePuppet

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.guard_settings import AuthSettings
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import Event
from wechaty_exporter.peerbot.bot import run_peer_bot
from wechaty_exporter.peerbot.messenger import PuppetService
from wechaty_exporter.peerbot.settings import BotSettings, PuppetSettings

__all__ = ["ADMIN", "FakeContact", "FakePuppet", "decode_qr"]

ALICE = FakeContact("wxid_alice_account", "Alice")
BOB = FakeContact("wxid_bob_account", "Bob")


async def start_fake(me: FakeContact, *, logged_in: bool = False) -> FakePuppet:
    fake = FakePuppet(me=me, contacts=CONTACTS)
    fake.logged_in = logged_in
    await fake.start()
    return fake


async def stop_fake(fake: FakePuppet) -> None:
    await fake.go_down()
    assert fake.unimplemented == [], f"the client called RPCs the fake lacks: {fake.unimplemented}"


@dataclass
class Peer:
    """A peer bot (`run_peer_bot`) running in this event loop."""

    task: asyncio.Task[None]
    url: str  # the receiver, http://HOST:PORT
    self_log: Path
    token: str | None = None

    async def post(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/alerts", json=doc, headers=headers) as resp,
        ):
            return resp.status, await resp.json()

    async def get(self, path: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as resp:
            return resp.status

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the receiver's /metrics (0 when absent)."""
        async with aiohttp.ClientSession() as session, session.get(self.url + "/metrics") as resp:
            text = await resp.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                wanted = all(sample.labels.get(k) == v for k, v in labels.items())
                if sample.name == name and wanted:
                    return float(sample.value)
        return 0.0

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_peer(
    fake: FakePuppet | PuppetService,  # a fake, or the real service's PuppetService (TLS)
    self_log: Path,
    *,
    name: str = "alice",
    admins: Iterable[tuple[str, tuple[str, ...]]] = (("bob", (ADMIN.id,)),),
    exporter_url: str = "http://127.0.0.1:9",
    port: int = 0,
    token: str | None = None,
    state_dir: Path | None = None,
    heartbeat: float = 600.0,
    commands: CommandsSettings | None = None,
    ack_check_interval: float = 60.0,
    language: str = "en",  # the tests read English texts; test_languages.py runs one in Chinese
) -> Peer:
    settings = BotSettings(
        name=name,
        self_log=str(self_log),
        state_dir=state_dir,
        puppet=PuppetSettings(start_timeout=10.0, reconnect_max_delay=0.2),
        receiver=ReceiverSettings(
            listen_host="127.0.0.1",
            listen_port=port,
            exporter_url=exporter_url,
            admins=tuple(admins),
            auth=AuthSettings("bearer", token) if token else None,
            qr_wait=5.0,
            language=language,
        ),
        commands=commands if commands is not None else CommandsSettings(),
        send_timeout=3.0,
    )
    service = (
        fake
        if isinstance(fake, PuppetService)
        else PuppetService(endpoint=fake.endpoint, token="test-token")
    )
    started: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_peer_bot(
            settings,
            service,
            started=started,
            heartbeat=heartbeat,
            ack_check_interval=ack_check_interval,
        )
    )
    first: list[asyncio.Future[Any]] = [started, task]
    await asyncio.wait(first, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    assert started.done(), "the peer bot did not start within 15 s"
    return Peer(task, f"http://{started.result()[0]}", self_log, token)


async def until(
    probe: Callable[[], Any], *, within: float = 5.0, what: str = "", interval: float = 0.02
) -> Any:
    """Poll `probe` (plain or async) until it returns something truthy, letting this event loop
    (bots, fakes) run in between; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what or probe}")
        await asyncio.sleep(interval)


def self_log_lines(path: Path, kind: str | None = None) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [line for line in lines if kind is None or f" wechaty-exporter {kind} " in line]


def parse(path: Path) -> list[Event]:
    parser = LineParser()
    return [event for line in self_log_lines(path) for event in parser.feed(line, time.time())]


def without_time(events: Iterable[Event]) -> list[tuple[Any, ...]]:
    """Events as (type, the fields of their value but `at`) for comparisons."""
    return [
        (
            type(event).__name__,
            *(getattr(event, f.name) for f in fields(event) if f.compare and f.name != "at"),
        )
        for event in events
    ]


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class AlertFactory:
    """Alertmanager v4 payloads (from the captured fixtures) for one logged-out episode of a bot."""

    bot: str
    starts_at: float = field(default_factory=time.time)
    fingerprint: str = "59c41b3133069dd4"

    def payload(self, status: str, ends_at: float | None = None) -> dict[str, Any]:
        doc = copy.deepcopy(payload_doc(status))
        for alert in doc["alerts"]:
            alert["labels"]["bot"] = self.bot
            alert["startsAt"] = rfc3339(self.starts_at)
            alert["fingerprint"] = self.fingerprint
            if ends_at is not None:
                alert["endsAt"] = rfc3339(ends_at)
        doc["groupLabels"]["bot"] = doc["commonLabels"]["bot"] = self.bot
        return doc


async def exporter_qr(exporter_url: str, bot: str) -> str | None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{exporter_url}/api/v1/bots/{bot}/qr") as resp,
    ):
        if resp.status != 200:
            return None
        doc = json.loads(await resp.text())
        qrcode: str = doc["qrcode"]
        return qrcode


async def wait_exporter_qr(exporter_url: str, bot: str, qr: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    seen = None
    while time.monotonic() < deadline:
        seen = await exporter_qr(exporter_url, bot)
        if seen == qr:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the exporter shows {seen!r} for {bot}, not {qr!r}")
