"""Fixtures: a fake puppet service on loopback (plaintext), the real python-wechaty bot started
against it. The real puppet service's fixtures are in tests/puppetservice/conftest.py."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Importing wechaty creates $CACHE_DIR (default ./.wechaty in the working directory); keep it out
# of the repository. Set before any test module imports the compat module.
os.environ.setdefault("CACHE_DIR", str(Path(tempfile.gettempdir()) / "wechaty-exporter-tests"))

from tests.peerbot.wechaty.fakepuppet import FakePuppet

from wechaty_exporter.peerbot.messenger import (
    PuppetService,
    RunningBot,
    WechatyMessenger,
    new_bot,
    start_bot,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakePuppet]:
    puppet = FakePuppet()
    await puppet.start()
    yield puppet
    await puppet.go_down()
    assert puppet.unimplemented == [], (
        f"the client called RPCs the fake lacks: {puppet.unimplemented}"
    )


@pytest.fixture
def service(fake: FakePuppet) -> PuppetService:
    return PuppetService(endpoint=fake.endpoint, token="test-token")


@pytest.fixture
async def running(fake: FakePuppet, service: PuppetService) -> AsyncIterator[RunningBot]:
    """The real client, started against the fake and logged in."""
    fake.login()
    bot = await start_bot(new_bot(service), service, require_login=True, within=10)
    yield bot
    await bot.stop(grace=2)


@pytest.fixture
def messenger(running: RunningBot) -> WechatyMessenger:
    return WechatyMessenger(running.bot, timeout=5)
