"""webserver.py in-process on a real loopback socket: at the connection cap a request being
answered is never cut, an idle keep-alive connection goes before it, and the flags' bounds."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from wechaty_exporter.settings import ConfigError
from wechaty_exporter.webserver import GuardedRunner, ServerLimits, parse_limits

CAP = 8


@pytest.fixture
async def served() -> AsyncIterator[tuple[GuardedRunner, int, asyncio.Event]]:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="slow\n")

    async def fast(request: web.Request) -> web.Response:
        return web.Response(text="fast\n")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/fast", fast)
    runner = GuardedRunner(app, ServerLimits(read_header_timeout=30, max_connections=CAP))
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    await runner.listen(sock=sock)
    yield runner, sock.getsockname()[1], release
    release.set()
    await runner.cleanup()


async def _send(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def _status(reader: asyncio.StreamReader) -> int | None:
    """The status of the next response, None when the server closed the connection instead."""
    line = await asyncio.wait_for(reader.readline(), 20)
    if not line:
        return None
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    status = int(line.split()[1])
    await asyncio.wait_for(reader.readline(), 20)  # the one-line body
    return status


async def _until(check: Callable[[], bool], within: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline
        await asyncio.sleep(0.01)


async def test_requests_being_answered_are_never_shed(
    served: tuple[GuardedRunner, int, asyncio.Event],
) -> None:
    runner, port, release = served
    busy = [await _send(port, "/slow") for _ in range(CAP)]
    await _until(lambda: runner.guard.stats.open == CAP)
    await asyncio.sleep(0.2)  # every head parsed, every handler waiting
    reader, writer = await _send(port, "/fast")
    assert await _status(reader) is None  # no room: the newcomer is closed, not a busy one
    writer.close()
    assert runner.guard.stats.refused == 1 and runner.guard.stats.shed == 0
    release.set()
    assert [await _status(r) for r, _ in busy] == [200] * CAP
    for _, w in busy:
        w.close()


async def test_an_idle_connection_goes_before_a_busy_one(
    served: tuple[GuardedRunner, int, asyncio.Event],
) -> None:
    runner, port, release = served
    idle_reader, idle_writer = await _send(port, "/fast")
    assert await _status(idle_reader) == 200  # kept alive, idle now
    busy = [await _send(port, "/slow") for _ in range(CAP - 1)]
    await _until(lambda: runner.guard.stats.open == CAP)
    await asyncio.sleep(0.2)
    reader, writer = await _send(port, "/fast")
    assert await _status(reader) == 200
    assert await asyncio.wait_for(idle_reader.read(), 20) == b""  # the idle one was shed
    assert runner.guard.stats.shed == 1
    release.set()
    assert [await _status(r) for r, _ in busy] == [200] * (CAP - 1)
    for w in [writer, idle_writer, *(w for _, w in busy)]:
        w.close()


def test_limit_flags() -> None:
    assert parse_limits(None, None) == ServerLimits(10.0, 512)
    assert parse_limits("500ms", "2048") == ServerLimits(0.5, 2048)
    for timeout, cap in [("soon", None), ("0s", None), ("301s", None), (None, "7"),
                         (None, "many"), (None, "-1"), (None, "70000")]:  # fmt: skip
        with pytest.raises(ConfigError):
            parse_limits(timeout, cap)
