"""/-/ready follows the bot: 200 only while connected to its puppet service and logged in."""

from __future__ import annotations

from pathlib import Path

from tests.bot.kit import ALICE, self_log_lines, start_fake, start_peer, stop_fake, until
from tests.helpers import eventually


async def test_ready_only_while_logged_in_and_connected(tmp_path: Path) -> None:
    path = tmp_path / "alice.self.log"
    fake = await start_fake(ALICE)
    peer = await start_peer(fake, path)

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
        await eventually(ready)

        fake.logout()
        await until(lambda: self_log_lines(path, "logout"), what="the logout line")
        assert await not_ready()

        fake.login()  # a re-login: only the puppet hears it, and so does /-/ready
        await eventually(ready)

        await fake.go_down()  # the event stream is lost: nothing can be sent
        await until(lambda: puppet_state("lost"), what="the lost connection")
        assert await not_ready()

        await fake.come_back()  # the bot reconnects by itself
        await eventually(ready)
        assert puppet_state("connected")
    finally:
        await peer.stop()
        await stop_fake(fake)
