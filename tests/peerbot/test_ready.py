"""/-/ready follows the bot: 200 only while connected to its puppet service and logged in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from tests.integration.harness import free_port
from tests.peerbot.kit import ALICE, self_log_lines, start_fake, start_peer, stop_fake, until

from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.messenger import PuppetService, new_bot
from wechaty_exporter.peerbot.plugin import ExporterPlugin


async def test_ready_only_while_logged_in_and_connected(tmp_path: Path) -> None:
    path = tmp_path / "alice.self.log"
    fake = await start_fake(ALICE)
    peer = await start_peer(fake, path, heartbeat=0.05)

    async def ready() -> bool:
        return await peer.get("/-/ready") == 200

    async def not_ready() -> bool:
        return await peer.get("/-/ready") == 503

    def puppet_state(state: str) -> bool:
        lines = self_log_lines(path, "puppet")
        return bool(lines) and f'"state":"{state}"' in lines[-1]

    try:
        await fake.wait_event_stream()
        assert await not_ready()  # connected, but not logged in
        assert await peer.get("/healthz") == 200

        fake.login()
        await until(ready)
        # A quiet bot's log stays fresh (WechatyLogStale) with lines that are not events.
        await until(lambda: '"logged_in":true' in "".join(self_log_lines(path, "heartbeat")))

        fake.logout()
        await until(lambda: self_log_lines(path, "logout"), what="the logout line")
        assert await not_ready()

        fake.login()  # a re-login: only the puppet hears it, and so does /-/ready
        await until(ready)

        await fake.go_down()  # the event stream is lost: nothing can be sent
        await until(lambda: puppet_state("lost"), what="the lost connection")
        assert await not_ready()

        await fake.come_back()  # the bot reconnects by itself
        await until(ready)
        assert puppet_state("connected")
    finally:
        await peer.stop()
        await stop_fake(fake)


async def test_plugin_hosts_the_receiver(tmp_path: Path) -> None:
    fake = await start_fake(ALICE, logged_in=False)
    port = free_port()
    bot = new_bot(PuppetService(endpoint=fake.endpoint, token="t"))
    settings = ReceiverSettings(listen_host="127.0.0.1", listen_port=port)
    plugin = ExporterPlugin(tmp_path / "self.log", bot=bot, receiver=settings)
    bot.use(plugin)
    started = asyncio.create_task(bot.start())

    async def status(path: str) -> int | None:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}{path}") as resp,
            ):
                return resp.status
        except aiohttp.ClientConnectionError:
            return None

    try:
        await fake.wait_event_stream()
        assert await status("/healthz") is None  # python-wechaty hands plugins the bot at login
        fake.login()
        await until(lambda: status("/-/ready"), what="the receiver")
        assert await status("/-/ready") == 200
        fake.logout()
        await until(lambda: self_log_lines(tmp_path / "self.log", "logout"))
        assert await status("/-/ready") == 503
    finally:
        await compat.request_stop(bot)
        await started
        compat.close_bot(bot)
        await plugin.close()
        await stop_fake(fake)
