"""Fixtures: the real puppet service (server.mjs) with its default TLS; the peer-bot fixtures
(the real exporter process around the bots) from tests/peerbot/conftest.py."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# Importing wechaty creates $CACHE_DIR (default ./.wechaty): keep it out of the repository.
os.environ.setdefault("CACHE_DIR", str(Path(tempfile.gettempdir()) / "wechaty-exporter-tests"))

from tests.peerbot.conftest import duet, measured  # noqa: F401
from tests.puppetservice.kit import RealPuppet


@pytest.fixture
async def real() -> AsyncIterator[RealPuppet]:
    """The real puppet service, TLS on (its default), not logged in."""
    puppet = RealPuppet()
    await puppet.start()
    try:
        yield puppet
    finally:
        await puppet.stop()


@pytest.fixture
async def puppets() -> AsyncIterator[Callable[..., Awaitable[RealPuppet]]]:
    """Starts real puppet services (`RealPuppet(**options)`); all are stopped after the test."""
    started: list[RealPuppet] = []

    async def start(**options: Any) -> RealPuppet:
        puppet = RealPuppet(**options)
        started.append(puppet)
        await puppet.start()
        return puppet

    try:
        yield start
    finally:
        for puppet in started:
            await puppet.stop()
