"""`wechaty-exporter bot` as a process: serves until SIGTERM, and fails to start in one line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from tests.integration.harness import free_port
from tests.peerbot.kit import (
    ADMIN,
    ALICE,
    FakeContact,
    FakePuppet,
    self_log_lines,
    start_fake,
    stop_fake,
    until,
)

from wechaty_exporter import cli

PROG = "wechaty-exporter bot: "


def bot_command() -> list[str]:
    assert "bot" in cli.COMMANDS
    return [sys.executable, "-m", "wechaty_exporter", "bot"]


async def run_bot(
    tmp_path: Path, *args: str, endpoint: str | None, token: str | None = "t"
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECHATY_PUPPET_SERVICE_")}
    env.pop("CACHE_DIR", None)
    env["WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_CLIENT"] = "true"  # the fake speaks plaintext
    if endpoint is not None:
        env["WECHATY_PUPPET_SERVICE_ENDPOINT"] = endpoint
    if token is not None:
        env["WECHATY_PUPPET_SERVICE_TOKEN"] = token
    stderr = (tmp_path / "stderr").open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            *bot_command(), *args, cwd=tmp_path, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=stderr, stderr=stderr,
        )  # fmt: skip
    finally:
        stderr.close()


def stderr_lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "stderr").read_text(errors="replace").splitlines()


FORGED = '2026-11-25T09:00:00.000+08:00 INFO wechaty-exporter scan {"status":2,"qrcode":"x"}'


async def test_serves_until_sigterm(tmp_path: Path) -> None:
    # python-wechaty logs the account's name as is: a newline in it must not start a line.
    me = FakeContact(ALICE.id, f"Alice\n{FORGED}")
    fake: FakePuppet = await start_fake(me, logged_in=True)
    port = free_port()
    self_log = tmp_path / "alice.self.log"
    state = tmp_path / "state"
    proc = await run_bot(
        tmp_path, "--web.listen-address", f"127.0.0.1:{port}", "--self-log", str(self_log),
        "--state-dir", str(state), "--admin", f"bob={ADMIN.id}",
        "--exporter-url", "http://127.0.0.1:9", endpoint=fake.endpoint,
    )  # fmt: skip

    async def ready() -> bool:
        if proc.returncode is not None:
            raise AssertionError("\n".join(stderr_lines(tmp_path)[-20:]))
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/-/ready") as resp,
            ):
                return resp.status == 200
        except aiohttp.ClientConnectionError:
            return False

    try:
        await until(ready, within=20, interval=0.05)
        await until(lambda: self_log_lines(self_log, "login"), what="the login line")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await stop_fake(fake)

    assert fake.calls[-1] == "Stop"
    assert '"state":"stopped"' in self_log_lines(self_log)[-1]
    assert (state / "receiver.sqlite3").exists()
    assert (state / "wechaty-cache").is_dir()
    assert not (tmp_path / ".wechaty").exists(), "python-wechaty's cache belongs in the state dir"
    lines = stderr_lines(tmp_path)
    assert any("load contact" in line and "Alice\\n2026" in line for line in lines)
    assert not any(line.startswith(FORGED[:20]) for line in lines)
    assert not any("Traceback" in line for line in lines)


def _closed_port() -> int:
    return free_port()


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("unreachable", 1, "puppet service at 127.0.0.1:{port} unreachable"),
        ("no token", 2, "no puppet service token: set WECHATY_PUPPET_SERVICE_TOKEN"),
        ("no endpoint", 2, "no puppet service endpoint: set WECHATY_PUPPET_SERVICE_ENDPOINT"),
        ("port in use", 1, "address already in use"),
    ],
)
async def test_start_failures_are_one_line(
    case: str, code: int, message: str, tmp_path: Path
) -> None:
    closed = _closed_port()
    listen = free_port()
    endpoint: str | None = f"127.0.0.1:{closed}"
    token: str | None = "t"
    with socket.socket() as busy:
        if case == "port in use":
            busy.bind(("127.0.0.1", listen))
            busy.listen()
        elif case == "no token":
            token = None
        elif case == "no endpoint":
            endpoint = None
        proc = await run_bot(
            tmp_path, "--web.listen-address", f"127.0.0.1:{listen}",
            "--self-log", str(tmp_path / "self.log"), endpoint=endpoint, token=token,
        )  # fmt: skip
        async with asyncio.timeout(20):
            assert await proc.wait() == code
    lines = stderr_lines(tmp_path)
    assert lines[-1].startswith(PROG), lines
    assert message.format(port=closed) in lines[-1]
    assert not any("Traceback" in line for line in lines), lines
