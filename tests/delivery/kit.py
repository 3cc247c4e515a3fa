"""Receiver test kit: Alertmanager payload fixtures, a loopback exporter stand-in, a loopback peer
bot for the webhook messenger, a controllable clock, a builder for receiver apps, and our own
processes (`wechaty-exporter serve`, `receiver`) on free loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from tests.helpers import eventually, free_port

from wechaty_exporter.delivery.exporter_client import Exporters
from wechaty_exporter.delivery.guard_settings import RateLimitSettings
from wechaty_exporter.delivery.messengers import Messenger
from wechaty_exporter.delivery.messengers.outbox import OutboxMessenger, read_outbox
from wechaty_exporter.delivery.messengers.webhook import WebhookMessenger
from wechaty_exporter.delivery.receiver import REGISTRY, create_receiver_app
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore

PAYLOADS = Path(__file__).parent / "payloads"
SRC = str(Path(__file__).resolve().parents[2] / "src")
QR_BOB = "https://login.weixin.qq.com/l/IbfDrtBmzQ=="
QR_BOB_NEWER = "https://login.weixin.qq.com/l/Yd7k1w2Lxg=="
# firing.json's startsAt is 2026-11-25T01:01:59.715Z; the tests' clock starts 3 minutes later.
STARTS_AT = 1795568519.715
T0 = STARTS_AT + 180


def payload(name: str) -> bytes:
    """A webhook body exactly as Alertmanager 0.25 sent it (see payloads/README.md)."""
    return (PAYLOADS / f"{name}.json").read_bytes()


def payload_doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(payload(name))
    return doc


def payload_about(name: str, bot: str) -> bytes:
    """A payload about bob (firing.json, resolved.json, ...) retold about `bot`, with a
    fingerprint of its own."""
    doc = json.loads(re.sub(r"\bbob\b", bot, payload(name).decode()))
    for alert in doc["alerts"]:
        alert["fingerprint"] = f"{alert['fingerprint']}-{bot}"
    return json.dumps(doc).encode()


def decode_qr(png: bytes, tmp_path: Path) -> str:
    """What a phone reads from the PNG (zbarimg from Debian zbar-tools)."""
    path = tmp_path / "decoded.png"
    path.write_bytes(png)
    out = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


class Clock:
    """Test time: `now` moves only when a test (or the receiver's sleep) moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class FakeExporter:
    """Stand-in for the exporter's QR API on loopback: serves exactly the documented
    `GET /api/v1/bots/{bot}/qr` → {"bot", "qrcode", "status", "seen_at"} or 404 (docs/exporter.md),
    as an exporter from before `logout_reason` did; with `reasons[bot]` set, that field too.

    A fake of an outer edge: the receiver's tests against the real `wechaty-exporter serve`
    process live in test_receiver_real_exporter.py.
    """

    qrs: dict[str, str] = field(default_factory=dict)
    appear_after: dict[str, tuple[int, str]] = field(default_factory=dict)  # bot → (polls, qr)
    fail_status: int | None = None
    polls: dict[str, int] = field(default_factory=dict)
    token: str | None = None
    url: str = ""
    polled: asyncio.Event = field(default_factory=asyncio.Event)
    reasons: dict[str, Any] = field(default_factory=dict)  # bot → its QR document's logout_reason

    async def handle_qr(self, request: web.Request) -> web.Response:
        bot = request.match_info["bot"]
        self.polls[bot] = self.polls.get(bot, 0) + 1
        self.polled.set()
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "token required"}, status=401)
        if self.fail_status is not None:
            return web.json_response({"error": "broken"}, status=self.fail_status)
        if bot in self.appear_after and self.polls[bot] > self.appear_after[bot][0]:
            self.qrs[bot] = self.appear_after.pop(bot)[1]
        qr = self.qrs.get(bot)
        if qr is None:
            return web.json_response({"error": f"no login QR pending for {bot}"}, status=404)
        doc = {"bot": bot, "qrcode": qr, "status": "Waiting", "seen_at": "2026-11-25T01:02:30.000Z"}
        if bot in self.reasons:
            doc["logout_reason"] = self.reasons[bot]
        return web.json_response(doc)


@dataclass
class PeerBot:
    """A peer bot written "in another language" that takes the webhook messenger's POSTs.

    `script` holds HTTP statuses to answer, in order (then 200); every request is recorded, and
    only accepted ones are kept in `accepted`.
    """

    script: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    fail_for: dict[str, int] = field(default_factory=dict)  # contact → status, every time
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        status = self.fail_for.get(body["to"]) or (self.script.pop(0) if self.script else 200)
        if status == 200:
            self.accepted.append(body)
            return web.json_response({"ok": True})
        return web.json_response({"error": f"status {status}"}, status=status)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def exporter() -> AsyncIterator[FakeExporter]:
    fake = FakeExporter()
    app = web.Application()
    app.router.add_get("/api/v1/bots/{bot}/qr", fake.handle_qr)
    runner, fake.url = await _serve(app)
    yield fake
    await runner.cleanup()


@pytest.fixture
async def peer() -> AsyncIterator[PeerBot]:
    fake = PeerBot()
    app = web.Application(client_max_size=8 << 20)
    app.router.add_post("/send", fake.handle)
    runner, base = await _serve(app)
    fake.url = base + "/send"
    yield fake
    await runner.cleanup()


def base_settings(exporter_url: str, **changes: Any) -> ReceiverSettings:
    settings = ReceiverSettings(
        exporter_url=exporter_url,
        admins=(("bob", ("wxid_admin",)), ("carol", ("wxid_admin", "wxid_ops"))),
        fallback_admins=("wxid_ops",),
        qr_wait=5.0,
        qr_poll_interval=1.0,
        rate_limit=RateLimitSettings(burst=20, per_hour=3600, max_hold=0),
        language="en",  # the tests below read English texts (test_messages.py: Chinese)
    )
    return replace(settings, **changes)


@dataclass
class Rig:
    """One receiver under test: its client, outbox and state dir."""

    client: TestClient[web.Request, web.Application]
    outbox: Path
    state_dir: Path
    store: DeliveryStore
    clock: Clock

    async def post(self, body: bytes | str, **headers: str) -> tuple[int, Any]:
        hdrs = {"Content-Type": "application/json", **headers}
        resp = await self.client.post("/alerts", data=body, headers=hdrs)
        try:
            doc = await resp.json()
        except Exception:
            doc = await resp.text()
        return resp.status, doc

    def sent(self) -> list[dict[str, Any]]:
        return read_outbox(self.outbox)

    def metric(self, name: str, **labels: str) -> float:
        value = self.client.app[REGISTRY].get_sample_value(name, labels)
        return 0.0 if value is None else value


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(
    aiohttp_client: Any, exporter: FakeExporter, tmp_path: Path
) -> AsyncIterator[MakeRig]:
    """Build a receiver app (again, for restarts) on tmp_path/state with an outbox messenger,
    or with the messenger given."""
    opened: list[tuple[DeliveryStore, Exporters, Messenger]] = []
    clock = Clock()

    async def build(
        settings: ReceiverSettings | None = None,
        *,
        messenger: Messenger | None = None,
        state_dir: Path | None = None,
        real_time: bool = False,
        **kwargs: Any,
    ) -> Rig:
        settings = settings or base_settings(exporter.url)
        state = state_dir or tmp_path / "state"
        outbox = tmp_path / "outbox.jsonl"
        store = DeliveryStore.in_state_dir(state)
        client = Exporters(settings, timeout=2)  # each bot's exporter, as `serve_receiver` has
        chosen = messenger or OutboxMessenger(outbox, clock=clock)
        opened.append((store, client, chosen))
        if real_time:  # for waits on a real process
            kwargs.update(clock=time.time, sleep=asyncio.sleep)
        else:
            kwargs.update(clock=clock, sleep=clock.sleep)
        app = create_receiver_app(settings, chosen, client, store, **kwargs)
        return Rig(await aiohttp_client(app), outbox, state, store, clock)

    yield build
    for store, client, messenger in opened:
        await client.close()
        await messenger.close()
        store.close()


def webhook_messenger(peer: PeerBot) -> WebhookMessenger:
    return WebhookMessenger(peer.url, timeout=2)


class Process:
    """`python -m wechaty_exporter <args>` on a free loopback port, output kept in a file."""

    def __init__(self, tmp_path: Path, name: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable, "-m", "wechaty_exporter", *args,
            "--web.listen-address", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        self.output = tmp_path / f"{name}-{self.port}.out"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with self.output.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, stdout=out, stderr=out, env=env
            )

        async def ready() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"exited {self.proc.returncode}: {self.output.read_text()}")
            try:
                async with session.get(self.url + "/-/ready") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(ready, within=15, interval=0.05)

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 10)
